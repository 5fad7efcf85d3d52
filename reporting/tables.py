"""Group runs into the papers' tables: mean and spread over seeds per cell.

Spread is the population std over seeds (np.std, as the reference's parse_test_res.py), or the 95%
confidence interval 1.96 * std / sqrt(n). Averages over datasets are means of the per-dataset means
and carry no spread. Base-to-new H follows the CoCoOp paper: per dataset HM(mean Base, mean New), and
on the Average row HM(average Base, average New), not the mean of the per-dataset H.
"""

import collections
import dataclasses
import logging

import numpy as np

from coop_toolkit.benchmarks import DG_TARGETS, XD_TARGETS, order_key

from . import paper_numbers as paper
from .runs import cfg_family

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class Stat:
    mean: float
    spread: float | None = None
    n: int = 1
    values: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Table:
    name: str
    kind: str  # "base2new", "fewshot", "cross_dataset", "domain_generalization", "zeroshot"
    title: str
    columns: list
    rows: list  # [(label, {column: Stat})]
    meta: dict = dataclasses.field(default_factory=dict)
    paper: dict = dataclasses.field(default_factory=dict)  # label -> column -> published value
    paper_source: str = ""


def summarize(values, ci95=False):
    values = [float(v) for v in values]
    std = float(np.std(values))
    spread = 1.96 * std / np.sqrt(len(values)) if ci95 else std
    return Stat(float(np.mean(values)), spread, len(values), values)


def mean_of(stats):
    """Unweighted mean of cell means (an Average row or column); None when there is nothing."""
    stats = [s for s in stats if s is not None]
    return Stat(float(np.mean([s.mean for s in stats])), None, len(stats)) if stats else None


def hmean(a, b):
    return 2 * a * b / (a + b) if a + b > 0 else 0.0


def _group(runs, key, cell, exact_cfg):
    """{group key: {cell key: run}}; two configs of one family filling the same cell are reported."""
    groups = collections.defaultdict(dict)
    for run in runs:
        cfg = run.cfg if exact_cfg else cfg_family(run.cfg)
        cells = groups[key(run, cfg)]
        k = cell(run)
        if k in cells:
            hint = " (use --exact-cfg to separate configs)" if cells[k].cfg != run.cfg else ""
            logger.warning("%s and %s fill the same cell; keeping the first%s", cells[k].path, run.path, hint)
            continue
        cells[k] = run
    return groups


def _label(trainer, cfg, variant=""):
    return " ".join(x for x in (trainer, cfg, variant) if x)


def _safe(text):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def _cfgs(runs):
    """The configs actually run in a group (a family may hold several, e.g. rn50 and rn50_ep50)."""
    return "+".join(sorted({r.cfg for r in runs}))


def base2new_tables(runs, ci95=False, exact_cfg=False):
    runs = [r for r in runs if r.protocol == "base2new"]
    groups = _group(runs, lambda r, cfg: (r.trainer, cfg), lambda r: (r.dataset, r.phase, r.seed), exact_cfg)
    return [_base2new_table(trainer, cfg, cells, ci95) for (trainer, cfg), cells in sorted(groups.items())]


def _base2new_table(trainer, cfg, cells, ci95):
    rows, seeds = [], collections.defaultdict(dict)
    for (dataset, phase, seed), run in cells.items():
        seeds[dataset].setdefault(seed, {})[phase] = run.accuracy
    for dataset in sorted(seeds, key=order_key):
        paired = {s: v for s, v in seeds[dataset].items() if {"train_base", "test_new"} <= set(v)}
        if len(paired) < len(seeds[dataset]):
            logger.warning(
                "base2new %s %s %s: seeds %s lack a train_base or test_new result",
                trainer,
                cfg,
                dataset,
                sorted(set(seeds[dataset]) - set(paired)),
            )
        if not paired:
            continue
        base = summarize([paired[s]["train_base"] for s in sorted(paired)], ci95)
        new = summarize([paired[s]["test_new"] for s in sorted(paired)], ci95)
        rows.append((dataset, {"Base": base, "New": new, "H": Stat(hmean(base.mean, new.mean), None, base.n)}))
    if rows:
        base, new = mean_of(r[1]["Base"] for r in rows), mean_of(r[1]["New"] for r in rows)
        rows.append(("Average", {"Base": base, "New": new, "H": Stat(hmean(base.mean, new.mean), None, base.n)}))
    backbone = next(iter(cells.values())).backbone
    table = Table(
        _safe(f"base2new_{trainer}_{cfg}"),
        "base2new",
        f"Base-to-new: {trainer} {_cfgs(cells.values())} ({backbone})",
        ["Base", "New", "H"],
        rows,
        dict(trainer=trainer, cfg=cfg, backbone=backbone, cfgs=_cfgs(cells.values())),
    )
    method = paper.method_for(trainer, _cfgs(cells.values()))
    if backbone == "ViT-B/16" and method in paper.BASE2NEW:
        source = paper.BASE2NEW_SOURCE.get(method, paper.SOURCE["base2new"])
        table.paper, table.paper_source = paper.BASE2NEW[method], source
    return table


