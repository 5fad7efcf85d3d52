"""Few-shot linear probe on extracted CLIP features (the CoOp paper's "Linear probe CLIP" baseline).

    python lpclip/linear_probe.py --dataset OxfordPets --feature_dir clip_feat --num_step 8 --num_run 3 \
        [--shots 1 2 4 8 16] [--output-dir output]

For each shot count K and seed 1..num_run: draw K train and min(K, 4) val features per class (the
reference's draw, below), fit sklearn's LogisticRegression (lbfgs, max_iter 1000, L2) for C in
{1e6, 1e4, 1e2, 1, 1e-2, 1e-4, 1e-6}, keep the C with the best val accuracy, then refine it with
num_step rounds of bisection in log10(C) and report the test accuracy of the last round.

Outputs, as the reference: REPORT_DIR/<feature dir>_s<step>r<run>.txt ("<dataset>, <K> Shot, Test acc
stat: mean (std)") and ..._details.txt (one line per seed and round); both are appended to, so one
report file collects several datasets. With --output-dir, also one run folder per (dataset, K, seed)
in the results tree, which `python results.py OUTPUT_DIR` shows as a few-shot table of its own:

    OUTPUT_DIR/<dataset folder>/LinearProbeCLIP/<backbone tag>_<K>shots/seed<S>/metrics.json (+ probe.json)

Fixed from the original: a shot count outside 1/2/4/8/16 works (val shots = min(K, 4)); a class with
fewer than K features contributes all it has (with a warning) instead of crashing; the report file
name uses the feature folder's base name, so --feature_dir may be any path.
"""

import argparse
import dataclasses
import logging
import os
import re
import sys

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from coop_toolkit.benchmarks import folder_name, paper_name
from dasslite.utils.io import atomic_write, read_json, write_json

logger = logging.getLogger("lpclip.linear_probe")

TRAINER_NAME = "LinearProbeCLIP"
DEFAULT_SHOTS = (1, 2, 4, 8, 16)
VAL_SHOTS = {1: 1, 2: 2, 4: 4, 8: 4, 16: 4}  # the reference's val_shot_list
C_GRID = (1e6, 1e4, 1e2, 1, 1e-2, 1e-4, 1e-6)
DEFAULT_BACKBONE = "RN50"  # what the original extractor always used


# ---------------------------------------------------------------- features


def find_feature_folder(feature_dir, dataset):
    """FEATDIR/<dataset>; a config-style or paper name (oxford_pets, Flowers102) also finds the folder."""
    path = os.path.join(feature_dir, dataset)
    if os.path.isdir(path):
        return path
    present = (
        sorted(d for d in os.listdir(feature_dir) if os.path.isdir(os.path.join(feature_dir, d)))
        if os.path.isdir(feature_dir)
        else []
    )
    same = [d for d in present if paper_name(d) == paper_name(dataset)]
    if len(same) == 1:
        return os.path.join(feature_dir, same[0])
    found = f"folders there: {', '.join(present)}" if present else "no dataset folders there"
    raise FileNotFoundError(
        f'No features for dataset "{dataset}": "{path}" does not exist ({found}). '
        f"Run lpclip/feat_extractor.py with --output-dir {feature_dir} first."
    )


def load_split(folder, split, dtype=None):
    """(features (N, D), labels int64 (N,)) of FEATDIR/<dataset>/<split>.npz, features as stored or as `dtype`."""
    path = os.path.join(folder, f"{split}.npz")
    if not os.path.isfile(path):
        raise FileNotFoundError(f'Feature file not found: "{path}" (lpclip/feat_extractor.py writes it)')
    with np.load(path, allow_pickle=False) as data:
        return np.asarray(data["feature_list"], dtype=dtype), data["label_list"].astype(np.int64)


# ---------------------------------------------------------------- the reference's few-shot draw


def val_shots(num_shot):
    return VAL_SHOTS.get(num_shot, min(num_shot, 4))


