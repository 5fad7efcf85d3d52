"""PNG figures from the results JSON written by `results.py`: accuracy versus shots (one figure per
dataset and one for the average, a line per method variant) and Base / New / H bars per dataset (one
figure per base-to-new table) or per method (one per by-method table). matplotlib is an optional extra,
imported only here.
"""

import io
import json
import logging
import os

from dasslite.errors import UserError

logger = logging.getLogger(__name__)


class MissingExtraError(UserError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def require_matplotlib():
    try:
        import matplotlib
    except ImportError as error:
        raise MissingExtraError('--plots needs matplotlib: pip install -e ".[plots]"') from error
    return matplotlib


def _pyplot():
    matplotlib = require_matplotlib()
    matplotlib.use("Agg")  # files only; works without a display
    import matplotlib.pyplot as plt

    return plt


def _file_name(text):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text) + ".png"


def plot_fewshot(tables, out_dir, plt):
    """One figure per dataset (and 'Average'): a line per few-shot table; published points as crosses."""
    tables = [t for t in tables if t["kind"] == "fewshot"]
    datasets = list(dict.fromkeys(r["label"] for t in tables for r in t["rows"]))
    paths = []
    for dataset in datasets:
        fig, ax = plt.subplots(figsize=(5, 4))
        for table in tables:
            _plot_curve(ax, table, dataset)
        ax.set(title=dataset, xlabel="shots per class", ylabel="accuracy (%)", xscale="log")
        ax.set_xticks([1, 2, 4, 8, 16], labels=["1", "2", "4", "8", "16"])
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        paths.append(os.path.join(out_dir, "fewshot_" + _file_name(dataset)))
        save_png(fig, paths[-1])
        plt.close(fig)
    return paths


def _plot_curve(ax, table, dataset):
    row = next((r for r in table["rows"] if r["label"] == dataset), None)
    if row is None:
        return
    label = " ".join(
        x for x in (table["meta"].get("trainer"), table["meta"].get("cfg"), table["meta"].get("variant")) if x
    )
    cells = sorted((int(c), v) for c, v in row["cells"].items())
    (line,) = ax.plot([c for c, _ in cells], [v["mean"] for _, v in cells], marker="o", label=label)
    published = [(c, v["paper"]) for c, v in cells if "paper" in v]
    if published:
        ax.plot(*zip(*published), "x", color=line.get_color(), markersize=8, label=f"{label} (paper)")


def plot_base2new(tables, out_dir, plt):
    """One figure per base-to-new table: grouped Base / New / H bars per row (dataset, or method)."""
    paths = []
    for table in (t for t in tables if t["kind"] in ("base2new", "base2new_by_method")):
        labels = [r["label"] for r in table["rows"]]
        fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(labels)), 4))
        width = 0.27
        for i, column in enumerate(("Base", "New", "H")):
            xs = [j + (i - 1) * width for j in range(len(labels))]
            ax.bar(xs, [r["cells"][column]["mean"] for r in table["rows"]], width, label=column)
        ax.set_xticks(range(len(labels)), labels=labels, rotation=45, ha="right")
        ax.set(title=table["title"], ylabel="accuracy (%)", ylim=(0, 100))
        ax.legend(fontsize="small", ncols=3)
        paths.append(os.path.join(out_dir, _file_name(table["name"])))
        save_png(fig, paths[-1])
        plt.close(fig)
    return paths


def write_plots(results, out_dir):
    """`results` is the results JSON (a path or the loaded dict); returns the PNG paths written."""
    if isinstance(results, (str, os.PathLike)):
        with open(results) as f:
            results = json.load(f)
    plt = _pyplot()
    os.makedirs(out_dir, exist_ok=True)
    paths = plot_fewshot(results["tables"], out_dir, plt) + plot_base2new(results["tables"], out_dir, plt)
    logger.info("wrote %d plots to %s", len(paths), out_dir)
    return paths


def save_png(fig, path):
    """The figure as a PNG, written atomically with the umask's mode (as every file results.py writes)."""
    from reporting.render import write_atomically

    data = io.BytesIO()
    fig.savefig(data, format="png", dpi=120, bbox_inches="tight")
    with write_atomically(path, mode="wb") as f:
        f.write(data.getvalue())
