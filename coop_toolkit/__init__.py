"""coop_toolkit: CLIP prompt learners (CoOp, CoCoOp and successors) and the benchmark datasets, on dasslite.

`coop_toolkit.trainers` registers the trainers and `coop_toolkit.datasets` the datasets with the engine
when imported. The package is installed, so it imports from any folder, and its `datasets` subpackage
never shadows Hugging Face's `datasets`.
"""

from dasslite import __version__

__all__ = ["__version__"]
