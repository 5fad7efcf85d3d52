"""A console a person reads: train.py prints the lines to act on, and log.txt keeps the rest.

The environment report, arguments and config go to log.txt only (the console with --verbose); no
Python warning of ours (jit.load of OpenAI's archives, a CUDA GradScaler without CUDA) appears; a
notice shows once per process; a few-shot shortfall is one line, its counts in log.txt; a suggested
KEY VALUE is shell-safe as printed; a zero-shot trainer run without --eval-only is a user error.
"""

import logging
import os
import random
import re
import shlex
import subprocess
import sys
import warnings

import pytest
import torch

import dasslite.utils.tools
import train
from coop_toolkit.trainers import learner
from coop_toolkit.trainers.clip_backbone import check_input_size, load_clip
from coop_toolkit.trainers.coop import CoOp
from coop_toolkit.trainers.precision import resolve_precision
from dasslite.config import get_cfg_default
from dasslite.data import fewshot
from dasslite.data.datum import Datum
from dasslite.utils.logger import FILE_ONLY, notice_once, setup_logger
from tests.datasets.layouts import write_image
from tests.trainers.helpers import bare_trainer, make_cfg

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_LINES_BEFORE_FIRST_EPOCH = 40
WARNING_LINE = re.compile(r"\b\w*Warning\b:")


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory):
    """The tiny CLIP at 64 px, in OpenAI's TorchScript layout (the jit.load path)."""
    from tools.tiny_clip import save_tiny_clip

    path = tmp_path_factory.mktemp("clip") / "tiny-64.pt"
    save_tiny_clip(path, vision="vit", fmt="jit", image_size=64)
    return str(path)


@pytest.fixture(scope="module")
def short_data(tmp_path_factory):
    """An ImageFolder whose class "zebra" has 1 training image: short of the 2 shots the run asks for."""
    root = tmp_path_factory.mktemp("data")
    for name, n in (("cat", 3), ("dog", 3), ("zebra", 1)):
        for i in range(n):
            write_image(str(root / "train" / name / f"{i}.jpg"))
        for i in range(2):
            write_image(str(root / "val" / name / f"{i}.jpg"))
        write_image(str(root / "test" / name / "t.jpg"))
    return str(root)


def train_argv(data, clip, out, *extra):
    return [
        "--root",
        data,
        "--seed",
        "1",
        "--trainer",
        "CoOp",
        "--dataset-config-file",
        "configs/datasets/imagefolder.yaml",
        "--config-file",
        "configs/trainers/CoOp/demo.yaml",
        "--output-dir",
        str(out),
        *extra,
        "DATASET.NUM_SHOTS",
        "2",
        "MODEL.BACKBONE.NAME",
        clip,
        "OPTIM.MAX_EPOCH",
        "1",
        "DATALOADER.NUM_WORKERS",
        "0",
    ]


