"""Encode every image of a dataset's train, val and test splits with CLIP's image encoder.

    python lpclip/feat_extractor.py --root DATA --seed 1 \
        --config-file configs/trainers/CoOp/rn50_val.yaml \
        --dataset-config-file configs/datasets/oxford_pets.yaml \
        --output-dir clip_feat [MODEL.BACKBONE.NAME ViT-B/16 ...]

Writes OUTPUT_DIR/<DATASET.NAME>/{train,val,test}.npz with `feature_list` (N, D) float32 and
`label_list` (N,) int64 (np.savez, no pickled objects), and meta.json (backbone, class names, sizes)
which linear_probe.py reads to label its runs. The original's files had the same keys.

What differs from the original (docs/reference-behaviour.md, "Linear-probe baseline"): the dataset comes from
the registry with the full splits (NUM_SHOTS -1, SUBSAMPLE_CLASSES all; the original crashed on the missing
SUBSAMPLE_CLASSES key), the backbone is MODEL.BACKBONE.NAME (the original always loaded RN50), and all three
splits are written in one run (`--split` picks some). As in the original, every split gets the *test* transform
and the features are CLIP's un-normalised image embeddings.
"""

import argparse
import logging
import os
import sys

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

import coop_toolkit.datasets  # noqa: F401  (registers every dataset)
from coop_toolkit.config import merge_run_config
from coop_toolkit.trainers.backbone_config import adopt_family_input
from coop_toolkit.trainers.clip_backbone import check_input_size, clip_dtype, load_clip
from dasslite.data.build import build_dataset
from dasslite.data.data_manager import DatasetWrapper
from dasslite.data.transforms import build_transform
from dasslite.utils.io import atomic_write, read_json, write_json
from dasslite.utils.logger import setup_logger
from dasslite.utils.seed import set_random_seed

logger = logging.getLogger("lpclip.feat_extractor")

