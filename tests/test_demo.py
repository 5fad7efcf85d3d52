"""scripts/demo.sh end to end at a smaller size: generated data, tiny CLIP, the real protocol scripts for
CoOp and CoCoOp (2 seeds), zero-shot CLIP on base and new, results.py and parse_test_res.py."""

import os
import re
import subprocess
import sys

import pytest
from PIL import Image

from tools.make_demo_data import CLASSES, make_demo_data

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUMBER = r"\d+\.\d\d"


def test_demo_data_layout_and_class_names(tmp_path):
    root = make_demo_data(str(tmp_path / "data"), n_train=2, n_val=1, n_test=1, size=32)
    assert sorted(os.listdir(os.path.join(root, "train"))) == sorted(CLASSES)
    assert len(CLASSES) == 10  # base = the first 5 labels, new = the last 5
    with open(os.path.join(root, "classnames.txt")) as f:
        assert f.readline() == "black_square black square\n"
    image = Image.open(os.path.join(root, "test", "red_circle", "000.png"))
    assert image.size == (32, 32) and image.mode == "RGB"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo at 1 epoch, 2 shots, 4 training images per class (about a quarter of the default)."""
    demo_dir = tmp_path_factory.mktemp("demo")
    env = dict(
        os.environ,
        DEMO_DIR=str(demo_dir),
        DEMO_EPOCHS="1",
        DEMO_SHOTS="2",
        DEMO_IMAGES="4",
        DEMO_SEEDS="1 2",
        PYTHON=sys.executable,
    )
    result = subprocess.run(
        ["bash", os.path.join(REPO, "scripts", "demo.sh")],
        cwd=str(demo_dir),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return demo_dir, result.stdout


def test_demo_prints_the_base_to_new_table_by_method(demo):
    _, stdout = demo
    table = stdout[stdout.index("Base-to-new on ImageFolder, by method") :]
    for method, spread in (("CLIP", False), ("CoOp", True), ("CoCoOp", True)):
        # the trained methods carry mean ± std over the 2 seeds; zero-shot CLIP is one run
        cells = rf"{NUMBER} ± {NUMBER}" if spread else NUMBER
        assert re.search(rf"^{method} demo +{cells} +{cells} +{NUMBER}$", table, re.M), table
    assert "not the papers'" in stdout


def test_demo_writes_tables_and_parse_test_res_gives_mean_and_std(demo):
    demo_dir, _ = demo
    results = demo_dir / "results"
    assert (results / "base2new_by_method_ImageFolder.csv").is_file() and (results / "results.json").is_file()
    common = os.path.join("imagefolder", "shots_2", "CoCoOp", "demo")
    for phase, flags in (("train_base", []), ("test_new", ["--test-log"])):
        out = subprocess.run(
            [sys.executable, "parse_test_res.py", str(demo_dir / "runs" / "base2new" / phase / common), *flags],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.count("file: ") == 2
        assert re.search(rf"\* accuracy: {NUMBER}% \+- {NUMBER}%", out.stdout), out.stdout
