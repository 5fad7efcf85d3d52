"""Find finished runs in an output tree and read their results.

A run folder holds metrics.json (written by this toolkit) or, for runs of the original CoOp code, only log.txt.
The folder's place in the tree says which protocol it belongs to
(docs/reference-behaviour.md, "Protocol scripts and output folders"):

    base2new/<train_base|test_new>/<dataset>/shots_<K>/<TRAINER>/<CFG>/seed<S>     base-to-new
    evaluation/<TRAINER>/<CFG>_<K>shots/[<variant>/]<dataset>/seed<S>              transfer (xd, dg)
    ZeroshotCLIP*/<CFG>/<dataset>                                                  zero-shot
    <dataset>/<TRAINER>/<CFG>_<K>shots/[<variant>/]seed<S>                         training (few-shot, xd source)

where <variant> is CoOp's `nctx<M>_csc<C>_ctp<P>`. Layouts are matched on the end of the path, so any
folder above `output/` (or a sub-tree of it) can be given as the root.
"""

import dataclasses
import json
import logging
import os
import re

from coop_toolkit.benchmarks import paper_name
from dasslite.log_format import END_SIGNALS, RESULT_HEADER

logger = logging.getLogger(__name__)

_SEED = re.compile(r"^seed(\d+)$")
_CFG_SHOTS = re.compile(r"^(.+)_(\d+)shots$")
_VARIANT = re.compile(r"^nctx\d+_csc\w+_ctp\w+$")
_LOG_KEYS = {
    "total": "total",
    "correct": "correct",
    "accuracy": "accuracy",
    "error": "error_rate",
    "macro_f1": "macro_f1",
}
_BACKBONES = {"rn50": "RN50", "rn101": "RN101", "vit_b32": "ViT-B/32", "vit_b16": "ViT-B/16", "vit_l14": "ViT-L/14"}


@dataclasses.dataclass
class Run:
    path: str
    protocol: str  # "base2new", "evaluation", "zeroshot" or "train"
    trainer: str
    cfg: str
    dataset: str  # the paper's row name
    seed: int | None = None
    shots: int | None = None
    variant: str = ""
    phase: str = ""  # base2new only: "train_base" or "test_new"
    backbone: str = ""
    source: str = "metrics.json"
    metrics: dict = dataclasses.field(default_factory=dict)

    @property
    def accuracy(self):
        return self.metrics["accuracy"]


def cfg_family(cfg):
    """The config name without its epoch tag: the papers' recipes mix rn50 / rn50_ep50 / rn50_ep100
    (by shot count) and vit_b16_ctxv1 / vit_b16_ep50_ctxv1 (ImageNet) within one table."""
    return re.sub(r"_ep\d+", "", cfg)


def backbone_from_cfg(cfg):
    for prefix, name in sorted(_BACKBONES.items(), key=lambda kv: -len(kv[0])):
        if cfg.startswith(prefix):
            return name
    return ""


def _trainer_cfg(parts):
    """Read `[..., TRAINER, CFG_<K>shots, (variant)]` from the end; return (fields, remaining parts)."""
    parts = list(parts)
    variant = parts.pop() if parts and _VARIANT.match(parts[-1]) else ""
    match = _CFG_SHOTS.match(parts[-1]) if len(parts) >= 2 else None
    if not match:
        return None, None
    fields = dict(trainer=parts[-2], cfg=match.group(1), shots=int(match.group(2)), variant=variant)
    return fields, parts[:-2]


def parse_layout(path):
    """Protocol and run fields from a run folder's path, or None when the path fits no known layout."""
    parts = os.path.normpath(os.path.abspath(path)).split(os.sep)
    seed = _SEED.match(parts[-1])
    if len(parts) >= 7 and parts[-7] == "base2new" and seed and parts[-4].startswith("shots_"):
        return dict(
            protocol="base2new",
            phase=parts[-6],
            dataset=parts[-5],
            shots=int(parts[-4][6:]),
            trainer=parts[-3],
            cfg=parts[-2],
            seed=int(seed.group(1)),
        )
    if len(parts) >= 3 and parts[-3].startswith("ZeroshotCLIP"):
        return dict(protocol="zeroshot", trainer=parts[-3], cfg=parts[-2], dataset=parts[-1])
    if not seed or len(parts) < 5:
        return None
    fields, rest = _trainer_cfg(parts[:-2])
    if fields and rest and rest[-1] == "evaluation":
        return dict(fields, protocol="evaluation", dataset=parts[-2], seed=int(seed.group(1)))
    fields, rest = _trainer_cfg(parts[:-1])
    if fields and rest:
        return dict(fields, protocol="train", dataset=rest[-1], seed=int(seed.group(1)))
    return None


