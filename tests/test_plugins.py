"""Methods from outside the package: an installed distribution's entry point and a `--plugin` file (a
trainer and a dataset) train through train.py and predict from their run folders; a run folder never
imports code on its own.

The installed package is a folder on sys.path holding the module and a `.dist-info` with
`entry_points.txt`, which is all importlib.metadata reads (no pip install).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import coop_toolkit as ct
import predict
import train
from coop_toolkit import plugins
from dasslite.cli import run_cli
from dasslite.data.build import DATASET_REGISTRY
from dasslite.engine.build import TRAINER_REGISTRY
from dasslite.registry import Registry
from dasslite.utils.logger import setup_logger
from tools.make_demo_data import make_demo_data
from tools.tiny_clip import save_tiny_clip

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

INSTALLED = """
from dasslite.engine.build import TRAINER_REGISTRY
from tests.adapter_example import AdapterTrainer


@TRAINER_REGISTRY.register(name="My_Adapter")  # the authors' spelling, not the class name
class MyAdapter(AdapterTrainer):
    config_node = "MY_ADAPTER"
"""

FILE_PLUGIN = """
from coop_toolkit.datasets.imagefolder import ImageFolder
from dasslite.data.build import DATASET_REGISTRY
from dasslite.engine.build import TRAINER_REGISTRY
from tests.adapter_example import AdapterTrainer

with open({marker!r}, "a") as f:  # proves whether this file was executed
    f.write("ran\\n")


@TRAINER_REGISTRY.register()
class FileAdapter(AdapterTrainer):
    config_node = "FILE_ADAPTER"


@DATASET_REGISTRY.register(name="My_Folder")  # a dataset from the same plugin
class MyFolder(ImageFolder):
    pass
"""


def write_installed_package(site):
    """`myplug` 0.1, with entry point my_adapter = myplug in the group coop_toolkit.trainers."""
    (site / "myplug").mkdir()
    (site / "myplug" / "__init__.py").write_text(INSTALLED)
    info = site / "myplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[coop_toolkit.trainers]\nmy_adapter = myplug\n")


def forget(name, module, key):
    """Undo a plugin's import: as a fresh process without it would be."""
    TRAINER_REGISTRY._obj_map.pop(name, None)
    DATASET_REGISTRY._obj_map.pop("My_Folder", None)
    sys.modules.pop(module, None)
    plugins._LOADED = {k for k in plugins._LOADED if key not in str(k)}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plugins")
    data = make_demo_data(str(tmp / "data"), n_train=2, n_val=1, n_test=1)
    clip = str(tmp / "tiny-clip.pt")
    save_tiny_clip(clip, image_size=64)
    site = tmp / "site"
    site.mkdir()
    write_installed_package(site)
    file_plugin = tmp / "file_plugin.py"
    marker = tmp / "marker.txt"
    file_plugin.write_text(FILE_PLUGIN.format(marker=str(marker)))
    sys.path.insert(0, str(site))
    yield {"tmp": tmp, "data": data, "clip": clip, "site": str(site), "file": str(file_plugin), "marker": marker}
    if str(site) in sys.path:
        sys.path.remove(str(site))
    forget("My_Adapter", "myplug", "my_adapter")
    forget("FileAdapter", "coop_toolkit_plugin_file_plugin", "file_plugin")


def train_args(setup, trainer, out, extra=()):
    return [
        *("--root", setup["data"], "--seed", "1", "--trainer", trainer, "--output-dir", str(out)),
        *("--dataset-config-file", "configs/datasets/imagefolder.yaml"),
        *("--config-file", "configs/trainers/CoOp/demo.yaml", *extra),
        *("MODEL.BACKBONE.NAME", setup["clip"], "OPTIM.MAX_EPOCH", "1", "DATASET.NUM_SHOTS", "2"),
    ]


def predict_error(capsys, argv):
    """The one line predict.py stops with."""
    capsys.readouterr()  # what earlier steps printed
    with pytest.raises(SystemExit) as stop:
        run_cli(predict.main, argv)
    text = (stop.value.code if isinstance(stop.value.code, str) else "") + "\n" + capsys.readouterr().err
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    return lines[0]


@pytest.fixture(scope="module")
def installed_run(setup):
    out = setup["tmp"] / "installed"
    train.main(train_args(setup, "My_Adapter", out))  # found through the entry point, no --plugin
    setup_logger(None)
    return out


def test_an_installed_plugin_trains_through_train_py_and_predicts_from_its_run_folder(setup, installed_run):
    record = json.loads((installed_run / "run.json").read_text())
    assert record["trainer"] == "My_Adapter"
    source = {"entry_point": "coop_toolkit.trainers:my_adapter", "distribution": "myplug"}
    assert record["plugins"] == {"trainer": source}
    assert os.path.isfile(installed_run / "model" / "model.pth.tar-1")  # the adapter, saved as `model`
    images = os.path.join(setup["data"], "test")
    out = setup["tmp"] / "installed_predictions.json"
    summary = predict.main([str(installed_run), images, "--topk", "2", "--out", str(out)])
    rows = json.loads(out.read_text())
    assert summary.predicted == 10 and not summary.failed
    assert len(rows) == 10 and all(len(row["topk"]) == 2 and row["error"] is None for row in rows)