def draw_fewshot(train_label, val_label, num_shot, rng):
    """Indices of the K-shot train set and the val set, in the reference's order and with its picks.

    How the reference draws (CoOp lpclip/linear_probe.py): it calls np.random.seed(seed) for seed in
    1..num_run, then for each label of np.unique(train_label) (ascending) takes
    np.random.choice(np.where(train_label == label)[0], size=K, replace=False), concatenating the
    picks class by class; then, continuing the same random stream, it does the same on val_label for
    the same labels with size val_shot_list[K]. Train and val are drawn from one stream, so the val
    picks depend on K's train draw.

    Here `rng` is np.random.RandomState(seed): np.random.seed(seed) resets exactly that generator, and
    np.random.choice is its choice method, so the picks are identical without touching numpy's global
    state.
    """
    labels = np.unique(train_label)
    train_idx = _draw(train_label, labels, num_shot, rng, "train")
    val_idx = _draw(val_label, labels, val_shots(num_shot), rng, "val")
    return train_idx, val_idx


def _draw(label_array, labels, k, rng, split):
    picked, short = [], []
    for label in labels:
        pool = np.where(label_array == label)[0]
        if len(pool) < k:  # the reference raises here (sampling more than the population)
            short.append(f"{label} ({len(pool)})")
            picked.extend(pool)
            continue
        picked.extend(rng.choice(pool, size=k, replace=False))
    if short:
        logger.warning(
            f"{len(short)} classes have fewer than {k} {split} features; all of theirs are used: "
            f"{', '.join(short[:10])}{' ...' if len(short) > 10 else ''}"
        )
    return np.asarray(picked, dtype=np.int64)


# ---------------------------------------------------------------- regularisation search


def make_classifier(c):
    """LogisticRegression(solver lbfgs, max_iter 1000, penalty l2, C=c).

    scikit-learn >= 1.8 deprecates `penalty` (L2 is its default there, l1_ratio=0), so it is passed
    only to versions that still expect it.
    """
    params = dict(solver="lbfgs", max_iter=1000, C=c)
    if LogisticRegression().get_params().get("penalty") != "deprecated":
        params["penalty"] = "l2"
    return LogisticRegression(**params)


def accuracy(clf, x, y):
    """Fraction correct, computed as the reference does (an exact ratio, so ties compare equal)."""
    return np.sum(clf.predict(x) == y) / len(y)


@dataclasses.dataclass
class Step:
    c_left: float
    c_right: float
    acc_left: float  # val accuracy, fraction
    acc_right: float
    c_final: float  # the side kept this round
    classifier: LogisticRegression


@dataclasses.dataclass
class Search:
    grid_acc: list  # val accuracy per C_GRID entry
    c_peak: float
    steps: list  # [Step] per round

    @property
    def c_final(self):
        return self.steps[-1].c_final

    @property
    def classifier(self):
        return self.steps[-1].classifier


def search_c(train_x, train_y, val_x, val_y, num_step):
    """The reference's C search: the grid, then `num_step` rounds of log-space bisection.

    Round 1 compares C_peak/10 and 10*C_peak. Each round keeps the side with the higher val
    accuracy (ties keep the left, smaller C) and halves the interval in log10(C) towards it: keeping
    the right gives [mid, right], keeping the left gives [left, mid]. A C fitted before is not fitted
    again (lbfgs is deterministic, so the result is the same).
    """
    if num_step < 1:
        raise ValueError(f"--num_step must be >= 1 (the test accuracy is that of the last round); got {num_step}")
    fits = {}

    def fitted(c):
        if c not in fits:
            clf = make_classifier(c).fit(train_x, train_y)
            fits[c] = (clf, accuracy(clf, val_x, val_y))
        return fits[c]

    grid_acc = [fitted(c)[1] for c in C_GRID]
    c_peak = C_GRID[int(np.argmax(grid_acc))]
    c_left, c_right = 1e-1 * c_peak, 1e1 * c_peak
    steps = []
    for _ in range(num_step):
        (clf_left, acc_left), (clf_right, acc_right) = fitted(c_left), fitted(c_right)
        log_left, log_right = np.log10(c_left), np.log10(c_right)
        mid = 0.5 * (log_right + log_left)
        if acc_left < acc_right:
            steps.append(Step(c_left, c_right, acc_left, acc_right, c_right, clf_right))
            log_left = mid
        else:
            steps.append(Step(c_left, c_right, acc_left, acc_right, c_left, clf_left))
            log_right = mid
        c_left, c_right = np.power(10, log_left), np.power(10, log_right)
    return Search([float(a) for a in grid_acc], c_peak, steps)


