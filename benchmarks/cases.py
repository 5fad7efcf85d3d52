"""speed.py's rows, declared by the benchmark module that writes each method's reference computation.

    speed_cases("MyMethod", Case("MyMethod", build_ours, authors_reference, batch=32, classes=100))

at the top level of benchmarks/speed.py or of any benchmarks/speed_<topic>.py (each is imported by
`all_cases`), keyed by the trainer's registered name: adding a method edits no list. The projection
(benchmarks/projection.py, gpu_report.py) finds a trainer's rows by that name.
"""

import dataclasses
import glob
import importlib
import os
from typing import Callable

SPEED_CASES = {}  # trainer name -> its rows, in the order the modules declared them


@dataclasses.dataclass(frozen=True)
class Case:
    """One row: `build(clip_model, classnames) -> model` (ours, learned parameters requiring grad) and
    `reference(model, images) -> logits` (the authors' computation on the same modules and weights)."""

    name: str
    build: Callable
    reference: Callable
    batch: int
    classes: int
    eval_batch: int = 0  # evaluation batch (0 = the training batch)
    # a training step other than cross-entropy on the logits: step(model, images, labels, optim), for ours
    # and for the reference computation
    step: Callable = None
    reference_step: Callable = None

    @property
    def label(self):
        return f"{self.name}-c{self.classes}-b{self.batch}"


def speed_cases(trainer, *cases):
    """Declare `trainer`'s rows (a module imported twice, as `speed` and `benchmarks.speed`, declares the
    same rows again: the later replaces the earlier)."""
    SPEED_CASES[trainer] = list(cases)


def all_cases():
    """Every declared row: imports each benchmarks/speed_*.py so that it declares its own."""
    here = os.path.dirname(os.path.abspath(__file__))
    for path in sorted(glob.glob(os.path.join(here, "speed_*.py"))):
        importlib.import_module(f"benchmarks.{os.path.basename(path)[:-3]}")
    return [case for cases in SPEED_CASES.values() for case in cases]


def first_case(trainer):
    """`trainer`'s first row (None when it declares none)."""
    all_cases()
    return next(iter(SPEED_CASES.get(trainer, ())), None)
