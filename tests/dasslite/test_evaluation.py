import json
import logging

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from dasslite.config import get_cfg_default
from dasslite.evaluation import Classification, build_evaluator, write_metrics_json
from dasslite.registry import UnknownNameError


def logits_for(preds, n_cls=3):
    out = torch.zeros(len(preds), n_cls)
    out[torch.arange(len(preds)), torch.tensor(preds)] = 1.0
    return out


Y_TRUE = [0, 0, 0, 1, 1, 2, 2, 2, 2, 2]
Y_PRED = [0, 0, 1, 1, 2, 2, 2, 2, 0, 2]


def evaluate(cfg, batches=2):
    ev = build_evaluator(cfg, lab2cname={0: "cat", 1: "dog", 2: "owl"})
    half = len(Y_TRUE) // batches
    for i in range(batches):
        sl = slice(i * half, (i + 1) * half)
        ev.process(logits_for(Y_PRED[sl]), torch.tensor(Y_TRUE[sl]))
    return ev.evaluate()


def test_numbers_and_printed_block(caplog):
    caplog.set_level(logging.INFO)
    res = evaluate(get_cfg_default())
    assert list(res) == ["accuracy", "error_rate", "macro_f1", "total", "correct"]
    assert res["accuracy"] == 70.0 and res["error_rate"] == pytest.approx(30.0)
    assert res["total"] == 10 and res["correct"] == 7
    assert res["macro_f1"] == pytest.approx(100 * f1_score(Y_TRUE, Y_PRED, average="macro"))
    block = (
        f"=> result\n* total: 10\n* correct: 7\n* accuracy: 70.0%\n* error: 30.0%\n* macro_f1: {res['macro_f1']:.1f}%"
    )
    assert block in caplog.text


def test_thousands_separator_and_one_decimal(caplog):
    caplog.set_level(logging.INFO)
    ev = Classification(get_cfg_default())
    labels = torch.zeros(2465, dtype=torch.long)
    preds = torch.zeros(2465, dtype=torch.long)
    preds[:203] = 1
    ev.process(logits_for(preds.tolist(), 2), labels)
    ev.evaluate()
    assert "* total: 2,465\n* correct: 2,262\n* accuracy: 91.8%\n* error: 8.2%\n" in caplog.text


def test_macro_f1_only_over_present_labels():
    ev = Classification(get_cfg_default())
    ev.process(logits_for([0, 1], 5), torch.tensor([0, 1]))  # classes 2-4 absent: not averaged in as zeros
    assert ev.evaluate()["macro_f1"] == 100.0


def test_per_class_block_and_cmat(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    cfg = get_cfg_default()
    cfg.TEST.PER_CLASS_RESULT = True
    cfg.TEST.COMPUTE_CMAT = True
    cfg.OUTPUT_DIR = str(tmp_path)
    res = evaluate(cfg)
    per_class = [2 / 3 * 100, 50.0, 80.0]
    assert res["perclass_accuracy"] == pytest.approx(np.mean(per_class))
    assert "=> per-class result\n* class: 0 (cat)\ttotal: 3\tcorrect: 2\tacc: 66.7%" in caplog.text
    assert "* class: 2 (owl)\ttotal: 5\tcorrect: 4\tacc: 80.0%\n* average: 65.6%" in caplog.text
    cmat = torch.load(tmp_path / "cmat.pt")
    assert cmat.shape == (3, 3) and cmat[2].tolist() == pytest.approx([0.2, 0.0, 0.8])


def test_reset_and_empty():
    ev = Classification(get_cfg_default())
    ev.process(logits_for([0]), torch.tensor([1]))
    ev.reset()
    with pytest.raises(RuntimeError, match="before any batch"):
        ev.evaluate()


def test_unknown_evaluator():
    cfg = get_cfg_default()
    cfg.TEST.EVALUATOR = "Clasification"
    with pytest.raises(UnknownNameError, match='Did you mean "Classification"'):
        build_evaluator(cfg)


def test_write_metrics_json(tmp_path):
    cfg = get_cfg_default()
    cfg.TRAINER.NAME, cfg.DATASET.NAME, cfg.SEED = "CoOp", "OxfordPets", 2
    res = evaluate(cfg)
    write_metrics_json(str(tmp_path / "metrics.json"), res, cfg, epoch=50, eval_only=True)
    data = json.loads((tmp_path / "metrics.json").read_text())
    assert data["version"] == 1 and data["split"] == "test" and data["finished"] is True
    assert data["metrics"]["macro_f1"] == res["macro_f1"]  # full precision
    assert data["run"] == {
        "trainer": "CoOp",
        "dataset": "OxfordPets",
        "backbone": "",
        "seed": 2,
        "num_shots": -1,
        "subsample_classes": "all",
        "max_epoch": 10,
        "epoch": 50,
        "eval_only": True,
    }