SPLITS = ("train", "val", "test")
DEFAULT_OUTPUT_DIR = "clip_feat"  # the original script's OUTPUT


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=str, default="", help="path to the dataset root")
    p.add_argument(
        "--output-dir",
        type=str,
        default="",
        help=f"feature folder; <DATASET.NAME>/ is created in it (default: {DEFAULT_OUTPUT_DIR})",
    )
    p.add_argument("--config-file", type=str, default="", help="method config (batch size, input size, backbone)")
    p.add_argument("--dataset-config-file", type=str, default="", help="dataset config file")
    p.add_argument(
        "--split",
        type=str,
        nargs="+",
        choices=SPLITS,
        default=list(SPLITS),
        help="splits to encode (default: all three)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of a dataset's own train/val split when it has no split file (omit to keep the yaml's)",
    )
    p.add_argument("--backbone", type=str, default="", help="CLIP backbone (same as MODEL.BACKBONE.NAME)")
    p.add_argument(
        "--num-shot",
        type=int,
        default=None,
        help="ignored: features are extracted for the full splits; linear_probe.py --shots draws shots",
    )
    # Accepted so the original's feat_extractor.sh runs unchanged; they do nothing here.
    p.add_argument("--trainer", type=str, default="", help=argparse.SUPPRESS)
    p.add_argument("--head", type=str, default="", help=argparse.SUPPRESS)
    p.add_argument("--eval-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("opts", default=None, nargs=argparse.REMAINDER, help="modify config options (KEY VALUE pairs)")
    return p.parse_args(argv)


def setup_cfg(args):
    """train.py's merge order (coop_toolkit/config.py), then the full splits."""

    def apply_flags(cfg):
        if args.root:
            cfg.DATASET.ROOT = args.root
        cfg.OUTPUT_DIR = args.output_dir or DEFAULT_OUTPUT_DIR
        if args.seed is not None:
            cfg.SEED = args.seed
        if args.backbone:
            cfg.MODEL.BACKBONE.NAME = args.backbone

    cfg = merge_run_config(args, apply_flags)
    if cfg.DATASET.NUM_SHOTS != -1 or cfg.DATASET.SUBSAMPLE_CLASSES != "all":
        logger.warning(
            f"DATASET.NUM_SHOTS {cfg.DATASET.NUM_SHOTS} and SUBSAMPLE_CLASSES "
            f"{cfg.DATASET.SUBSAMPLE_CLASSES} are replaced by -1 and all: the linear probe draws "
            f"its shots from the full splits (linear_probe.py --shots)"
        )
    cfg.DATASET.NUM_SHOTS = -1
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"
    if not cfg.DATASET.NAME:
        raise ValueError("DATASET.NAME is empty: pass --dataset-config-file configs/datasets/<name>.yaml")
    for level, line in adopt_family_input(cfg):  # the backbone's own preprocessing, as train.py
        logger.log(level, line)
    cfg.freeze()
    return cfg


@torch.no_grad()
def encode(model, loader, device, desc=""):
    """(features (N, D) float32, labels (N,) int64) in loader order; features are not L2-normalised."""
    dtype = clip_dtype(model)
    features, labels = [], []
    for batch in tqdm(loader, desc=desc, unit="batch", dynamic_ncols=True):
        image = batch["img"].to(device=device, dtype=dtype)
        features.append(model.visual(image).float().cpu())
        labels.append(batch["label"])
    return torch.cat(features).numpy(), torch.cat(labels).numpy().astype(np.int64)


def save_features(path, features, labels):
    """np.savez through a temp file (a killed run never leaves a truncated .npz)."""
    with atomic_write(path, mode="wb") as f:
        np.savez(f, feature_list=features, label_list=labels)


def load_features(path):
    """(features, labels) of one split file; refuses pickled object arrays."""
    with np.load(path, allow_pickle=False) as data:
        return data["feature_list"], data["label_list"]


def split_loader(cfg, items, transform, device):
    return DataLoader(
        DatasetWrapper(cfg, items, transform=transform, is_train=False),
        batch_size=cfg.DATALOADER.TEST.BATCH_SIZE,
        shuffle=False,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        drop_last=False,
        pin_memory=device.type == "cuda",
    )


def extract(cfg, splits=SPLITS):
    """Encode `splits` of cfg's dataset; returns the dataset's feature folder."""
    device = torch.device("cuda" if torch.cuda.is_available() and cfg.USE_CUDA else "cpu")
    dataset = build_dataset(cfg)
    # fp16 on a GPU, as the original (clip.load on cuda); fp32 on the CPU, where half convolutions are slow
    model = load_clip(cfg.MODEL.BACKBONE.NAME, "fp16" if device.type == "cuda" else "fp32", device=device)
    check_input_size(cfg.INPUT.SIZE, model)
    transform = build_transform(cfg, is_train=False)
    save_dir = os.path.join(cfg.OUTPUT_DIR, cfg.DATASET.NAME)
    sources = {"train": dataset.train_x, "val": dataset.val, "test": dataset.test}
    sizes = {}
    for split in splits:
        if not sources[split]:
            logger.warning(f"{cfg.DATASET.NAME} has no {split} split; {split}.npz is not written")
            continue
        features, labels = encode(model, split_loader(cfg, sources[split], transform, device), device, desc=split)
        path = os.path.join(save_dir, f"{split}.npz")
        save_features(path, features, labels)
        sizes[split] = len(labels)
        logger.info(f"{split}: {features.shape[0]} x {features.shape[1]} features -> {path}")
    write_meta(save_dir, cfg, dataset, sizes)
    return save_dir


def write_meta(save_dir, cfg, dataset, sizes):
    """meta.json: what linear_probe.py needs to label its runs; sizes of splits encoded earlier are kept."""
    path = os.path.join(save_dir, "meta.json")
    if os.path.isfile(path):
        old = read_json(path)
        if old.get("backbone") == cfg.MODEL.BACKBONE.NAME:
            sizes = {**old.get("sizes", {}), **sizes}
        else:
            logger.warning(
                f'{save_dir} held features of backbone "{old.get("backbone")}"; the splits not '
                f"encoded again now are stale"
            )
    write_json(
        {
            "version": 1,
            "dataset": cfg.DATASET.NAME,
            "backbone": cfg.MODEL.BACKBONE.NAME,
            "num_classes": dataset.num_classes,
            "classnames": list(dataset.classnames),
            "input_size": list(cfg.INPUT.SIZE),
            "transform": "test",
            "sizes": sizes,
        },
        path,
    )


def main(argv=None):
    args = parse_args(argv)
    setup_logger(None)  # console until the config names the log file
    cfg = setup_cfg(args)
    # log beside the features, not as log.txt: results.py treats folders with a log.txt as runs
    setup_logger(os.path.join(cfg.OUTPUT_DIR, cfg.DATASET.NAME, "extract_log.txt"))
    if args.num_shot is not None:
        logger.warning("--num-shot is ignored: the full splits are encoded; choose shots with linear_probe.py --shots")
    if cfg.SEED >= 0:
        set_random_seed(cfg.SEED)
    logger.info(f"Dataset {cfg.DATASET.NAME}, backbone {cfg.MODEL.BACKBONE.NAME}, splits {', '.join(args.split)}")
    extract(cfg, args.split)
    return 0


if __name__ == "__main__":
    sys.exit(main())
