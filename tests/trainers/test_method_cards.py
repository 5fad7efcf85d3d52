"""Every registered trainer (the toolkit's and the installed plugins') declares what the rest of the
toolkit reads about it, and those declarations hold: the reference config merges, the base-to-new
configs exist, the published rows are well formed, export is declared."""

import os

import pytest

import train
from coop_toolkit.method_card import (
    BASE2NEW_ROWS,
    CLASSIFIER_HEAD,
    CROSS_DATASET_COLUMNS,
    DG_COLUMNS,
    PROMPT_LEARNER,
    card_of,
)
from dasslite.engine.build import TRAINER_REGISTRY
from reporting import paper_numbers
from tests.precision_matrix import REPO, toolkit_trainers, trainer_config

TRAINERS = toolkit_trainers()


@pytest.mark.parametrize("name", TRAINERS)
def test_the_reference_config_merges_for_its_trainer(name):
    """With the card's short_run (KEY VALUE pairs naming keys the config has: a typo stops here)."""
    short_run = list(card_of(TRAINER_REGISTRY.get(name)).short_run)
    assert len(short_run) % 2 == 0, short_run
    argv = ["--trainer", name, "--config-file", trainer_config(name), *short_run]
    cfg = train.setup_cfg(train.parse_args(argv))
    assert cfg.TRAINER.NAME == name
    for key, value in zip(short_run[::2], short_run[1::2]):
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert str(node).replace(" ", "") == value.replace(" ", ""), (key, node)


@pytest.mark.parametrize("name", TRAINERS)
def test_the_card_is_well_formed(name):
    card = card_of(TRAINER_REGISTRY.get(name))
    for stem in card.base2new_configs:
        assert os.path.isfile(os.path.join(REPO, "configs", "trainers", name, f"{stem}.yaml")), stem
    assert len(card.base2new_configs) in (0, 2)
    assert card.export in (CLASSIFIER_HEAD, PROMPT_LEARNER, None)
    assert card.export is not None or card.no_export_reason
    for rows in card.published:
        assert set(rows.base2new) <= set(BASE2NEW_ROWS)
        assert all(set(cells) == {"Base", "New", "H"} for cells in rows.base2new.values())
        assert set(rows.cross_dataset) <= set(CROSS_DATASET_COLUMNS)
        assert set(rows.domain_generalization) <= set(DG_COLUMNS)
    methods = {rows.method for rows in card.published}
    assert set(card.published_for_config.values()) <= methods
    if card.published:  # results.py --paper finds them under the trainer's name
        assert paper_numbers.method_for(name) == card.published[0].method
        for cfg, method in card.published_for_config.items():
            assert paper_numbers.method_for(name, cfg) == method


def test_a_subclass_does_not_inherit_its_parents_published_rows():
    from tests.trainers.test_layer import LayerTestCoOp

    assert card_of(LayerTestCoOp).published == () and paper_numbers.method_for("LayerTestCoOp") is None
