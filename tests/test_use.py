"""Using a trained run: predict.py, export.py and the Python API work from the run folder alone.

Runs train on the demo's coloured shapes (tools/make_demo_data.py, ImageFolder layout) with a tiny
CLIP saved in OpenAI's layout at 64 px, 1 epoch: CoOp through train.py, CoCoOp through the Python API,
ZeroshotCLIP as an eval-only run.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import coop_toolkit as ct
import export
import predict
import train
from coop_toolkit.export_head import export_run
from coop_toolkit.method_card import CLASSIFIER_HEAD, card_of
from coop_toolkit.run_record import sha256_of
from dasslite.engine.build import build_trainer
from dasslite.errors import UserError
from dasslite.utils.logger import setup_logger
from tests.precision_matrix import toolkit_trainers, trainer_config
from tools.make_demo_data import make_demo_data
from tools.tiny_clip import save_tiny_clip

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
COMMON = ["DATALOADER.NUM_WORKERS", "0", "OPTIM.MAX_EPOCH", "1", "DATASET.NUM_SHOTS", "2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("use")
    data = make_demo_data(str(tmp / "data"), n_train=2, n_val=1, n_test=2)
    clip = str(tmp / "tiny-clip.pt")
    save_tiny_clip(clip, image_size=64)

    def flags(trainer, out):
        return ["--root", data, "--seed", "1", "--trainer", trainer, "--output-dir", str(out)] + [
            "--dataset-config-file",
            "configs/datasets/imagefolder.yaml",
        ]

    coop, zs = tmp / "coop", tmp / "zsclip"
    coop_cfg = ["--config-file", "configs/trainers/CoOp/demo.yaml"]
    train.main(flags("CoOp", coop) + coop_cfg + ["MODEL.BACKBONE.NAME", clip] + COMMON)
    train.main(flags("ZeroshotCLIP", zs) + coop_cfg + ["--eval-only", "MODEL.BACKBONE.NAME", clip] + COMMON)
    cfg = ct.get_cfg(
        trainer="CoCoOp",
        config_file="configs/trainers/CoCoOp/demo.yaml",
        dataset_config_file="configs/datasets/imagefolder.yaml",
        opts=["DATASET.ROOT", data, "OUTPUT_DIR", str(tmp / "cocoop"), "SEED", "1", "MODEL.BACKBONE.NAME", clip]
        + COMMON,
    )
    ct.train(cfg)  # train from Python
    setup_logger(None)  # stop writing into the last run's log.txt
    return {"tmp": tmp, "data": data, "clip": clip, "CoOp": str(coop), "ZeroshotCLIP": zs, "CoCoOp": tmp / "cocoop"}


def test_run_folder_records_classes_backbone_and_preprocessing(runs):
    record = json.loads(open(os.path.join(runs["CoOp"], "run.json")).read())
    assert record["classnames"][:2] == ["black square", "blue circle"] and len(record["classnames"]) == 10
    assert record["backbone"] == {
        "kind": "file",
        "name": runs["clip"],
        "path": os.path.abspath(runs["clip"]),
        "sha256": sha256_of(runs["clip"]),
    }
    assert record["preprocess"]["resize"] == 64 and record["preprocess"]["interpolation"] == "bicubic"
    assert record["preprocess"]["std"] == [0.26862954, 0.26130258, 0.27577711]
    assert os.path.isfile(os.path.join(runs["CoCoOp"], "config.yaml"))  # the API wrote a full run folder


def test_tensorboard_events_hold_the_training_scalars(runs):
    events = EventAccumulator(os.path.join(runs["CoOp"], "tensorboard"))
    events.Reload()
    assert {"train/loss", "train/acc", "train/lr", "test/accuracy"} <= set(events.Tags()["scalars"])


def predict_rows(argv, out):
    """predict.py's --out JSON rows for `argv` (path, topk [{label, probability}], error)."""
    predict.main([*argv, "--out", str(out)])
    return json.loads(out.read_text())


def folder_labels(data):
    """test/<folder>/<file> -> class name (classnames.txt), the ground truth of the test split."""
    names = dict(line.strip().split(" ", 1) for line in open(os.path.join(data, "classnames.txt")))
    return {os.path.join(data, "test", folder): names[folder] for folder in names}


