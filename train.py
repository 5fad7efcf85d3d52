r"""Train and evaluate CLIP prompt learners: the original CoOp command line.

    python train.py --root DATA --seed 1 --trainer CoCoOp \
        --dataset-config-file configs/datasets/oxford_pets.yaml \
        --config-file configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml \
        --output-dir output/cocoop/seed1 DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES base

Config merge order (coop_toolkit/config.py): engine defaults -> trainers' nodes -> dataset yaml -> trainer yaml
-> flags -> opts.
"""

import argparse
import logging
import os
import shlex
import sys

import torch

import coop_toolkit.datasets  # noqa: F401  (registers every dataset)
from coop_toolkit.config import merge_run_config
from coop_toolkit.run_record import write_run_record
from coop_toolkit.trainers.clip_backbone import check_backbone_name
from dasslite.config import check_cfg_values
from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.transforms import AVAILABLE_TRANSFORMS
from dasslite.engine.build import TRAINER_REGISTRY, build_trainer
from dasslite.engine.interrupt import TrainingInterrupted, stop_on_signals
from dasslite.engine.run_folder import prepare_output_dir, save_config
from dasslite.engine.run_lock import RunLock
from dasslite.errors import ConfigError, UserError, UserFileNotFoundError
from dasslite.optim.lr_scheduler import AVAILABLE_LR_SCHEDULERS
from dasslite.optim.optimizer import AVAILABLE_OPTIMIZERS
from dasslite.registry import UnknownNameError, unknown_name_message
from dasslite.utils.dist import (
    describe_distributed,
    destroy_distributed,
    init_distributed,
    is_main_process,
    launched_by_torchrun,
    wait_for_other_processes,
)
from dasslite.utils.io import read_json
from dasslite.utils.logger import setup_logger
from dasslite.utils.seed import set_random_seed
from dasslite.utils.tools import collect_env_info

logger = logging.getLogger("train")


