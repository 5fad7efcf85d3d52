"""Results side of the toolkit: collect finished runs from an output tree, group them by the papers'
protocols, and write tables (text, CSV, JSON, Markdown) and plots.

    runs.py          find runs and read metrics.json (or, for the original code's runs, log.txt)
    names.py         dataset names: folder / DATASET.NAME -> the papers' row names
    tables.py        group runs into protocol tables, mean +- spread over seeds
    render.py        text / CSV / JSON / Markdown output
    paper_numbers.py the published numbers (from the trainers' cards), for `results.py --paper`
    plots.py         PNG figures from the results JSON (needs the `plots` extra)
"""
