"""Export a run for use without this toolkit: weights as safetensors plus a JSON card.

    python export.py RUN_DIR --out head.safetensors [--load-epoch N] [--backbone PATH]

writes head.safetensors and head.json. For CoOp, the zero-shot trainers and other trainers whose class
text features do not depend on the image, the file is a classifier head (normalised class text
features and CLIP's logit scale) that open_clip and torch apply in a few lines (README: Use a trained
prompt); for CoCoOp, its prompt learner with the Meta-Net. The card holds the backbone, the class
names in label order and the test-time preprocessing. No pickle in either file. The folder of --out
is created if missing, and checked before the run is loaded; both files follow the umask.
"""

import argparse

from dasslite.cli import ArgumentParser, check_output_file, run_cli


def main(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a train.py --output-dir")
    p.add_argument("--out", required=True, help="output .safetensors file (the card goes beside it as .json)")
    p.add_argument("--load-epoch", type=int, help="export model.pth.tar-N (default: the model the run reported)")
    p.add_argument("--backbone", default="", help="where the recorded CLIP weights are now")
    p.add_argument("--model-dir", default="", help="where the run's weights are (an eval-only run's model run)")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = p.parse_args(argv)
    check_output_file(args.out, "--out", (".safetensors",))
    import coop_toolkit as ct
    from coop_toolkit.export_head import card_path, export_run

    run = ct.load_run(args.run_dir, args.load_epoch, backbone=args.backbone, device="cpu", model_dir=args.model_dir)
    card = export_run(run, args.out)
    print(f"Wrote {args.out} ({card['format']}) and {card_path(args.out)}")
    return card


if __name__ == "__main__":
    run_cli(main)