LAYOUTS = (
    "base2new/<train_base|test_new>/<dataset>/shots_<K>/<TRAINER>/<CFG>/seed<S>",
    "evaluation/<TRAINER>/<CFG>_<K>shots/[<variant>/]<dataset>/seed<S>",
    "ZeroshotCLIP*/<CFG>/<dataset>",
    "<dataset>/<TRAINER>/<CFG>_<K>shots/[<variant>/]seed<S>",
)


class CorruptMetricsError(ValueError):
    """A metrics.json that is not the engine's format (truncated, edited, another tool's file)."""


def read_metrics_json(path):
    """(metrics, run info) of a finished run, or None for an unfinished one; CorruptMetricsError
    when the file is not a metrics.json the engine writes."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise CorruptMetricsError(str(e)) from e
    if not isinstance(data, dict):
        raise CorruptMetricsError(f"a JSON {type(data).__name__}, not an object")
    if not data.get("finished"):
        return None
    metrics, info = data.get("metrics"), data.get("run", {})
    accuracy = metrics.get("accuracy") if isinstance(metrics, dict) else None
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or not isinstance(info, dict):
        raise CorruptMetricsError('no numeric "metrics": {"accuracy": ...} and "run" object')
    return metrics, info


def read_log_result(path, needs_end_signal):
    """The last `=> result` block of a log.txt as metrics, or None when there is none.

    For a training log the block must come after the end-of-training line; an earlier block is a
    validation result of an unfinished run.
    """
    with open(path, errors="replace") as f:
        lines = [line.strip() for line in f]
    start = 0
    if needs_end_signal:
        ends = [i for i, line in enumerate(lines) if line in END_SIGNALS]
        if not ends:
            return None
        start = ends[-1]
    blocks = [i for i in range(start, len(lines)) if lines[i] == RESULT_HEADER]
    if not blocks:
        return None
    metrics = {}
    for line in lines[blocks[-1] + 1 :]:
        if not line.startswith("* ") or ":" not in line:
            break
        key, value = line[2:].split(":", 1)
        if key in _LOG_KEYS:
            number = float(value.strip().rstrip("%").replace(",", ""))
            metrics[_LOG_KEYS[key]] = int(number) if key in ("total", "correct") else number
    return metrics if "accuracy" in metrics else None


def dataset_row(folder_name, dataset_name):
    """The row a run's dataset gets: its folder in the layout, spelled as DATASET.NAME when both
    name the same dataset. Two dataset configs sharing one DATASET.NAME (two image folders of your
    own, run into two folders) stay two rows."""
    row = paper_name(folder_name)
    if dataset_name and paper_name(dataset_name).lower() == row.lower():
        return paper_name(dataset_name)
    return row


def load_run(folder):
    """A Run for one folder, or a string saying why there is none (unknown layout, unfinished, ...)."""
    layout = parse_layout(folder)
    if layout is None:
        return "not in a protocol layout"
    json_path = os.path.join(folder, "metrics.json")
    if os.path.isfile(json_path):
        try:
            result = read_metrics_json(json_path)
        except CorruptMetricsError as e:
            return f"corrupt {json_path} ({e}); evaluate the run again or delete the file"
        if result is None:
            return "unfinished (metrics.json does not say finished)"
        metrics, info = result
        source = "metrics.json"
    else:
        training = layout["protocol"] == "train" or layout.get("phase") == "train_base"
        metrics = read_log_result(os.path.join(folder, "log.txt"), needs_end_signal=training)
        if metrics is None:
            return "unfinished or no result in log.txt"
        info, source = {}, "log.txt"
    layout["dataset"] = dataset_row(layout["dataset"], info.get("dataset"))
    if info.get("seed") is not None and layout.get("seed") is not None:
        layout["seed"] = info["seed"]
    backbone = info.get("backbone") or backbone_from_cfg(layout["cfg"])
    return Run(path=folder, backbone=backbone, source=source, metrics=metrics, **layout)


def collect_runs(root):
    """Every finished run under `root`, sorted by path; the folders left out are logged with why."""
    runs, skipped = [], []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        if "metrics.json" not in files and "log.txt" not in files:
            continue
        run = load_run(folder)
        if isinstance(run, Run):
            runs.append(run)
        else:
            skipped.append((folder, run))
    for folder, why in skipped:
        logger.warning("skipped %s: %s", folder, why)
    if any(why == "not in a protocol layout" for _, why in skipped):
        logger.warning(
            "results.py reads run folders in the protocol layouts (as the scripts write them), below ROOT:\n  %s",
            "\n  ".join(LAYOUTS),
        )
    logger.info("found %d finished runs under %s", len(runs), root)
    return runs
