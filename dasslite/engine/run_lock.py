"""One run per output folder: an exclusive lock on OUTPUT_DIR/.lock held for the whole run.

The lock is an flock(2) on the file, so the kernel releases it when the holding process dies, however
it dies: a stale lock left by a dead process is simply taken over. The file records the holder
("pid 1234 on host"), so a second run can say which process holds the folder. The file itself stays
in the folder (deleting it while another process opens it would let two runs hold two locks).
"""

import fcntl
import os
import socket

from ..errors import RunFolderError

LOCK_FILE = ".lock"


class RunLock:
    def __init__(self, folder):
        self.folder = folder
        self.path = os.path.join(folder, LOCK_FILE)
        self._fd = None
        self.taken_over_from = ""

    def acquire(self):
        """Take the lock or raise RunFolderError naming the process that holds it."""
        try:
            os.makedirs(self.folder, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise RunFolderError(
                f'Cannot create the output folder\'s lock file "{self.path}" ({exc.strerror}); choose a '
                f"writable --output-dir."
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd) or "another process"
            os.close(fd)
            raise RunFolderError(
                f'Output folder "{self.folder}" is in use by another run ({holder}, see {self.path}). Wait for '
                f"it to finish, stop it, or choose another --output-dir."
            ) from None
        self.taken_over_from = _read(fd)  # a holder that died without releasing (logged by the caller)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    def stale_lock_message(self):
        if self.taken_over_from:
            return f'Taking over the stale lock of "{self.folder}" left by {self.taken_over_from} (no longer running)'
        return ""

    def release(self):
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # an empty file: nobody to report as a stale holder
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _read(fd):
    return os.pread(fd, 200, 0).decode(errors="replace").strip()