def train_py(*args):
    """train.py as a user runs it: its own process, Python's default warning filters, one console."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env.update(PYTHONUNBUFFERED="1", PYTHONPATH=REPO, HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "train.py", *train_argv(*args)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    return done.stdout.splitlines()


def test_train_console_is_short_and_quiet_and_log_txt_keeps_the_report(short_data, small_clip, tmp_path):
    console = train_py(short_data, small_clip, tmp_path / "run")
    text = "\n".join(console)
    first_epoch = next(i for i, line in enumerate(console) if "epoch [1/1]" in line)
    assert first_epoch < MAX_LINES_BEFORE_FIRST_EPOCH, "\n".join(console[:first_epoch])
    assert "System info" not in text and "[pip3]" not in text and "PyTorch version" not in text
    assert "** Config **" not in text and "OPTIM:" not in text
    assert not [line for line in console if WARNING_LINE.search(line)], text
    shortfall = [line for line in console if "Few-shot" in line]
    assert len(shortfall) == 1 and "1 of 3 classes" in shortfall[0] and "zebra" in shortfall[0], shortfall
    assert "has only" not in text
    log = open(tmp_path / "run" / "log.txt").read()
    assert "** System info **" in log and "PyTorch version" in log and "** Config **" in log
    assert "zebra (label 2): train 1/2" in log  # the per-class counts


def test_verbose_prints_the_report_on_the_console_too(short_data, small_clip, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        dasslite.utils.tools, "collect_env_info", lambda: "(environment report)"
    )  # seconds; only printed
    train.main(train_argv(short_data, small_clip, tmp_path / "run", "--verbose", "--no-train"))
    out = capsys.readouterr().out
    assert "** System info **\n(environment report)" in out and "** Config **" in out and "verbose: True" in out


def test_file_only_lines_reach_log_txt_not_the_console(tmp_path, capsys):
    log = logging.getLogger("tests.console")
    setup_logger(str(tmp_path))
    log.info("for the record", extra=FILE_ONLY)
    log.info("for the person")
    assert capsys.readouterr().out.count("for the") == 1
    setup_logger(str(tmp_path), resume=True, verbose=True)
    log.info("verbose record", extra=FILE_ONLY)
    assert "verbose record" in capsys.readouterr().out
    text = open(tmp_path / "log.txt").read()
    assert "for the record" in text and "for the person" in text and "verbose record" in text


def test_a_notice_shows_once_per_process_and_stays_in_every_log(tmp_path, capsys):
    setup_logger(str(tmp_path / "a"))
    for _ in range(3):
        resolve_precision("fp16", torch.device("cpu"), "TRAINER.COOP.PREC")
    setup_logger(str(tmp_path / "b"))  # a second run in the same process (the API)
    resolve_precision("fp16", torch.device("cpu"), "TRAINER.COOP.PREC")
    assert capsys.readouterr().out.count("TRAINER.COOP.PREC fp16 needs CUDA") == 1
    assert "needs CUDA" in open(tmp_path / "b" / "log.txt").read()
    notice_once(logging.getLogger("tests.console"), "another notice")
    assert "another notice" in capsys.readouterr().out


def test_loading_openai_archives_and_state_dicts_gives_no_warning(small_clip, tiny_rn_clip_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_clip(small_clip)
        load_clip(tiny_rn_clip_path)
    assert not caught, [str(w.message) for w in caught]


def test_amp_without_cuda_builds_no_grad_scaler(tiny_clip_path, monkeypatch):
    """A trainer left in amp on a CPU (here by force; a ported trainer may do it) must not build a CUDA
    GradScaler, which warns and disables itself."""
    monkeypatch.setattr(learner, "resolve_precision", lambda prec, device, key: "amp")
    cfg = make_cfg(tiny_clip_path, **{"TRAINER.COOP.PREC": "amp", "TRAINER.COOP.N_CTX": 2})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = bare_trainer(CoOp, cfg)
    assert trainer.prec == "amp" and trainer.scaler is None
    assert not [w for w in caught if "GradScaler" in str(w.message)]


def test_fewshot_shortfall_is_one_line_with_the_counts_in_log_txt(tmp_path, caplog):
    def items(counts, split):
        return [
            Datum(impath=str(tmp_path / split / f"{c}_{i}.jpg"), label=c, classname=f"class{c}")
            for c, n in enumerate(counts)
            for i in range(n)
        ]

    train, val = items([8, 1, 3, 8, 2, 2, 2, 2], "train"), items([1] * 8, "val")
    for _ in ("drawn", "from the cache"):  # the second run reads the draw the first one cached
        caplog.clear()
        with caplog.at_level(logging.INFO):
            fewshot.fewshot_split(str(tmp_path), train, val, 4, 1, random.Random(0))
        warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warned) == 1, warned
        assert warned[0].startswith(
            "Few-shot: 8 of 8 classes have fewer images than the shots asked for (4 train / 4 val)"
        )
        assert "class0, class1, class2, class3, class4 and 3 more" in warned[0]
        counts = [r for r in caplog.records if getattr(r, "file_only", False)]
        assert len(counts) == 1
        assert "class0 (label 0): val 1/4; class1 (label 1): train 1/4, val 1/4;" in counts[0].getMessage()
    assert "Loading preprocessed few-shot data" in caplog.text


def test_input_size_suggestion_runs_as_typed_in_a_shell(tiny_clip_path):
    with pytest.raises(ValueError) as err:
        check_input_size((64, 64), load_clip(tiny_clip_path))
    suggestion = str(err.value).rsplit("; set ", 1)[1]
    subprocess.run(["bash", "-n", "-c", f"python train.py {suggestion}"], check=True)  # bash parses it
    cfg = get_cfg_default()
    cfg.merge_from_list(shlex.split(suggestion))
    assert cfg.INPUT.SIZE == (224, 224)


def test_zero_shot_trainer_without_eval_only_is_a_one_line_user_error(short_data, small_clip, tmp_path, monkeypatch):
    monkeypatch.setattr(dasslite.utils.tools, "collect_env_info", lambda: "(environment report)")
    argv = train_argv(short_data, small_clip, tmp_path / "run")
    argv[argv.index("CoOp")] = "ZeroshotCLIP"
    with pytest.raises(ValueError, match="ZeroshotCLIP has nothing to train: run it with --eval-only"):
        train.main(argv)
