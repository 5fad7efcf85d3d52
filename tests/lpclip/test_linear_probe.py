"""lpclip/linear_probe.py: the reference's draw and C search, reports, run folders and results.py."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from lpclip import linear_probe as lp
from reporting.runs import collect_runs
from reporting.tables import build_tables

from .conftest import REPO

C_GRID = [1e6, 1e4, 1e2, 1, 1e-2, 1e-4, 1e-6]


# ---------------------------------------------------------------- the reference, reimplemented


def reference_draw(train_label, val_label, num_shot, seed):
    """CoOp's lpclip/linear_probe.py sampling block, with numpy's global generator."""
    np.random.seed(seed)
    all_label_list = np.unique(train_label)
    selected_idx_list = []
    for label in all_label_list:
        label_collection = np.where(train_label == label)[0]
        selected_idx_list.extend(np.random.choice(label_collection, size=num_shot, replace=False))
    val_selected_idx_list = []
    for label in all_label_list:
        label_collection = np.where(val_label == label)[0]
        val_num_shot = {1: 1, 2: 2, 4: 4, 8: 4, 16: 4}[num_shot]
        val_selected_idx_list.extend(np.random.choice(label_collection, size=val_num_shot, replace=False))
    return selected_idx_list, val_selected_idx_list


def _clf(c):
    return LogisticRegression(solver="lbfgs", max_iter=1000, C=c)  # L2 (sklearn >= 1.8 default)


def reference_search(tx, ty, vx, vy, test_x, test_y, num_step):
    """The reference's grid + binary_search loop; returns [(c_final, test_acc)] per round."""
    acc_list = []
    for c_weight in C_GRID:
        pred = _clf(c_weight).fit(tx, ty).predict(vx)
        acc_list.append(sum(pred == vy) / len(vy))
    c_peak = C_GRID[np.argmax(acc_list)]
    c_left, c_right = 1e-1 * c_peak, 1e1 * c_peak
    out = []
    for _step in range(num_step):
        clf_left = _clf(c_left).fit(tx, ty)
        acc_left = sum(clf_left.predict(vx) == vy) / len(vy)
        clf_right = _clf(c_right).fit(tx, ty)
        acc_right = sum(clf_right.predict(vx) == vy) / len(vy)
        if acc_left < acc_right:
            c_final, clf_final = c_right, clf_right
            c_left = 0.5 * (np.log10(c_right) + np.log10(c_left))
            c_right = np.log10(c_right)
        else:
            c_final, clf_final = c_left, clf_left
            c_right = 0.5 * (np.log10(c_right) + np.log10(c_left))
            c_left = np.log10(c_left)
        pred = clf_final.predict(test_x)
        out.append((c_final, 100 * sum(pred == test_y) / len(pred)))
        c_left, c_right = np.power(10, c_left), np.power(10, c_right)
    return out


def blobs(n_per_class, n_classes=5, dim=16, spread=1.0, seed=0):
    """Gaussian clusters around fixed random class centres (noise and row order from `seed`)."""
    centres = np.random.default_rng(0).normal(0, 3.0, (n_classes, dim))
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    features = centres[labels] + rng.normal(0, spread, (len(labels), dim))
    order = rng.permutation(len(labels))
    return features[order], labels[order]