@pytest.mark.parametrize("trainer", ["CoOp", "CoCoOp", "ZeroshotCLIP"])
def test_predict_over_the_test_split_reproduces_the_reported_accuracy(runs, trainer, tmp_path, capsys):
    out = tmp_path / "pred.json"
    predict.main([str(runs[trainer]), os.path.join(runs["data"], "test"), "--out", str(out), "--topk", "3"])
    rows = json.loads(out.read_text())
    truth = folder_labels(runs["data"])
    assert len(rows) == 20 and all(len(r["topk"]) == 3 for r in rows)
    correct = sum(r["topk"][0]["label"] == truth[os.path.dirname(r["path"])] for r in rows)
    metrics = json.loads(open(os.path.join(runs[trainer], "metrics.json")).read())["metrics"]
    assert 100.0 * correct / len(rows) == metrics["accuracy"]
    assert capsys.readouterr().out.count("\n") == 20  # one printed line per image


def test_predict_gives_the_test_loop_logits_per_image(runs):
    """The run's own test loop (dataset, loader, trainer) and the run folder give the same logits per image."""
    run = ct.load_run(runs["CoOp"])
    cfg = run.trainer.cfg.clone()
    cfg.defrost()
    cfg.DATASET.ROOT = runs["data"]
    trainer = build_trainer(cfg)
    trainer.load_model(runs["CoOp"], epoch=1)
    trainer.set_model_mode("eval")
    with torch.no_grad():
        for batch in trainer.test_loader:
            expected = trainer.model_inference(batch["img"])
            torch.testing.assert_close(run.logits(list(batch["impath"])), expected, rtol=0, atol=1e-6)
            names = [trainer.lab2cname[i] for i in expected.argmax(1).tolist()]
            assert [p.classname for p in run.predict(list(batch["impath"]))] == names


def test_predict_works_with_the_dataset_folder_moved_away(runs, tmp_path):
    images = tmp_path / "images"
    shutil.copytree(os.path.join(runs["data"], "test", "red_circle"), images)
    before = predict_rows([runs["CoOp"], str(images)], tmp_path / "before.json")
    moved = runs["tmp"] / "data-moved"
    os.rename(runs["data"], moved)
    try:
        after = predict_rows([runs["CoOp"], str(images)], tmp_path / "after.json")
        zero_shot = predict_rows([str(runs["ZeroshotCLIP"]), str(images / "000.png")], tmp_path / "zs.json")
    finally:
        os.rename(moved, runs["data"])
    assert after == before and len(after) == 2
    assert zero_shot[0]["topk"][0]["label"] in ct.load_run(runs["ZeroshotCLIP"]).classnames


def readme_snippet(after):
    """The first ```python block after the heading `after` in README.md."""
    text = open(os.path.join(REPO, "README.md")).read()
    return text[text.index(after) :].split("```python\n", 1)[1].split("```", 1)[0]


# Runs README's snippet in each folder given (head.json, head.safetensors, cat.jpg there), printing its logits.
APPLY_HEAD = """
import json, os, sys
snippet = open(sys.argv[1]).read()
for folder in sys.argv[2:]:
    os.chdir(folder)
    scope = {}
    exec(snippet, scope)
    assert not [m for m in sys.modules if m.split(".")[0] in ("coop_toolkit", "dasslite", "tools")]
    print(json.dumps({"logits": scope["logits"].tolist()}))
"""


def outside_env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, **extra}


