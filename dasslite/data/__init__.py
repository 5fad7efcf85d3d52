"""Dassl's `dassl.data` names: DataManager and DatasetWrapper (datasets under dasslite.data.datasets)."""

from .data_manager import DataManager, DatasetWrapper

__all__ = ["DataManager", "DatasetWrapper"]
