"""What a run does to its output folder besides writing results: clean-up at start, clearing it for
--overwrite, and turning a failed write into an error that says how to continue."""

import contextlib
import os
import re

from ..errors import RunFolderError
from ..utils.io import atomic_write
from .build import TRAINER_REGISTRY
from .checkpoint import BEST_FILE, POINTER_FILE
from .resume_check import check_resume

# dasslite/utils/io.py atomic_write's temp files: ".<target name>.<random>.tmp" beside the target
TEMP_FILE = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")
CHECKPOINT_FILE = re.compile(r"^model\.pth\.tar-\d+$")


def _files(output_dir, depth=2):
    """Files in output_dir and its sub-folders down to `depth` levels (checkpoints live one level down)."""
    base = os.path.abspath(output_dir)
    for directory, subdirs, files in os.walk(base):
        if directory[len(base) :].count(os.sep) >= depth - 1:
            subdirs[:] = []
        for name in files:
            yield directory, name


def remove_temp_files(output_dir):
    """Remove the temp files of writes killed midway (only call while holding the folder's lock).

    Returns a line to log (the log file is not open yet), or "" when there were none.
    """
    removed = []
    for directory, name in _files(output_dir):
        if TEMP_FILE.match(name):
            os.remove(os.path.join(directory, name))
            removed.append(os.path.relpath(os.path.join(directory, name), output_dir))
    return f"Removed temp files of writes that did not finish: {', '.join(sorted(removed))}" if removed else ""


def clear_for_overwrite(output_dir):
    """--overwrite: remove the checkpoints, their pointers and metrics.json, so the run starts from scratch.

    Returns a line to log, or "" when there was nothing to remove.
    """
    removed = []
    for directory, name in _files(output_dir):
        at_top = directory == os.path.abspath(output_dir)
        if (at_top and name == "metrics.json") or (
            not at_top and (name in (POINTER_FILE, BEST_FILE) or CHECKPOINT_FILE.match(name))
        ):
            os.remove(os.path.join(directory, name))
            removed.append(os.path.relpath(os.path.join(directory, name), output_dir))
    return f"--overwrite: removed the previous run's {', '.join(sorted(removed))}" if removed else ""


@contextlib.contextmanager
def writing(path, output_dir):
    """Turn an OSError (full disk, read-only or unwritable folder) while writing `path` into a
    RunFolderError that names it and says that --resume continues the run."""
    try:
        yield
    except OSError as exc:
        raise RunFolderError(
            f'Cannot write "{path}": {exc.strerror or exc}. Free disk space or make the folder writable, then '
            f"rerun the same command with --resume {output_dir}: it continues from the last saved epoch."
        ) from exc


def prepare_output_dir(cfg, overwrite=False, eval_only=False):
    """Holding the folder's lock: drop dead writes' temp files, clear it for --overwrite, and check
    that what it holds may be resumed, all before this run writes anything there. Returns the lines to
    log as warnings once the log is open."""
    notes = [remove_temp_files(cfg.OUTPUT_DIR)]
    if overwrite:
        notes.append(clear_for_overwrite(cfg.OUTPUT_DIR))
    if not eval_only:
        trainer_cls = TRAINER_REGISTRY.get(cfg.TRAINER.NAME)
        node = getattr(trainer_cls, "config_node", None) or cfg.TRAINER.NAME.upper()
        extra = getattr(trainer_cls, "learning_keys", ())  # keys of its own outside its node (CoPrompt's TRAINER.W)
        notes += check_resume(cfg, cfg.RESUME or cfg.OUTPUT_DIR, trainer_node=node, extra_keys=extra)
    return notes


def save_config(cfg):
    """OUTPUT_DIR/config.yaml: the full merged config of this run (reloadable with merge_from_file)."""
    path = os.path.join(cfg.OUTPUT_DIR, "config.yaml")
    with writing(path, cfg.OUTPUT_DIR), atomic_write(path) as f:
        f.write(cfg.dump())
