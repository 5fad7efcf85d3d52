"""Installs the `dasslite` engine and everything the CLIP prompt learners and the tests need.

The `trainers/` and `datasets/` plugin folders are used from the repository root (as in the
original CoOp code) and are deliberately not installed into site-packages.
"""
from setuptools import find_packages, setup

setup(
    name="coop-toolkit",
    version="0.1.0",
    description="CoOp / CoCoOp prompt learning for CLIP on a small Dassl-compatible engine",
    python_requires=">=3.10",
    packages=find_packages(include=["dasslite", "dasslite.*"]),
    install_requires=[
        "torch>=2.6",
        "torchvision",
        "open_clip_torch>=2.24",
        "yacs",
        "tabulate",
        "tqdm",
        "scikit-learn",
        "numpy",
        "scipy",  # .mat annotation files of StanfordCars and Flowers102 (when no split json)
        "Pillow",
    ],
    extras_require={
        "test": ["pytest", "matplotlib", "submitit"],
        "plots": ["matplotlib"],
        "slurm": ["submitit"],
    },
)