def base2new_method_tables(tables):
    """The CoCoOp paper's Table 1 layout, built from the per-method tables when there are several: one
    table per dataset (and for the Average when there are several datasets), one row per method (CLIP for
    the zero-shot trainers), so zero-shot CLIP, CoOp and CoCoOp are compared side by side."""
    order = ["CLIP", "CoOp", "CoCoOp"]  # the paper's row order; other trainers after, by name

    def rank(table):
        method = paper.METHOD.get(table.meta["trainer"])
        return order.index(method) if method in order else len(order), table.meta["trainer"], table.meta["cfg"]

    tables = sorted((t for t in tables if t.kind == "base2new"), key=rank)
    if len(tables) < 2:
        return []
    datasets = sorted({label for t in tables for label, _ in t.rows} - {"Average"}, key=order_key)
    out = []
    # The Average first, as Table 1 (a); with one dataset it would only repeat that dataset's table.
    for dataset in (["Average"] if len(datasets) > 1 else []) + datasets:
        rows, published = [], {}
        for table in tables:
            cells = dict(table.rows).get(dataset)
            if cells is None:
                continue
            trainer = table.meta["trainer"]
            label = _label(paper.METHOD.get(trainer, trainer), table.meta["cfgs"])
            rows.append((label, cells))
            if table.paper.get(dataset):
                published[label] = table.paper[dataset]
        table = Table(
            _safe(f"base2new_by_method_{dataset}"),
            "base2new_by_method",
            f"Base-to-new on {dataset}, by method",
            ["Base", "New", "H"],
            rows,
            dict(dataset=dataset),
            published,
            paper.SOURCE["base2new"] if published else "",
        )
        out.append(table)
    return out


def fewshot_tables(runs, ci95=False, exact_cfg=False):
    runs = [r for r in runs if r.protocol == "train"]
    groups = _group(runs, lambda r, cfg: (r.trainer, cfg, r.variant), lambda r: (r.dataset, r.shots, r.seed), exact_cfg)
    return [_fewshot_table(key, cells, ci95) for key, cells in sorted(groups.items())]


def _fewshot_table(key, cells, ci95):
    trainer, cfg, variant = key
    values = collections.defaultdict(list)
    for (dataset, shots, _seed), run in sorted(cells.items(), key=lambda kv: kv[0][2]):
        values[dataset, shots].append(run.accuracy)
    shots = sorted({s for _d, s in values})
    columns = [str(s) for s in shots]
    rows = []
    for dataset in sorted({d for d, _s in values}, key=order_key):
        rows.append((dataset, {str(s): summarize(values[dataset, s], ci95) for s in shots if (dataset, s) in values}))
    if len(rows) > 1:
        rows.append(("Average", {c: mean_of(r[1].get(c) for r in rows) for c in columns}))
    backbone = next(iter(cells.values())).backbone
    label = _label(trainer, _cfgs(cells.values()), variant)
    table = Table(
        _safe(f"fewshot_{_label(trainer, cfg, variant)}"),
        "fewshot",
        f"Few-shot accuracy by shots: {label} ({backbone})",
        columns,
        rows,
        dict(trainer=trainer, cfg=cfg, variant=variant, backbone=backbone, cfgs=_cfgs(cells.values())),
    )
    published = paper.FEWSHOT.get((paper.METHOD.get(trainer), backbone))
    if published and variant in ("", "nctx16_cscFalse_ctpend"):
        table.paper = {row: {str(s): v for s, v in by_shot.items()} for row, by_shot in published.items()}
        table.paper_source = paper.FEWSHOT_SOURCE.get(paper.METHOD.get(trainer)) or paper.SOURCE["fewshot"]
    return table


