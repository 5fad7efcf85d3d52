"""Atomically written files get 0666 minus the umask (as `open` gives), not
mkstemp's 0600, so colleagues sharing a dataset folder can read its split and few-shot files."""

import os
import stat

import pytest

from dasslite.data.build import build_dataset
from dasslite.utils import io
from tests.datasets.conftest import make_cfg
from tests.datasets.layouts import build_dtd


@pytest.fixture
def umask():
    """Set the process umask for one test (and forget the cached value around it)."""
    old = os.umask(0o022)
    os.umask(old)

    def set_mask(mask):
        os.umask(mask)
        io.process_umask.cache_clear()

    yield set_mask
    os.umask(old)
    io.process_umask.cache_clear()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o002, 0o022, 0o077])
def test_atomic_write_follows_the_umask(tmp_path, umask, mask):
    umask(mask)
    path = tmp_path / "a.json"
    io.write_json({"a": 1}, str(path))
    assert mode(path) == 0o666 & ~mask
    plain = tmp_path / "plain"
    plain.write_text("x")  # what open() gives, for comparison
    assert mode(path) == mode(plain)


def test_exclusive_write_keeps_the_first_file(tmp_path, umask):
    umask(0o002)
    path = str(tmp_path / "s.json")
    io.write_json({"first": 1}, path, exclusive=True)
    with pytest.raises(FileExistsError):
        io.write_json({"second": 2}, path, exclusive=True)
    assert io.read_json(path) == {"first": 1} and mode(path) == 0o664
    assert os.listdir(tmp_path) == ["s.json"]  # no temp file left behind


def test_shared_dataset_folder_files_are_group_readable(tmp_path, umask):
    umask(0o002)
    build_dtd(str(tmp_path))
    build_dataset(make_cfg(tmp_path, "DescribableTextures", num_shots=1))
    split = tmp_path / "dtd" / "split_zhou_DescribableTextures.json"
    cache = tmp_path / "dtd" / "split_fewshot" / "shot_1-seed_1.json"
    assert mode(split) == 0o664 and mode(cache) == 0o664


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_every_file_a_run_predict_export_and_results_write_follows_the_umask(
    tmp_path, umask, mask, pets_root, tiny_clip_path
):
    """run.json, config.yaml, metrics.json, log.txt, checkpoints, predict --out, export's head and card
    (safetensors' own writer made the head 0600) and results.py's tables and plots: 0666 minus the umask."""
    import export
    import predict
    import results
    import train
    from dasslite.utils.logger import setup_logger
    from tests.reporting.fixtures import metrics_json

    from .conftest import coop_argv

    umask(mask)
    run = tmp_path / "run"
    train.main(coop_argv(pets_root, run, tiny_clip_path, "OPTIM.MAX_EPOCH", "1"))
    setup_logger(None)  # close log.txt
    predict.main([str(run), pets_root, "--out", str(tmp_path / "preds" / "p.json")])
    export.main([str(run), "--out", str(tmp_path / "head" / "head.safetensors")])
    tree = tmp_path / "tree" / "base2new"
    for phase in ("train_base", "test_new"):
        metrics_json(str(tree / phase / "oxford_pets" / "shots_16" / "CoOp" / "cfg" / "seed1"), 80.0, seed=1)
    results.main([str(tmp_path / "tree"), "--out", str(tmp_path / "tables"), "--quiet", "--plots"])
    written = {
        os.path.join(d, f): mode(os.path.join(d, f))
        for folder in ("run", "preds", "head", "tables")
        for d, _, files in os.walk(tmp_path / folder)
        for f in files
    }
    expected = {"run.json", "config.yaml", "metrics.json", "log.txt", "model.pth.tar-1", "p.json", "head.safetensors"}
    assert expected | {"head.json", "results.json", "runs.csv"} <= {os.path.basename(p) for p in written}
    assert any(p.endswith(".png") for p in written)
    assert {p: oct(m) for p, m in written.items() if m != 0o666 & ~mask} == {}
