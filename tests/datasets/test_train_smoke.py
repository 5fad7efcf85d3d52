"""End to end on every benchmark: `train.py --dataset-config-file configs/datasets/<name>.yaml` runs CoOp
for every dataset on its miniature layout (a tiny CLIP, one epoch), and so does a user's image folder."""

import os

import pytest

import dasslite.engine.build  # noqa: F401,E402

from .layouts import BUILDERS, FOLDERS, TEST_ONLY

REPO = os.path.join(os.path.dirname(__file__), "..", "..")
YAML = {
    "Caltech101": "caltech101",
    "DescribableTextures": "dtd",
    "EuroSAT": "eurosat",
    "FGVCAircraft": "fgvc_aircraft",
    "Food101": "food101",
    "ImageNet": "imagenet",
    "ImageNetA": "imagenet_a",
    "ImageNetR": "imagenet_r",
    "ImageNetSketch": "imagenet_sketch",
    "ImageNetV2": "imagenetv2",
    "OxfordFlowers": "oxford_flowers",
    "OxfordPets": "oxford_pets",
    "StanfordCars": "stanford_cars",
    "SUN397": "sun397",
    "UCF101": "ucf101",
    "ImageFolder": "imagefolder",
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_train_py_runs_coop_on_the_miniature_layout(tmp_path, tiny_clip_path, name):
    import train

    data = tmp_path / "data"
    BUILDERS[name](str(data))
    out = tmp_path / "out"
    shots = [] if name in TEST_ONLY else ["DATASET.NUM_SHOTS", "1"]
    train.main(
        [
            "--root",
            str(data / FOLDERS[name]) if name == "ImageFolder" else str(data),
            "--seed",
            "1",
            "--trainer",
            "CoOp",
            "--output-dir",
            str(out),
            "--dataset-config-file",
            os.path.join(REPO, "configs", "datasets", YAML[name] + ".yaml"),
            "--config-file",
            os.path.join(REPO, "configs", "trainers", "CoOp", "vit_b16.yaml"),
            "MODEL.BACKBONE.NAME",
            tiny_clip_path,
            "TRAINER.COOP.PREC",
            "fp32",
            "TRAINER.COOP.N_CTX",
            "2",
            "OPTIM.MAX_EPOCH",
            "1",
            "DATALOADER.NUM_WORKERS",
            "0",
            "DATALOADER.TRAIN_X.BATCH_SIZE",
            "2",
            "DATALOADER.TEST.BATCH_SIZE",
            "8",
            "USE_CUDA",
            "False",
            *shots,
        ]
    )
    assert (out / "log.txt").is_file()
