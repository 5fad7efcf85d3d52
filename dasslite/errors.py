"""Errors a user can fix: a wrong name, value, file or folder.

Contract: every error raised because of what the user gave (a config key or value, a path, a
checkpoint, a dataset folder) subclasses :class:`UserError`. Its message names what is at fault
(file, key, index) and the fix. ``train.py`` prints such an error as one ``error: <message>`` line and
exits with status 2, without a traceback (``--debug`` shows it). Anything else is a bug and keeps its
traceback.

The subclasses also derive from the builtin a caller would have caught before (KeyError,
ValueError, FileNotFoundError, ...), so ``except ValueError`` still catches a ConfigError.
"""


class UserError(Exception):
    """Base class of every error caused by the user's input; its message says what to fix."""

    def __str__(self):  # KeyError subclasses would quote a one-argument message; show it plainly
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class ConfigError(UserError, ValueError):
    """A config file, key or value is wrong (unknown key, wrong type, out-of-range value)."""


class ConfigKeyError(UserError, KeyError):
    """An unknown config key (a KeyError, as yacs raises)."""


class UserFileNotFoundError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class CheckpointError(UserError, ValueError):
    """A checkpoint file cannot be used (empty, truncated, foreign, non-finite, wrong model)."""


class RunFolderError(UserError, RuntimeError):
    """The output folder cannot take this run (locked by another run, finished, unwritable, ...)."""


class DataError(UserError, ValueError):
    """A dataset file or folder is wrong (bad split file, unreadable image, empty class folder)."""
