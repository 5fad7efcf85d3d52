"""Reading the MATLAB annotation files some benchmarks ship (only needed when no split file exists)."""


def loadmat(path, split_name, anchor):
    """scipy.io.loadmat, or an error that names both ways out when scipy is missing."""
    try:
        from scipy.io import loadmat as _loadmat
    except ImportError as e:
        raise ImportError(
            f"Reading {path} needs scipy (pip install scipy). Alternatively put {split_name} in the "
            f"dataset folder (see DATASETS.md#{anchor}); then no .mat file is read."
        ) from e
    return _loadmat(path)
