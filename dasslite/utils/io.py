"""File writes that are never seen half-done, and JSON helpers built on them."""

import contextlib
import functools
import json
import os
import tempfile


def mkdir_if_missing(path):
    os.makedirs(path, exist_ok=True)


@functools.lru_cache(maxsize=1)
def process_umask():
    """The process umask, read once.

    Linux reports it in /proc/self/status; elsewhere it can only be read by setting it, which for
    an instant changes it for every thread, so that is done once and cached.
    """
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path, mode="w", exclusive=False, **open_kwargs):
    """Open a temp file beside `path`; on success fsync it and rename it over `path`.

    Readers see either the old file or the complete new one, also when several processes write
    the same path at once (the last rename wins) or the writer is killed mid-write. The file gets
    the mode a plain `open` would give (0666 minus the umask), not mkstemp's private 0600, so
    colleagues sharing a dataset folder can read it.

    `exclusive=True`: the first file written wins; when `path` already exists (another process got
    there first) nothing is replaced and FileExistsError is raised, so the caller reads that file.
    """
    directory = os.path.dirname(os.path.abspath(path))
    mkdir_if_missing(directory)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~process_umask())
            os.fsync(f.fileno())
        if exclusive:
            _link_exclusive(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def _link_exclusive(tmp, path):
    """Publish `tmp` as `path` only if `path` does not exist (a hard link never replaces a file)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links: check, then rename (a narrow race remains)
        if os.path.exists(path):
            raise FileExistsError(path) from None
        os.replace(tmp, path)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def write_json(obj, path, indent=4, exclusive=False):
    """Write JSON atomically (Dassl's argument order: object first, then path)."""
    with atomic_write(path, exclusive=exclusive) as f:
        json.dump(obj, f, indent=indent)
