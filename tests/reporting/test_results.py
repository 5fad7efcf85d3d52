"""results.py on hand-made output trees: grouping by protocol, the numbers, --paper, output files."""

import csv
import json
import os
import sys

import pytest

import results
from dasslite.cli import NothingFoundError
from reporting.runs import collect_runs
from reporting.tables import build_tables

from .fixtures import metrics_json, reference_log

CFG = "vit_b16_c4_ep10_batch1_ctxv1"


def _b2n(root, folder, seed, base, new, trainer="CoCoOp", cfg=CFG, **run):
    common = os.path.join(folder, "shots_16", trainer, cfg, f"seed{seed}")
    metrics_json(os.path.join(root, "base2new", "train_base", common), base, trainer=trainer, seed=seed, **run)
    metrics_json(
        os.path.join(root, "base2new", "test_new", common), new, trainer=trainer, seed=seed, eval_only=True, **run
    )


@pytest.fixture
def b2n_tree(tmp_path):
    """OxfordPets: base 89 / 91 (mean 90, std 1), new 49 / 51 (mean 50, std 1) over seeds 1, 2.
    DTD: base 60, new 80 (seed 1). Per-dataset H: HM(90, 50) = 64.2857, HM(60, 80) = 68.5714 (mean
    66.4286); the paper's Average H is HM(mean base 75, mean new 65) = 69.6429."""
    root = tmp_path / "output"
    _b2n(root, "oxford_pets", 1, 89.0, 49.0, dataset="OxfordPets")
    _b2n(root, "oxford_pets", 2, 91.0, 51.0, dataset="OxfordPets")
    _b2n(root, "dtd", 1, 60.0, 80.0, dataset="DescribableTextures")
    return root


def _rows(table):
    return dict(table.rows)


def test_base2new_harmonic_mean_convention(b2n_tree):
    (table,) = build_tables(collect_runs(b2n_tree))
    assert [label for label, _ in table.rows] == ["OxfordPets", "DTD", "Average"]
    pets, dtd, average = (_rows(table)[k] for k in ("OxfordPets", "DTD", "Average"))
    assert (pets["Base"].mean, pets["Base"].spread, pets["Base"].n) == (90.0, 1.0, 2)
    assert (pets["New"].mean, pets["New"].spread) == (50.0, 1.0)
    assert pets["H"].mean == pytest.approx(64.285714)
    assert dtd["H"].mean == pytest.approx(68.571429)
    assert (average["Base"].mean, average["New"].mean) == (75.0, 65.0)
    assert average["H"].mean == pytest.approx(69.642857)  # not the mean of per-dataset H, 66.43


def test_ci95_spread(b2n_tree):
    (table,) = build_tables(collect_runs(b2n_tree), ci95=True)
    # std 1 over 2 seeds -> 1.96 * 1 / sqrt(2) = 1.3859
    assert _rows(table)["OxfordPets"]["Base"].spread == pytest.approx(1.385929)


def test_unpaired_and_unfinished_runs_are_left_out(b2n_tree, caplog):
    common = os.path.join("dtd", "shots_16", "CoCoOp", CFG, "seed2")
    metrics_json(b2n_tree / "base2new" / "train_base" / common, 10.0, seed=2, dataset="DescribableTextures")
    metrics_json(
        b2n_tree / "base2new" / "test_new" / common, 10.0, finished=False, seed=2, dataset="DescribableTextures"
    )
    (table,) = build_tables(collect_runs(b2n_tree))
    assert _rows(table)["DTD"]["Base"].values == [60.0]
    assert "seeds [2]" in caplog.text and "skipped" in caplog.text


def test_paper_column_and_files(b2n_tree, tmp_path, capsys):
    out = tmp_path / "tables"
    assert results.main([str(b2n_tree), "--out", str(out), "--paper"]) == 0
    text = capsys.readouterr().out
    # CoCoOp paper, OxfordPets Base 95.20: 90.00 - 95.20 = -5.20. Average H 75.83: 69.64 - 75.83 = -6.19.
    assert "90.00 ± 1.00 (paper 95.20, -5.20)" in text
    assert "69.64 (paper 75.83, -6.19)" in text
    name = f"base2new_CoCoOp_{CFG.replace('_ep10', '')}"
    assert sorted(os.listdir(out)) == sorted([f"{name}.csv", "results.md", "results.json", "runs.csv"])
    with open(out / f"{name}.csv") as f:
        rows = {r["row"]: r for r in csv.DictReader(f)}
    assert float(rows["OxfordPets"]["Base diff"]) == pytest.approx(-5.2)
    assert float(rows["DTD"]["Base paper"]) == 77.01
    data = json.loads((out / "results.json").read_text())
    average = data["tables"][0]["rows"][-1]["cells"]["H"]
    assert average["paper"] == 75.83 and average["diff"] == pytest.approx(69.642857 - 75.83)
    assert len(data["runs"]) == 6
    assert "| OxfordPets |" in (out / "results.md").read_text()
    with open(out / "runs.csv") as f:
        assert len(list(csv.DictReader(f))) == 6


