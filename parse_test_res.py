"""Mean and spread of a metric over seed folders, read from log.txt (the reference's tool and output).

    python parse_test_res.py output/my_experiment                 # my_experiment/seed*/log.txt
    python parse_test_res.py output/my_experiment --ci95          # 95% CI instead of std
    python parse_test_res.py output/base2new/test_new/... --test-log   # eval-only logs
    python parse_test_res.py output/evaluation/CoCoOp/cfg_16shots --test-log --multi-exp
    python parse_test_res.py output/my_experiment --keyword macro_f1

Compatible with the original code's logs: values are read after the end-of-training line (`Finish
training`, or `Finished training` as printed by Dassl < 0.6.1), or after `=> result` with --test-log; the
last `* <keyword>: N%` line after it wins. Spread is np.std over seeds (population) or 1.96*std/sqrt(n).
Unlike the reference, a stray file or a folder without log.txt is skipped with a warning; a missing
folder, a seed folder given for its parent, or a folder with no result is one `error:` line (exit
status 2). For full-precision results and the papers' tables use results.py, which reads metrics.json.
"""

import argparse
import logging
import os
import re
import sys

import numpy as np

from dasslite.cli import ArgumentParser, NothingFoundError, UsageError, run_cli
from dasslite.errors import UserFileNotFoundError
from dasslite.log_format import END_SIGNALS, RESULT_HEADER

logger = logging.getLogger("parse_test_res")
TEST_SIGNALS = (RESULT_HEADER,)


def listdir_nohidden(path):
    return sorted(name for name in os.listdir(path) if not name.startswith("."))


def compute_ci95(values):
    return 1.96 * np.std(values) / np.sqrt(len(values))


def parse_log(fpath, regex, end_signals):
    """The last value matching `regex` after an end signal, or None."""
    value, good_to_go = None, False
    with open(fpath, errors="replace") as f:
        for line in f:
            line = line.strip()
            good_to_go = good_to_go or line in end_signals
            match = regex.search(line) if good_to_go else None
            if match:
                value = float(match.group(1))
    return value


def _hint(fpath, regex):
    """What to do when a log has no result after the end-of-training line: an eval-only log (no
    end-of-training line at all, a result block) needs --test-log."""
    with open(fpath, errors="replace") as f:
        trained = any(line.strip() in END_SIGNALS for line in f)
    if trained or parse_log(fpath, regex, TEST_SIGNALS) is None:
        return ""
    return " (it is an evaluation-only log: add --test-log)"


def is_seed_folder(directory):
    """A run folder itself (log.txt inside, no sub-folder holding one): the tool wants its parent."""
    if not os.path.isfile(os.path.join(directory, "log.txt")):
        return False
    return not any(os.path.isfile(os.path.join(directory, d, "log.txt")) for d in listdir_nohidden(directory))


def parse_function(directory, keyword, end_signals, ci95=False):
    """Print one line per seed folder and the summary; return the mean (NothingFoundError: nothing parsed)."""
    if not os.path.isdir(directory):
        raise UserFileNotFoundError(f'no such folder: "{directory}"; give the folder holding the seed folders')
    if is_seed_folder(directory):
        parent = os.path.dirname(os.path.normpath(os.path.abspath(directory)))
        raise UsageError(
            f"{directory} is one run's folder (it holds log.txt); point parse_test_res.py at the folder holding "
            f"the seed folders, its parent: python parse_test_res.py {parent}"
        )
    print(f"Parsing files in {directory}")
    regex = re.compile(rf"\* {re.escape(keyword)}: ([\.\deE+-]+)%")
    values = []
    for subdir in listdir_nohidden(directory):
        fpath = os.path.join(directory, subdir, "log.txt")
        if not os.path.isfile(fpath):
            logger.warning("skipped %s: no log.txt", os.path.join(directory, subdir))
            continue
        value = parse_log(fpath, regex, end_signals)
        if value is None:
            logger.warning(
                "skipped %s: no '%s' result after %s%s", fpath, keyword, " / ".join(end_signals), _hint(fpath, regex)
            )
            continue
        values.append(value)
        print(f"file: {fpath}. {keyword}: {value:.2f}%. ")
    if not values:
        raise NothingFoundError(
            f"nothing found in {directory}: no seed folder's log.txt has a '{keyword}' result (see the warnings above)"
        )
    spread = compute_ci95(values) if ci95 else np.std(values)
    print("===")
    print(f"Summary of directory: {directory}")
    print(f"* {keyword}: {np.mean(values):.2f}% +- {spread:.2f}%")
    print("===")
    return float(np.mean(values))


def main(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=str, help="path to directory")
    parser.add_argument("--ci95", action="store_true", help=r"compute 95%% confidence interval")
    parser.add_argument("--test-log", action="store_true", help="parse test-only logs")
    parser.add_argument("--multi-exp", action="store_true", help="parse multiple experiments")
    parser.add_argument("--keyword", default="accuracy", type=str, help="which keyword to extract")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    signals = TEST_SIGNALS if args.test_log else END_SIGNALS
    if not args.multi_exp:
        parse_function(args.directory, args.keyword, signals, args.ci95)
        return 0
    if not os.path.isdir(args.directory):
        raise UserFileNotFoundError(f'no such folder: "{args.directory}"; give the folder holding the experiments')
    means = []
    for name in listdir_nohidden(args.directory):
        directory = os.path.join(args.directory, name)
        if not os.path.isdir(directory):
            logger.warning("skipped %s: not a folder", directory)
            continue
        try:
            means.append(parse_function(directory, args.keyword, signals, args.ci95))
        except NothingFoundError as e:  # one empty experiment does not hide the others
            logger.warning("%s", e)
    if not means:
        raise NothingFoundError(f"nothing found in {args.directory}: no experiment folder has a result")
    print("Average performance")
    print(f"* {args.keyword}: {np.mean(means):.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
