"""Ctrl-C (SIGINT) and SIGTERM (a cluster's preemption) stop training at a safe point.

While `stop_on_signals()` is active, the first SIGINT / SIGTERM only records a request; the trainer
checks it after each batch (TrainerBase.check_stop) and raises TrainingInterrupted there, so no
checkpoint is ever cut short. Under torchrun the ranks combine their requests there, so a signal to
any one of them stops all at the same batch. A second signal acts at once (the default behaviour is
restored).
"""

import contextlib
import signal

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_requested = []  # the signal numbers received while stop_on_signals() is active


class TrainingInterrupted(Exception):
    """Training stopped on a signal; `saved_epoch` is the epoch a --resume continues from."""

    def __init__(self, signum, where, saved_epoch):
        self.signum, self.where, self.saved_epoch = signum, where, saved_epoch
        super().__init__(f"{signal.Signals(signum).name} at {where}")

    @property
    def exit_code(self):
        return 128 + self.signum  # the shell's convention for a process ended by a signal


def stop_requested():
    """The first signal number received, or None."""
    return _requested[0] if _requested else None


def _handler(signum, frame):
    _requested.append(signum)
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_DFL if sig == signal.SIGTERM else signal.default_int_handler)


@contextlib.contextmanager
def stop_on_signals():
    """Install the handlers (main thread only; elsewhere this does nothing) and restore them after."""
    _requested.clear()
    try:
        previous = {sig: signal.signal(sig, _handler) for sig in SIGNALS}
    except ValueError:  # not the main thread: signals cannot be handled here
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _requested.clear()
