"""A miniature OxfordPets whose images are coloured by class, encoded once by feat_extractor.py."""

import os
import subprocess
import sys

import pytest
from PIL import Image

from tests.datasets.layouts import build_oxford_pets
from tests.helpers import cpu_run_opts

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COLOURS = {
    "abyssinian": (250, 20, 20),
    "american_bulldog": (20, 250, 20),
    "american_pit_bull_terrier": (20, 20, 250),
    "basset_hound": (240, 240, 20),
    "bengal": (20, 240, 240),
}


def colour_by_class(data_root):
    """Give each breed's images their own colour, so features separate the classes."""
    image_dir = os.path.join(data_root, "oxford_pets", "images")
    for name in os.listdir(image_dir):
        breed = name.rsplit("_", 1)[0].lower()
        Image.new("RGB", (16, 16), COLOURS[breed]).save(os.path.join(image_dir, name), format="JPEG")


def extractor_command(data, feat, backbone, *extra):
    return [
        sys.executable,
        os.path.join(REPO, "lpclip", "feat_extractor.py"),
        "--root",
        str(data),
        "--seed",
        "1",
        "--config-file",
        os.path.join(REPO, "configs", "trainers", "CoOp", "rn50_val.yaml"),
        "--dataset-config-file",
        os.path.join(REPO, "configs", "datasets", "oxford_pets.yaml"),
        "--output-dir",
        str(feat),
        *extra,
        *cpu_run_opts(backbone),
    ]


@pytest.fixture(scope="session")
def pets_features(tmp_path_factory, tiny_clip_path):
    """(data root, feature dir, layout) after `python lpclip/feat_extractor.py` on the miniature layout.

    The command also asks for DATASET.NUM_SHOTS 1, which the extractor must override with the full split.
    """
    base = tmp_path_factory.mktemp("lpclip")
    data, feat = base / "data", base / "clip_feat"
    layout = build_oxford_pets(str(data))
    colour_by_class(str(data))
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        extractor_command(data, feat, tiny_clip_path, "DATASET.NUM_SHOTS", "1"),
        cwd=str(base),
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return data, feat, layout
