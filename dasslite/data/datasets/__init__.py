"""Dassl's `dassl.data.datasets` names, so a dataset file ports by changing its imports."""

from ..build import DATASET_REGISTRY, build_dataset
from ..dataset_base import DatasetBase
from ..datum import Datum

__all__ = ["DATASET_REGISTRY", "build_dataset", "DatasetBase", "Datum"]
