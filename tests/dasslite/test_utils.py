import logging
import random
import re

import numpy as np
import torch

from dasslite.utils.dist import get_world_size, init_distributed, is_main_process
from dasslite.utils.logger import setup_logger
from dasslite.utils.seed import get_rng_state, set_random_seed, set_rng_state
from dasslite.utils.tools import collect_env_info, format_seconds

log = logging.getLogger("dasslite.test")


STAMP = r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] "


def test_logger_writes_plain_lines_without_duplicates(tmp_path, capsys):
    path = setup_logger(str(tmp_path))
    setup_logger(str(tmp_path), resume=True)  # a second call replaces, never duplicates, the handlers
    log.info("* accuracy: 91.8%")
    assert path == str(tmp_path / "log.txt")
    assert (tmp_path / "log.txt").read_text() == "* accuracy: 91.8%\n"
    assert capsys.readouterr().out == "* accuracy: 91.8%\n"


def test_new_run_moves_old_log_aside_and_resume_appends(tmp_path):
    (tmp_path / "log.txt").write_text("old run\n")
    setup_logger(str(tmp_path))
    log.info("new run")
    kept = [p.name for p in tmp_path.iterdir() if p.name.startswith("log.txt-")]
    assert len(kept) == 1 and (tmp_path / kept[0]).read_text() == "old run\n"
    setup_logger(str(tmp_path), resume=True)
    log.info("resumed")
    assert re.fullmatch(f"{STAMP}new run\n{STAMP}resumed\n", (tmp_path / "log.txt").read_text())


def test_logger_file_path_and_console_only(tmp_path):
    assert setup_logger(str(tmp_path / "custom.log")) == str(tmp_path / "custom.log")
    log.info("x")
    assert re.fullmatch(f"{STAMP}x\n", (tmp_path / "custom.log").read_text())
    assert setup_logger(None) is None
    log.info("console only")
    assert re.fullmatch(f"{STAMP}x\n", (tmp_path / "custom.log").read_text())


def test_log_lines_carry_timestamps_except_the_lines_result_parsers_read(tmp_path, capsys):
    setup_logger(str(tmp_path))
    log.info("epoch [1/2] batch [1/4] loss 1.0")
    log.info("Finish training")
    log.info("=> result\n* total: 10\n* accuracy: 50.0%")
    text = (tmp_path / "log.txt").read_text()
    assert re.fullmatch(
        f"{STAMP}epoch \\[1/2\\] batch \\[1/4\\] loss 1.0\nFinish training\n=> result\n"
        r"\* total: 10\n\* accuracy: 50.0%\n",
        text,
    )
    assert capsys.readouterr().out == text


def draws():
    return random.random(), np.random.rand(), torch.rand(1).item()


def test_rng_state_round_trip(tmp_path):
    set_random_seed(3)
    first = draws()
    set_random_seed(3)
    assert draws() == first
    state = get_rng_state()
    expected = draws()
    torch.save(state, tmp_path / "rng.pt")
    draws()
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))  # plain data: loads safely
    assert draws() == expected


def test_single_process_helpers():
    assert init_distributed() is False and get_world_size() == 1 and is_main_process()
    assert format_seconds(3725.4) == "1:02:05"
    assert "Pillow" in collect_env_info()


def test_other_ranks_log_warnings_only(tmp_path, capsys, monkeypatch):
    import dasslite.utils.logger as logger_module

    monkeypatch.setattr(logger_module, "is_main_process", lambda: False)
    setup_logger(None)
    log.info("from rank 1")
    log.warning("rank 1 warning")
    assert re.fullmatch(f"{STAMP}rank 1 warning\n", capsys.readouterr().out)