def transfer_tables(runs, ci95=False, exact_cfg=False):
    """Cross-dataset and domain-generalisation tables: one row per ImageNet-trained model."""
    evaluations = [r for r in runs if r.protocol == "evaluation"]
    sources = [r for r in runs if r.protocol == "train" and r.dataset == "ImageNet"]
    key = lambda r, cfg: (r.trainer, cfg, r.variant, r.shots)  # noqa: E731
    groups = _group(evaluations, key, lambda r: (r.dataset, r.seed), exact_cfg)
    source_groups = _group(sources, key, lambda r: (r.dataset, r.seed), exact_cfg)
    specs = [
        ("cross_dataset", "Cross-dataset transfer (ImageNet -> 10 datasets)", XD_TARGETS, False),
        ("domain_generalization", "Domain generalisation (ImageNet -> 4 variants)", DG_TARGETS, True),
    ]
    tables = []
    for kind, title, targets, with_all in specs:
        rows = [_transfer_row(groups[k], source_groups.get(k, {}), targets, with_all, ci95) for k in sorted(groups)]
        labels = [
            _label(k[0], _cfgs([*groups[k].values(), *source_groups.get(k, {}).values()]), k[2]) for k in sorted(groups)
        ]
        rows = [(label, cells) for label, cells in zip(labels, rows) if any(t in cells for t in targets)]
        if rows:
            columns = ["ImageNet", *targets, "Target avg"] + (["Avg (5)"] if with_all else [])
            table = Table(kind, kind, title, columns, rows)
            _attach_transfer_paper(table, sorted(groups), labels)
            tables.append(table)
    return tables


def _transfer_row(cells, source_cells, targets, with_all, ci95):
    by_dataset = collections.defaultdict(list)
    for (dataset, _seed), run in sorted({**source_cells, **cells}.items(), key=lambda kv: kv[0][1]):
        by_dataset[dataset].append(run.accuracy)
    row = {d: summarize(v, ci95) for d, v in by_dataset.items() if d in targets or d == "ImageNet"}
    row["Target avg"] = mean_of(row.get(t) for t in targets)
    if with_all and "ImageNet" in row and row["Target avg"]:
        row["Avg (5)"] = mean_of([row["ImageNet"], *(row.get(t) for t in targets)])
    return {k: v for k, v in row.items() if v is not None}


def _attach_transfer_paper(table, keys, labels):
    published = paper.CROSS_DATASET if table.kind == "cross_dataset" else paper.DOMAIN_GENERALIZATION
    for (trainer, cfg, _variant, _shots), label in zip(keys, labels):
        method = paper.METHOD.get(trainer)
        if cfg.startswith("vit_b16") and method in published:
            table.paper[label] = published[method]
            table.paper_source = paper.SOURCE[table.kind]


def zeroshot_tables(runs, ci95=False, exact_cfg=True):
    """One table, datasets down, one column per zero-shot trainer and config."""
    runs = [r for r in runs if r.protocol == "zeroshot"]
    if not runs:
        return []
    columns = sorted({_label(r.trainer, r.cfg) for r in runs})
    cells = collections.defaultdict(dict)
    for run in runs:
        cells[run.dataset][_label(run.trainer, run.cfg)] = summarize([run.accuracy], ci95)
    rows = [(d, cells[d]) for d in sorted(cells, key=order_key)]
    if len(rows) > 1:
        rows.append(("Average", {c: mean_of(r[1].get(c) for r in rows) for c in columns}))
    table = Table("zeroshot", "zeroshot", "Zero-shot CLIP", columns, rows)
    for column in columns:
        backbone = next(r.backbone for r in runs if _label(r.trainer, r.cfg) == column)
        for dataset, value in paper.ZEROSHOT.get(backbone, {}).items():
            table.paper.setdefault(dataset, {})[column] = value
            table.paper_source = paper.SOURCE["zeroshot"]
    return [table]


def build_tables(runs, ci95=False, exact_cfg=False):
    base2new = base2new_tables(runs, ci95, exact_cfg)
    return (
        base2new
        + base2new_method_tables(base2new)
        + transfer_tables(runs, ci95, exact_cfg)
        + fewshot_tables(runs, ci95, exact_cfg)
        + zeroshot_tables(runs, ci95)
    )
