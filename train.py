"""Train and evaluate CLIP prompt learners: the original CoOp command line.

    python train.py --root DATA --seed 1 --trainer CoCoOp \
        --dataset-config-file configs/datasets/oxford_pets.yaml \
        --config-file configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml \
        --output-dir output/cocoop/seed1 DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES base

Config merge order: engine defaults -> trainers' nodes -> dataset yaml -> trainer yaml -> flags -> opts.
"""

import argparse
import logging
import os
import sys

import torch

import coop_toolkit.datasets  # noqa: F401  (registers every dataset)
from coop_toolkit import trainers
from coop_toolkit.trainers.clip_backbone import check_backbone_name
from dasslite.config import check_cfg_values, get_cfg_default, merge_from_file_checked, merge_from_list_checked
from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.transforms import AVAILABLE_TRANSFORMS
from dasslite.engine.build import TRAINER_REGISTRY, build_trainer
from dasslite.optim.lr_scheduler import AVAILABLE_LR_SCHEDULERS
from dasslite.optim.optimizer import AVAILABLE_OPTIMIZERS
from dasslite.registry import UnknownNameError, unknown_name_message
from dasslite.utils.dist import destroy_distributed, init_distributed, is_main_process
from dasslite.utils.io import atomic_write, read_json
from dasslite.utils.logger import setup_logger
from dasslite.utils.seed import set_random_seed
from dasslite.utils.tools import collect_env_info

logger = logging.getLogger("train")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=str, default="", help="path to the dataset root")
    p.add_argument("--output-dir", type=str, default="", help="output directory")
    p.add_argument("--resume", type=str, default="", help="checkpoint directory to resume from")
    p.add_argument("--seed", type=int, default=None, help="random seed (0 is a seed; omit to keep the yaml's)")
    p.add_argument("--source-domains", type=str, nargs="+", help="source domains (DA/DG)")
    p.add_argument("--target-domains", type=str, nargs="+", help="target domains (DA/DG)")
    p.add_argument("--transforms", type=str, nargs="+", help="data augmentation methods")
    p.add_argument("--config-file", type=str, default="", help="trainer / method config file")
    p.add_argument("--dataset-config-file", type=str, default="", help="dataset config file")
    p.add_argument("--trainer", type=str, default="", help="name of trainer")
    p.add_argument("--backbone", type=str, default="", help="name of CNN backbone")
    p.add_argument("--head", type=str, default="", help="name of head")
    p.add_argument("--eval-only", action="store_true", help="evaluation only")
    p.add_argument("--model-dir", type=str, default="", help="load model from this directory for eval-only mode")
    p.add_argument("--load-epoch", type=int, help="load model weights at this epoch for evaluation")
    p.add_argument("--no-train", action="store_true", help="do not call trainer.train()")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="run even if the output folder already holds a finished run (its results are replaced)",
    )
    p.add_argument("opts", default=None, nargs=argparse.REMAINDER, help="modify config options (KEY VALUE pairs)")
    return p.parse_args(argv)


def reset_cfg(cfg, args):
    """Flags -> config keys, as the original; `--seed` applies whenever given (0 included)."""
    if args.root:
        cfg.DATASET.ROOT = args.root
    if args.output_dir:
        cfg.OUTPUT_DIR = args.output_dir
    if args.resume:
        cfg.RESUME = args.resume
    if args.seed is not None:
        cfg.SEED = args.seed
    if args.source_domains:
        cfg.DATASET.SOURCE_DOMAINS = args.source_domains
    if args.target_domains:
        cfg.DATASET.TARGET_DOMAINS = args.target_domains
    if args.transforms:
        cfg.INPUT.TRANSFORMS = args.transforms
    if args.trainer:
        cfg.TRAINER.NAME = args.trainer
    if args.backbone:
        cfg.MODEL.BACKBONE.NAME = args.backbone
    if args.head:
        cfg.MODEL.HEAD.NAME = args.head


