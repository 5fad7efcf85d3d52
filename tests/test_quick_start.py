"""A quick start: `--help` of every command and `import coop_toolkit` load no heavy module, and the path to
the first training batch or prediction leaves out what only evaluation uses. Checked with sys.modules in a
fresh interpreter, not with a clock (benchmarks/startup.py measures the times)."""

import glob
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the commands: every script at the repository root with a command line
COMMANDS = sorted(
    os.path.basename(path)
    for path in glob.glob(os.path.join(REPO, "*.py"))
    if 'if __name__ == "__main__":' in open(path, encoding="utf-8").read()
)
HEAVY = ("torch", "torchvision", "sklearn", "open_clip", "timm", "tensorboard")


def modules_loaded_by(code):
    """The HEAVY modules in sys.modules after a fresh interpreter runs `code` in the repository root."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    env = {**os.environ, "PYTHONPATH": REPO}
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_commands_are_found():
    assert {"train.py", "predict.py", "export.py", "results.py", "interpret_prompt.py", "sweep.py"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_loads_no_heavy_module(command):
    code = (
        "import contextlib, io, runpy, sys\n"
        f"sys.argv = [{command!r}, '--help']\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        f"    runpy.run_path({command!r}, run_name='__main__')"
    )
    assert modules_loaded_by(code) == []


def test_import_coop_toolkit_loads_no_heavy_module():
    assert modules_loaded_by("import coop_toolkit") == []


def test_training_and_prediction_leave_out_what_only_evaluation_or_logging_uses():
    """scikit-learn (evaluation's F1 and confusion matrix) and TensorBoard (the writer) load when used."""
    code = "import coop_toolkit.api, coop_toolkit.datasets, coop_toolkit.launch, coop_toolkit.trainers, train"
    loaded = modules_loaded_by(code)
    assert "torch" in loaded  # the probe works
    assert "sklearn" not in loaded and "tensorboard" not in loaded


def test_help_lists_every_registered_trainer():
    """train.py --help reads the trainer names from the source (coop_toolkit/trainer_names.py)."""
    import coop_toolkit.trainers  # noqa: F401  (registers them)
    from coop_toolkit.trainer_names import trainer_names
    from tests.precision_matrix import toolkit_trainers

    assert trainer_names() == toolkit_trainers()
    help_text = subprocess.run(
        [sys.executable, "train.py", "--help"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert all(name in help_text for name in trainer_names())
