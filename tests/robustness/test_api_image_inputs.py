"""Run.predict / Run.logits take paths, PIL images and preprocessed tensors at the run's crop size;
anything else is a ConfigError saying what is expected (it was an AttributeError or a conv2d shape
error from deep inside the model)."""

import os

import numpy as np
import pytest
import torch
from PIL import Image

import coop_toolkit as ct
from dasslite.errors import ConfigError


@pytest.fixture(scope="module")
def run(trained_coop):
    return ct.load_run(str(trained_coop[1]))


@pytest.mark.parametrize(
    "images, expected",
    [
        ([torch.zeros(3, 5, 5)], r"must be \(3, 224, 224\) or \(B, 3, 224, 224\)"),
        ([torch.zeros(5, 5)], r"not \(5, 5\)"),
        (torch.zeros(2, 1, 224, 224), r"not \(1, 1, 224, 224\)"),
        ([np.zeros((30, 30, 3), dtype=np.uint8)], r"not ndarray \(for a numpy array: Image.fromarray"),
        ([None], "not NoneType"),
        (None, "a list or iterable of them, not NoneType"),
        (torch.zeros(1, 3, 224, 224, dtype=torch.uint8), r"must be floating point.*not torch.uint8"),
        (torch.full((3, 224, 224), float("nan")), "NaN or infinite"),
    ],
    ids=["small_tensor", "2d_tensor", "one_channel_batch", "numpy", "none", "not_a_list", "uint8_pixels", "nan"],
)
def test_other_inputs_are_a_config_error_saying_what_is_expected(run, images, expected):
    with pytest.raises(ConfigError, match=expected):
        run.predict(images)


def test_a_tensor_at_the_crop_size_is_classified_as_before(run):
    batch = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    assert torch.equal(run.logits(batch), run.logits([batch[0], batch[1]]))
    assert [p.label for p in run.predict(batch)] == run.logits(batch).argmax(-1).tolist()


def test_a_bytes_path_names_the_file_as_its_decoded_name_does(run, tmp_path):
    """os.listdir(bytes) gives names that are not valid UTF-8; such a name is a path like any other."""
    name = tmp_path / os.fsdecode(b"caf\xe9.png")
    Image.new("RGB", (40, 30), (200, 30, 30)).save(name)
    (by_bytes,) = run.predict([os.fsencode(name)], topk=2)
    (by_str,) = run.predict([name], topk=2)
    assert by_bytes.error is None and by_bytes.path == str(name) and by_bytes.topk == by_str.topk
