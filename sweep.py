"""Run a list of shell commands (one per line) in parallel, locally or on SLURM, and report failures.

    scripts/tables/base2new.sh | python sweep.py            # the per-table scripts pipe their jobs here
    python sweep.py jobs.txt --jobs 4                       # 4 at a time
    python sweep.py jobs.txt --executor slurm --partition gpu --timeout-min 720

Local: one job per visible GPU (CUDA_VISIBLE_DEVICES is set to that GPU for the job; the GPUs are those
listed in CUDA_VISIBLE_DEVICES, else those `nvidia-smi -L` lists), or `--jobs` / $JOBS at a time on a
CPU-only machine (default 1). Each job's output goes to <log-dir>/job<i>.log. SLURM (and `--executor
submitit-local`, the same path run on this machine) goes through submitit, the `slurm` extra; each job
gets one GPU. Commands run from the repository root. Exit status: 0 when every job succeeded.
"""

import argparse
import concurrent.futures
import logging
import os
import queue
import shutil
import subprocess
import sys

from dasslite.cli import ArgumentParser, UsageError, check_output_folder, run_cli

ROOT = os.path.dirname(os.path.abspath(__file__))
logger = logging.getLogger("sweep")


def visible_gpus():
    """GPU ids to hand out, one per concurrent job; [] on a machine without GPUs."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g for g in listed.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False).stdout
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def read_commands(lines):
    """Non-empty lines that are not comments."""
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _run_one(index, command, gpus, log_dir):
    gpu = gpus.get() if gpus else None
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    try:
        with open(os.path.join(log_dir, f"job{index}.log"), "w") as log:
            log.write(f"$ {command}\n")
            log.flush()
            return subprocess.run(
                ["bash", "-c", command], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=False
            ).returncode
    finally:
        if gpu is not None:
            gpus.put(gpu)


def run_local(commands, jobs, log_dir, gpus=None):
    """Run the commands `jobs` at a time; with GPUs, one job per GPU. Returns the exit codes in order."""
    os.makedirs(log_dir, exist_ok=True)
    pool = None
    if gpus:
        pool = queue.Queue()
        for gpu in gpus:
            pool.put(gpu)
        jobs = len(gpus)
    logger.info("running %d jobs, %d at a time%s", len(commands), jobs, f" on GPUs {gpus}" if gpus else "")
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as executor:
        futures = [executor.submit(_run_one, i, c, pool, log_dir) for i, c in enumerate(commands)]
        return [f.result() for f in futures]


def run_submitit(commands, log_dir, cluster=None, **slurm):
    """Submit each command as one job through submitit; wait; return the exit codes in order."""
    try:
        import submitit
    except ImportError:
        raise UsageError('SLURM jobs need submitit: pip install -e ".[slurm]"') from None
    try:
        executor = submitit.AutoExecutor(folder=log_dir, cluster=cluster)
    except RuntimeError as error:  # no SLURM here (submitit finds no srun)
        raise UsageError(f"--executor {cluster}: {error}; use --executor local on this machine") from None
    if executor.cluster == "slurm":
        executor.update_parameters(**{k: v for k, v in slurm.items() if v is not None})
    jobs = [executor.submit(submitit.helpers.CommandFunction(["bash", "-c", c], cwd=ROOT)) for c in commands]
    codes = []
    for job in jobs:
        try:
            job.result()
            codes.append(0)
        except Exception as error:  # submitit wraps the job's failure; its log has the detail
            logger.debug("job %s failed: %s", job.job_id, error)
            codes.append(1)
    return codes


def report(commands, codes, log_dir):
    failed = [(i, c) for i, (c, code) in enumerate(zip(commands, codes)) if code != 0]
    print(f"{len(commands) - len(failed)}/{len(commands)} jobs succeeded (logs in {log_dir})")
    for i, command in failed:
        print(f"FAILED (exit {codes[i]}): job{i}: {command}")
    return 1 if failed else 0


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", nargs="?", help="file with one command per line (default: stdin)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.environ.get("JOBS", "1"),  # a string default goes through type=int, so a bad $JOBS is a usage error
        help="concurrent jobs without GPUs (default: $JOBS or 1)",
    )
    parser.add_argument(
        "--executor",
        default=os.environ.get("EXECUTOR", "local"),
        choices=["local", "slurm", "submitit-local"],
        help="default: $EXECUTOR or local",
    )
    parser.add_argument(
        "--log-dir",
        default=os.path.join("output", "sweep_logs"),
        help="per-job logs (relative: to the repository root)",
    )
    parser.add_argument("--partition", help="SLURM partition")
    parser.add_argument("--timeout-min", type=int, default=24 * 60, help="SLURM time limit per job")
    parser.add_argument("--cpus-per-task", type=int, default=8, help="SLURM CPUs per job (data loading)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = parser.parse_args(argv)
    for flag in ("jobs", "timeout_min", "cpus_per_task"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be at least 1; got {getattr(args, flag)}")
    return args


def read_command_file(path):
    """The commands of `path` (stdin when None); an unreadable or non-UTF-8 file is a UsageError naming it."""
    if path is None:
        return read_commands(sys.stdin)
    try:
        with open(path, encoding="utf-8") as f:
            return read_commands(f)
    except UnicodeDecodeError as e:
        raise UsageError(f'"{path}" is not UTF-8 text (byte {e.start}); save the commands as UTF-8') from None
    except OSError as e:
        raise UsageError(
            f'"{path}" cannot be read ({e.strerror or e}); give a file with one command per line'
        ) from None


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    commands = read_command_file(args.file)
    if args.dry_run or not commands:
        print("\n".join(commands))
        return 0
    log_dir = os.path.join(ROOT, args.log_dir) if not os.path.isabs(args.log_dir) else args.log_dir
    check_output_folder(log_dir, "--log-dir")
    if args.executor == "local":
        codes = run_local(commands, args.jobs, log_dir, visible_gpus())
    else:
        cluster = "slurm" if args.executor == "slurm" else "local"
        codes = run_submitit(
            commands,
            log_dir,
            cluster,
            slurm_partition=args.partition,
            gpus_per_node=1,
            timeout_min=args.timeout_min,
            cpus_per_task=args.cpus_per_task,
        )
    return report(commands, codes, log_dir)


if __name__ == "__main__":
    sys.exit(run_cli(main))