# ---------------------------------------------------------------- one probe


@dataclasses.dataclass
class ProbeRun:
    num_shot: int
    seed: int
    search: Search
    step_test_acc: list  # test accuracy (%) of each round's classifier
    metrics: dict  # of the last round, in metrics.json's units (percent)
    train_idx: np.ndarray
    val_idx: np.ndarray


def score_predictions(y_true, y_pred):
    correct, total = int(np.sum(y_pred == y_true)), len(y_true)
    acc = 100.0 * correct / total
    macro_f1 = 100.0 * f1_score(y_true, y_pred, average="macro", labels=np.unique(y_true))
    return {"accuracy": acc, "error_rate": 100.0 - acc, "macro_f1": float(macro_f1), "total": total, "correct": correct}


def probe(feats, num_shot, seed, num_step):
    """One (K, seed) run: the draw, the C search, and the test accuracy of every round."""
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = feats["train"], feats["val"], feats["test"]
    train_idx, val_idx = draw_fewshot(train_y, val_y, num_shot, np.random.RandomState(seed))
    # sklearn sees float64, as the original's float lists gave it (float32 -> float64 is exact); only the
    # drawn rows are converted, so the full train split stays float32 in memory
    search = search_c(
        train_x[train_idx].astype(np.float64),
        train_y[train_idx],
        val_x[val_idx].astype(np.float64),
        val_y[val_idx],
        num_step,
    )
    test_x = np.asarray(test_x, dtype=np.float64)
    step_test_acc, pred = [], None
    for step in search.steps:
        pred = step.classifier.predict(test_x)
        step_test_acc.append(100.0 * np.sum(pred == test_y) / len(pred))
    return ProbeRun(num_shot, seed, search, step_test_acc, score_predictions(test_y, pred), train_idx, val_idx)


# ---------------------------------------------------------------- outputs


def append_lines(path, lines):
    """Append to a report file (the reference's "a+") by rewriting it atomically."""
    old = ""
    if os.path.isfile(path):
        with open(path) as f:
            old = f.read()
    with atomic_write(path) as f:
        f.write(old + "".join(lines))


def report_paths(report_dir, feature_dir, num_step, num_run):
    stem = f"{os.path.basename(os.path.normpath(feature_dir))}_s{num_step}r{num_run}"
    return os.path.join(report_dir, f"{stem}.txt"), os.path.join(report_dir, f"{stem}_details.txt")


def detail_lines(dataset, run):
    return [
        f"{dataset}, seed {run.seed}, {run.num_shot} shot, weight {step.c_final}, test_acc {acc:.2f}\n"
        for step, acc in zip(run.search.steps, run.step_test_acc)
    ]


def summary_line(dataset, num_shot, runs):
    accs = [r.step_test_acc[-1] for r in runs]
    return f"{dataset}, {num_shot} Shot, Test acc stat: {np.mean(accs):.2f} ({np.std(accs):.2f})\n"


def backbone_tag(backbone):
    """A config-like folder tag: RN50 -> rn50, ViT-B/16 -> vit_b16, /models/ViT-L-14-336px.pt -> vit_l14_336px.

    The tags of OpenAI's names equal the prefixes of CoOp's config names, so results.py groups and
    labels these runs like the prompt learners' runs of the same backbone.
    """
    stem = backbone
    if os.path.isfile(os.path.expanduser(backbone)) or backbone.endswith((".pt", ".pth", ".bin", ".safetensors")):
        stem = os.path.splitext(os.path.basename(backbone))[0]
    tag = re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")
    return re.sub(r"vit_([a-z])_(\d+)", r"vit_\1\2", tag) or "clip"


def output_folder_name(dataset):
    """configs/datasets/<name>.yaml's name for a benchmark (oxford_pets for OxfordPets), else the name."""
    try:
        return folder_name(paper_name(dataset))
    except KeyError:
        return dataset


def run_dir(output_dir, dataset, backbone, num_shot, seed):
    return os.path.join(
        output_dir,
        output_folder_name(dataset),
        TRAINER_NAME,
        f"{backbone_tag(backbone)}_{num_shot}shots",
        f"seed{seed}",
    )


