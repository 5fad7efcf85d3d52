"""How every command line meets a user error: checked before the work, one `error: ...` line, status 2.

    def main(argv=None):
        args = ArgumentParser(...).parse_args(argv)      # a bad flag raises UsageError
        ...                                              # a bad file raises a UserError

    if __name__ == "__main__":
        sys.exit(run_cli(main))

A :class:`~dasslite.errors.UserError` (dasslite/errors.py: every error the user can fix) is printed as
its message alone, without a traceback, unless `--debug` is among the arguments; anything else is a
bug and keeps its traceback. `check_output_file` / `check_output_folder` find an output that cannot be
written before the work starts, not after it.
"""

import argparse
import os
import sys
import tempfile

from .errors import UserError


class UsageError(UserError, ValueError):
    """A flag or argument the command line does not take, or a value it refuses."""


class NothingFoundError(UserError, LookupError):
    """The files a command was pointed at hold nothing it can use (no run, no result)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose errors are UsageErrors: one `error:` line, like every other user error."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def run_cli(main, argv=None, cleanup=None):
    """main(argv)'s return value; a UserError prints `error: <message>` and exits 2, Ctrl-C one line and
    exit status 130 (`--debug`: raised)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return main(argv)
    except UserError as exc:
        if "--debug" in argv:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C is the user's choice, not a bug: no traceback; 130 as the shell's 128 + SIGINT
        if "--debug" in argv:
            raise
        print("interrupted (Ctrl-C) before the command completed", file=sys.stderr)
        sys.exit(130)
    finally:
        if cleanup is not None:
            cleanup()


def check_output_file(path, flag, suffixes):
    """`path` ends in one of `suffixes`, is not a folder, and its folder (created if missing) takes files."""
    if not path.lower().endswith(tuple(suffixes)):
        raise UsageError(f'{flag} "{path}" must end in {" or ".join(suffixes)}')
    if os.path.isdir(path):
        raise UsageError(
            f'{flag} "{path}" is a folder; give a file name, e.g. {os.path.join(path, "out" + suffixes[0])}'
        )
    check_output_folder(os.path.dirname(os.path.abspath(path)), flag)


def check_output_folder(folder, flag):
    """Create `folder` if missing and write a temporary file into it; a UsageError naming `flag` if either fails."""
    blocker = next((p for p in _ancestors(folder) if os.path.exists(p) and not os.path.isdir(p)), None)
    if blocker:
        raise UsageError(f'{flag}: "{blocker}" is a file, so the folder "{folder}" cannot be made; choose another path')
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise UsageError(
            f'{flag}: cannot write into the folder "{folder}" ({e.strerror or e}); choose a folder you can write to'
        ) from None


def _ancestors(folder):
    folder = os.path.abspath(folder)
    while True:
        yield folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return
        folder = parent
