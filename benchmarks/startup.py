"""Start-up time: wall and CPU seconds of `python <command> --help` for every command, and of the imports that the
first training batch and the first prediction need, each in a fresh interpreter (best of --repeats).

    python benchmarks/startup.py
    python -X importtime train.py --help 2>&1 | sort -t'|' -k2 -n | tail   # where the time goes

tests/test_quick_start.py checks which modules these load (no timing in tests).
"""

import argparse
import os
import subprocess
import sys
import time

from tabulate import tabulate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.test_quick_start import COMMANDS  # noqa: E402

IMPORTS = {
    "import coop_toolkit": "import coop_toolkit",
    "first prediction's imports (coop_toolkit.api)": "import coop_toolkit.api",
    "first training batch's imports (train.py's)": "import coop_toolkit.datasets, coop_toolkit.launch, "
    "coop_toolkit.trainers, dasslite.engine.build",
    "import torch (for scale)": "import torch",
}


def timed(argv, repeats):
    """(wall seconds, CPU seconds of the process), each the best of `repeats` runs. CPU seconds (user +
    system) move less than wall time on a machine shared with other jobs."""
    env = {**os.environ, "PYTHONPATH": REPO}
    walls, cpus = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        if status:
            raise SystemExit(f"{' '.join(argv)} failed")
        walls.append(time.perf_counter() - start)
        cpus.append(usage.ru_utime + usage.ru_stime)
    return min(walls), min(cpus)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    runs = {f"{c} --help": [sys.executable, c, "--help"] for c in COMMANDS}
    runs.update((what, [sys.executable, "-c", code]) for what, code in IMPORTS.items())
    rows = []
    for what, command in runs.items():
        wall, cpu = timed(command, args.repeats)
        rows.append({"what": what, "wall s": wall, "CPU s": cpu})
    print(tabulate(rows, headers="keys", floatfmt=".2f", tablefmt="github" if args.markdown else "simple"))
    return rows


if __name__ == "__main__":
    main()
