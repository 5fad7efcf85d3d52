"""Every user error of predict.py, export.py, results.py, parse_test_res.py and interpret_prompt.py is
one `error: ...` line naming the flag or file, exit status 2, no traceback (dasslite/cli.py run_cli, as
train.py); outputs are checked before the work; run.json and --classnames files are validated."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

import check_data
import export
import interpret_prompt
import parse_test_res
import predict
import results
import sweep
import train
from dasslite.cli import run_cli
from dasslite.errors import UserError

from .conftest import REPO, subprocess_env

COMMANDS = {"predict": predict, "export": export, "results": results, "parse": parse_test_res}
COMMANDS["interpret"] = interpret_prompt
COMMANDS.update(sweep=sweep, train=train, check=check_data)


@pytest.fixture(scope="module")
def files(trained_coop, tmp_path_factory):
    """A finished CoOp run, copies of it with a broken run.json, and bad input files."""
    root, run = trained_coop
    tmp = tmp_path_factory.mktemp("user_errors")
    image = next(os.path.join(d, f) for d, _, fs in os.walk(root) for f in sorted(fs) if f.endswith(".jpg"))
    for name, change in {
        "letters": lambda r: {**r, "classnames": "cat"},  # read letter by letter before
        "no_backbone": lambda r: {k: v for k, v in r.items() if k != "backbone"},
        "bad_crop": lambda r: {**r, "preprocess": {**r["preprocess"], "crop": "224"}},
        "zero_crop": lambda r: {**r, "preprocess": {**r["preprocess"], "crop": [0, 0]}},
        "zero_std": lambda r: {**r, "preprocess": {**r["preprocess"], "std": [0, 0, 0]}},
        "repeated_names": lambda r: {**r, "classnames": ["cat", "cat"]},
    }.items():
        shutil.copytree(run, tmp / name)
        record = json.loads((tmp / name / "run.json").read_text())
        (tmp / name / "run.json").write_text(json.dumps(change(record)))
    shutil.copytree(run, tmp / "not_json")
    (tmp / "not_json" / "run.json").write_text('{"classnames": [')
    shutil.copytree(run, tmp / "cut_config")
    (tmp / "cut_config" / "config.yaml").write_text((tmp / "not_json" / "config.yaml").read_text()[:300])
    shutil.copytree(run, tmp / "empty_config")
    (tmp / "empty_config" / "config.yaml").write_text("")
    shutil.copytree(run, tmp / "text_checkpoint")
    (tmp / "text_checkpoint" / "prompt_learner" / "model.pth.tar-1").write_text("hi\n")  # a legacy-pickle KeyError
    (tmp / "repeated.txt").write_text("cat\ndog\ncat\n")
    (tmp / "names.txt").write_text("cat\ndog\n")
    (tmp / "latin1.txt").write_bytes("chat\nb\xe9b\xe9\n".encode("latin-1"))
    (tmp / "empty.txt").write_text("\n\n")
    (tmp / "one.txt").write_text("cat\n")
    (tmp / "a_file").write_text("x")
    (tmp / "no_images").mkdir()
    (tmp / "empty.pth").write_bytes(b"")
    torch.save({"state_dict": {"weight": torch.zeros(2)}}, tmp / "no_ctx.pth")
    (tmp / "folder.csv").mkdir()
    (tmp / "exp" / "seed1").mkdir(parents=True)
    (tmp / "exp" / "seed1" / "log.txt").write_text("Finish training\n")  # no result after it
    return {"run": str(run), "image": image, "tmp": tmp}


def fill(argv, files):
    return [a.format(run=files["run"], image=files["image"], tmp=files["tmp"]) for a in argv]


CASES = {
    "predict_topk_0": ("predict", ["{run}", "{image}", "--topk", "0"], "--topk must be at least 1"),
    "predict_batch_0": ("predict", ["{run}", "{image}", "--batch-size", "0"], "--batch-size must be at least 1"),
    "predict_out_suffix": ("predict", ["{run}", "{image}", "--out", "{tmp}/p.txt"], '--out "{tmp}/p.txt" must end'),
    "predict_out_under_a_file": (
        "predict",
        ["{run}", "{image}", "--out", "{tmp}/a_file/p.csv"],
        '"{tmp}/a_file" is a file',
    ),
    "predict_out_is_a_folder": ("predict", ["{run}", "{image}", "--out", "{tmp}/folder.csv"], "is a folder"),
    "predict_no_run": ("predict", ["{tmp}/nothing", "{image}"], 'Run folder "{tmp}/nothing" not found'),
    "predict_no_image": ("predict", ["{run}", "{tmp}/missing.png"], '"{tmp}/missing.png" is neither'),
    "predict_no_images": ("predict", ["{run}", "{tmp}/no_images"], "No image files in {tmp}/no_images"),
    "predict_classnames_latin1": ("predict", ["{run}", "{image}", "--classnames", "{tmp}/latin1.txt"], "not UTF-8"),
    "predict_classnames_empty": ("predict", ["{run}", "{image}", "--classnames", "{tmp}/empty.txt"], "no class names"),
    "predict_classnames_one": ("predict", ["{run}", "{image}", "--classnames", "{tmp}/one.txt"], "one class name"),
    "predict_epoch_0": ("predict", ["{run}", "{image}", "--load-epoch", "0"], "--load-epoch must be at least 1"),
    "predict_classnames_missing": ("predict", ["{run}", "{image}", "--classnames", "{tmp}/nope.txt"], "--classnames"),
    "predict_run_json_string": ("predict", ["{tmp}/letters", "{image}"], '"classnames" must be a non-empty list'),
    "predict_run_json_missing_key": ("predict", ["{tmp}/no_backbone", "{image}"], '"backbone" is missing'),
    "predict_run_json_bad_crop": ("predict", ["{tmp}/bad_crop", "{image}"], '"preprocess.crop" must be'),
    "predict_run_json_not_json": ("predict", ["{tmp}/not_json", "{image}"], 'not_json/run.json" is not valid JSON'),
    "predict_run_json_zero_crop": ("predict", ["{tmp}/zero_crop", "{image}"], '"preprocess.crop" must be'),
    "predict_run_json_zero_std": ("predict", ["{tmp}/zero_std", "{image}"], '"preprocess.std" must be'),
    "predict_run_json_repeated": ("predict", ["{tmp}/repeated_names", "{image}"], "distinct class names"),
    "predict_config_cut_short": ("predict", ["{tmp}/cut_config", "{image}"], "cut_config/config.yaml"),
    "predict_config_empty": ("predict", ["{tmp}/empty_config", "{image}"], "empty_config/config.yaml"),
    "predict_checkpoint_text": ("predict", ["{tmp}/text_checkpoint", "{image}"], "model.pth.tar-1"),
    "predict_classnames_repeated": (
        "predict",
        ["{run}", "{image}", "--classnames", "{tmp}/repeated.txt"],
        '--classnames "{tmp}/repeated.txt" repeats cat',
    ),
    "predict_zero_shot_backbone_not_weights": (
        "predict",
        ["--trainer", "ZeroshotCLIP", "--backbone", "{tmp}/names.txt", "--classnames", "{tmp}/names.txt", "{image}"],
        '"{tmp}/names.txt" cannot be read as CLIP weights',
    ),
    "predict_device_unknown": ("predict", ["{run}", "{image}", "--device", "junk"], '--device (device=) "junk"'),
    "predict_run_is_a_file": ("predict", ["{tmp}/a_file", "{image}"], '"{tmp}/a_file" is a file'),
    "predict_bad_epoch": ("predict", ["{run}", "{image}", "--load-epoch", "7"], "model.pth.tar-7"),
    "predict_model_dir_missing": ("predict", ["{run}", "{image}", "--model-dir", "{tmp}/gone"], "--model-dir"),
    "predict_unknown_flag": ("predict", ["{run}", "{image}", "--topp", "3"], "unrecognized arguments: --topp"),
    "export_out_suffix": ("export", ["{run}", "--out", "{tmp}/head.pt"], "must end in .safetensors"),
    "export_out_under_a_file": ("export", ["{run}", "--out", "{tmp}/a_file/h.safetensors"], "is a file"),
    "export_no_run": ("export", ["{tmp}/nothing", "--out", "{tmp}/h.safetensors"], "{tmp}/nothing"),
    "export_no_out": ("export", ["{run}"], "--out"),
    "results_no_root": ("results", ["{tmp}/nothing"], 'no such folder: "{tmp}/nothing"'),
    "results_no_runs": ("results", ["{tmp}/no_images", "--quiet"], "no finished runs in a known layout"),
    "results_out_under_a_file": ("results", ["{tmp}", "--out", "{tmp}/a_file/tables"], "is a file"),
    "results_out_unwritable": ("results", ["{tmp}", "--out", "/proc/tables"], "--out: cannot write"),
    "results_decimals": ("results", ["{tmp}", "--decimals", "-1"], "--decimals must be 0 or more"),
    "parse_no_folder": ("parse", ["{tmp}/nothing"], 'no such folder: "{tmp}/nothing"'),
    "parse_seed_folder": ("parse", ["{tmp}/exp/seed1"], "one run's folder"),
    "parse_nothing_found": ("parse", ["{tmp}/exp"], "nothing found in {tmp}/exp"),
    "interpret_no_file": ("interpret", ["{tmp}/nothing.pth", "3"], "{tmp}/nothing.pth"),
    "interpret_empty_file": ("interpret", ["{tmp}/empty.pth", "3"], "empty.pth"),
    "interpret_no_ctx": ("interpret", ["{tmp}/no_ctx.pth", "3"], 'no learned context "ctx"'),
    "interpret_topk_0": ("interpret", ["{tmp}/no_ctx.pth", "0"], "TOPK must be at least 1"),
    "sweep_no_file": ("sweep", ["{tmp}/nothing.txt"], '"{tmp}/nothing.txt" cannot be read'),
    "sweep_a_folder": ("sweep", ["{tmp}/no_images"], '"{tmp}/no_images" cannot be read'),
    "sweep_not_utf8": ("sweep", ["{tmp}/latin1.txt", "--dry-run"], '"{tmp}/latin1.txt" is not UTF-8'),
    "sweep_jobs_0": ("sweep", ["{tmp}/names.txt", "--jobs", "0"], "--jobs must be at least 1"),
    "sweep_log_dir_under_a_file": ("sweep", ["{tmp}/names.txt", "--log-dir", "{tmp}/a_file/logs"], "is a file"),
    "train_seed_not_a_number": ("train", ["--seed", "abc"], "argument --seed: invalid int value: 'abc'"),
    "check_workers_0": ("check", ["--root", "{tmp}", "--workers", "0", "--decode"], "--workers must be at least 1"),
    "check_workers_not_a_number": ("check", ["--root", "{tmp}", "--workers", "x"], "argument --workers"),
}


@pytest.mark.parametrize("case", CASES)
def test_user_error_is_one_error_line_and_exit_status_2(files, case, capsys):
    command, argv, expected = CASES[case]
    with pytest.raises(SystemExit) as exit_:
        run_cli(COMMANDS[command].main, fill(argv, files))
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    if expected:
        assert expected.format(tmp=files["tmp"]) in err, err


def test_with_debug_the_error_is_raised_with_its_traceback(files):
    with pytest.raises(UserError, match="--topk must be at least 1"):
        run_cli(predict.main, fill(["{run}", "{image}", "--topk", "0", "--debug"], files))


def test_an_unwritable_out_is_found_before_any_image_is_classified(files, monkeypatch):
    monkeypatch.setattr(predict, "load", lambda *a: pytest.fail("the model was loaded before --out was checked"))
    with pytest.raises(UserError, match="--out: .* is a file"):
        predict.main(fill(["{run}", "{image}", "--out", "{tmp}/a_file/p.json"], files))


@pytest.mark.parametrize("script", ["predict.py", "export.py"])
def test_as_a_process_exit_status_2_and_no_traceback(files, script):
    argv = (
        ["{run}", "{image}", "--topk", "0"]
        if script == "predict.py"
        else ["{run}", "--out", "{tmp}/a_file/h.safetensors"]
    )
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, script), *fill(argv, files)],
        cwd=REPO,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr


def test_export_creates_its_out_folder_and_the_classnames_string_is_refused_in_the_api(files, tmp_path):
    import coop_toolkit as ct

    out = tmp_path / "new" / "deeper" / "head.safetensors"
    card = export.main([files["run"], "--out", str(out)])
    assert out.is_file() and (out.parent / "head.json").is_file() and card["format"] == "coop_toolkit.classifier_head"
    with pytest.raises(UserError, match="classnames= must be a list of class names"):
        ct.load_run(files["run"], classnames="cat")


def test_a_stray_file_beside_the_checkpoints_is_not_taken_for_an_epoch(files, tmp_path):
    """model.pth.tar-1.bak (a user's backup) is no epoch: the run's last epoch is still found."""
    shutil.copytree(files["run"], tmp_path / "run")
    shutil.copy(
        tmp_path / "run" / "prompt_learner" / "model.pth.tar-1",
        tmp_path / "run" / "prompt_learner" / "model.pth.tar-1.bak",
    )
    summary = predict.main([str(tmp_path / "run"), files["image"]])
    assert summary.predicted == 1 and summary.failed == []


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_ctrl_c_during_predict_leaves_no_out_file_and_no_traceback(files, tmp_path, monkeypatch, capsys, suffix):
    """Ctrl-C after some rows: --out is not there at all (no partial file), one line, exit status 130."""
    rows = []

    def interrupted_write(self, prediction):
        rows.append(prediction)
        if len(rows) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(predict.OutFile, "write", interrupted_write)
    out = tmp_path / "out" / f"preds{suffix}"
    images = os.path.dirname(files["image"])
    with pytest.raises(SystemExit) as exit_:
        run_cli(predict.main, [files["run"], images, "--out", str(out), "--batch-size", "1"])
    err = [line for line in capsys.readouterr().err.splitlines() if "img/s" not in line and line.strip()]
    assert exit_.value.code == 130 and err == ["interrupted (Ctrl-C) before the command completed"], err
    assert os.listdir(out.parent) == []
