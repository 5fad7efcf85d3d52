"""Tables as text (tabulate), CSV, JSON and Markdown.

Reports are plain writes (they are regenerated from the runs at will); importing the engine here
would pull in torch for a tool that only reads JSON and text.

CSV and JSON keep numbers as numbers (mean, spread, n, and with --paper the published value and the
difference); text and Markdown show `mean ± spread`, and with --paper `(paper P, D)` beside it.
"""

import csv
import dataclasses
import json
import os

from tabulate import tabulate


def _paper(table, label, column):
    return table.paper.get(label, {}).get(column)


def has_paper_numbers(table):
    """True when --paper has a published number to show beside at least one of the table's cells."""
    return any(_paper(table, label, column) is not None for label, cells in table.rows for column in cells)


def format_cell(stat, published=None, decimals=2):
    if stat is None:
        return "" if published is None else f"- (paper {published:.{decimals}f})"
    text = f"{stat.mean:.{decimals}f}"
    if stat.spread is not None and stat.n > 1:
        text += f" ± {stat.spread:.{decimals}f}"
    if published is not None:
        text += f" (paper {published:.{decimals}f}, {stat.mean - published:+.{decimals}f})"
    return text


def _grid(table, show_paper, decimals):
    rows = []
    for label, cells in table.rows:
        rows.append(
            [label]
            + [
                format_cell(cells.get(c), _paper(table, label, c) if show_paper else None, decimals)
                for c in table.columns
            ]
        )
    return ["", *table.columns], rows


def _caption(table, show_paper):
    lines = [table.title]
    if show_paper and table.paper_source:
        lines.append(f"paper: {table.paper_source}")
    return lines


def to_text(table, show_paper=False, decimals=2):
    headers, rows = _grid(table, show_paper, decimals)
    return "\n".join(_caption(table, show_paper) + [tabulate(rows, headers, tablefmt="simple", disable_numparse=True)])


def to_markdown(table, show_paper=False, decimals=2):
    headers, rows = _grid(table, show_paper, decimals)
    caption = "\n\n".join(_caption(table, show_paper)[1:])
    body = tabulate(rows, headers, tablefmt="github", disable_numparse=True)
    return f"## {table.title}\n\n" + (caption + "\n\n" if caption else "") + body + "\n"


def table_to_dict(table, show_paper=False):
    rows = []
    for label, cells in table.rows:
        out = {}
        for column, stat in cells.items():
            out[column] = dataclasses.asdict(stat)
            published = _paper(table, label, column) if show_paper else None
            if published is not None:
                out[column].update(paper=published, diff=stat.mean - published)
        rows.append({"label": label, "cells": out})
    return dict(
        name=table.name,
        kind=table.kind,
        title=table.title,
        columns=table.columns,
        meta=table.meta,
        rows=rows,
        paper_source=table.paper_source if show_paper else "",
    )


def write_csv(table, path, show_paper=False):
    header = ["row"]
    for column in table.columns:
        header += [column, f"{column} spread", f"{column} n"]
        header += [f"{column} paper", f"{column} diff"] if show_paper else []
    with write_atomically(path, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for label, cells in table.rows:
            line = [label]
            for column in table.columns:
                stat = cells.get(column)
                line += [stat.mean, stat.spread, stat.n] if stat else ["", "", ""]
                if show_paper:
                    published = _paper(table, label, column)
                    diff = stat.mean - published if stat and published is not None else None
                    line += ["" if published is None else published, "" if diff is None else diff]
            writer.writerow(["" if v is None else v for v in line])


def write_runs_csv(runs, path):
    fields = [
        "protocol",
        "phase",
        "trainer",
        "cfg",
        "variant",
        "backbone",
        "dataset",
        "shots",
        "seed",
        "accuracy",
        "macro_f1",
        "source",
        "path",
    ]
    with write_atomically(path, newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()
        for run in runs:
            row = {k: getattr(run, k) for k in fields if hasattr(run, k) and k != "accuracy"}
            writer.writerow(dict(row, accuracy=run.accuracy, macro_f1=run.metrics.get("macro_f1")))


def write_all(tables, runs, out_dir, show_paper=False, spread="std", decimals=2):
    """Write <table>.csv for each table, results.md, results.json and runs.csv; return the paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for table in tables:
        paths.append(os.path.join(out_dir, f"{table.name}.csv"))
        write_csv(table, paths[-1], show_paper)
    paths.append(os.path.join(out_dir, "results.md"))
    with write_atomically(paths[-1]) as f:
        f.write(f"# Results (mean ± {spread} over seeds)\n\n")
        f.write("\n".join(to_markdown(t, show_paper, decimals) for t in tables))
    paths.append(os.path.join(out_dir, "results.json"))
    with write_atomically(paths[-1]) as f:
        data = dict(
            version=1,
            spread=spread,
            tables=[table_to_dict(t, show_paper) for t in tables],
            runs=[dataclasses.asdict(r) for r in runs],
        )
        json.dump(data, f, indent=2)
    paths.append(os.path.join(out_dir, "runs.csv"))
    write_runs_csv(runs, paths[-1])
    return paths


def write_atomically(path, **open_kwargs):
    """dasslite's atomic_write (umask mode, temp file + rename), imported when first writing: the
    dasslite.utils package loads torch, which results.py otherwise never needs."""
    from dasslite.utils.io import atomic_write

    return atomic_write(path, **open_kwargs)
