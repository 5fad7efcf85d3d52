"""Published top-1 accuracies (%) that `results.py --paper` prints beside reproduced numbers.

Each method declares its published rows beside its trainer (`card = MethodCard(published=...)`,
coop_toolkit/method_card.py); this module collects them from the trainer registry (the toolkit's
trainers and the installed plugins') into the tables reporting/tables.py reads, on first use (it
imports the trainers, so torch). The numbers were transcribed from the project's notes on the papers'
tables (the CoCoOp paper, CVPR'22, Tables 1-3, and the CoOp paper, IJCV'22, RN50 few-shot numbers),
which were read in repositories and later papers that reprint them; where only one source or a
successor's table was found, the card says so. Keys are the papers' row names
(coop_toolkit/benchmarks.py). Tables 1a-1c are ViT-B/16, 16 shots, 3 seeds.
"""

import functools

SOURCE = {
    "base2new": "CoCoOp paper (CVPR'22) Table 1, ViT-B/16, 16 shots; reprinted by MaPLe/PromptSRC READMEs",
    "cross_dataset": "CoCoOp paper Table 2 (ImageNet -> 10 datasets), ViT-B/16; CLIP row from one source",
    "domain_generalization": "CoCoOp paper Table 3 (ImageNet -> 4 variants), ViT-B/16",
    "fewshot": "CoOp paper (IJCV'22), RN50, M=16, end, unified ctx: 16-shot per dataset as reprinted by "
    "LoGoPrompt Table 2, ImageNet by shots as reprinted by a later paper; ViT-B/16 averages as "
    "tabulated by the CLIP-SVD README (origin not stated there)",
    "zeroshot": "RN50: Tip-Adapter exp.log; ViT-B/16: CLIP row of CoCoOp Table 2 (full class sets)",
}

# The tables, by name: BASE2NEW (method -> row -> {"Base", "New", "H"}; "Average" H = HM(avg Base, avg
# New)), BASE2NEW_SOURCE (method -> source, when not SOURCE["base2new"]), CROSS_DATASET and
# DOMAIN_GENERALIZATION (method -> column -> accuracy), FEWSHOT ((method, backbone) -> row -> {shots:
# accuracy}), FEWSHOT_SOURCE (method -> source, when not SOURCE["fewshot"]), ZEROSHOT (backbone -> dataset
# -> accuracy), METHOD (trainer -> the papers' method name) and METHOD_BY_CFG ((trainer, config) ->
# method, for a published row that is not the trainer's default one).
TABLES = (
    "BASE2NEW",
    "BASE2NEW_SOURCE",
    "CROSS_DATASET",
    "DOMAIN_GENERALIZATION",
    "FEWSHOT",
    "FEWSHOT_SOURCE",
    "ZEROSHOT",
    "METHOD",
    "METHOD_BY_CFG",
)


@functools.cache
def collect():
    """{table name: table} from the cards of every registered trainer."""
    import coop_toolkit.trainers  # noqa: F401  (registers the toolkit's trainers and the installed plugins')
    from coop_toolkit.method_card import card_of
    from dasslite.engine.build import TRAINER_REGISTRY

    tables = {name: {} for name in TABLES}
    for trainer in TRAINER_REGISTRY.registered_names():
        card = card_of(TRAINER_REGISTRY.get(trainer))
        if card.published:
            tables["METHOD"][trainer] = card.published[0].method
        tables["METHOD_BY_CFG"].update(((trainer, cfg), method) for cfg, method in card.published_for_config.items())
        for rows in card.published:
            _add(tables, rows)
    return tables


def _add(tables, rows):
    method = rows.method
    for name, table in (
        ("BASE2NEW", rows.base2new),
        ("BASE2NEW_SOURCE", rows.source),
        ("CROSS_DATASET", rows.cross_dataset),
        ("DOMAIN_GENERALIZATION", rows.domain_generalization),
    ):
        if table:
            tables[name][method] = table
    tables["FEWSHOT"].update(((method, backbone), by_row) for backbone, by_row in rows.fewshot.items())
    if rows.fewshot_source:
        tables["FEWSHOT_SOURCE"][method] = rows.fewshot_source
    tables["ZEROSHOT"].update(rows.zeroshot)


def __getattr__(name):
    if name in TABLES:
        return collect()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def method_for(trainer, cfg=None):
    """The paper's method name for runs of `trainer` with config `cfg` (None when it has none)."""
    return collect()["METHOD_BY_CFG"].get((trainer, cfg)) or collect()["METHOD"].get(trainer)
