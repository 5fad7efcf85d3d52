"""File writes that are never seen half-done, and JSON helpers built on them."""

import contextlib
import json
import os
import tempfile


def mkdir_if_missing(path):
    os.makedirs(path, exist_ok=True)


@contextlib.contextmanager
def atomic_write(path, mode="w", **open_kwargs):
    """Open a temp file beside `path`; on success fsync it and rename it over `path`.

    Readers see either the old file or the complete new one, also when several processes write
    the same path at once (the last rename wins) or the writer is killed mid-write.
    """
    directory = os.path.dirname(os.path.abspath(path))
    mkdir_if_missing(directory)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def read_json(path):
    with open(path) as f:
        return json.load(f)


def write_json(obj, path, indent=4):
    """Write JSON atomically (Dassl's argument order: object first, then path)."""
    with atomic_write(path) as f:
        json.dump(obj, f, indent=indent)