def test_transfer_tables(tmp_path):
    # Source ImageNet 71 / 73 (mean 72); Caltech101 94, OxfordPets 90 -> target avg 92 over the two
    # present targets; ImageNet-A 50, ImageNet-R 76 -> DG target avg 63, avg of 5 (72, 50, 76) = 66.
    root = tmp_path / "output"
    for seed, accuracy in ((1, 71.0), (2, 73.0)):
        metrics_json(
            root / "imagenet" / "CoCoOp" / f"{CFG}_16shots" / f"seed{seed}", accuracy, dataset="ImageNet", seed=seed
        )
    for folder, accuracy in (("caltech101", 94.0), ("oxford_pets", 90.0), ("imagenet_a", 50.0), ("imagenet_r", 76.0)):
        reference_log(
            str(root / "evaluation" / "CoCoOp" / f"{CFG}_16shots" / folder / "seed1"), accuracy, eval_only=True
        )  # runs of the original code: log.txt only
    tables = {t.kind: t for t in build_tables(collect_runs(root))}
    xd, dg = tables["cross_dataset"], tables["domain_generalization"]
    assert tables["fewshot"].rows[0][0] == "ImageNet"  # the source run is also a 16-shot training run
    row = _rows(xd)[f"CoCoOp {CFG}"]  # labelled by the configs actually run
    assert (row["ImageNet"].mean, row["Caltech101"].mean, row["Target avg"].mean) == (72.0, 94.0, 92.0)
    row = _rows(dg)[f"CoCoOp {CFG}"]
    assert (row["Target avg"].mean, row["Avg (5)"].mean) == (63.0, 66.0)
    assert xd.paper[f"CoCoOp {CFG}"]["Target avg"] == 65.74


def test_fewshot_table_merges_the_recipe_configs(tmp_path):
    # The original COOP.md recipe: 1 shot rn50_ep50, 16 shots rn50, ImageNet rn50_ep50: one table, shots as columns.
    root = tmp_path / "output"
    variant = "nctx16_cscFalse_ctpend"
    for dataset, cfg, shots, accuracy in (
        ("caltech101", "rn50_ep50", 1, 87.0),
        ("caltech101", "rn50", 16, 92.0),
        ("imagenet", "rn50_ep50", 1, 57.0),
        ("imagenet", "rn50_ep50", 16, 63.0),
    ):
        reference_log(str(root / dataset / "CoOp" / f"{cfg}_{shots}shots" / variant / "seed1"), accuracy)
    metrics_json(root / "dtd" / "CoOp" / "rn50_16shots" / variant / "seed1", 1.0, finished=False)
    (table,) = build_tables(collect_runs(root))
    assert table.columns == ["1", "16"] and table.meta["cfgs"] == "rn50+rn50_ep50"
    rows = _rows(table)
    assert [label for label, _ in table.rows] == ["ImageNet", "Caltech101", "Average"]
    assert (rows["Average"]["1"].mean, rows["Average"]["16"].mean) == (72.0, 77.5)
    assert table.paper["ImageNet"]["1"] == 57.15  # CoOp paper, RN50
    assert len(build_tables(collect_runs(root), exact_cfg=True)) == 2


def test_zeroshot_table(tmp_path):
    root = tmp_path / "output"
    metrics_json(
        root / "ZeroshotCLIP" / "rn50" / "dtd",
        42.0,
        trainer="ZeroshotCLIP",
        backbone="RN50",
        dataset="DescribableTextures",
    )
    metrics_json(
        root / "ZeroshotCLIP" / "rn50" / "eurosat", 38.0, trainer="ZeroshotCLIP", backbone="RN50", dataset="EuroSAT"
    )
    (table,) = build_tables(collect_runs(root))
    assert _rows(table)["Average"]["ZeroshotCLIP rn50"].mean == 40.0
    assert table.paper["DTD"]["ZeroshotCLIP rn50"] == 42.20


