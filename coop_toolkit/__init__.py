"""coop_toolkit: CLIP prompt learners (CoOp, CoCoOp and successors) and the benchmark datasets, on dasslite.

`coop_toolkit.trainers` registers the trainers and `coop_toolkit.datasets` the datasets with the engine
when imported. The package is installed, so it imports from any folder, and its `datasets` subpackage
never shadows Hugging Face's `datasets`.

The Python API (coop_toolkit/api.py) is re-exported here and imported on first use, so that
`import coop_toolkit` itself loads neither torch nor CLIP: `coop_toolkit.load_run(RUN_DIR)`,
`coop_toolkit.zero_shot(classnames, backbone)`, `coop_toolkit.get_cfg(...)`, `coop_toolkit.train(cfg)`.
The dataset tools too: `coop_toolkit.check_datasets(root, names)` (check_data.py) and
`coop_toolkit.prepare_dataset(root, name)` (prepare_data.py).
"""

_API = (
    "load_run",
    "zero_shot",
    "get_cfg",
    "train",
    "find_images",
    "iter_images",
    "Run",
    "Prediction",
    "TrainingStopped",
)

_DATA_API = {"check_datasets": "check", "check_dataset": "check", "prepare_dataset": "prepare"}

__all__ = ["__version__", *_API, *_DATA_API]


def __getattr__(name):
    if name in _API:
        from . import api

        return getattr(api, name)
    if name in _DATA_API:
        from importlib import import_module

        return getattr(import_module(f".datasets.{_DATA_API[name]}", __name__), name)
    if name == "__version__":
        from dasslite import __version__

        return __version__
    raise AttributeError(f"module 'coop_toolkit' has no attribute '{name}'")
