"""What a run does to its output folder besides writing results: clean-up at start, clearing it for
--overwrite, and turning a failed write into an error that says how to continue."""

import contextlib
import logging
import os
import re

from ..errors import RunFolderError
from .checkpoint import BEST_FILE, POINTER_FILE

logger = logging.getLogger(__name__)

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
    """Remove the temp files of writes killed midway (only call while holding the folder's lock)."""
    for directory, name in _files(output_dir):
        if TEMP_FILE.match(name):
            path = os.path.join(directory, name)
            logger.info(f'Removing "{path}", left by a write that did not finish')
            os.remove(path)


def clear_for_overwrite(output_dir):
    """--overwrite: remove the checkpoints, their pointers and metrics.json, so the run starts from scratch."""
    removed = []
    for directory, name in _files(output_dir):
        at_top = directory == os.path.abspath(output_dir)
        if (at_top and name == "metrics.json") or (
            not at_top and (name in (POINTER_FILE, BEST_FILE) or CHECKPOINT_FILE.match(name))
        ):
            os.remove(os.path.join(directory, name))
            removed.append(os.path.relpath(os.path.join(directory, name), output_dir))
    if removed:
        logger.info(f"--overwrite: removed the previous run's {', '.join(sorted(removed))}")


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
