"""TrainerBase -> SimpleTrainer -> TrainerX with Dassl's method names
(docs/reference-behaviour.md, "Trainer lifecycle"; docs/internals.md).

`train()` only loops over epochs and dispatches before/after events to hooks (hooks.py), which hold
the behaviour: resume, metric printing, LR stepping, best-val selection, checkpointing, final test.
"""

import logging
import os
import sys
import time
from collections import OrderedDict

import torch
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from ..config import check_cfg_values
from ..data.class_list import ClassList
from ..data.data_manager import DataManager
from ..errors import CheckpointError
from ..evaluation import build_evaluator, write_metrics_json

# The imports marked "Dassl exposes it here" are names Dassl's dassl/engine/trainer.py imports, so a
# ported file's `from dassl.engine.trainer import MetricMeter` (DePT's) works once `dassl` reads `dasslite`.
from ..optim import build_lr_scheduler, build_optimizer  # noqa: F401 (Dassl exposes it here)
from ..utils import count_num_param, mkdir_if_missing, resume_from_checkpoint  # noqa: F401 (Dassl exposes it here)
from ..utils.dist import get_world_size, is_main_process, max_over_processes
from ..utils.logger import notice_once
from ..utils.seed import get_rng_state, set_rng_state
from ..utils.tools import tolist_if_not  # noqa: F401 (Dassl exposes it here)
from . import hooks as H
from .checkpoint import (
    checked_state_dict,
    load_checkpoint,
    load_pretrained_weights,
    load_weights,
    model_file_path,
    read_pointer,
    save_checkpoint,
)
from .hooks import AverageMeter, MetricMeter  # noqa: F401 (Dassl exposes it here)
from .interrupt import TrainingInterrupted, stop_requested
from .run_folder import writing

logger = logging.getLogger(__name__)


