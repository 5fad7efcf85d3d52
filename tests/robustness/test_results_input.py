"""results.py skips a corrupt metrics.json with a warning naming it; two dataset
configs sharing DATASET.NAME (two image folders of your own) are two rows, not merged; a folder
outside the protocol layouts is told which layout is expected. parse_test_res.py pointed at a seed
folder says to point at its parent, and on eval-only logs without --test-log suggests the flag."""

import logging
import os

import pytest

import parse_test_res
import results
from dasslite.cli import NothingFoundError, UsageError
from reporting.runs import collect_runs
from reporting.tables import build_tables
from tests.reporting.fixtures import metrics_json, reference_log

CFG = "vit_b16_c4_ep10_batch1_ctxv1"


def b2n(root, folder, seed, base, new, **run):
    common = os.path.join(folder, "shots_16", "CoCoOp", CFG, f"seed{seed}")
    metrics_json(os.path.join(root, "base2new", "train_base", common), base, seed=seed, **run)
    metrics_json(os.path.join(root, "base2new", "test_new", common), new, seed=seed, eval_only=True, **run)
    return os.path.join(root, "base2new", "test_new", common)


@pytest.mark.parametrize(
    "content", ["{ truncated", "[]", '{"finished": true}', '{"finished": true, "metrics": {"accuracy": "x"}}']
)
def test_results_skips_a_corrupt_metrics_json_with_a_warning_naming_it(tmp_path, caplog, capsys, content):
    root = tmp_path / "output"
    b2n(root, "oxford_pets", 1, 90.0, 50.0, dataset="OxfordPets")
    bad = b2n(root, "oxford_pets", 2, 80.0, 40.0, dataset="OxfordPets")
    with open(os.path.join(bad, "metrics.json"), "w") as f:
        f.write(content)
    with caplog.at_level(logging.WARNING):
        assert results.main([str(root), "--quiet"]) == 0
    assert f"corrupt {os.path.join(bad, 'metrics.json')}" in caplog.text
    (table, *_) = build_tables(collect_runs(root))
    assert dict(table.rows)["OxfordPets"]["Base"].values == [90.0]  # seed 2 lacks its test_new result


def test_results_two_dataset_configs_sharing_dataset_name_are_two_rows(tmp_path, caplog):
    root = tmp_path / "output"
    b2n(root, "my_birds", 1, 70.0, 30.0, dataset="ImageFolder")
    b2n(root, "my_pets", 1, 90.0, 50.0, dataset="ImageFolder")
    b2n(root, "imagefolder", 1, 60.0, 20.0, dataset="ImageFolder")
    b2n(root, "oxford_flowers", 1, 95.0, 70.0, dataset="OxfordFlowers")
    with caplog.at_level(logging.WARNING):
        (table,) = build_tables(collect_runs(root))
    rows = dict(table.rows)
    assert [label for label, _ in table.rows] == ["Flowers102", "ImageFolder", "my_birds", "my_pets", "Average"]
    assert (rows["my_birds"]["Base"].mean, rows["my_pets"]["Base"].mean) == (70.0, 90.0)
    assert "keeping the first" not in caplog.text


def test_results_folder_outside_the_protocol_layout_is_told_the_expected_layout(tmp_path, caplog):
    root = tmp_path / "output"
    metrics_json(root / "my_run", 90.0)  # the README's plain --output-dir output/my_run
    with caplog.at_level(logging.WARNING), pytest.raises(NothingFoundError) as error:
        results.main([str(root), "--quiet"])
    assert f"skipped {root / 'my_run'}: not in a protocol layout" in caplog.text
    assert "base2new/<train_base|test_new>/<dataset>/shots_<K>/<TRAINER>/<CFG>/seed<S>" in str(error.value)


def test_parse_test_res_pointed_at_a_seed_folder_names_its_parent(tmp_path, caplog):
    reference_log(str(tmp_path / "exp" / "seed1"), 91.0)
    with pytest.raises(UsageError) as error:
        parse_test_res.main([str(tmp_path / "exp" / "seed1")])
    assert "one run's folder" in str(error.value) and f"parse_test_res.py {tmp_path / 'exp'}" in str(error.value)
    assert parse_test_res.main([str(tmp_path / "exp")]) == 0


def test_parse_test_res_eval_only_logs_without_test_log_suggest_the_flag(tmp_path, caplog, capsys):
    for seed in (1, 2):
        reference_log(str(tmp_path / "exp" / f"seed{seed}"), 70.0 + seed, eval_only=True)
    reference_log(str(tmp_path / "train" / "seed1"), 91.0)
    (tmp_path / "train" / "seed1" / "log.txt").write_text("Finish training\n")  # trained, no result line
    with caplog.at_level(logging.WARNING):
        for folder in ("exp", "train"):
            with pytest.raises(NothingFoundError):
                parse_test_res.main([str(tmp_path / folder)])
    hinted = [r.getMessage() for r in caplog.records if "add --test-log" in r.getMessage()]
    assert len(hinted) == 2 and all("/exp/" in m for m in hinted), hinted
    assert parse_test_res.main([str(tmp_path / "exp"), "--test-log"]) == 0
    assert "* accuracy: 71.50% +- 0.50%" in capsys.readouterr().out
