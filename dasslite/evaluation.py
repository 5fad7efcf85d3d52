"""Evaluators: accumulate (logits, labels) over batches, then report metrics (docs/reference-behaviour.md,
"Evaluator output").

The logged block is the reference's (Dassl >= 0.6.2) text, which result parsers read; evaluate()
also returns the unrounded numbers, which metrics.json stores.
"""

import logging
import os
from collections import OrderedDict, defaultdict

import numpy as np
import torch

from .log_format import RESULT_HEADER
from .registry import Registry
from .utils.dist import is_main_process
from .utils.io import atomic_write, write_json

logger = logging.getLogger(__name__)
EVALUATOR_REGISTRY = Registry("EVALUATOR")


def build_evaluator(cfg, **kwargs):
    logger.info(f"Loading evaluator: {cfg.TEST.EVALUATOR}")
    return EVALUATOR_REGISTRY.get(cfg.TEST.EVALUATOR)(cfg, **kwargs)


class EvaluatorBase:
    def __init__(self, cfg):
        self.cfg = cfg

    def reset(self):
        raise NotImplementedError

    def process(self, mo, gt):
        raise NotImplementedError

    def evaluate(self):
        raise NotImplementedError


@EVALUATOR_REGISTRY.register()
class Classification(EvaluatorBase):
    """Accuracy, error, macro-F1 (and per-class accuracy) of argmax predictions."""

    def __init__(self, cfg, lab2cname=None, **kwargs):
        super().__init__(cfg)
        self._lab2cname = lab2cname or {}
        self._per_class = cfg.TEST.PER_CLASS_RESULT
        self.reset()

    def reset(self):
        self._correct = 0
        self._total = 0
        self._y_true = []
        self._y_pred = []
        self._per_class_res = defaultdict(list) if self._per_class else None

    def process(self, mo, gt):
        """mo: (batch, num_classes) logits or probabilities; gt: (batch,) labels."""
        pred = mo.max(1)[1]
        matches = pred.eq(gt).int()
        self._correct += int(matches.sum().item())
        self._total += gt.shape[0]
        self._y_true.extend(gt.cpu().tolist())
        self._y_pred.extend(pred.cpu().tolist())
        if self._per_class:
            for label, hit in zip(gt.cpu().tolist(), matches.cpu().tolist()):
                self._per_class_res[label].append(hit)

    def evaluate(self):
        from sklearn.metrics import f1_score  # here, not at import: scikit-learn takes about a second to load

        if self._total == 0:
            raise RuntimeError("evaluate() called before any batch was processed (empty evaluation set?)")
        results = OrderedDict()
        acc = 100.0 * self._correct / self._total
        macro_f1 = 100.0 * f1_score(self._y_true, self._y_pred, average="macro", labels=np.unique(self._y_true))
        results["accuracy"] = acc
        results["error_rate"] = 100.0 - acc
        results["macro_f1"] = macro_f1
        results["total"] = self._total
        results["correct"] = self._correct
        logger.info(
            f"{RESULT_HEADER}\n"
            f"* total: {self._total:,}\n"
            f"* correct: {self._correct:,}\n"
            f"* accuracy: {acc:.1f}%\n"
            f"* error: {100.0 - acc:.1f}%\n"
            f"* macro_f1: {macro_f1:.1f}%"
        )
        if self._per_class:
            results["perclass_accuracy"] = self._log_per_class()
        if self.cfg.TEST.COMPUTE_CMAT and is_main_process():
            self._save_cmat()
        return results

    def _log_per_class(self):
        lines = ["=> per-class result"]
        accs = []
        for label in sorted(self._per_class_res):
            hits = self._per_class_res[label]
            correct, total = sum(hits), len(hits)
            acc = 100.0 * correct / total
            accs.append(acc)
            lines.append(
                f"* class: {label} ({self._lab2cname.get(label, '')})\t"
                f"total: {total:,}\tcorrect: {correct:,}\tacc: {acc:.1f}%"
            )
        mean_acc = float(np.mean(accs))
        lines.append(f"* average: {mean_acc:.1f}%")
        logger.info("\n".join(lines))
        return mean_acc

    def _save_cmat(self):
        from sklearn.metrics import confusion_matrix

        cmat = confusion_matrix(self._y_true, self._y_pred, normalize="true")
        path = os.path.join(self.cfg.OUTPUT_DIR, "cmat.pt")
        with atomic_write(path, mode="wb") as f:
            torch.save(torch.from_numpy(cmat), f)
        logger.info(f"Confusion matrix is saved to {path}")


def _plain(value):
    """Python int/float for JSON (numpy and torch scalars are not serialisable)."""
    if hasattr(value, "item"):
        value = value.item()
    return value if isinstance(value, int) else float(value)


def write_metrics_json(path, metrics, cfg, split="test", epoch=None, eval_only=False):
    """Write a run's results as data (full precision), atomically, for aggregation without log parsing.

    {"version": 1, "split", "metrics": {accuracy, error_rate, macro_f1, total, correct,
    [perclass_accuracy]}, "run": {trainer, dataset, backbone, seed, num_shots, subsample_classes,
    max_epoch, epoch (of the evaluated weights, or None), eval_only}, "finished": true}
    """
    record = {
        "version": 1,
        "split": split,
        "metrics": {k: _plain(v) for k, v in metrics.items()},
        "run": {
            "trainer": cfg.TRAINER.NAME,
            "dataset": cfg.DATASET.NAME,
            "backbone": cfg.MODEL.BACKBONE.NAME,
            "seed": cfg.SEED,
            "num_shots": cfg.DATASET.NUM_SHOTS,
            "subsample_classes": cfg.DATASET.SUBSAMPLE_CLASSES,
            "max_epoch": cfg.OPTIM.MAX_EPOCH,
            "epoch": epoch,
            "eval_only": bool(eval_only),
        },
        "finished": True,
    }
    write_json(record, path)
    return record
