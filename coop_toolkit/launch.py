"""Start one run in its output folder: the steps `python train.py` and `coop_toolkit.train(cfg)` share.

Check the names -> give the INPUT keys left at the yamls' OpenAI values the backbone's own
(trainers/backbone_config.py: adopt_family_input) -> check the request and a benchmark's folder (before
anything is written) -> join torchrun's process group -> lock the folder (rank 0,
dasslite/engine/run_lock.py) -> clean it up, clear it for an overwrite and check that what it holds may
be resumed (dasslite/engine/run_folder.py) -> seed -> open log.txt -> build the trainer -> config.yaml
and run.json -> train or test. While training, a SIGINT / SIGTERM stops at the end of a batch
(dasslite/engine/interrupt.py) and TrainingInterrupted reaches the caller, who says how its user resumes.
The callers differ only in how their users ask for things (`Spelling`: flags or keywords), in the header
they log and in how they report a stop.
"""

import logging
import os
from dataclasses import dataclass

import torch

from dasslite.config import check_cfg_values
from dasslite.data.build import DATASET_REGISTRY
from dasslite.data.dataset_base import dataset_root
from dasslite.data.transforms import AVAILABLE_TRANSFORMS
from dasslite.engine.build import TRAINER_REGISTRY, build_trainer
from dasslite.engine.interrupt import stop_on_signals
from dasslite.engine.run_folder import prepare_output_dir, save_config
from dasslite.engine.run_lock import RunLock
from dasslite.errors import ConfigError, RunFolderError, UserFileNotFoundError
from dasslite.optim.lr_scheduler import AVAILABLE_LR_SCHEDULERS
from dasslite.optim.optimizer import AVAILABLE_OPTIMIZERS
from dasslite.registry import UnknownNameError, unknown_name_message
from dasslite.utils.dist import describe_distributed, init_distributed, is_main_process, wait_for_other_processes
from dasslite.utils.io import read_json
from dasslite.utils.logger import setup_logger
from dasslite.utils.seed import set_random_seed

from .datasets.catalog import BENCHMARKS
from .datasets.check import require_usable
from .run_record import write_run_record
from .trainers.backbone_config import adopt_family_input
from .trainers.clip_backbone import check_backbone_name

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Spelling:
    """How the caller's user asks to overwrite, to resume and for another output folder (errors say it)."""

    overwrite: str
    resume: str
    output_dir: str


@dataclass(frozen=True)
class RunPlan:
    """What to do in the run folder: train (the default), test only (`eval_only`) or build only (`no_train`).

    `overwrite`: start from scratch (the folder's checkpoints and metrics.json are removed first).
    `resume`: the folder whose run the user asked to continue ("" when not asked); it must exist.
    `model_dir` / `load_epoch`: where an eval-only run's weights come from (recorded in run.json).
    """

    overwrite: bool = False
    resume: str = ""
    eval_only: bool = False
    model_dir: str = ""
    load_epoch: int | None = None
    no_train: bool = False
    verbose: bool = False  # the log header (arguments, config, environment) on the console too


class FinishedRunError(RunFolderError):
    """The output folder holds a finished run and the plan does not overwrite it."""


OUTSIDE = "; one defined outside the toolkit: flag --plugin MODULE_OR_FILE"


