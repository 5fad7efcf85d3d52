"""Classify images with a trained run: top-k class names with probabilities, one line (or row) per image.

    python predict.py RUN_DIR [--load-epoch N] [--topk 5] [--out preds.csv|preds.json] PATH...
    python predict.py --trainer ZeroshotCLIP --classnames classes.txt --backbone ViT-B/16 PATH...

RUN_DIR is a train.py --output-dir (config.yaml, run.json, checkpoints); the dataset folder is not
needed. PATH: image files and folders (searched recursively). `--classnames FILE` (one class name per
line) classifies into other classes; `--backbone` says where the recorded CLIP weights are now (a
file must be the recorded one, by sha256; a zero-shot run takes any backbone). Without RUN_DIR,
`--trainer ZeroshotCLIP` or `ZeroshotCLIP2` classifies zero-shot into `--classnames`.
"""

import argparse
import csv
import json
import sys


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="RUN_DIR (unless --trainer), then images / folders")
    p.add_argument("--load-epoch", type=int, help="load model.pth.tar-N (default: the model the run reported)")
    p.add_argument("--topk", type=int, default=5, help="number of labels shown per image (default 5)")
    p.add_argument("--batch-size", type=int, help="images per batch (default: the run's DATALOADER.TEST.BATCH_SIZE)")
    p.add_argument("--out", help="write the predictions to this .csv or .json file (one row per image)")
    p.add_argument("--classnames", help="text file with one class name per line (label order)")
    p.add_argument("--backbone", default="", help="CLIP weights to use (name, open_clip model:tag or file)")
    p.add_argument("--trainer", default="", help="zero-shot trainer to use without a RUN_DIR (ZeroshotCLIP[2])")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="fp32 (default, exact), or bf16 (a CPU with native bf16, or a GPU) / fp16 (a GPU): faster",
    )
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = p.parse_intermixed_args(argv)  # options may come between the paths
    if args.out and not args.out.lower().endswith((".csv", ".json")):
        p.error(f'--out "{args.out}" must end in .csv or .json')
    if args.trainer and not (args.classnames and args.backbone):
        p.error(f"--trainer {args.trainer} (no RUN_DIR) needs --classnames FILE and --backbone")
    if not args.trainer and len(args.paths) < 2:
        p.error("give RUN_DIR and at least one image file or folder")
    return args


def read_classnames(path):
    with open(path, encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip()]
    if not names:
        raise ValueError(f'"{path}" holds no class names; write one class name per line')
    return names


def load(args):
    import coop_toolkit as ct

    classnames = read_classnames(args.classnames) if args.classnames else None
    if args.trainer:
        zs = ct.zero_shot(classnames, args.backbone, trainer=args.trainer, device=args.device, precision=args.precision)
        return zs, args.paths
    run_dir, paths = args.paths[0], args.paths[1:]
    run = ct.load_run(
        run_dir,
        args.load_epoch,
        backbone=args.backbone,
        classnames=classnames,
        device=args.device,
        precision=args.precision,
    )
    return run, paths


def rows(predictions):
    return [
        {"path": p.path, "topk": [{"label": name, "probability": prob} for name, prob in p.topk]} for p in predictions
    ]


def write_predictions(predictions, path):
    if path.lower().endswith(".json"):
        with open(path, "w", encoding="utf-8") as f:
            json.dump(rows(predictions), f, indent=2)
        return
    k = max(len(p.topk) for p in predictions)
    header = ["path"] + [f"{kind}{i + 1}" for i in range(k) for kind in ("label", "probability")]
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for p in predictions:
            writer.writerow([p.path] + [v for name, prob in p.topk for v in (name, f"{prob:.6g}")])


def main(argv=None):
    args = parse_args(argv)
    try:
        import coop_toolkit as ct

        run, paths = load(args)
        images = ct.find_images(paths)
        if not images:
            raise FileNotFoundError(f"No image files in {', '.join(paths)}")
        predictions = run.predict(images, topk=args.topk, batch_size=args.batch_size, progress=True)
    except (OSError, ValueError, KeyError) as err:
        if args.debug:
            raise
        sys.exit(f"error: {err}")
    for p in predictions:
        print(p.path + "\t" + ", ".join(f"{name} ({prob:.3f})" for name, prob in p.topk))
    if args.out:
        write_predictions(predictions, args.out)
        print(f"Wrote {len(predictions)} predictions to {args.out}", file=sys.stderr)
    return predictions


if __name__ == "__main__":
    main()
