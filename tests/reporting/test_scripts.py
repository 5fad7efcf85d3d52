"""Protocol scripts, run with a stub PYTHON that records train.py calls instead of training."""

import os
import subprocess
import sys

import pytest

from .fixtures import metrics_json

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CFG = "vit_b16_c4_ep10_batch1_ctxv1"


@pytest.fixture
def stub(tmp_path):
    """A PYTHON that appends its train.py arguments to calls.txt and runs anything else (sweep.py)."""
    calls = tmp_path / "calls.txt"
    path = tmp_path / "fake_python.sh"
    path.write_text(
        f'#!/bin/bash\nif [ "$1" = train.py ]; then echo "$*" >> "{calls}"; exit 0; fi\nexec "{sys.executable}" "$@"\n'
    )
    path.chmod(0o755)
    return path, calls


def _run(script, *args, stub, cwd, **env):
    """Run a script from `cwd` (not the repository root) with OUTPUT=out relative to `cwd`."""
    env = dict(os.environ, PYTHON=str(stub[0]), OUTPUT="out", **env)
    result = subprocess.run(
        ["bash", os.path.join(REPO, "scripts", script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    calls = stub[1].read_text().splitlines() if stub[1].exists() else []
    return result.stdout, [call.split() for call in calls]


def _arg(call, flag):
    return call[call.index(flag) + 1]


def test_finished_run_is_skipped_and_unfinished_rerun(tmp_path, stub):
    out = tmp_path / "out" / "base2new" / "train_base" / "dtd" / "shots_16" / "CoCoOp" / CFG
    metrics_json(out / "seed1", 70.0)
    metrics_json(out / "seed2", 70.0, finished=False)  # interrupted: rerun (train.py resumes it)
    stdout, calls = _run("cocoop/base2new_train.sh", "dtd", "1", stub=stub, cwd=tmp_path)
    assert (
        stdout.strip() == f"Oops! The results exist at {tmp_path}/out/base2new/train_base/dtd/shots_16/"
        f"CoCoOp/{CFG}/seed1 (so skip this job)"
    )
    assert calls == []
    _, (call,) = _run("cocoop/base2new_train.sh", "dtd", "2", stub=stub, cwd=tmp_path, DATA="mydata")
    assert _arg(call, "--output-dir") == str(out / "seed2")
    assert _arg(call, "--root") == str(tmp_path / "mydata")  # relative DATA: from the caller's folder
    assert _arg(call, "--config-file") == f"configs/trainers/CoCoOp/{CFG}.yaml"
    assert call[-4:] == ["DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base"]


@pytest.mark.parametrize(
    "trainer, cfg, epoch",
    [
        ("CoCoOp", CFG, "10"),
        ("CoOp", "vit_b16_ctxv1", "200"),
        ("KgCoOp", "vit_b16_ep100_ctxv1", "100"),
        ("ProGrad", "rn50_ep100", "100"),
    ],
)
def test_base2new_test_loads_the_configs_last_epoch(tmp_path, stub, trainer, cfg, epoch):
    _, (call,) = _run("cocoop/base2new_test.sh", "eurosat", "3", stub=stub, cwd=tmp_path, TRAINER=trainer, CFG=cfg)
    common = f"eurosat/shots_16/{trainer}/{cfg}/seed3"
    assert _arg(call, "--load-epoch") == epoch
    assert _arg(call, "--model-dir") == f"{tmp_path}/out/base2new/train_base/{common}"
    assert _arg(call, "--output-dir") == f"{tmp_path}/out/base2new/test_new/{common}"
    assert "--eval-only" in call and call[-2:] == ["DATASET.SUBSAMPLE_CLASSES", "new"]


def test_coop_main_loops_seeds_and_passes_the_variant(tmp_path, stub):
    metrics_json(tmp_path / "out/caltech101/CoOp/rn50_ep50_1shots/nctx16_cscFalse_ctpend/seed2", 80.0)
    stdout, calls = _run(
        "coop/main.sh",
        "caltech101",
        "rn50_ep50",
        "end",
        "16",
        "1",
        "False",
        stub=stub,
        cwd=tmp_path,
        EXTRA_OPTS="OPTIM.LR 0.01",
    )
    assert "seed2 (so skip this job)" in stdout
    assert [_arg(c, "--seed") for c in calls] == ["1", "3"]
    assert calls[0][-10:] == [
        "TRAINER.COOP.N_CTX",
        "16",
        "TRAINER.COOP.CSC",
        "False",
        "TRAINER.COOP.CLASS_TOKEN_POSITION",
        "end",
        "DATASET.NUM_SHOTS",
        "1",
        "OPTIM.LR",
        "0.01",
    ]


def test_xd_and_zeroshot_folders(tmp_path, stub):
    _, calls = _run("cocoop/xd_train.sh", "1", stub=stub, cwd=tmp_path)
    _, calls = _run("cocoop/xd_test.sh", "imagenet_a", "1", stub=stub, cwd=tmp_path)
    _, calls = _run("coop/zeroshot.sh", "dtd", "rn50", stub=stub, cwd=tmp_path)
    _, calls = _run("coop/eval.sh", "dtd", "rn50_ep50", stub=stub, cwd=tmp_path, SEEDS="1")
    train, test, zeroshot, coop_eval = calls
    assert _arg(train, "--output-dir") == f"{tmp_path}/out/imagenet/CoCoOp/{CFG}_16shots/seed1"
    assert _arg(test, "--model-dir") == _arg(train, "--output-dir")
    assert _arg(test, "--output-dir") == f"{tmp_path}/out/evaluation/CoCoOp/{CFG}_16shots/imagenet_a/seed1"
    assert _arg(zeroshot, "--output-dir") == f"{tmp_path}/out/ZeroshotCLIP/rn50/dtd"
    assert _arg(coop_eval, "--load-epoch") == "50"
    assert _arg(coop_eval, "--model-dir").endswith("imagenet/CoOp/rn50_ep50_16shots/nctx16_cscFalse_ctpend/seed1")


def test_table_script_runs_every_job_through_the_sweep(tmp_path, stub):
    _, calls = _run(
        "tables/base2new.sh",
        "--jobs",
        "2",
        "--log-dir",
        str(tmp_path / "logs"),
        stub=stub,
        cwd=tmp_path,
        TRAINER="CoOp",
        SEEDS="1 2",
        DATASETS="imagenet dtd",
    )
    outputs = sorted(_arg(c, "--output-dir").split("/out/")[1] for c in calls)
    assert outputs == sorted(
        f"base2new/{phase}/{d}/shots_16/CoOp/{cfg}/seed{s}"
        for phase in ("train_base", "test_new")
        for s in (1, 2)
        for d, cfg in (("imagenet", "vit_b16_ep50_ctxv1"), ("dtd", "vit_b16_ctxv1"))
    )


def test_fewshot_table_uses_coops_config_recipe(tmp_path, stub):
    stdout, _ = _run("tables/fewshot.sh", "--dry-run", stub=stub, cwd=tmp_path, SEEDS="1")
    jobs = [line for line in stdout.splitlines() if "main.sh" in line]
    assert len(jobs) == 11 * 5
    assert "SEEDS=1 bash scripts/coop/main.sh dtd rn50_ep50 end 16 1 False" in jobs
    assert "SEEDS=1 bash scripts/coop/main.sh dtd rn50_ep100 end 16 4 False" in jobs
    assert "SEEDS=1 bash scripts/coop/main.sh dtd rn50 end 16 8 False" in jobs
    assert "SEEDS=1 bash scripts/coop/main.sh imagenet rn50_ep50 end 16 16 False" in jobs


@pytest.mark.parametrize(
    "script, train_jobs, test_jobs", [("cross_dataset.sh", 2, 20), ("domain_generalization.sh", 2, 8)]
)
def test_transfer_table_scripts_train_then_test(tmp_path, stub, script, train_jobs, test_jobs):
    stdout, _ = _run(f"tables/{script}", "--dry-run", stub=stub, cwd=tmp_path, SEEDS="1 2")
    lines = stdout.splitlines()
    assert [line.split()[1] for line in lines[:train_jobs]] == ["scripts/cocoop/xd_train.sh"] * train_jobs
    tests = lines[train_jobs : train_jobs + test_jobs]
    assert all(line.startswith("bash scripts/cocoop/xd_test.sh ") for line in tests)
    assert "imagenet " not in " ".join(tests)


def test_evaluation_loads_the_epoch_named_by_the_checkpoint_pointer_for_any_trainer(tmp_path, stub):
    run = "eurosat/shots_16/KgCoOp/vit_b16_ctxv1/seed1"
    learner = tmp_path / "out/base2new/train_base" / run / "prompt_learner"
    learner.mkdir(parents=True)
    (learner / "checkpoint").write_text("model.pth.tar-7\n")  # stopped early: not the config's last epoch
    _, (call,) = _run(
        "cocoop/base2new_test.sh", "eurosat", "1", stub=stub, cwd=tmp_path, TRAINER="KgCoOp", CFG="vit_b16_ctxv1"
    )
    assert _arg(call, "--load-epoch") == "7"
    assert _arg(call, "--trainer") == "KgCoOp"
    assert _arg(call, "--config-file") == "configs/trainers/KgCoOp/vit_b16_ctxv1.yaml"
    assert _arg(call, "--output-dir") == f"{tmp_path}/out/base2new/test_new/{run}"


def test_fewshot_table_runs_a_method_without_prompt_options_with_one_config(tmp_path, stub):
    """CFG names one config for every shot count (CFG=dataset: the yaml named after the dataset); each job
    trains through scripts/fewshot/main.sh into the layout results.py reads."""
    env = dict(SEEDS="1", DATASETS="dtd imagenet", SHOTS_LIST="1 16")
    stdout, _ = _run(
        "tables/fewshot.sh", "--dry-run", stub=stub, cwd=tmp_path, TRAINER="CLIP_LoRA", CFG="vit_b16", **env
    )
    jobs = [line for line in stdout.splitlines() if "main.sh" in line]
    assert jobs == [
        f"SEEDS=1 TRAINER=CLIP_LoRA CFG_TRAINER=CLIP_LoRA bash scripts/fewshot/main.sh {d} vit_b16 {k}"
        for d in ("dtd", "imagenet")
        for k in (1, 16)
    ]
    tip = dict(TRAINER="Tip_Adapter_F", CFG_TRAINER="Tip_Adapter", CFG="dataset")
    stdout, _ = _run("tables/fewshot.sh", "--dry-run", stub=stub, cwd=tmp_path, **tip, **env)
    assert "CFG_TRAINER=Tip_Adapter bash scripts/fewshot/main.sh imagenet imagenet 16" in stdout
    _, calls = _run("fewshot/main.sh", "dtd", "dtd", "4", stub=stub, cwd=tmp_path, SEEDS="1 2", **tip)
    assert [_arg(c, "--output-dir") for c in calls] == [
        f"{tmp_path}/out/dtd/Tip_Adapter_F/dtd_4shots/seed{s}" for s in (1, 2)
    ]
    assert all(_arg(c, "--config-file") == "configs/trainers/Tip_Adapter/dtd.yaml" for c in calls)
    assert all(_arg(c, "DATASET.NUM_SHOTS") == "4" for c in calls)


def test_a_config_outside_the_checkout_and_a_plugin_reach_every_base2new_call(tmp_path, stub):
    """CONFIG_FILE and PLUGIN, relative to the caller's folder, pass through the table's sweep to both steps;
    CFG (the run folders) defaults to the config's name."""
    config = tmp_path / "elsewhere" / "mine.yaml"
    config.parent.mkdir()
    config.write_text("OPTIM:\n  MAX_EPOCH: 3\n")
    (tmp_path / "myplugin.py").write_text("")
    env = dict(TRAINER="CoOp", CONFIG_FILE="elsewhere/mine.yaml", PLUGIN="myplugin.py", SEEDS="1", DATASETS="dtd")
    _, (train_call, test_call) = _run(
        "tables/base2new.sh", "--log-dir", str(tmp_path / "logs"), stub=stub, cwd=tmp_path, **env
    )
    for call, phase in ((train_call, "train_base"), (test_call, "test_new")):
        assert _arg(call, "--config-file") == str(config)
        assert _arg(call, "--plugin") == str(tmp_path / "myplugin.py")
        assert _arg(call, "--output-dir") == f"{tmp_path}/out/base2new/{phase}/dtd/shots_16/CoOp/mine/seed1"
    assert _arg(test_call, "--load-epoch") == "3"  # the outside config's OPTIM.MAX_EPOCH
    call = _run("cocoop/base2new_train.sh", "dtd", "2", stub=stub, cwd=tmp_path, PLUGIN="some.module")[1][-1]
    assert _arg(call, "--plugin") == "some.module"  # not a file here: a module name, kept as given
    assert _arg(call, "--config-file") == f"configs/trainers/CoCoOp/{CFG}.yaml"  # the default, unchanged
