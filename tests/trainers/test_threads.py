"""Every registered trainer's model is safe to call from several threads at once (a threaded web server
serving one run): threads predicting concurrently, each with its own batch size, get exactly what the
same calls give one after another. No forward may change state another call reads (the sequence-first
layout of CLIP's shared attention modules included: coop_toolkit/trainers/transformer_blocks.py).
"""

import copy
import glob
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

import coop_toolkit as ct
from dasslite.engine.build import build_trainer
from tests.precision_matrix import CPU_LAYERS, IMAGE_SIZE, REPO, save_small_clip, toolkit_trainers

CLASSNAMES = ["red circle", "blue circle", "green square"]
BATCH_SIZES = (1, 2, 3, 5)  # one per thread: CoCoOp's text batch is batch x classes, so the shapes differ
ROUNDS = 3  # calls per thread


@pytest.fixture(scope="module")
def clip_path(tmp_path_factory):
    return save_small_clip(tmp_path_factory.mktemp("clip") / "tiny.pt", CPU_LAYERS)


def tiny_run(name, clip_path):
    """A Run of trainer `name` on the tiny CLIP, in fp32, its learned values drawn from seed 0."""
    configs = os.path.join(REPO, "configs", "trainers")
    yamls = sorted(glob.glob(os.path.join(configs, name, "*.yaml"))) or [os.path.join(configs, "CoOp", "vit_b16.yaml")]
    cfg = ct.get_cfg(trainer=name, config_file=yamls[0])
    cfg.MODEL.BACKBONE.NAME, cfg.INPUT.SIZE = clip_path, (IMAGE_SIZE, IMAGE_SIZE)
    for node in (n for n in cfg.TRAINER.values() if isinstance(n, dict)):
        if "PREC" in node:
            node.PREC = "fp32"
        for key in [k for k in node if "DEPTH" in k]:
            node[key] = min(node[key], CPU_LAYERS)
    cfg.freeze()
    torch.manual_seed(0)
    trainer = build_trainer(cfg, classnames=CLASSNAMES)
    trainer.set_model_mode("eval")
    return ct.Run(trainer, {"resize": IMAGE_SIZE, "crop": [IMAGE_SIZE] * 2, "interpolation": "bicubic"}, CLASSNAMES)


def predict(run, images):
    return run.logits(images), run.predict(images, topk=len(CLASSNAMES), batch_size=len(images))


@pytest.mark.parametrize("name", toolkit_trainers())
def test_threads_predicting_at_once_get_the_sequential_results(name, clip_path):
    """Two copies of a run, neither called before (so the cached class features are computed under the
    threads too): one answers the calls one by one, the other from all threads at once."""
    generator = torch.Generator().manual_seed(1)
    batches = [torch.randn(n, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator) for n in BATCH_SIZES]
    sequential = tiny_run(name, clip_path)
    concurrent = copy.deepcopy(sequential)
    expected = [predict(sequential, images) for images in batches]
    start = threading.Barrier(len(batches))

    def calls(images):
        start.wait()
        return [predict(concurrent, images) for _ in range(ROUNDS)]

    with ThreadPoolExecutor(len(batches)) as pool:
        results = list(pool.map(calls, batches))
    for n, want, got in zip(BATCH_SIZES, expected, results):
        for logits, predictions in got:
            assert torch.equal(logits, want[0]), f"{name}: batch of {n}, logits differ from the sequential call"
            assert predictions == want[1], f"{name}: batch of {n}, predictions differ from the sequential call"
