"""lpclip/feat_extractor.py on a miniature OxfordPets with a tiny CLIP loaded by path."""

import json
import os
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from coop_toolkit.trainers.clip_backbone import load_clip
from dasslite.data.build import build_dataset
from dasslite.data.transforms import build_transform
from lpclip import feat_extractor

from .conftest import REPO


def _cfg(data, feat, backbone, *opts):
    args = feat_extractor.parse_args(
        [
            "--root",
            str(data),
            "--seed",
            "1",
            "--output-dir",
            str(feat),
            "--config-file",
            os.path.join(REPO, "configs", "trainers", "CoOp", "rn50_val.yaml"),
            "--dataset-config-file",
            os.path.join(REPO, "configs", "datasets", "oxford_pets.yaml"),
            "MODEL.BACKBONE.NAME",
            backbone,
            *opts,
        ]
    )
    return feat_extractor.setup_cfg(args)


def test_npz_files_hold_full_splits_with_dataset_labels(pets_features, tiny_clip_path):
    data, feat, layout = pets_features
    folder = feat / "OxfordPets"
    dataset = build_dataset(_cfg(data, feat, tiny_clip_path))
    sources = {"train": dataset.train_x, "val": dataset.val, "test": dataset.test}
    for split, size in zip(("train", "val", "test"), layout.sizes):  # full splits despite NUM_SHOTS 1
        with np.load(folder / f"{split}.npz", allow_pickle=False) as npz:
            assert sorted(npz.files) == ["feature_list", "label_list"]
            features, labels = npz["feature_list"], npz["label_list"]
        assert features.shape == (size, 32)  # the tiny CLIP's embed_dim
        assert features.dtype == np.float32 and labels.dtype == np.int64
        assert labels.tolist() == [d.label for d in sources[split]]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["backbone"] == tiny_clip_path and meta["dataset"] == "OxfordPets"
    assert meta["classnames"] == layout.classnames
    assert meta["sizes"] == dict(zip(("train", "val", "test"), layout.sizes))
    assert (folder / "extract_log.txt").is_file() and not (feat / "log.txt").exists()


def test_no_pickled_objects_in_the_files(pets_features):
    _data, feat, _layout = pets_features
    for split in ("train", "val", "test"):
        with zipfile.ZipFile(feat / "OxfordPets" / f"{split}.npz") as zf:
            for name in zf.namelist():
                with zf.open(name) as f:
                    header = f.read(128).decode("latin1")
                assert "'descr': '|O'" not in header


def test_features_are_unnormalised_image_embeddings_of_the_test_transform(pets_features, tiny_clip_path):
    data, feat, _layout = pets_features
    cfg = _cfg(data, feat, tiny_clip_path)
    dataset = build_dataset(cfg)
    item = dataset.test[0]
    image = build_transform(cfg, is_train=False)(Image.open(item.impath).convert("RGB"))
    with torch.no_grad():
        expected = load_clip(tiny_clip_path, "fp32").visual(image[None])[0].numpy()
    with np.load(feat / "OxfordPets" / "test.npz", allow_pickle=False) as npz:
        got = npz["feature_list"][0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert abs(np.linalg.norm(got) - 1.0) > 1e-3


def test_classes_get_distinct_features(pets_features):
    _data, feat, _layout = pets_features
    with np.load(feat / "OxfordPets" / "train.npz", allow_pickle=False) as npz:
        features, labels = npz["feature_list"], npz["label_list"]
    for label in np.unique(labels):
        rows = features[labels == label]
        np.testing.assert_allclose(rows, np.broadcast_to(rows[0], rows.shape), atol=1e-5)
    assert len({tuple(np.round(features[labels == y][0], 4)) for y in np.unique(labels)}) == 5


def test_full_splits_are_forced(tmp_path, tiny_clip_path):
    cfg = _cfg(tmp_path, tmp_path / "f", tiny_clip_path, "DATASET.NUM_SHOTS", "4", "DATASET.SUBSAMPLE_CLASSES", "base")
    assert cfg.DATASET.NUM_SHOTS == -1 and cfg.DATASET.SUBSAMPLE_CLASSES == "all"
    assert cfg.MODEL.BACKBONE.NAME == tiny_clip_path


def test_input_size_mismatch_is_explained(tmp_path, tiny_clip_path):
    cfg = _cfg(tmp_path, tmp_path / "f", tiny_clip_path, "INPUT.SIZE", "(160, 160)")
    with pytest.raises(
        ValueError,
        match=r"INPUT.SIZE is \(160, 160\) but this CLIP backbone takes \(224, 224\) images; "
        r"set INPUT.SIZE '\(224, 224\)'",
    ):
        feat_extractor.check_input_size(cfg.INPUT.SIZE, load_clip(tiny_clip_path, "fp32"))