def setup_cfg(args):
    cfg = get_cfg_default()
    trainers.extend_cfg(cfg)
    if args.dataset_config_file:
        merge_from_file_checked(cfg, args.dataset_config_file, "--dataset-config-file")
    if args.config_file:
        merge_from_file_checked(cfg, args.config_file, "--config-file")
    reset_cfg(cfg, args)
    merge_from_list_checked(cfg, args.opts or [])
    cfg.freeze()
    return cfg


def check_names(cfg):
    """Look up every name the run will need before anything is written, so that a typo fails without
    creating the output folder (later errors, found while building data or model, leave only log.txt)."""
    check_cfg_values(cfg)
    lookups = [
        ("trainer", cfg.TRAINER.NAME, TRAINER_REGISTRY.registered_names(), "TRAINER.NAME / flag --trainer"),
        ("dataset", cfg.DATASET.NAME, DATASET_REGISTRY.registered_names(), "DATASET.NAME"),
        ("optimizer", cfg.OPTIM.NAME, AVAILABLE_OPTIMIZERS, "OPTIM.NAME"),
        ("LR scheduler", cfg.OPTIM.LR_SCHEDULER, AVAILABLE_LR_SCHEDULERS, "OPTIM.LR_SCHEDULER"),
    ]
    if not cfg.INPUT.NO_TRANSFORM:
        lookups += [
            ("transform", name, AVAILABLE_TRANSFORMS, "INPUT.TRANSFORMS / flag --transforms")
            for name in cfg.INPUT.TRANSFORMS
        ]
    for kind, name, choices, key in lookups:
        if name not in choices:
            raise UnknownNameError(unknown_name_message(kind, name, choices, hint=f"(config key {key})"))
    check_backbone_name(cfg.MODEL.BACKBONE.NAME)


def finished_run_in(output_dir):
    """True when output_dir/metrics.json says the run finished (what the protocol scripts skip on)."""
    try:
        return read_json(os.path.join(output_dir, "metrics.json")).get("finished") is True
    except (OSError, ValueError, AttributeError):
        return False


def main(argv=None):
    args = parse_args(argv)
    cfg = setup_cfg(args)
    check_names(cfg)
    if finished_run_in(cfg.OUTPUT_DIR) and not args.overwrite:
        sys.exit(
            f'"{cfg.OUTPUT_DIR}" already holds a finished run (metrics.json). Choose another --output-dir, '
            f"or pass --overwrite to replace its results."
        )
    init_distributed(use_cuda=cfg.USE_CUDA)  # torchrun: join the process group (README: Multi-GPU)
    if cfg.SEED >= 0:
        set_random_seed(cfg.SEED)
    setup_logger(
        cfg.OUTPUT_DIR if is_main_process() else None, resume=bool(cfg.RESUME) or os.path.isdir(cfg.OUTPUT_DIR)
    )
    if cfg.SEED >= 0:
        logger.info(f"Setting fixed seed: {cfg.SEED}")
    if torch.cuda.is_available() and cfg.USE_CUDA:
        torch.backends.cudnn.benchmark = True
    if is_main_process():  # other ranks log warnings only; collecting env info takes seconds
        log_args_and_config(args, cfg)

    trainer = build_trainer(cfg)
    if args.eval_only:
        trainer.load_model(args.model_dir, epoch=args.load_epoch)
    if is_main_process():  # once data, model and weights are built: a run that fails there leaves no config
        save_config(cfg)
    if args.eval_only:
        trainer.test()
        return
    if not args.no_train:
        trainer.train()


def save_config(cfg):
    """OUTPUT_DIR/config.yaml: the full merged config of this run (reloadable with merge_from_file)."""
    with atomic_write(os.path.join(cfg.OUTPUT_DIR, "config.yaml")) as f:
        f.write(cfg.dump())


def log_args_and_config(args, cfg):
    logger.info("***************\n** Arguments **\n***************")
    for key in sorted(vars(args)):
        logger.info(f"{key}: {getattr(args, key)}")
    logger.info("************\n** Config **\n************")
    logger.info(cfg)
    logger.info("Collecting env info ...")
    logger.info("** System info **\n" + collect_env_info() + "\n")


if __name__ == "__main__":
    main()
    destroy_distributed()
