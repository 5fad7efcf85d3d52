"""predict.py's loop against open_clip's own image pass, on the same weights and images, in one run.

    python benchmarks/predict_speed.py                      # ViT-B/16 sizes (random weights, no download)
    python benchmarks/predict_speed.py --tiny               # tiny CLIP: decoding dominates, a smoke run
    python benchmarks/predict_speed.py --trainer CoOp --images 64 --batch 32 --repeats 3

The reference is the encoder's floor: `model.encode_image` over the images already decoded and
preprocessed (untimed), in batches. Ours is `Run.predict` over the folder of JPEG files, as predict.py
runs it: reading, decoding and preprocessing in threads while the model classifies the batch before,
then the trainer's own logits and top-k. The two alternate, `--repeats` times; printed: the best images
per second of each, their ratio, and the median [range] of the per-repeat ratios (target: at least 0.8;
on a shared machine only the paired ratios are stable). fp32.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import coop_toolkit as ct  # noqa: E402
from coop_toolkit import run_record as rr  # noqa: E402
from coop_toolkit.trainers.backbone_config import image_size_of_name  # noqa: E402
from coop_toolkit.trainers.clip_backbone import load_clip  # noqa: E402
from dasslite.engine.build import build_trainer  # noqa: E402
from tools.tiny_clip import build_tiny_clip, openai_state_dict  # noqa: E402

CLASSES = ["cat", "dog", "car", "tree", "house", "boat", "bird", "flower", "chair", "cup"]
TRAINER_YAML = {"CoOp": "configs/trainers/CoOp/vit_b16.yaml", "ZeroshotCLIP": "configs/trainers/CoOp/vit_b16.yaml"}


def write_images(folder, count, size=(500, 375), seed=0):
    """JPEGs of photo size with smooth structure and noise (decoding cost like a photo's)."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0 : size[1], 0 : size[0]]
    for i in range(count):
        base = np.stack([np.sin(xs / (20 + 7 * c + i)) + np.cos(ys / (15 + 5 * c)) for c in range(3)], axis=-1)
        pixels = (base + 2) * 60 + rng.normal(0, 12, size=base.shape)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(os.path.join(folder, f"{i:04d}.jpg"), quality=90)


def save_clip(path, tiny):
    if tiny:
        model = build_tiny_clip()
    else:
        import open_clip

        model = open_clip.create_model("ViT-B-16", pretrained=None, force_quick_gelu=True)
    torch.save(openai_state_dict(model), path)


def build_run(trainer, backbone, batch, precision):
    cfg = ct.get_cfg(trainer=trainer, config_file=TRAINER_YAML[trainer])
    cfg.MODEL.BACKBONE.NAME, cfg.DATALOADER.TEST.BATCH_SIZE, cfg.USE_CUDA = backbone, batch, False
    cfg.INPUT.SIZE = image_size_of_name(backbone)
    cfg.TRAINER.COOP.PREC = precision  # bf16: stored in bf16 on a CPU with native bf16 (as predict.py --precision)
    cfg.freeze()
    model = build_trainer(cfg, classnames=CLASSES)
    model.set_model_mode("eval")
    return ct.Run(model, rr.preprocess_record(cfg), CLASSES)


def encoder_floor(clip, tensors, batch):
    """Seconds of open_clip's encode_image over the preprocessed images, in batches, in the model's dtype."""
    dtype = clip.visual.conv1.weight.dtype
    start = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(tensors), batch):
            clip.encode_image(torch.stack(tensors[i : i + batch]).to(dtype))
    return time.perf_counter() - start


def ours(run, folder, batch, workers):
    start = time.perf_counter()
    predictions = run.predict([folder], batch_size=batch, workers=workers)
    assert not any(p.error for p in predictions)
    return time.perf_counter() - start


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="tiny CLIP instead of ViT-B/16 sizes")
    p.add_argument("--trainer", default="ZeroshotCLIP", choices=sorted(TRAINER_YAML))
    p.add_argument("--images", type=int, default=32)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--workers", type=int, help="decoding threads (default: predict.py's)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="both sides' precision")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "images")
        os.makedirs(folder)
        write_images(folder, args.images)
        backbone = os.path.join(tmp, "clip.pt")
        save_clip(backbone, args.tiny)
        run = build_run(args.trainer, backbone, args.batch, args.precision)
        clip = load_clip(backbone, run.trainer.prec).eval()  # the same weights and storage, as open_clip runs them
        tensors = [run.preprocess(Image.open(p).convert("RGB")) for p in ct.find_images([folder])]
        encoder_floor(clip, tensors, args.batch)  # warm-up of both sides: first-call allocations
        ours(run, folder, args.batch, args.workers)
        floor, loop = [], []
        for _ in range(args.repeats):
            floor.append(args.images / encoder_floor(clip, tensors, args.batch))
            loop.append(args.images / ours(run, folder, args.batch, args.workers))
    size = "tiny" if args.tiny else "ViT-B/16 sizes"
    print(
        f"{args.trainer}, {size}, {run.trainer.prec}, {args.images} JPEGs 500x375, batch {args.batch}, "
        f"{torch.get_num_threads()} torch threads, {args.workers or ct.api.default_workers()} decoding threads"
    )
    print(f"open_clip encode_image (preprocessed): {max(floor):.2f} img/s  (repeats: {fmt(floor)})")
    print(f"Run.predict over the folder:          {max(loop):.2f} img/s  (repeats: {fmt(loop)})")
    ratios = sorted(lo / fl for fl, lo in zip(floor, loop))
    median = ratios[len(ratios) // 2] if len(ratios) % 2 else sum(ratios[len(ratios) // 2 - 1 :][:2]) / 2
    print(f"ratio of the best: {max(loop) / max(floor):.3f}; per repeat: median {median:.3f} [{fmt(ratios)}]")
    return median


def fmt(values):
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