def check_names(cfg):
    """Look up every name the run will need before anything is written, so that a typo fails without
    creating the output folder (later errors, found while building data or model, leave only log.txt)."""
    check_cfg_values(cfg)
    lookups = [
        ("trainer", cfg.TRAINER.NAME, TRAINER_REGISTRY.registered_names(), f"TRAINER.NAME / flag --trainer{OUTSIDE}"),
        ("dataset", cfg.DATASET.NAME, DATASET_REGISTRY.registered_names(), f"DATASET.NAME{OUTSIDE}"),
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


def with_family_input(cfg):
    """The frozen `cfg` with the backbone's own preprocessing where the user left the yamls' OpenAI values
    (adopt_family_input; config.yaml and run.json then record it), and the lines that say so."""
    resolved = cfg.clone()
    resolved.defrost()
    lines = adopt_family_input(resolved)
    resolved.freeze()
    return (resolved, lines) if lines else (cfg, [])


def finished_run_in(output_dir):
    """True when output_dir/metrics.json says the run finished (what the protocol scripts skip on)."""
    try:
        return read_json(os.path.join(output_dir, "metrics.json")).get("finished") is True
    except (OSError, ValueError, AttributeError):
        return False


def check_plan(cfg, plan, spelling):
    """Refuse, before anything is written, a plan that contradicts itself or the folder's contents."""
    if plan.overwrite and plan.resume:
        raise ConfigError(
            f"{spelling.overwrite} starts from scratch and {spelling.resume} continues a run: pass one of them."
        )
    if finished_run_in(cfg.OUTPUT_DIR) and not plan.overwrite:
        raise FinishedRunError(
            f'"{cfg.OUTPUT_DIR}" already holds a finished run (metrics.json). Choose another '
            f"{spelling.output_dir}, or pass {spelling.overwrite} to replace its results."
        )
    if plan.resume and not os.path.isdir(plan.resume):
        raise UserFileNotFoundError(
            f'{spelling.resume} "{plan.resume}": no such folder. Give the output folder of the run to continue, '
            f"or drop {spelling.resume} to start a new run."
        )


def check_dataset_folder(cfg):
    """A benchmark's folder is checked whole before anything reads it or the run folder is made: every
    problem at once, each with its fix (check_data.py's check), instead of the first error the reader meets.
    Files that break mid-run (e.g. an image that fails to decode) still stop the run when they are read."""
    if cfg.DATASET.NAME in BENCHMARKS:
        require_usable(dataset_root(cfg), cfg.DATASET.NAME)


def launch(cfg, plan, spelling, build=build_trainer, log_header=None):
    """Carry out `plan` with the frozen `cfg` in cfg.OUTPUT_DIR; returns the trainer.

    `build(cfg)` returns the trainer ready to run (train.py's also loads an eval-only run's weights);
    `log_header(cfg)` logs what the caller wants at the top of the run's log (rank 0 only). A
    TrainingInterrupted (SIGINT / SIGTERM while training) is raised once the folder is unlocked.
    """
    check_names(cfg)
    cfg, adopted = with_family_input(cfg)
    check_plan(cfg, plan, spelling)
    check_dataset_folder(cfg)
    init_distributed(use_cuda=cfg.USE_CUDA)  # torchrun: join the process group (README: Multi-GPU)
    lock = RunLock(cfg.OUTPUT_DIR) if is_main_process() else None  # one run per folder; rank 0 holds it
    if lock is not None:
        lock.acquire()
    try:
        notes = prepare_output_dir(cfg, plan.overwrite, plan.eval_only) if is_main_process() else []
        if lock is not None:
            notes.insert(0, lock.stale_lock_message())
        start_logging(cfg, plan, notes, log_header)
        for level, line in adopted:
            logger.log(level, line)
        return run(cfg, plan, build(cfg))
    finally:
        if lock is not None:
            lock.release()


def start_logging(cfg, plan, notes, log_header):
    """Seed, open log.txt (appended to unless overwriting) and log the notes of the folder's preparation."""
    if cfg.SEED >= 0:
        set_random_seed(cfg.SEED)
    setup_logger(
        cfg.OUTPUT_DIR if is_main_process() else None,
        resume=not plan.overwrite and (bool(cfg.RESUME) or os.path.isdir(cfg.OUTPUT_DIR)),
        verbose=plan.verbose,
    )
    for note in filter(None, notes):
        logger.warning(note)
    if cfg.SEED >= 0:
        logger.info(f"Setting fixed seed: {cfg.SEED}")
    if describe_distributed():
        logger.info(describe_distributed())
    if torch.cuda.is_available() and cfg.USE_CUDA:
        torch.backends.cudnn.benchmark = True
    if log_header is not None and is_main_process():  # other ranks log warnings only
        log_header(cfg)


def run(cfg, plan, trainer):
    if is_main_process():  # once data, model and weights are built: a run that fails there leaves no config
        save_config(cfg)
        # the rest of a self-contained run folder: class names, backbone, preprocessing (coop_toolkit/run_record.py)
        eval_only = {"model_dir": plan.model_dir, "load_epoch": plan.load_epoch} if plan.eval_only else {}
        write_run_record(trainer, **eval_only)
    if plan.eval_only:
        trainer.test()
    elif not plan.no_train:
        with stop_on_signals():
            trainer.train()
    return trainer


def stopped_line(stop, how_to_resume):
    """The log line of a run stopped by a signal: where, the epoch saved, and how to continue."""
    return f"Stopped by {stop} (last saved: epoch {stop.saved_epoch}); resume with: {how_to_resume}"


def report_stop(log, stop, how_to_resume):
    """Log the stopped line (rank 0 writes the log) and return once every process has got here: under
    torchrun all of them stopped at the same batch, and once one exits torchrun ends the others (SIGTERM)."""
    log.info(stopped_line(stop, how_to_resume))
    wait_for_other_processes()