def test_plots(b2n_tree, tmp_path):
    import matplotlib  # noqa: F401  (the test extra installs it)

    variant = "nctx16_cscFalse_ctpend"
    for shots, accuracy in ((1, 80.0), (2, 84.0)):
        metrics_json(
            b2n_tree / "caltech101" / "CoOp" / f"rn50_{shots}shots" / variant / "seed1",
            accuracy,
            trainer="CoOp",
            dataset="Caltech101",
            backbone="RN50",
        )
        metrics_json(
            b2n_tree / "dtd" / "CoOp" / f"rn50_{shots}shots" / variant / "seed1",
            accuracy - 20,
            trainer="CoOp",
            dataset="DescribableTextures",
            backbone="RN50",
        )
    out = tmp_path / "tables"
    assert results.main([str(b2n_tree), "--out", str(out), "--plots", "--quiet"]) == 0
    pngs = sorted(os.listdir(out / "plots"))
    assert pngs == sorted(
        [
            "fewshot_Caltech101.png",
            "fewshot_DTD.png",
            "fewshot_Average.png",
            f"base2new_CoCoOp_{CFG.replace('_ep10', '')}.png",
        ]
    )
    for name in pngs:
        assert (out / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_empty_tree_is_an_error(tmp_path):
    with pytest.raises(NothingFoundError, match="no finished runs in a known layout"):
        results.main([str(tmp_path)])


def test_plots_without_matplotlib_name_the_extra(b2n_tree, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r'pip install -e "\.\[plots\]"'):
        results.main([str(b2n_tree), "--out", str(tmp_path / "tables"), "--plots", "--quiet"])


def test_base2new_by_method_table_puts_zero_shot_clip_first(b2n_tree):
    # Zero-shot CLIP runs in the base2new layout (ZeroshotCLIP trainer, one seed) and CoOp (two seeds) beside
    # the CoCoOp runs of b2n_tree: one table per dataset and one for the Average, rows in the paper's order.
    _b2n(b2n_tree, "oxford_pets", 1, 80.0, 70.0, trainer="ZeroshotCLIP", cfg="vit_b16", dataset="OxfordPets")
    for seed, base in ((1, 92.0), (2, 94.0)):
        _b2n(b2n_tree, "oxford_pets", seed, base, 40.0, trainer="CoOp", cfg="vit_b16_ctxv1", dataset="OxfordPets")
    tables = [t for t in build_tables(collect_runs(b2n_tree)) if t.kind == "base2new_by_method"]
    assert [t.meta["dataset"] for t in tables] == ["Average", "OxfordPets", "DTD"]
    pets = tables[1]
    assert [label for label, _ in pets.rows] == ["CLIP vit_b16", "CoOp vit_b16_ctxv1", f"CoCoOp {CFG}"]
    rows = _rows(pets)
    assert (rows["CLIP vit_b16"]["Base"].mean, rows["CLIP vit_b16"]["H"].mean) == (80.0, pytest.approx(74.666667))
    assert (rows["CoOp vit_b16_ctxv1"]["Base"].mean, rows["CoOp vit_b16_ctxv1"]["Base"].spread) == (93.0, 1.0)
    assert pets.paper["CLIP vit_b16"]["Base"] == 91.17  # CoCoOp paper Table 1, OxfordPets, CLIP
    assert [label for label, _ in tables[2].rows] == [f"CoCoOp {CFG}"]  # only CoCoOp ran DTD


def test_paper_column_for_kgcoop_and_prograd(tmp_path, capsys):
    root = tmp_path / "output"
    for trainer, cfg in (("KgCoOp", "vit_b16_ep100_ctxv1"), ("ProGrad", "rn50_ep100")):
        _b2n(root, "oxford_pets", 1, 90.0, 50.0, trainer=trainer, cfg=cfg, dataset="OxfordPets")
        _b2n(root, "dtd", 1, 60.0, 80.0, trainer=trainer, cfg=cfg, dataset="DescribableTextures")
    assert results.main([str(root), "--out", str(tmp_path / "tables"), "--paper"]) == 0
    text = capsys.readouterr().out
    assert "90.00 (paper 94.65, -4.65)" in text  # KgCoOp's OxfordPets Base
    assert "KgCoOp paper (CVPR'23)" in text
    # ProGrad: only the average was published (H 76.16); HM(75, 65) = 69.64
    assert "69.64 (paper 76.16, -6.52)" in text
    assert "re-run in the KgCoOp paper" in text


def test_paper_says_in_one_line_which_tables_no_published_row_matches(b2n_tree, tmp_path, caplog):
    """A demo's tiny CLIP has no published counterpart: --paper says so instead of printing the same table."""
    _b2n(b2n_tree, "my_images", 1, 60.0, 40.0, trainer="CoOp", cfg="demo", dataset="ImageFolder", backbone="tiny.pt")
    assert results.main([str(b2n_tree), "--out", str(tmp_path / "a"), "--paper", "--quiet"]) == 0
    notes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("--paper")]
    assert len(notes) == 1 and "no published row matches the table(s) Base-to-new: CoOp demo (tiny.pt)" in notes[0], (
        notes
    )
    assert "CoCoOp vit_b16" not in notes[0]  # the CoCoOp table has its paper row
    caplog.clear()
    assert results.main([str(b2n_tree), "--out", str(tmp_path / "b"), "--quiet"]) == 0  # not asked: no note
    assert not [r for r in caplog.records if r.getMessage().startswith("--paper")]