def __getattr__(name):
    if name == "SummaryWriter":  # Dassl imports it at the top; here tensorboard is imported when used
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class TrainerBase:
    """Registered models / optimizers / schedulers, the hook-dispatching loop, checkpoint I/O."""

    checkpoint_ignore_keys = ()  # state-dict keys dropped by load_model (rebuilt by the model itself)

    def __init__(self):
        self._models, self._optims, self._scheds = OrderedDict(), OrderedDict(), OrderedDict()
        self._hooks = []
        self._writer = None
        self._trained = False  # becomes True once train() starts; metrics.json records eval-only runs
        self.weights_epoch = None  # the epoch count of the current weights (None: never trained / loaded)
        self.saved_epoch = 0  # the epoch count of the last checkpoint written or resumed (what --resume continues)

    # ------------------------------------------------------------ registration
    def register_model(self, name="model", model=None, optim=None, sched=None):
        if self.__dict__.get("_models") is None:
            raise AttributeError("Cannot register a model before super().__init__() has run")
        if name in self._models:
            raise ValueError(f'A model named "{name}" is already registered ({list(self._models)})')
        self._models[name], self._optims[name], self._scheds[name] = model, optim, sched

    def get_model_names(self, names=None):
        all_names = list(self._models)
        if names is None:
            return all_names
        names = [names] if isinstance(names, str) else list(names)
        unknown = [n for n in names if n not in self._models]
        if unknown:
            raise KeyError(f"Unknown model name(s) {unknown}; registered: {all_names}")
        return names

    def register_hooks(self, hooks):
        for hook in hooks:
            hook.trainer = self
            self._hooks.append(hook)

    def _call_hooks(self, event):
        for hook in self._hooks:
            getattr(hook, event)()

    # ------------------------------------------------------------ the loop
    def train(self, start_epoch, max_epoch):
        self.start_epoch, self.max_epoch = start_epoch, max_epoch
        self._trained = True
        try:
            self.before_train()  # may move start_epoch (resume)
            for epoch in range(self.start_epoch, self.max_epoch):
                self.epoch = epoch
                self.before_epoch()
                self.run_epoch()
                self.weights_epoch = self.epoch + 1
                self.after_epoch()
                if epoch + 1 < self.max_epoch:  # a signal during the last epoch lets the run finish
                    self.check_stop()
            self.after_train()
        finally:
            for hook in self._hooks:
                hook.close()

    def before_train(self):
        self._call_hooks("before_train")

    def after_train(self):
        self._call_hooks("after_train")

    def before_epoch(self):
        self._call_hooks("before_epoch")

    def after_epoch(self):
        self._call_hooks("after_epoch")

    def run_epoch(self):
        raise NotImplementedError

    def check_stop(self):
        """Raise TrainingInterrupted when a SIGINT / SIGTERM came in (see interrupt.py): a safe point.

        Under torchrun every rank calls this at the same points and they decide together: a signal that
        reached any one of them stops all of them here, else a rank that stopped alone would leave the
        others blocked in DDP's next gradient all-reduce (or short of the checkpoint rank 0 writes).
        """
        signum = max_over_processes(stop_requested() or 0)  # one all-reduce per batch, none on one process
        if not signum:
            return
        where = f"the end of epoch {self.epoch + 1}/{self.max_epoch}"
        if getattr(self, "batch_idx", None) is not None and self.batch_idx + 1 < getattr(self, "num_batches", 0):
            where = f"epoch {self.epoch + 1}/{self.max_epoch}, batch {self.batch_idx + 1}/{self.num_batches}"
        raise TrainingInterrupted(signum, where, self.saved_epoch)

    def learns_parameters(self):
        """True when a registered model has parameters that training updates (a run needs its weights)."""
        return any(p.requires_grad for m in self._models.values() if m is not None for p in m.parameters())

    def forward_backward(self, batch):
        raise NotImplementedError

    def parse_batch_train(self, batch):
        raise NotImplementedError

    def parse_batch_test(self, batch):
        raise NotImplementedError

    def model_inference(self, input):
        raise NotImplementedError

    def test(self):
        raise NotImplementedError

    # ------------------------------------------------------------ checkpoints
    def _hook_states(self):
        return {type(h).__name__: h.state_dict() for h in self._hooks if h.state_dict()}

    def save_model(self, epoch, directory, is_best=False, val_result=None, model_name=""):
        """Save every registered model as directory/<name>/model.pth.tar-<epoch+1> (rank 0 only)."""
        if not is_main_process():
            return
        for name in self.get_model_names():
            optim, sched = self._optims[name], self._scheds[name]
            state = {
                "state_dict": self._models[name].state_dict(),
                "epoch": epoch + 1,
                "optimizer": optim.state_dict() if optim is not None else None,
                "scheduler": sched.state_dict() if sched is not None else None,
                "val_result": val_result,
                "rng_state": get_rng_state(),
                "hooks": self._hook_states(),
                "meta": {"trainer": type(self).__name__, "model_name": name},
                "config": self.cfg.dump() if getattr(self, "cfg", None) is not None else None,
            }
            with writing(os.path.join(directory, name), directory):
                save_checkpoint(state, os.path.join(directory, name), is_best=is_best, model_name=model_name)
        if not is_best and not model_name:
            self.saved_epoch = epoch + 1

    def remove_model_files(self, epoch, directory):
        """Delete directory/<name>/model.pth.tar-<epoch> of every model (rank 0 only)."""
        if not is_main_process():
            return
        for name in self.get_model_names():
            path = os.path.join(directory, name, f"model.pth.tar-{epoch}")
            if os.path.isfile(path):
                os.remove(path)

    def resume_model_if_exist(self, directory):
        """Load models, optimizers, schedulers, RNG and hook states from the `checkpoint` pointers.

        Returns the epoch to start from (0 when there is nothing to resume).
        """
        names = self.get_model_names()
        paths = [read_pointer(os.path.join(directory, name)) for name in names]
        if not names or any(p is None for p in paths):
            logger.info("No checkpoint found, train from scratch")
            return 0
        logger.info(f"Found checkpoint at {directory} (will resume training)")
        for name, path in zip(names, paths):
            logger.info(f'Loading checkpoint from "{path}"')
            ckpt = load_checkpoint(path)
            load_weights(self._models[name], checked_state_dict(ckpt, path), path, strict=True)
            if self._optims[name] is not None and ckpt.get("optimizer") is not None:
                self._optims[name].load_state_dict(ckpt["optimizer"])
            if self._scheds[name] is not None and ckpt.get("scheduler") is not None:
                self._scheds[name].load_state_dict(ckpt["scheduler"])
            start_epoch = ckpt.get("epoch")
            if not isinstance(start_epoch, int) or start_epoch > self.max_epoch:
                raise CheckpointError(
                    f'Cannot resume "{path}": its "epoch" is {start_epoch!r}, not an epoch count within '
                    f"OPTIM.MAX_EPOCH {self.max_epoch}. Set OPTIM.MAX_EPOCH to at least that epoch, or start "
                    f"from scratch with --overwrite."
                )
        self._restore_run_state(ckpt)
        logger.info(f"Previous epoch: {start_epoch}")
        self.weights_epoch = self.saved_epoch = start_epoch
        return start_epoch

    def _restore_run_state(self, ckpt):
        # Under DDP every rank would get rank 0's generators; they keep their own instead.
        if ckpt.get("rng_state") is not None and get_world_size() == 1:
            set_rng_state(ckpt["rng_state"])
        states = ckpt.get("hooks") or {}
        for hook in self._hooks:
            if type(hook).__name__ in states:
                hook.load_state_dict(states[type(hook).__name__])

    def load_model(self, directory, epoch=None):
        """Load model.pth.tar-<epoch> (model-best.pth.tar when None) of every model; returns its epoch."""
        if not directory:
            logger.info("Note that load_model() is skipped as no pretrained model is given")
            return None
        loaded_epoch = None
        for name in self.get_model_names():
            path = model_file_path(directory, name, epoch)
            ckpt = load_checkpoint(path)
            loaded_epoch = ckpt.get("epoch")
            logger.info(f'Loading weights to {name} from "{path}" (epoch = {loaded_epoch})')
            trainer_name = (ckpt.get("meta") or {}).get("trainer")
            load_weights(
                self._models[name],
                checked_state_dict(ckpt, path),
                path,
                ignore_keys=self.checkpoint_ignore_keys,
                trainer_name=trainer_name,
            )
        self.weights_epoch = loaded_epoch
        return loaded_epoch

    # ------------------------------------------------------------ model helpers
    def set_model_mode(self, mode="train", names=None):
        """train() / eval() only the registered modules (a frozen backbone stays as it is)."""
        if mode not in ("train", "eval", "test"):
            raise ValueError(f'set_model_mode: mode must be "train", "eval" or "test", got "{mode}"')
        for name in self.get_model_names(names):
            self._models[name].train(mode == "train")

    def update_lr(self, names=None):
        for name in self.get_model_names(names):
            if self._scheds[name] is not None:
                self._scheds[name].step()

    def get_current_lr(self, names=None):
        names = self.get_model_names(names)
        optims = [self._optims[n] for n in names if self._optims[n] is not None]
        return optims[0].param_groups[0]["lr"] if optims else 0.0

    def detect_anomaly(self, loss):
        """Raise before any update when the loss is NaN or infinite, saying where and why it likely is."""
        if torch.isfinite(loss).all():
            return
        where = f"epoch {getattr(self, 'epoch', 0) + 1}/{getattr(self, 'max_epoch', '?')}"
        if hasattr(self, "batch_idx"):
            where += f", batch {self.batch_idx + 1}/{self.num_batches}"
        raise FloatingPointError(
            f"Loss is infinite or NaN ({loss.detach().float().mean().item()}) at {where}; nothing was updated and "
            f"the last saved checkpoint is intact. A likely cause is fp16 precision (half-precision weights "
            f"or activations overflowing): set the trainer's PREC to fp32, amp or bf16 (e.g. TRAINER.COOP.PREC "
            f"fp32), or lower OPTIM.LR."
        )

    def model_zero_grad(self, names=None):
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                self._optims[name].zero_grad()

    def model_backward(self, loss):
        self.detect_anomaly(loss)
        loss.backward()

    def model_update(self, names=None):
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                self._optims[name].step()

    def model_backward_and_update(self, loss, names=None):
        self.model_zero_grad(names)
        self.model_backward(loss)
        self.model_update(names)

    # ------------------------------------------------------------ tensorboard (optional)
    def init_writer(self, log_dir):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # a dependency of the toolkit; a bare engine install may lack it
            notice_once(logger, "tensorboard is not installed, so no event files are written: pip install tensorboard")
            return
        if self._writer is None:
            logger.info(f"Initialize tensorboard (log_dir={log_dir})")
            self._writer = SummaryWriter(log_dir=log_dir)

    def close_writer(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def write_scalar(self, tag, scalar_value, global_step=None):
        if self._writer is not None:
            self._writer.add_scalar(tag, scalar_value, global_step)


class SimpleTrainer(TrainerBase):
    """A trainer built from a config: data, model (build_model), evaluator and the standard hooks.

    With `classnames` (label order) no dataset is read: the model is built for those classes and the
    trainer has no loaders, which is what predicting from a run folder needs (data/class_list.py).
    """

    def __init__(self, cfg, classnames=None):
        super().__init__()
        check_cfg_values(cfg)
        self.check_cfg(cfg)
        use_cuda = torch.cuda.is_available() and cfg.USE_CUDA
        self.device = torch.device("cuda", torch.cuda.current_device()) if use_cuda else torch.device("cpu")
        self.start_epoch = self.epoch = 0
        self.max_epoch = cfg.OPTIM.MAX_EPOCH
        self.output_dir = cfg.OUTPUT_DIR
        self.cfg = cfg
        if classnames is None:
            self.build_data_loader()
        else:
            self.use_class_list(ClassList(classnames))
        self.build_model()
        if cfg.MODEL.INIT_WEIGHTS:
            self.init_weights(cfg.MODEL.INIT_WEIGHTS)
        self.evaluator = build_evaluator(cfg, lab2cname=self.lab2cname)
        self.register_hooks(self.build_hooks())

    def check_cfg(self, cfg):
        """Trainer-specific config checks; override (CoOp checks its PREC)."""

    def init_weights(self, path):
        """MODEL.INIT_WEIGHTS: warm-start every registered model (Dassl's load_pretrained_weights; the
        keys in checkpoint_ignore_keys are rebuilt by the model from the current class names)."""
        for name in self.get_model_names():
            logger.info(f'Warm-starting {name} from MODEL.INIT_WEIGHTS "{path}"')
            load_pretrained_weights(self._models[name], path, ignore_keys=self.checkpoint_ignore_keys)

    def build_hooks(self):
        hooks = [H.ResumeHook(), H.TensorboardHook(), H.MetricPrinter(), H.LRSchedulerHook()]
        if self.cfg.TEST.FINAL_MODEL == "best_val" and not self.cfg.TEST.NO_TEST:
            hooks.append(H.BestValHook())
        return hooks + [H.PeriodicCheckpointer(), H.FinalTestHook()]

    def build_data_loader(self):
        dm = DataManager(self.cfg)
        self.train_loader_x, self.train_loader_u = dm.train_loader_x, dm.train_loader_u
        self.val_loader, self.test_loader = dm.val_loader, dm.test_loader
        self.num_classes, self.num_source_domains = dm.num_classes, dm.num_source_domains
        self.lab2cname = dm.lab2cname
        self.dm = dm

    def use_class_list(self, class_list):
        self.train_loader_x = self.train_loader_u = self.val_loader = self.test_loader = None
        self.num_classes, self.num_source_domains = class_list.num_classes, class_list.num_source_domains
        self.lab2cname = class_list.lab2cname
        self.dm = class_list

    def build_model(self):
        raise NotImplementedError(
            f"{type(self).__name__} must implement build_model() and register its "
            f"learnable modules with self.register_model(name, module, optim, sched)"
        )

    def train(self):
        super().train(self.start_epoch, self.max_epoch)

    @torch.no_grad()
    def test(self, split=None):
        """Evaluate on TEST.SPLIT (or `split`); returns the first metric (accuracy)."""
        self.set_model_mode("eval")
        self.evaluator.reset()
        split = split or self.cfg.TEST.SPLIT
        if split == "val" and self.val_loader is not None:
            loader = self.val_loader
        else:
            split, loader = "test", self.test_loader
        logger.info(f"Evaluate on the *{split}* set")
        for batch in tqdm(loader, desc=split, file=sys.stderr, leave=False, disable=not is_main_process()):
            input, label = self.parse_batch_test(batch)
            self.evaluator.process(self.model_inference(input), label)
        results = self.evaluator.evaluate()
        for k, v in results.items():
            self.write_scalar(f"{split}/{k}", v, self.epoch)
        metrics_path = os.path.join(self.output_dir, "metrics.json")
        if split == "test" and is_main_process():
            with writing(metrics_path, self.output_dir):
                write_metrics_json(
                    metrics_path,
                    results,
                    self.cfg,
                    split=split,
                    epoch=self.weights_epoch,
                    eval_only=not self._trained,
                )
        return list(results.values())[0]

    def model_inference(self, input):
        return self.model(input)

    def parse_batch_test(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)


class TrainerX(SimpleTrainer):
    """Training on labelled data only (train_loader_x)."""

    def before_epoch(self):
        self.num_batches = len(self.train_loader_x)  # hooks (progress bar, ETA) need it
        super().before_epoch()

    def run_epoch(self):
        self.set_model_mode("train")
        self.num_batches = len(self.train_loader_x)
        if isinstance(self.train_loader_x.sampler, DistributedSampler):
            self.train_loader_x.sampler.set_epoch(self.epoch)  # a new shuffle each epoch on every rank
        end = time.time()
        for batch_idx, batch in enumerate(self.train_loader_x):
            self.batch_idx = batch_idx
            self.data_time = time.time() - end
            self._call_hooks("before_step")
            self.loss_summary = self.forward_backward(batch)
            self.batch_time = time.time() - end
            self._call_hooks("after_step")
            if batch_idx + 1 < self.num_batches:  # after the last batch, train() checks once the epoch is saved
                self.check_stop()
            end = time.time()

    def parse_batch_train(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)
