"""What the rest of the toolkit needs to know about a method, declared once, beside its trainer.

    @TRAINER_REGISTRY.register()
    class MyMethod(PromptTrainer):
        card = MethodCard(
            reference_config="configs/trainers/MyMethod/vit_b16.yaml",
            base2new_configs=("vit_b16", "vit_b16"),
            published=(Published("MyMethod", base2new=base2new_rows((80.1, 72.3, 76.0)), source="..."),),
        )

Readers (none keeps a list of methods): `results.py --paper` (reporting/paper_numbers.py collects the
published rows), the registry-wide precision checks (tests/precision_matrix.py: `reference_config`, `short_run`),
the base-to-new time projection (benchmarks/projection.py: `base2new_configs`) and export.py
(`export`, `no_export_reason`). A card is read from the class that declares it (`card_of`), so a
subclass (a test's, a successor's) never inherits its parent's published numbers; share one by
assignment (`card = ZeroshotCLIP.card`). Pure Python: no torch.
"""

import os
from dataclasses import dataclass, field

# Row and column names of the papers' tables (coop_toolkit/benchmarks.py spells the datasets).
BASE2NEW_ROWS = (
    "Average",
    "ImageNet",
    "Caltech101",
    "OxfordPets",
    "StanfordCars",
    "Flowers102",
    "Food101",
    "FGVCAircraft",
    "SUN397",
    "DTD",
    "EuroSAT",
    "UCF101",
)
CROSS_DATASET_COLUMNS = BASE2NEW_ROWS[1:] + ("Target avg",)  # "Target avg" excludes the ImageNet source
DG_COLUMNS = ("ImageNet", "ImageNetV2", "ImageNet-Sketch", "ImageNet-A", "ImageNet-R", "Target avg", "Avg (5)")

# export.py's formats: image-independent class features, or an image-conditioned prompt learner's tensors
CLASSIFIER_HEAD = "classifier_head"
PROMPT_LEARNER = "image_conditioned_prompt_learner"


def base2new_rows(*triples):
    """{row: {"Base", "New", "H"}} from (Base, New, H) triples in BASE2NEW_ROWS order (Average first)."""
    return {row: dict(zip(("Base", "New", "H"), t)) for row, t in zip(BASE2NEW_ROWS, triples)}


def fewshot_rows(rows, shots=(16, 8, 4, 2, 1)):
    """{row: {shots: accuracy}} from {row: accuracies in `shots` order}, plus their unweighted "Average"."""
    table = {row: dict(zip(shots, values)) for row, values in rows.items()}
    table["Average"] = {k: round(sum(r[k] for r in table.values()) / len(table), 2) for k in shots}
    return table


def columns(names, values):
    return dict(zip(names, values))


@dataclass(frozen=True)
class Published:
    """One row label's published top-1 accuracies (%)."""

    method: str  # the papers' name of the row ("CoOp", "CLIP", "IVLP (4+4 ctx)")
    source: str = ""  # where its base-to-new numbers come from, when not the CoCoOp paper's Table 1
    base2new: dict = field(default_factory=dict)  # row -> {"Base", "New", "H"} (ViT-B/16, 16 shots)
    cross_dataset: dict = field(default_factory=dict)  # CROSS_DATASET_COLUMNS -> accuracy
    domain_generalization: dict = field(default_factory=dict)  # DG_COLUMNS -> accuracy
    fewshot: dict = field(default_factory=dict)  # backbone -> row -> {shots: accuracy}
    fewshot_source: str = ""  # where its few-shot numbers come from, when not the CoOp paper's
    zeroshot: dict = field(default_factory=dict)  # backbone -> dataset -> accuracy


@dataclass(frozen=True)
class MethodCard:
    # the yaml the registry-wide precision checks build the trainer from (relative to the toolkit's
    # checkout, or absolute for a plugin's own)
    reference_config: str = ""
    # config stems (configs/trainers/<trainer>/<stem>.yaml) its base-to-new table runs: (ten datasets, ImageNet)
    base2new_configs: tuple = ()
    # the published rows; the first is the trainer's, the others are named by `published_for_config`
    published: tuple = ()
    published_for_config: dict = field(default_factory=dict)  # config stem -> Published.method
    # KEY VALUE overrides that make a run of reference_config a few steps long in the registry-wide checks,
    # for a method that counts its training in keys of its own rather than OPTIM.MAX_EPOCH (which the checks
    # set to 1) or spends minutes before training (CLIP-LoRA's N_ITERS, Tip-Adapter's cache and search)
    short_run: tuple = ()
    export: str | None = CLASSIFIER_HEAD  # CLASSIFIER_HEAD, PROMPT_LEARNER, or None (export refused)
    no_export_reason: str = ""  # why export is refused (None above, or image features not open_clip's own)


EMPTY = MethodCard(export=None)


def card_of(trainer_cls):
    """The card `trainer_cls` itself declares (EMPTY when it declares none)."""
    return vars(trainer_cls).get("card", EMPTY)


def config_file(card, repo):
    """The absolute path of `card.reference_config` ("" when none is declared)."""
    path = card.reference_config
    return path if not path or os.path.isabs(path) else os.path.join(repo, path)
