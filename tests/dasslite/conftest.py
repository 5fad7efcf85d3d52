import logging

import pytest

from dasslite.utils.logger import _remove_our_handlers

from .toy import make_toy_images


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory):
    return make_toy_images(tmp_path_factory.mktemp("toy"))


@pytest.fixture(autouse=True)
def _reset_logging():
    """setup_logger changes the root logger; never let its handlers or level leak into other tests."""
    root = logging.getLogger()
    level = root.level
    yield
    _remove_our_handlers(root)
    root.setLevel(level)
