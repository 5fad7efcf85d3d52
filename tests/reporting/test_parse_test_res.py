"""parse_test_res.py on logs in the original code's format: values, spread and output lines."""

import os

import pytest

import parse_test_res
from dasslite.cli import NothingFoundError

from .fixtures import reference_log

# Seeds 1-3: mean 91.6667; population std sqrt(((0.1333)^2 + (0.6333)^2 + (0.7667)^2) / 3) = 0.5793;
# CI95 = 1.96 * 0.5793 / sqrt(3) = 0.6555.
ACCURACIES = (91.8, 92.3, 90.9)


def _experiment(folder, accuracies=ACCURACIES, **kwargs):
    for seed, accuracy in enumerate(accuracies, 1):
        reference_log(os.path.join(folder, f"seed{seed}"), accuracy, macro_f1=78.0 + 2 * seed, **kwargs)
    return str(folder)


def test_mean_and_std_over_seeds(tmp_path, capsys):
    directory = _experiment(tmp_path / "exp")
    assert parse_test_res.main([directory]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"Parsing files in {directory}",
        f"file: {directory}/seed1/log.txt. accuracy: 91.80%. ",
        f"file: {directory}/seed2/log.txt. accuracy: 92.30%. ",
        f"file: {directory}/seed3/log.txt. accuracy: 90.90%. ",
        "===",
        f"Summary of directory: {directory}",
        "* accuracy: 91.67% +- 0.58%",
        "===",
    ]


def test_ci95(tmp_path, capsys):
    parse_test_res.main([_experiment(tmp_path / "exp"), "--ci95"])
    assert "* accuracy: 91.67% +- 0.66%" in capsys.readouterr().out


def test_old_end_signal_is_accepted(tmp_path, capsys):
    directory = _experiment(tmp_path / "exp", end_signal="Finished training")  # Dassl < 0.6.1
    parse_test_res.main([directory])
    assert "* accuracy: 91.67% +- 0.58%" in capsys.readouterr().out


def test_values_before_the_end_signal_are_ignored(tmp_path, capsys):
    # Each training log holds a validation block (50.0%) before `Finish training`; only the final
    # test after it counts. Without any end signal there is nothing to report.
    directory = _experiment(tmp_path / "exp", end_signal="Training stopped")
    with pytest.raises(NothingFoundError, match="nothing found in"):
        parse_test_res.main([directory])
    assert "50.00%" not in capsys.readouterr().out


def test_keyword_macro_f1(tmp_path, capsys):
    # macro_f1 of the seeds: 80, 82, 84 -> mean 82, std sqrt(8/3) = 1.633.
    parse_test_res.main([_experiment(tmp_path / "exp"), "--keyword", "macro_f1"])
    out = capsys.readouterr().out
    assert "macro_f1: 80.00%. " in out
    assert "* macro_f1: 82.00% +- 1.63%" in out


def test_test_log_and_multi_exp(tmp_path, capsys):
    # exp_a: training logs; with --test-log the last `=> result` block (the final test) wins over the
    # validation block. exp_b: eval-only logs 70 and 72 -> 71 +- 1. Average: (91.667 + 71) / 2 = 81.33.
    _experiment(tmp_path / "xd" / "exp_a")
    _experiment(tmp_path / "xd" / "exp_b", accuracies=(70.0, 72.0), eval_only=True)
    assert parse_test_res.main([str(tmp_path / "xd"), "--test-log", "--multi-exp"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "* accuracy: 91.67% +- 0.58%" in out
    assert "* accuracy: 71.00% +- 1.00%" in out
    assert out[-2:] == ["Average performance", "* accuracy: 81.33%"]


def test_stray_entries_are_skipped_with_a_warning(tmp_path, capsys, caplog):
    directory = _experiment(tmp_path / "exp")
    (tmp_path / "exp" / "notes.txt").write_text("not a run")
    (tmp_path / "exp" / "seed4").mkdir()  # crashed before writing a log
    assert parse_test_res.main([directory]) == 0
    assert "* accuracy: 91.67% +- 0.58%" in capsys.readouterr().out
    assert "notes.txt" in caplog.text and "seed4" in caplog.text


def test_last_matching_line_wins(tmp_path, capsys):
    folder = tmp_path / "exp" / "seed1"
    reference_log(str(folder), 91.8)
    with open(folder / "log.txt", "a") as f:
        f.write("=> result\n* accuracy: 93.5%\n")
    parse_test_res.main([str(tmp_path / "exp")])
    assert "* accuracy: 93.50% +- 0.00%" in capsys.readouterr().out