def write_run(folder, dataset, backbone, run, feature_folder):
    """metrics.json in the engine's contract (so results.py reads it) and probe.json with the search."""
    write_json(
        {
            "version": 1,
            "split": "test",
            "metrics": run.metrics,
            "run": {
                "trainer": TRAINER_NAME,
                "dataset": dataset,
                "backbone": backbone,
                "seed": run.seed,
                "num_shots": run.num_shot,
                "subsample_classes": "all",
                "max_epoch": None,
                "epoch": None,
                "eval_only": False,
            },
            "finished": True,
        },
        os.path.join(folder, "metrics.json"),
    )
    search = run.search
    write_json(
        {
            "feature_dir": os.path.abspath(feature_folder),
            "c_grid": list(C_GRID),
            "grid_val_accuracy": search.grid_acc,
            "c_peak": search.c_peak,
            "c_final": float(search.c_final),
            "steps": [
                {
                    "c_left": float(s.c_left),
                    "c_right": float(s.c_right),
                    "val_acc_left": float(s.acc_left),
                    "val_acc_right": float(s.acc_right),
                    "c_final": float(s.c_final),
                    "test_accuracy": acc,
                }
                for s, acc in zip(search.steps, run.step_test_acc)
            ],
            "train_indices": run.train_idx.tolist(),
            "val_indices": run.val_idx.tolist(),
        },
        os.path.join(folder, "probe.json"),
    )


# ---------------------------------------------------------------- command line


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help="DATASET.NAME: the folder under --feature_dir")
    p.add_argument("--feature_dir", "--feature-dir", default="clip_feat", help="feat_extractor.py's --output-dir")
    p.add_argument("--num_step", "--num-step", type=int, default=8, help="rounds of the C bisection")
    p.add_argument("--num_run", "--num-run", type=int, default=10, help="seeds 1..num_run per shot count")
    p.add_argument("--shots", type=int, nargs="+", default=list(DEFAULT_SHOTS), help="shots per class")
    p.add_argument("--output-dir", default="", help="results tree to write run folders into (results.py reads it)")
    p.add_argument("--report-dir", default="report", help="folder of the reference's text reports")
    p.add_argument("--backbone", default="", help="backbone name for the run folders (default: from meta.json)")
    return p.parse_args(argv)


def dataset_info(folder, dataset, backbone):
    """(DATASET.NAME, backbone) from meta.json, which feat_extractor.py writes beside the features."""
    meta_path = os.path.join(folder, "meta.json")
    meta = read_json(meta_path) if os.path.isfile(meta_path) else {}
    if not backbone and not meta.get("backbone"):
        logger.warning(f"{meta_path} not found; assuming backbone {DEFAULT_BACKBONE} (pass --backbone)")
    return meta.get("dataset", dataset), backbone or meta.get("backbone", DEFAULT_BACKBONE)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.num_run < 1 or any(k < 1 for k in args.shots):
        raise SystemExit("--num_run and every --shots value must be >= 1")
    folder = find_feature_folder(args.feature_dir, args.dataset)
    dataset, backbone = dataset_info(folder, args.dataset, args.backbone)
    feats = {
        "train": load_split(folder, "train"),
        "val": load_split(folder, "val"),
        "test": load_split(folder, "test", np.float64),
    }  # converted once, not per probe
    report, details = report_paths(args.report_dir, args.feature_dir, args.num_step, args.num_run)
    for num_shot in args.shots:
        runs = []
        for seed in range(1, args.num_run + 1):
            run = probe(feats, num_shot, seed, args.num_step)
            runs.append(run)
            logger.info(
                f"{dataset}, {num_shot} shot, seed {seed}: C {run.search.c_final:.4g}, "
                f"test accuracy {run.step_test_acc[-1]:.2f}"
            )
            if args.output_dir:
                write_run(run_dir(args.output_dir, dataset, backbone, num_shot, seed), dataset, backbone, run, folder)
        append_lines(details, [line for run in runs for line in detail_lines(dataset, run)])
        line = summary_line(dataset, num_shot, runs)
        append_lines(report, [line])
        logger.info(line.rstrip())
    logger.info(f"Reports: {report}, {details}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
