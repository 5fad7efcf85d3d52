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

from coop_toolkit.trainer_names import trainer_names
from dasslite.cli import ArgumentParser, run_cli
from dasslite.errors import ConfigError

# torch and the toolkit's trainers and datasets are imported in the functions that use them, so that
# --help and a mistyped flag answer at once.

logger = logging.getLogger("train")


# how coop_toolkit/launch.py's errors name this command line's options (a launch.Spelling)
FLAGS = dict(overwrite="--overwrite", resume="--resume", output_dir="--output-dir")
UNUSED = "unused: accepted so the original's command lines run; it sets {key}, which no CLIP trainer reads"


def build_parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
        help=f"method (TRAINER.NAME): {', '.join(trainer_names())}",
    )
    p.add_argument(
        "--backbone",
        type=str,
        default="",
        help="CLIP weights (MODEL.BACKBONE.NAME): an OpenAI name (RN50, ViT-B/16, ...), an open_clip "
        "model:tag, or the path of a file in OpenAI's layout",
    )
    p.add_argument("--head", type=str, default="", help=UNUSED.format(key="MODEL.HEAD.NAME"))
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE_OR_FILE",
        help="import this module or .py file first: trainers / datasets defined outside the toolkit (repeatable)",
    )
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
    p.add_argument(
        "--verbose",
        action="store_true",
        help="print the arguments, config and environment report on the console too (always in log.txt)",
    )
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
    import coop_toolkit.datasets  # noqa: F401  (registers every dataset)
    from coop_toolkit.config import merge_run_config

    cfg = merge_run_config(args, lambda cfg: reset_cfg(cfg, args))
    cfg.freeze()
    return cfg


def main(argv=None):
    """Run train.py with `argv`; user errors are raised (cli() prints them as one line)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    from coop_toolkit.launch import FinishedRunError, RunPlan, Spelling, launch, report_stop
    from coop_toolkit.plugins import load_plugins
    from dasslite.engine.interrupt import TrainingInterrupted

    load_plugins(args.plugin)
    cfg = setup_cfg(args)
    plan = RunPlan(
        overwrite=args.overwrite,
        resume=args.resume,
        eval_only=args.eval_only,
        model_dir=args.model_dir,
        load_epoch=args.load_epoch,
        no_train=args.no_train,
        verbose=args.verbose,
    )
    try:
        launch(
            cfg,
            plan,
            Spelling(**FLAGS),
            build=lambda cfg: build(args, cfg),
            log_header=lambda cfg: log_args_and_config(args, cfg),
        )
    except FinishedRunError as exc:
        sys.exit(f"error: {exc}")
    except TrainingInterrupted as stop:
        report_stop(logger, stop, resume_command(argv, args, cfg))
        sys.exit(stop.exit_code)


def build(args, cfg):
    """The trainer; with --eval-only, loaded with the weights of --model-dir at --load-epoch."""
    from dasslite.engine.build import build_trainer

    trainer = build_trainer(cfg)
    if args.eval_only:
        if not args.model_dir and not cfg.MODEL.INIT_WEIGHTS and trainer.learns_parameters():
            raise ConfigError(
                f"--eval-only with trainer {cfg.TRAINER.NAME}, which learns parameters, needs --model-dir (the "
                f"output folder of the training run), else the untrained initialisation would be evaluated."
            )
        trainer.load_model(args.model_dir, epoch=args.load_epoch)
    return trainer


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
    from dasslite.utils.dist import launched_by_torchrun

    if not launched_by_torchrun():
        return ["python"]
    per_node = os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"])
    nodes = int(os.environ["WORLD_SIZE"]) // int(per_node)
    return ["torchrun", *(["--nnodes", str(nodes)] if nodes > 1 else []), "--nproc_per_node", per_node]


def log_args_and_config(args, cfg):
    """The original's header of log.txt; on the console only with --verbose (it is ~300 lines)."""
    from dasslite.utils.logger import FILE_ONLY, log_file_path
    from dasslite.utils.tools import collect_env_info

    if not args.verbose:
        logger.info(f"Arguments, config and environment: {log_file_path(cfg.OUTPUT_DIR)} (--verbose prints them here)")
    logger.info("***************\n** Arguments **\n***************", extra=FILE_ONLY)
    for key in sorted(vars(args)):
        logger.info(f"{key}: {getattr(args, key)}", extra=FILE_ONLY)
    logger.info("************\n** Config **\n************", extra=FILE_ONLY)
    logger.info(cfg, extra=FILE_ONLY)
    logger.info("Collecting env info ...", extra=FILE_ONLY)
    logger.info("** System info **\n" + collect_env_info() + "\n", extra=FILE_ONLY)


def cli(argv=None):
    """The command line: a user error prints one "error: ..." line and exits 2 (--debug: traceback)."""
    run_cli(main, argv, cleanup=destroy_process_group)


def destroy_process_group():
    if "torch.distributed" in sys.modules:  # else no process group can exist
        from dasslite.utils.dist import destroy_distributed

        destroy_distributed()


if __name__ == "__main__":
    cli()
