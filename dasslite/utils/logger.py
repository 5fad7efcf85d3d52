"""Logging to the console and OUTPUT_DIR/log.txt with the `logging` module (no stdout swapping).

Every line starts with its time, `[YYYY-MM-DD HH:MM:SS] `, except the lines that result parsers key on
(the evaluator's `=> result` block of `* name: value` lines, and `Finish training`): those stay bare, so
the original code's parse_test_res.py, which compares whole lines, still reads log.txt.
"""

import logging
import os
import re
import sys
import time

from ..errors import RunFolderError
from .dist import is_main_process

_HANDLER_TAG = "_dasslite_handler"  # marks our handlers so a second setup_logger replaces them
# `logger.info(text, extra=FILE_ONLY)`: a report read after the fact (arguments, config, environment,
# per-class counts) goes to log.txt only, so the console keeps the lines a person acts on.
FILE_ONLY = {"file_only": True}
_REPEATED = {"file_only": True, "repeated": True}  # a notice_once message given again: never on the console
_NOTICED = set()  # notices already shown on the console by this process (notice_once)


def log_file_path(output):
    """OUTPUT_DIR/log.txt, or `output` itself when it already names a .txt/.log file."""
    if output.endswith(".txt") or output.endswith(".log"):
        return output
    return os.path.join(output, "log.txt")


def _remove_our_handlers(root):
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_TAG, False):
            root.removeHandler(handler)
            handler.close()


# Messages whose lines parsers compare whole (parse_test_res.py, reporting/runs.py): the evaluator's
# "=> result" and "=> per-class result" blocks, "* name: value" lines and the end-of-training signal.
_PARSED_LINE = re.compile(r"=> |\* |Finish(ed)? training$")


class TimestampFormatter(logging.Formatter):
    """`[2026-01-31 12:00:00] message`; a line that result parsers read stays bare."""

    def __init__(self):
        super().__init__("[%(asctime)s] %(message)s", datefmt="%Y-%m-%d %H:%M:%S")

    def format(self, record):
        message = record.getMessage()
        if _PARSED_LINE.match(message):
            return message
        return super().format(record)


def _tagged(handler):
    setattr(handler, _HANDLER_TAG, True)
    handler.setFormatter(TimestampFormatter())
    return handler


class StrictFileHandler(logging.FileHandler):
    """A FileHandler that stops the run when log.txt cannot be written (logging's default prints the
    error to stderr and goes on, leaving a log with holes that parsers would read as complete)."""

    def handleError(self, record):
        exc = sys.exc_info()[1]
        reason = getattr(exc, "strerror", None) or exc
        raise RunFolderError(
            f'Cannot write the log "{self.baseFilename}": {reason}. The run stopped. Free disk space or make '
            f"the folder writable, then rerun the same command with --resume "
            f"{os.path.dirname(self.baseFilename)}: it continues from the last saved epoch."
        ) from exc

    def close(self):
        try:
            super().close()
        except OSError:  # the failed write was reported when it happened; the buffer cannot be flushed
            self.stream = None


class _ConsoleFilter(logging.Filter):
    def __init__(self, show_file_only):
        super().__init__()
        self.show_file_only = show_file_only

    def filter(self, record):
        if getattr(record, "repeated", False):
            return False
        return self.show_file_only or not getattr(record, "file_only", False)


def notice_once(log, message, level=logging.WARNING):
    """Log `message` at `level` the first time this process gives it; later, to log.txt only, so a
    model built twice in one process (the API, predict after train) repeats no notice on the console."""
    if message in _NOTICED:
        log.info(message, extra=_REPEATED)
        return
    _NOTICED.add(message)
    log.log(level, message)


def forget_notices():
    """Let every notice_once message show again (each test starts as a new process would)."""
    _NOTICED.clear()


def setup_logger(output=None, resume=False, verbose=False):
    """Log INFO and above to stdout and, when `output` is given, to its log file.

    A new run whose log file already exists moves the old one aside to log.txt-YYYY-MM-DD-HH-MM-SS
    (the reference's behaviour); `resume=True` appends to it instead, so a resumed run keeps one log.
    `output=None` logs to the console only. Under torch.distributed, ranks other than 0 log warnings
    and errors only, so each line appears once. Calling this again replaces the handlers it added
    before, so they never duplicate. Lines logged with `extra=FILE_ONLY` reach the console only with
    `verbose=True` (or when there is no log file to hold them); a notice given again (notice_once)
    never does. Returns the log file path (or None).
    """
    root = logging.getLogger()
    root.setLevel(logging.INFO if is_main_process() else logging.WARNING)
    _remove_our_handlers(root)
    console = _tagged(logging.StreamHandler(sys.stdout))
    console.addFilter(_ConsoleFilter(show_file_only=verbose or not output))
    root.addHandler(console)
    if not output:
        return None
    path = log_file_path(output)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if os.path.exists(path) and not resume:
        os.replace(path, path + time.strftime("-%Y-%m-%d-%H-%M-%S"))
    root.addHandler(_tagged(StrictFileHandler(path, mode="a", encoding="utf-8")))
    return path