UNUSED = "unused: accepted so the original's command lines run; it sets {key}, which no CLIP trainer reads"


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=str, default="", help="dataset root, the folder holding every dataset (DATASET.ROOT)")
    p.add_argument(
        "--output-dir", type=str, default="", help="run folder: log.txt, checkpoints, metrics.json (OUTPUT_DIR)"
    )
    p.add_argument(
        "--resume", type=str, default="", help="folder to resume training from (RESUME; default: the run folder)"
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (0 is a seed; omit to keep the yaml's SEED)")
    p.add_argument("--source-domains", type=str, nargs="+", help=UNUSED.format(key="DATASET.SOURCE_DOMAINS"))
    p.add_argument("--target-domains", type=str, nargs="+", help=UNUSED.format(key="DATASET.TARGET_DOMAINS"))
    p.add_argument(
        "--transforms",
        type=str,
        nargs="+",
        help="training augmentations by name (INPUT.TRANSFORMS), e.g. random_resized_crop random_flip normalize",
    )
    p.add_argument(
        "--config-file", type=str, default="", help="method config, configs/trainers/<trainer>/<config>.yaml"
    )
    p.add_argument(
        "--dataset-config-file", type=str, default="", help="dataset config, configs/datasets/<dataset>.yaml"
    )
    p.add_argument(
        "--trainer",
        type=str,
        default="",
        help=f"method (TRAINER.NAME): {', '.join(sorted(TRAINER_REGISTRY.registered_names()))}",
    )
    p.add_argument(
        "--backbone",
        type=str,
        default="",
        help="CLIP weights (MODEL.BACKBONE.NAME): an OpenAI name (RN50, ViT-B/16, ...), an open_clip "
        "model:tag, or the path of a file in OpenAI's layout",
    )
    p.add_argument("--head", type=str, default="", help=UNUSED.format(key="MODEL.HEAD.NAME"))
    p.add_argument("--eval-only", action="store_true", help="no training: load --model-dir at --load-epoch and test it")
    p.add_argument("--model-dir", type=str, default="", help="run folder whose checkpoints --eval-only loads")
    p.add_argument(
        "--load-epoch", type=int, help="load <model-dir>/<model>/model.pth.tar-N (default: model-best.pth.tar)"
    )
    p.add_argument("--no-train", action="store_true", help="build the trainer (data, model) but do not train")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="run even if the output folder already holds a finished run (its results are replaced)",
    )
    p.add_argument(
        "--check-data",
        action="store_true",
        help="decode every image of the splits once before training and list all unreadable files "
        "(DATASET.CHECK_DATA True)",
    )
    p.add_argument("--debug", action="store_true", help="show the Python traceback of user errors too")
    p.add_argument("opts", default=None, nargs=argparse.REMAINDER, help="KEY VALUE config overrides, merged last")
    return p


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    check_no_flag_in_opts(parser, args.opts or [])
    return args


def check_no_flag_in_opts(parser, opts):
    """argparse hands everything after the first KEY to the overrides, so a flag placed there would be
    silently read as a config key or value."""
    for item in opts:
        flag = item.split("=", 1)[0]
        if flag in parser._option_string_actions:
            raise ConfigError(
                f'"{item}" comes after the KEY VALUE overrides ({opts[0]} ...); flags go before the KEY VALUE '
                f"overrides. Move it in front of {opts[0]}."
            )


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
    if args.check_data:
        cfg.DATASET.CHECK_DATA = True


def setup_cfg(args):
    cfg = merge_run_config(args, lambda cfg: reset_cfg(cfg, args))
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
    """Run train.py with `argv`; user errors are raised (cli() prints them as one line)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    cfg = setup_cfg(args)
    check_names(cfg)
    check_run_flags(args, cfg)
    init_distributed(use_cuda=cfg.USE_CUDA)  # torchrun: join the process group (README: Multi-GPU)
    lock = RunLock(cfg.OUTPUT_DIR) if is_main_process() else None  # one run per folder; rank 0 holds it
    if lock is not None:
        lock.acquire()
    try:
        notes = prepare_output_dir(cfg, args.overwrite, args.eval_only) if is_main_process() else []
        if lock is not None:
            notes.insert(0, lock.stale_lock_message())
        run(args, cfg, argv, notes)
    finally:
        if lock is not None:
            lock.release()


def check_run_flags(args, cfg):
    if args.overwrite and args.resume:
        raise ConfigError("--overwrite starts from scratch and --resume continues a run: pass one of them.")
    if finished_run_in(cfg.OUTPUT_DIR) and not args.overwrite:
        sys.exit(
            f'error: "{cfg.OUTPUT_DIR}" already holds a finished run (metrics.json). Choose another '
            f"--output-dir, or pass --overwrite to replace its results."
        )
    if args.resume and not os.path.isdir(args.resume):
        raise UserFileNotFoundError(
            f'--resume "{args.resume}": no such folder. Give the output folder of the run to continue, or drop '
            f"--resume to start a new run."
        )


def run(args, cfg, argv, notes=()):
    if cfg.SEED >= 0:
        set_random_seed(cfg.SEED)
    setup_logger(
        cfg.OUTPUT_DIR if is_main_process() else None,
        resume=not args.overwrite and (bool(cfg.RESUME) or os.path.isdir(cfg.OUTPUT_DIR)),
    )
    for note in filter(None, notes):
        logger.warning(note)
    if cfg.SEED >= 0:
        logger.info(f"Setting fixed seed: {cfg.SEED}")
    if describe_distributed():
        logger.info(describe_distributed())
    if torch.cuda.is_available() and cfg.USE_CUDA:
        torch.backends.cudnn.benchmark = True
    if is_main_process():  # other ranks log warnings only; collecting env info takes seconds
        log_args_and_config(args, cfg)

    trainer = build_trainer(cfg)
    if args.eval_only:
        if not args.model_dir and not cfg.MODEL.INIT_WEIGHTS and trainer.learns_parameters():
            raise ConfigError(
                f"--eval-only with trainer {cfg.TRAINER.NAME}, which learns parameters, needs --model-dir (the "
                f"output folder of the training run), else the untrained initialisation would be evaluated."
            )
        trainer.load_model(args.model_dir, epoch=args.load_epoch)
    if is_main_process():  # once data, model and weights are built: a run that fails there leaves no config
        save_config(cfg)
        # the rest of a self-contained run folder: class names, backbone, preprocessing (coop_toolkit/run_record.py)
        eval_only = {"model_dir": args.model_dir, "load_epoch": args.load_epoch} if args.eval_only else {}
        write_run_record(trainer, **eval_only)
    if args.eval_only:
        trainer.test()
    elif not args.no_train:
        try:
            with stop_on_signals():
                trainer.train()
        except TrainingInterrupted as stop:
            logger.info(
                f"Stopped by {stop} (last saved: epoch {stop.saved_epoch}); resume with: "
                f"{resume_command(argv, args, cfg)}"
            )
            # Under torchrun all ranks stopped here together; once one exits, torchrun ends the others
            # (SIGTERM), so none leaves before rank 0 has written that line.
            wait_for_other_processes()
            sys.exit(stop.exit_code)


def resume_command(argv, args, cfg):
    """The command line that continues this run: the same arguments with --resume OUTPUT_DIR added (and
    without --overwrite), under torchrun with as many processes when this run had them."""
    flags = [f for f in argv[: len(argv) - len(args.opts or [])] if f != "--overwrite"]  # it would start over
    if not args.resume:
        flags += ["--resume", cfg.OUTPUT_DIR]
    return shlex.join([*launcher(), "train.py", *flags, *(args.opts or [])])


def launcher():
    """`python`, or torchrun options for as many processes as this run has (with several nodes, add
    your rendezvous options)."""
    if not launched_by_torchrun():
        return ["python"]
    per_node = os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"])
    nodes = int(os.environ["WORLD_SIZE"]) // int(per_node)
    return ["torchrun", *(["--nnodes", str(nodes)] if nodes > 1 else []), "--nproc_per_node", per_node]


def log_args_and_config(args, cfg):
    logger.info("***************\n** Arguments **\n***************")
    for key in sorted(vars(args)):
        logger.info(f"{key}: {getattr(args, key)}")
    logger.info("************\n** Config **\n************")
    logger.info(cfg)
    logger.info("Collecting env info ...")
    logger.info("** System info **\n" + collect_env_info() + "\n")


def cli(argv=None):
    """The command line: a user error prints one "error: ..." line and exits 2 (--debug: traceback)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        main(argv)
    except UserError as exc:
        if "--debug" in argv:
            raise
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    finally:
        destroy_distributed()


if __name__ == "__main__":
    cli()