def test_an_installed_plugin_runs_the_base2new_table_with_its_config_outside_the_checkout(setup):
    """scripts/tables/base2new.sh trains on base and tests on new through sweep.py, in fresh processes that
    find the trainer by its entry point and read the plugin's own config file."""
    tmp = setup["tmp"]
    config = tmp / "plugin_configs" / "tiny.yaml"
    config.parent.mkdir()
    shutil.copy(os.path.join(REPO, "configs/trainers/CoOp/demo.yaml"), config)
    env = {
        **os.environ,
        **{"PYTHON": sys.executable, "PYTHONPATH": os.pathsep.join([setup["site"], REPO])},
        **{"DATA": setup["data"], "OUTPUT": str(tmp / "b2n"), "TRAINER": "My_Adapter", "CONFIG_FILE": str(config)},
        **{"DATASETS": "imagefolder", "SEEDS": "1", "SHOTS": "2"},
        "EXTRA_OPTS": f"MODEL.BACKBONE.NAME {setup['clip']} OPTIM.MAX_EPOCH 1",
    }
    script = os.path.join(REPO, "scripts", "tables", "base2new.sh")
    result = subprocess.run(
        ["bash", script, "--log-dir", str(tmp / "b2n_logs")], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    run = tmp / "b2n" / "base2new" / "{}" / "imagefolder" / "shots_2" / "My_Adapter" / "tiny" / "seed1"
    trained, tested = (
        json.loads((Path(str(run).format(phase)) / "metrics.json").read_text()) for phase in ("train_base", "test_new")
    )
    assert trained["finished"] and tested["finished"]
    record = json.loads((Path(str(run).format("train_base")) / "run.json").read_text())
    assert record["plugins"]["trainer"]["distribution"] == "myplug"
    images = os.path.join(setup["data"], "test")
    assert predict.main([str(run).format("train_base"), images]).predicted == 10


def test_a_run_whose_plugin_is_not_installed_stops_with_one_line_naming_it(setup, installed_run, capsys):
    sys.path.remove(setup["site"])
    forget("My_Adapter", "myplug", "my_adapter")
    images = os.path.join(setup["data"], "test")
    try:
        line = predict_error(capsys, [str(installed_run), images])
        assert '"My_Adapter"' in line and "install myplug" in line and "--plugin" in line
        with pytest.raises(plugins.PluginError, match="install myplug"):
            ct.load_run(str(installed_run))
        line = predict_error(capsys, [str(installed_run), images, "--plugin", "myplug"])
        assert 'no module named "myplug"' in line
    finally:
        sys.path.insert(0, setup["site"])
        plugins.load_plugins()
    assert predict.main([str(installed_run), images]).predicted == 10  # installed again: found again


def test_a_file_plugin_runs_only_when_passed_and_run_json_naming_it_never_executes_it(setup, capsys):
    out = setup["tmp"] / "file_run"
    train.main(train_args(setup, "FileAdapter", out, extra=("--plugin", setup["file"])) + ["DATASET.NAME", "My_Folder"])
    setup_logger(None)
    assert setup["marker"].read_text() == "ran\n"
    record = json.loads((out / "run.json").read_text())
    assert record["dataset"] == "My_Folder"
    assert record["plugins"] == {"trainer": {"file": setup["file"]}, "dataset": {"file": setup["file"]}}

    forget("FileAdapter", "coop_toolkit_plugin_file_plugin", "file_plugin")
    setup["marker"].unlink()
    images = os.path.join(setup["data"], "test")
    line = predict_error(capsys, [str(out), images])
    assert f"--plugin {setup['file']}" in line
    assert not setup["marker"].exists()  # run.json named the file; nothing executed it

    summary = predict.main([str(out), images, "--plugin", setup["file"]])
    assert summary.predicted == 10 and setup["marker"].read_text() == "ran\n"


def test_a_missing_plugin_is_one_user_error_naming_it(capsys):
    with pytest.raises(plugins.PluginError, match="no_such_plugin_module"):
        plugins.load_plugin("no_such_plugin_module")
    with pytest.raises(plugins.PluginError, match="no such file"):
        plugins.load_plugin("missing/plugin.py")


def test_a_registry_entry_takes_an_explicit_name():
    registry = Registry("TEST")

    @registry.register(name="CLIP_Adapter")
    class ClipAdapter:
        pass

    registry.register(int, name="Integer")
    assert registry.get("CLIP_Adapter") is ClipAdapter and registry.get("Integer") is int
    assert registry.name_of(ClipAdapter) == "CLIP_Adapter" and "ClipAdapter" not in registry


def test_a_plugin_missing_a_dependency_keeps_its_own_traceback(tmp_path, monkeypatch):
    (tmp_path / "needs_missing.py").write_text("import needs_missing_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as raised:
        plugins.load_plugin("needs_missing")
    assert not isinstance(raised.value, plugins.PluginError)
    assert raised.value.name == "needs_missing_dependency_xyz"