def test_exported_heads_give_the_model_logits_with_the_readme_snippet_alone(runs, tmp_path):
    (tmp_path / "snippet.py").write_text(readme_snippet("### Export a classifier head"))
    (tmp_path / "apply.py").write_text(APPLY_HEAD)
    image = os.path.join(runs["data"], "test", "green_square", "001.png")
    for trainer in ("CoOp", "ZeroshotCLIP"):
        (tmp_path / trainer).mkdir()
        head = tmp_path / trainer / "head.safetensors"
        card = export.main([str(runs[trainer]), "--out", str(head)])
        assert card["format"] == "coop_toolkit.classifier_head" and (tmp_path / trainer / "head.json").is_file()
        assert head.read_bytes()[:1] != b"\x80" and not head.read_bytes().startswith(b"PK")  # not a pickle
        shutil.copy(image, tmp_path / trainer / "cat.jpg")
    proc = subprocess.run(  # one interpreter for both heads: starting torch costs seconds
        [sys.executable, "apply.py", "snippet.py", str(tmp_path / "CoOp"), str(tmp_path / "ZeroshotCLIP")],
        cwd=tmp_path,
        env=outside_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = proc.stdout.strip().splitlines()[-4:]  # per head: the snippet's print, then the logits
    for trainer, line in zip(("CoOp", "ZeroshotCLIP"), [printed[0], printed[2]]):
        run = ct.load_run(runs[trainer])
        assert line == run.predict([image])[0].classname  # the snippet's own print
    results = [json.loads(printed[i])["logits"] for i in (1, 3)]
    for trainer, logits in zip(("CoOp", "ZeroshotCLIP"), results):
        torch.testing.assert_close(torch.tensor(logits), ct.load_run(runs[trainer]).logits([image]), rtol=0, atol=1e-5)


def test_cocoop_exports_its_prompt_learner_and_meta_net(runs, tmp_path):
    from safetensors.torch import load_file

    card = export.main([str(runs["CoCoOp"]), "--out", str(tmp_path / "cocoop.safetensors")])
    tensors = load_file(tmp_path / "cocoop.safetensors")
    learner = ct.load_run(runs["CoCoOp"]).trainer.model.prompt_learner
    assert card["format"] == "coop_toolkit.image_conditioned_prompt_learner"
    assert {"ctx", "meta_net.linear1.weight", "meta_net.linear2.bias", "token_ids", "logit_scale"} <= set(tensors)
    for key, value in learner.state_dict().items():
        torch.testing.assert_close(tensors[key], value.float(), rtol=0, atol=0)
    assert json.loads((tmp_path / "cocoop.json").read_text())["classnames"] == card["classnames"]


def test_the_api_from_another_folder_predicts_what_predict_py_prints(runs, tmp_path):
    images = os.path.join(runs["data"], "test", "pink_triangle")
    cli = predict_rows([runs["CoOp"], images, "--topk", "2"], tmp_path / "p.json")
    predict.main([runs["CoOp"], images, "--topk", "2", "--out", str(tmp_path / "p.csv")])
    code = (
        "import sys, json, coop_toolkit\n"
        "assert 'torch' not in sys.modules, 'import coop_toolkit must stay light'\n"
        f"preds = coop_toolkit.load_run({runs['CoOp']!r}).predict([{images!r}], topk=2)\n"
        "print(json.dumps([[p.path, p.topk] for p in preds]))\n"
    )
    other = tmp_path / "elsewhere"
    other.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=other, env=outside_env(PYTHONPATH=REPO), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    api = json.loads(proc.stdout.strip().splitlines()[-1])
    assert api == [[r["path"], [[t["label"], t["probability"]] for t in r["topk"]]] for r in cli]
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == "path,label1,probability1,label2,probability2,error" and len(lines) == 3
    assert lines[1].split(",")[:2] == [cli[0]["path"], cli[0]["topk"][0]["label"]]


def test_zero_shot_from_class_names_and_a_backbone_without_a_run(runs, tmp_path):
    names = tmp_path / "classes.txt"
    names.write_text("red circle\nblue circle\ngreen square\n")
    image = os.path.join(runs["data"], "test", "red_circle", "000.png")
    argv = ["--trainer", "ZeroshotCLIP2", "--classnames", str(names), "--backbone", runs["clip"], image]
    (row,) = predict_rows(argv, tmp_path / "p.json")
    api = ct.zero_shot(["red circle", "blue circle", "green square"], runs["clip"], trainer="ZeroshotCLIP2")
    (prediction,) = api.predict([image], topk=5)
    assert prediction.topk == [(t["label"], t["probability"]) for t in row["topk"]] and len(row["topk"]) == 3


def test_a_changed_backbone_file_is_refused_naming_both(runs, tmp_path, capsys):
    other = tmp_path / "other-clip.pt"
    save_tiny_clip(str(other), image_size=64, seed=1)
    changed = tmp_path / "run"
    shutil.copytree(runs["CoOp"], changed)
    record = json.loads((changed / "run.json").read_text())
    shutil.copy(other, tmp_path / "moved-clip.pt")
    record["backbone"]["path"] = str(tmp_path / "moved-clip.pt")  # the file at the recorded path changed
    (changed / "run.json").write_text(json.dumps(record))
    image = os.path.join(runs["data"], "test", "red_circle", "000.png")
    for argv in ([str(changed), image], [runs["CoOp"], "--backbone", str(other), image]):
        with pytest.raises(UserError) as err:
            predict.main(argv)
        message = str(err.value)
        assert sha256_of(other) in message and sha256_of(runs["clip"]) in message, message
    # A zero-shot run learned nothing: another backbone is a new zero-shot model, not an error.
    assert predict.main([str(runs["ZeroshotCLIP"]), "--backbone", str(other), image]).predicted == 1


def test_every_registered_trainer_builds_from_class_names_alone_and_its_features_give_its_logits(runs, tmp_path):
    """build_trainer(cfg, classnames=...) reads no dataset; logits = logit_scale * image @ class features."""

    images = ct.find_images([os.path.join(runs["data"], "test", "blue_circle")])
    names = toolkit_trainers()  # the toolkit's and the installed plugins'
    assert {"CoOp", "CoCoOp", "ZeroshotCLIP", "ZeroshotCLIP2", "KgCoOp", "ProGrad"} <= set(names)
    refused, exported_heads = [], []
    for name in names:
        cfg = ct.get_cfg(trainer=name, config_file=trainer_config(name))
        cfg.MODEL.BACKBONE.NAME, cfg.DATASET.ROOT, cfg.INPUT.SIZE = runs["clip"], "/nonexistent", (64, 64)
        for node in cfg.TRAINER.values():
            if isinstance(node, dict) and "PREC" in node:
                node.PREC = "fp32"
            for key in [k for k in (node if isinstance(node, dict) else {}) if "DEPTH" in k]:
                node[key] = min(node[key], 2)  # the tiny CLIP has 2 layers
        cfg.freeze()
        trainer = build_trainer(cfg, classnames=["red circle", "blue circle", "green square"])
        assert trainer.dm.dataset.classnames == ["red circle", "blue circle", "green square"]
        assert trainer.test_loader is None and trainer.num_classes == 3
        trainer.set_model_mode("eval")
        run = ct.Run(trainer, {"resize": 64, "crop": [64, 64], "interpolation": "bicubic"}, trainer.dm.classnames)
        image = run.image_features(images)
        text = run.text_features(image if trainer.image_conditioned else None)
        equation = "bd,bcd->bc" if trainer.image_conditioned else "bd,cd->bc"
        logits = run.logit_scale() * torch.einsum(equation, image, text) + (run.logit_bias() or 0.0)
        if getattr(trainer, "features_give_logits", True):
            torch.testing.assert_close(logits, run.logits(images), rtol=0, atol=1e-5, msg=name)
        else:  # logits not linear in the features (Tip-Adapter's cache): the features are their linear part
            assert run.logits(images).shape == logits.shape, name
        card = card_of(type(trainer))
        if not trainer.frozen_image_encoder or card.export is None:  # refused, with the card's reason
            with pytest.raises(ValueError, match=re.escape(card.no_export_reason)):
                export_run(run, str(tmp_path / f"{name}.safetensors"))
            refused.append(name)
        elif card.export == CLASSIFIER_HEAD and trainer.features_give_logits:  # the head gives its logits
            export_run(run, str(tmp_path / f"{name}.safetensors"))
            head = load_file(str(tmp_path / f"{name}.safetensors"))
            exported = head["logit_scale"] * image @ head["text_features"].t() + head.get("logit_bias", 0.0)
            torch.testing.assert_close(exported, run.logits(images), rtol=0, atol=1e-5, msg=name)
            exported_heads.append(name)
    assert {"MaPLe", "VPT", "CLIP_Adapter", "CLIP_LoRA", "Tip_Adapter"} <= set(refused)
    assert {"CoOp", "KgCoOp", "ZeroshotCLIP"} <= set(exported_heads)


def test_a_run_trained_with_a_plugin_trainer_registered_loads_without_it(runs, tmp_path):
    """config.yaml holds every registered trainer's node; one whose trainer is absent here is left out."""
    import yaml

    run_dir = tmp_path / "run"
    shutil.copytree(runs["CoOp"], run_dir)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["TRAINER"]["MYPLUGIN"] = {"ALPHA": 0.5}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    image = os.path.join(runs["data"], "test", "red_circle", "000.png")
    assert ct.load_run(run_dir).predict(image)[0].topk == ct.load_run(runs["CoOp"]).predict(image)[0].topk


def test_a_run_computes_in_fp32_by_default_and_in_bf16_on_request(runs, monkeypatch, tmp_path):
    from coop_toolkit.trainers import precision
    from dasslite.errors import ConfigError

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_bf16"}))  # native bf16, any machine
    images = sorted(glob.glob(os.path.join(runs["data"], "test", "*", "*.png")))[:4]
    exact, low = ct.load_run(runs["CoOp"], device="cpu"), ct.load_run(runs["CoOp"], device="cpu", precision="bf16")
    assert exact.trainer.prec == "fp32" and low.trainer.prec == "bf16"
    assert low.trainer.model.image_encoder.conv1.weight.dtype == torch.bfloat16
    assert low.trainer.model.prompt_learner.ctx.dtype == torch.float32
    expected = exact.logits(images)
    assert (low.logits(images) - expected).abs().max() <= 1e-1 * max(1.0, expected.abs().max().item())
    out = tmp_path / "bf16.json"
    predict.main([runs["CoOp"], *images, "--precision", "bf16", "--device", "cpu", "--out", str(out)])
    printed = [[(t["label"], t["probability"]) for t in row["topk"]] for row in json.loads(out.read_text())]
    assert printed == [p.topk for p in low.predict(images, topk=5)]
    with pytest.raises(ConfigError, match="precision must be one of fp32, bf16, fp16"):
        ct.load_run(runs["CoOp"], precision="int8")
