"""Shared fixtures: a tiny CLIP saved in OpenAI's release layout, loaded by path like real weights."""

import os
import sys

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the tests never reach a model hub


@pytest.fixture(scope="session")
def tiny_clip_path(tmp_path_factory):
    """A 2-layer, width-64 ViT CLIP saved as a TorchScript archive (like OpenAI's ViT-B-16.pt)."""
    from tools.tiny_clip import save_tiny_clip

    path = tmp_path_factory.mktemp("clip") / "tiny-ViT.pt"
    save_tiny_clip(path, vision="vit", fmt="jit")
    return str(path)


@pytest.fixture(scope="session")
def tiny_rn_clip_path(tmp_path_factory):
    """A tiny ModifiedResNet CLIP saved as a plain state dict (the other layout CLIP files come in)."""
    from tools.tiny_clip import save_tiny_clip

    path = tmp_path_factory.mktemp("clip") / "tiny-RN.pt"
    save_tiny_clip(path, vision="rn", fmt="state_dict")
    return str(path)


@pytest.fixture(autouse=True)
def _notices_show_again():
    """notice_once shows a notice once per process; each test sees its notices as a fresh process would."""
    logger = sys.modules.get("dasslite.utils.logger")  # not imported here: a test may check what imports what
    if logger is not None:
        logger.forget_notices()


def pytest_collection_modifyitems(config, items):
    """Tests marked `cuda` are skipped, with the reason, where torch sees no CUDA device."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (torch.cuda.is_available() is False); benchmarks/gpu_check.sh runs it")
    for item in items:
        if item.get_closest_marker("cuda") is not None:  # the marker, not a test id that says cuda
            item.add_marker(skip)
