"""benchmarks/: the base-to-new projection's arithmetic, speed.py's table of cases, the report's verdicts."""

import math
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

import gpu_report  # noqa: E402
import projection  # noqa: E402
import speed  # noqa: E402
from projection import Affine, Dataset, Protocol, StepTimes  # noqa: E402

from benchmarks import cases  # noqa: E402


def test_projection_of_one_dataset_from_fake_step_times():
    times = StepTimes(train_step=Affine(0.1, 0.001), test_image=Affine(0.01, 0.0001))
    dataset = Dataset("x", classes=11, test_base=30, test_new=20)  # base 6 classes, new 5
    p = projection.project(dataset, Protocol(epochs=2, batch=4, test_batch=100), times, seeds=3, shots=16)
    assert p["steps"] == 2 * (16 * 6 // 4)  # 48
    assert p["train s"] == pytest.approx(3 * 48 * (0.1 + 0.001 * 6))
    assert p["test s"] == pytest.approx(3 * (30 * (0.01 + 0.0001 * 6) + 20 * (0.01 + 0.0001 * 5)))


def test_affine_fit_and_the_loaders_step_count():
    line = Affine.through((5, 0.2), (500, 1.2))
    assert line(5) == pytest.approx(0.2) and line(500) == pytest.approx(1.2)
    assert line(50) == pytest.approx(0.2 + 45 / 495)
    assert projection.steps_per_epoch(7, 4) == 1  # the partial batch is dropped
    assert projection.steps_per_epoch(3, 4) == 1  # ... unless there is no full batch


def test_dataset_table_matches_the_split_files():
    by_name = {d.name: d for d in projection.DATASETS}
    assert len(by_name) == 11
    halves = {n: (d.base_classes, d.new_classes) for n, d in by_name.items()}
    assert halves["imagenet"] == (500, 500) and halves["oxford_pets"] == (19, 18)
    assert halves["sun397"] == (199, 198) and halves["dtd"] == (24, 23) and halves["eurosat"] == (5, 5)
    totals = {"imagenet": 50000, "caltech101": 2465, "oxford_pets": 3669, "stanford_cars": 8041}
    totals.update({"oxford_flowers": 2463, "food101": 30300, "fgvc_aircraft": 3333, "sun397": 19850})
    totals.update({"dtd": 1692, "eurosat": 8100, "ucf101": 3783})
    assert {n: d.test_base + d.test_new for n, d in by_name.items()} == totals
    assert projection.class_range() == (5, 500)
    for name in by_name:
        assert os.path.isfile(os.path.join(REPO, "configs", "datasets", f"{name}.yaml")), name


def test_protocols_come_from_the_shipped_configs():
    assert projection.read_protocol("CoCoOp", "imagenet") == Protocol(epochs=10, batch=1, test_batch=100)
    assert projection.read_protocol("CoOp", "imagenet") == Protocol(epochs=50, batch=32, test_batch=100)
    assert projection.read_protocol("CoOp", "dtd") == Protocol(epochs=200, batch=32, test_batch=100)
    one_second = StepTimes(Affine(1.0, 0.0), Affine(0.0, 0.0))
    table = projection.project_table("CoCoOp", one_second, seeds=1)
    assert table[0]["dataset"] == "imagenet" and table[0]["train steps"] == 80000  # 500 classes x 16 x 10
    assert table[-1]["dataset"] == "total" and table[-1]["train s"] == sum(r["train s"] for r in table[:-1])


def fake_measure(case, clip_model, device, repeats, prec):
    """speed.measure's row with figures linear in the class count; the reference twice as slow."""
    c = case.classes
    figures = {"ours s/img": 0.01 * c, "reference s/img": 0.02 * c, "ours eval img/s": 100 / c}
    figures.update(
        {
            "reference eval img/s": 50 / c,
            "ours MB": 1.0,
            "reference MB": 2.0,
            "max |logit diff|": 1e-3,
            "max |logit|": 5.0,
        }
    )
    figures.update({"train speed-up": 2.0, "eval speed-up": 2.0})
    return {"method": case.name, "classes": c, "batch": case.batch, **figures}


def test_step_times_are_fitted_from_the_measured_rows(monkeypatch):
    """The report turns speed.py's per-image figures into per-step and per-test-image lines."""
    monkeypatch.setattr(speed, "measure", fake_measure)
    times = gpu_report.measure_step_times(speed.CASES[0], Protocol(10, 4, 100), None, None, "fp32", 1)
    assert times["ours"].train_step(50) == pytest.approx(0.01 * 50 * 4)
    assert times["reference"].train_step(200) == pytest.approx(0.02 * 200 * 4)
    assert times["ours"].test_image(37) == pytest.approx(37 / 100)


def row(method, classes, batch, train, evaluate, ours_mb=1.0, diff=1e-3):
    return {
        "method": method,
        "classes": classes,
        "batch": batch,
        "train speed-up": train,
        "eval speed-up": evaluate,
        "ours MB": ours_mb,
        "reference MB": 2.0,
        "max |logit diff|": diff,
        "max |logit|": 10.0,
    }


def test_report_says_which_targets_are_met():
    rows = [row("CoCoOp", 50, 1, 3.5, 2.0), row("CoCoOp", 1000, 1, 1.0, 3.9), row("CoOp", 100, 32, 1.6, 1.0, 3.0)]
    lines = gpu_report.target_lines(rows, "fp16")
    assert "measured 3.50x (met)" in lines[0] and "measured 3.90x (MISSED)" in lines[1] and "(met)" in lines[2]
    assert "MISSED in CoOp 100 classes batch 32" in lines[3] and lines[4].endswith("(met)")
    assert "(MISSED)" in gpu_report.target_lines([row("CoOp", 100, 32, 2, 2, diff=0.5)], "fp16")[-1]
    assert "(met)" in gpu_report.target_lines([row("CoOp", 100, 32, 2, 2, diff=0.05)], "fp16")[-1]  # 0.05 / 10


def test_cases_are_selected_by_method_label_or_grid():
    labels = [c.label for c in speed.select_cases(speed.CASES, methods=["CoOp"])]
    assert labels == ["CoOp-c100-b32"]
    grid = speed.select_cases(speed.CASES, methods=["CoCoOp"], batches=[1, 8], classes=[5, 50])
    assert [c.label for c in grid] == ["CoCoOp-c5-b1", "CoCoOp-c5-b8", "CoCoOp-c50-b1", "CoCoOp-c50-b8"]
    assert all(c.build is speed.build_cocoop for c in grid)
    with pytest.raises(SystemExit, match="no case selected"):
        speed.select_cases(speed.CASES, names=["KgCoOp-c1-b1"])


def test_speed_tiny_runs_one_case_and_its_logits_agree():
    (result,) = speed.main(["--tiny", "--device", "cpu", "--cases", "CoCoOp-c5-b1", "--repeats", "1"])
    assert (result["method"], result["classes"], result["batch"]) == ("CoCoOp", 5, 1)
    assert result["max |logit diff|"] < 1e-4
    for key in ("ours s/img", "reference s/img", "ours eval img/s", "reference eval img/s", "ours MB"):
        assert math.isfinite(result[key]) and result[key] > 0, key
    assert result["reference MB"] > result["ours MB"]  # 77-token text activations against trimmed ones


def test_report_puts_speed_rows_targets_and_projection_in_markdown(monkeypatch):
    monkeypatch.setattr(speed, "measure", fake_measure)
    monkeypatch.setattr(speed, "build_clip", lambda tiny, prec, device: None)
    report = gpu_report.build_report(gpu_report.parse_args(["--device", "cpu", "--tiny", "--tests", "7 passed"]))
    assert "Tests: `7 passed`" in report and "CoCoOp training, batch 1, 50 classes" in report
    assert report.count("| CoCoOp ") == len([c for c in speed.CASES if c.name == "CoCoOp"]) + 12  # + 11 datasets, total
    total = next(line for line in report.splitlines() if line.startswith("| CoCoOp ") and "175680" in line)
    assert total.rstrip(" |").endswith("2")  # the reference's steps cost twice ours: speed-up 2


def test_speed_fp16_clip_is_the_one_load_clip_gives(tiny_clip_path):
    """speed.py's fp16 CLIP goes through OpenAI's half conversion, as load_clip converts a release file."""
    import torch

    from coop_toolkit.trainers.clip_backbone import load_clip

    cpu = torch.device("cpu")
    ours, loaded = speed.build_clip(True, "fp16", cpu).state_dict(), load_clip(tiny_clip_path, "fp16").state_dict()
    assert sorted(ours) == sorted(loaded)
    assert all(ours[k].dtype == loaded[k].dtype and torch.equal(ours[k], loaded[k]) for k in ours)
    assert ours["visual.conv1.weight"].dtype == torch.float16


def test_every_method_with_a_speed_case_is_projected_with_its_authors_config(tiny_clip_path):
    """The tables of CoOp, CoCoOp and the successors, each from the config its base-to-new script runs."""
    from coop_toolkit.trainers.clip_backbone import load_clip

    # every projected method has a speed row (a method may have a row without a base-to-new table)
    assert set(projection.BASE2NEW_CONFIGS) <= set(cases.SPEED_CASES)
    for trainer in projection.BASE2NEW_CONFIGS:
        assert os.path.isfile(projection.config_path(trainer, "imagenet")), trainer
    assert projection.read_protocol("PromptSRC", "dtd") == Protocol(epochs=20, batch=4, test_batch=100)
    assert projection.read_protocol("VPT", "dtd") == Protocol(epochs=5, batch=4, test_batch=100)
    assert projection.read_protocol("KgCoOp", "dtd").epochs == 100
    # a deep-prompt method's cost is set by its prompts: VPT's config has 8 tokens in every image layer
    case = gpu_report.case_for("VPT", projection.config_path("VPT", "dtd"))
    clip_model = load_clip(tiny_clip_path, "fp32")
    layers = len(clip_model.visual.transformer.resblocks)
    model = case.build(clip_model, ["a", "b"])
    assert model.vision_prompts.first.shape[0] == 8 and len(model.vision_prompts.deep) == layers - 1
    default = gpu_report.case_for("VPT").build(load_clip(tiny_clip_path, "fp32"), ["a", "b"])
    assert default.vision_prompts.first.shape[0] == 2 and len(default.vision_prompts.deep) == 0


def test_every_trainer_with_a_base2new_table_declares_its_speed_rows():
    """Read from the registry and the cards, not a list: a method whose card names base-to-new configs
    (projected by gpu_report.py) declares its rows in benchmarks/ (cases.speed_cases)."""
    import coop_toolkit.trainers  # noqa: F401  (registers every trainer)
    from coop_toolkit.method_card import card_of
    from dasslite.engine.build import TRAINER_REGISTRY

    tabled = [n for n in TRAINER_REGISTRY.registered_names() if card_of(TRAINER_REGISTRY.get(n)).base2new_configs]
    assert "CoOp" in tabled and "PromptSRC" in tabled
    missing = [name for name in tabled if cases.first_case(name) is None]
    assert not missing, f"no speed rows (benchmarks/cases.py: speed_cases) for {missing}"
    for name in tabled:
        case = gpu_report.case_for(name)
        assert case.build is cases.first_case(name).build and callable(case.reference), name
    assert [c.label for c in speed.CASES[:5]] == [
        *("CoCoOp-c5-b1", "CoCoOp-c5-b8", "CoCoOp-c50-b1", "CoCoOp-c1000-b1", "CoOp-c100-b32")
    ]  # the table's order is kept: the CoOp family first
    assert len({c.label for c in speed.CASES}) == len(speed.CASES)


def test_report_is_written_after_each_measurement(monkeypatch):
    """A GPU run stopped by its time limit still leaves the figures it measured."""
    monkeypatch.setattr(speed, "measure", fake_measure)
    monkeypatch.setattr(speed, "build_clip", lambda tiny, prec, device: None)
    monkeypatch.setattr(projection, "DATASETS", projection.DATASETS[:2])
    written = []
    args = gpu_report.parse_args(["--device", "cpu", "--tiny", "--methods", "CoOp", "CoCoOp"])
    report = gpu_report.build_report(args, write=written.append)
    speed_rows = len(speed.select_cases(speed.CASES, ["CoOp", "CoCoOp"]))
    assert len(written) == speed_rows + len(projection.BASE2NEW_CONFIGS)
    assert all(text.endswith(gpu_report.STOPPED_HERE) for text in written)
    assert "| CoCoOp " in written[0] and "Projected" not in written[speed_rows - 1]
    assert "| PromptSRC" in written[-1] and gpu_report.STOPPED_HERE not in report
    assert report == written[-1][: -len(gpu_report.STOPPED_HERE) - 1]