def feats(spread=1.0):
    return {
        "train": blobs(20, spread=spread, seed=1),
        "val": blobs(6, spread=spread, seed=2),
        "test": blobs(10, spread=spread, seed=3),
    }


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize("num_shot", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_draw_equals_the_reference(num_shot, seed):
    rng = np.random.default_rng(7)
    train_label = rng.permutation(np.repeat(np.arange(6), rng.integers(16, 25, 6)))
    val_label = rng.permutation(np.repeat(np.arange(6), 5))
    ref_train, ref_val = reference_draw(train_label, val_label, num_shot, seed)
    np.random.seed(12345)
    state = np.random.get_state()[1].copy()
    train_idx, val_idx = lp.draw_fewshot(train_label, val_label, num_shot, np.random.RandomState(seed))
    assert train_idx.tolist() == [int(i) for i in ref_train]
    assert val_idx.tolist() == [int(i) for i in ref_val]
    assert (np.random.get_state()[1] == state).all()  # numpy's global generator untouched


def test_small_classes_and_other_shot_counts_do_not_crash(caplog):
    train_label = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    val_label = np.array([0, 1, 1, 1, 1, 1])
    train_idx, val_idx = lp.draw_fewshot(train_label, val_label, 3, np.random.RandomState(1))
    assert sorted(train_label[train_idx].tolist()) == [0, 0, 0, 1, 1, 1]
    assert sorted(val_label[val_idx].tolist()) == [0, 1, 1, 1]  # val shots min(3, 4) = 3; class 0 has 1
    assert "1 classes have fewer than 3 val features" in caplog.text


def test_search_and_test_accuracy_equal_the_reference():
    data = feats(spread=3.0)  # overlapping clusters: the C values matter
    (tx, ty), (vx, vy), (test_x, test_y) = data["train"], data["val"], data["test"]
    for num_shot, seed in [(2, 1), (4, 2)]:
        run = lp.probe(data, num_shot, seed, num_step=3)
        tr, va = reference_draw(ty, vy, num_shot, seed)
        expected = reference_search(tx[tr], ty[tr], vx[va], vy[va], test_x, test_y, num_step=3)
        assert [s.c_final for s in run.search.steps] == pytest.approx([c for c, _ in expected], rel=1e-12)
        assert run.step_test_acc == pytest.approx([a for _, a in expected])
        assert run.metrics["accuracy"] == pytest.approx(expected[-1][1])


def test_separable_features_get_high_accuracy():
    run = lp.probe(feats(spread=0.5), 1, 1, num_step=2)
    assert run.metrics["accuracy"] >= 95.0
    assert run.metrics["total"] == 50 and run.metrics["correct"] == round(run.metrics["accuracy"] / 2)


def test_the_search_avoids_underfitting_c():
    """Class 0 dominates the training set, so with C = 1e-6 (weights ~0, unpenalised intercept) every
    prediction is class 0; the grid must pick a much larger C, and the bisection stays within a factor
    10 of the grid's best."""
    (tx, ty), (vx, vy) = blobs(24, spread=1.0, seed=4), blobs(4, spread=1.0, seed=5)
    keep = (ty == 0) | (np.cumsum(ty != 0) % 6 == 0)  # class 0: 24 rows, the others about 4 each
    tx, ty = tx[keep], ty[keep]
    search = lp.search_c(tx, ty, vx, vy, num_step=4)
    assert search.grid_acc[-1] <= 0.4 and max(search.grid_acc) == 1.0
    assert search.c_peak >= 1e-2
    assert search.c_peak / 10 <= search.c_final <= search.c_peak * 10
    assert len(search.steps) == 4
    with pytest.raises(ValueError, match="num_step"):
        lp.search_c(tx, ty, vx, vy, num_step=0)


def test_backbone_tags():
    assert lp.backbone_tag("RN50") == "rn50"
    assert lp.backbone_tag("ViT-B/16") == "vit_b16"
    assert lp.backbone_tag("ViT-L/14@336px") == "vit_l14_336px"
    assert lp.backbone_tag("/models/ViT-B-32.pt") == "vit_b32"
    assert lp.backbone_tag("ViT-B-16:laion2b_s34b_b88k") == "vit_b16_laion2b_s34b_b88k"


def _write_features(folder, data, backbone="ViT-B/16", dataset="OxfordPets"):
    os.makedirs(folder, exist_ok=True)
    for split, (x, y) in data.items():
        np.savez(os.path.join(folder, f"{split}.npz"), feature_list=x.astype(np.float32), label_list=y)
    with open(os.path.join(folder, "meta.json"), "w") as f:
        json.dump({"version": 1, "dataset": dataset, "backbone": backbone}, f)


def probe_argv(dataset, feat, *shots_and_flags):
    """linear_probe.py's arguments for a quick search: 2 bisection steps, 2 runs, the given shots (then flags)."""
    return [
        "--dataset",
        dataset,
        "--feature_dir",
        str(feat),
        "--num_step",
        "2",
        "--num_run",
        "2",
        "--shots",
        *shots_and_flags,
    ]


def test_main_writes_reports_and_metrics_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    feat = tmp_path / "feats" / "clip_feat"
    _write_features(feat / "OxfordPets", feats(spread=0.5))
    out = tmp_path / "output"
    assert lp.main(probe_argv("OxfordPets", feat, "1", "2", "--output-dir", str(out))) == 0
    summary = (tmp_path / "report" / "clip_feat_s2r2.txt").read_text().splitlines()
    assert [line.split(": ")[0] for line in summary] == [
        "OxfordPets, 1 Shot, Test acc stat",
        "OxfordPets, 2 Shot, Test acc stat",
    ]
    details = (tmp_path / "report" / "clip_feat_s2r2_details.txt").read_text().splitlines()
    assert len(details) == 2 * 2 * 2 and details[0].startswith("OxfordPets, seed 1, 1 shot, weight ")
    for shots in (1, 2):
        for seed in (1, 2):
            folder = out / "oxford_pets" / "LinearProbeCLIP" / f"vit_b16_{shots}shots" / f"seed{seed}"
            record = json.loads((folder / "metrics.json").read_text())
            assert set(record) == {"version", "split", "metrics", "run", "finished"}
            assert record["version"] == 1 and record["split"] == "test" and record["finished"] is True
            m = record["metrics"]
            assert set(m) == {"accuracy", "error_rate", "macro_f1", "total", "correct"}
            assert isinstance(m["total"], int) and isinstance(m["correct"], int) and m["total"] == 50
            assert m["accuracy"] == pytest.approx(100 * m["correct"] / 50) and m["accuracy"] >= 90
            assert m["error_rate"] == pytest.approx(100 - m["accuracy"])
            assert record["run"] == {
                "trainer": "LinearProbeCLIP",
                "dataset": "OxfordPets",
                "backbone": "ViT-B/16",
                "seed": seed,
                "num_shots": shots,
                "subsample_classes": "all",
                "max_epoch": None,
                "epoch": None,
                "eval_only": False,
            }
            probe = json.loads((folder / "probe.json").read_text())
            assert len(probe["steps"]) == 2 and len(probe["train_indices"]) == 5 * shots
    # a second dataset appends to the same report, as the reference's "a+"
    _write_features(feat / "DescribableTextures", feats(spread=0.5), dataset="DescribableTextures")
    lp.main(probe_argv("DescribableTextures", feat, "1"))
    assert len((tmp_path / "report" / "clip_feat_s2r2.txt").read_text().splitlines()) == 3


def _coop_run(root, accuracy):
    folder = root / "oxford_pets" / "CoOp" / "rn50_1shots" / "nctx16_cscFalse_ctpend" / "seed1"
    folder.mkdir(parents=True)
    record = {
        "version": 1,
        "split": "test",
        "metrics": {
            "accuracy": accuracy,
            "error_rate": 100 - accuracy,
            "macro_f1": accuracy,
            "total": 10,
            "correct": 9,
        },
        "run": {
            "trainer": "CoOp",
            "dataset": "OxfordPets",
            "backbone": "RN50",
            "seed": 1,
            "num_shots": 1,
            "subsample_classes": "all",
            "max_epoch": 50,
            "epoch": None,
            "eval_only": False,
        },
        "finished": True,
    }
    (folder / "metrics.json").write_text(json.dumps(record))


def test_results_show_linear_probe_as_its_own_fewshot_table(pets_features, tmp_path, tiny_clip_path):
    """Extracted features of the miniature OxfordPets -> linear_probe.py (script) -> results.py."""
    _data, feat, _layout = pets_features
    out = tmp_path / "output"
    _coop_run(out, 90.0)
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "lpclip", "linear_probe.py"),
            *probe_argv("OxfordPets", feat, "1", "2", "--output-dir", str(out)),
            "--report-dir",
            str(tmp_path / "rep"),
        ],
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "rep" / "clip_feat_s2r2.txt").is_file()
    tag = lp.backbone_tag(tiny_clip_path)
    assert tag == "tiny_vit"
    runs = [r for r in collect_runs(str(out)) if r.trainer == "LinearProbeCLIP"]
    assert len(runs) == 4 and {(r.shots, r.seed) for r in runs} == {(1, 1), (1, 2), (2, 1), (2, 2)}
    assert all(r.protocol == "train" and r.dataset == "OxfordPets" and r.cfg == tag for r in runs)
    tables = [t for t in build_tables(collect_runs(str(out))) if t.kind == "fewshot"]
    assert sorted(t.meta["trainer"] for t in tables) == ["CoOp", "LinearProbeCLIP"]
    probe = next(t for t in tables if t.meta["trainer"] == "LinearProbeCLIP")
    assert probe.columns == ["1", "2"] and [label for label, _ in probe.rows] == ["OxfordPets"]
    # identical features within a class: the probe is exact on the test split
    assert probe.rows[0][1]["1"].mean == 100.0 and probe.rows[0][1]["2"].n == 2
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "results.py"), str(out), "--out", str(tmp_path / "res")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Few-shot accuracy by shots: LinearProbeCLIP tiny_vit" in proc.stdout
    assert "Few-shot accuracy by shots: CoOp rn50 nctx16_cscFalse_ctpend (RN50)" in proc.stdout
