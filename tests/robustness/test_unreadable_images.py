"""An image that cannot be read is reported with its path and the reason
(permission denied, over PIL's size limit, truncated); `--check-data` (DATASET.CHECK_DATA) decodes
every image of the splits once before training and lists all bad files at once."""

import errno
import io
import os
import threading

import pytest
from PIL import Image

import train
from dasslite.data import images
from dasslite.data.images import BadImagesError, ImageReadError, read_image

from .conftest import train_argv


def jpeg(size=(32, 32)):
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 100, 50)).save(buf, format="JPEG")
    return buf.getvalue()


def test_unreadable_image_truncated_names_path_and_reason(tmp_path):
    path = tmp_path / "cut.jpg"
    path.write_bytes(jpeg()[:200])
    with pytest.raises(ImageReadError, match=rf'"{path}": truncated'):
        read_image(str(path))


def test_unreadable_image_not_an_image_names_path_and_reason(tmp_path):
    path = tmp_path / "fake.jpg"
    path.write_text("<html>404</html>")
    with pytest.raises(ImageReadError, match=rf'"{path}": corrupt or not an image'):
        read_image(str(path))


def test_unreadable_image_over_pil_size_limit_names_path_and_reason(tmp_path, monkeypatch):
    path = tmp_path / "huge.jpg"
    path.write_bytes(jpeg((64, 64)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 4096 pixels: over twice the limit
    with pytest.raises(ImageReadError, match=rf"\"{path}\": it is over PIL's size limit"):
        read_image(str(path))


def test_unreadable_image_permission_denied_names_path_and_reason(tmp_path, monkeypatch):
    path = tmp_path / "locked.jpg"
    path.write_bytes(jpeg())

    def denied(fp, *a, **k):  # what open() raises on a file without read access (root bypasses chmod)
        raise PermissionError(errno.EACCES, "Permission denied", fp)

    monkeypatch.setattr(images.Image, "open", denied)
    with pytest.raises(ImageReadError, match=rf'"{path}": permission denied'):
        read_image(str(path))


def test_a_named_pipe_with_an_image_name_is_refused_without_reading_it(tmp_path):
    """Opening a FIFO blocks until a writer comes: predict.py over such a folder hung for ever."""
    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    outcome = []

    def read():
        try:
            read_image(str(path))
        except ImageReadError as e:
            outcome.append(str(e))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert not reader.is_alive(), "read_image blocked on a named pipe"
    assert outcome and f'"{path}": not a regular file' in outcome[0]


def test_check_data_lists_every_bad_image_before_training(tmp_path, pets_root, tiny_clip_path):
    image_dir = os.path.join(pets_root, "oxford_pets", "images")
    bad = sorted(os.path.join(image_dir, f) for f in os.listdir(image_dir))[:2]
    with open(bad[0], "wb") as f:
        f.write(jpeg()[:200])
    with open(bad[1], "w") as f:
        f.write("not an image")
    out = tmp_path / "out"
    with pytest.raises(BadImagesError) as info:
        train.main(train_argv(pets_root, out, tiny_clip_path, flags=("--check-data",)))
    msg = str(info.value)
    assert msg.startswith("2 of the ") and all(p in msg for p in bad), msg
    assert "truncated" in msg and "corrupt or not an image" in msg
    assert not (out / "prompt_learner").exists() and not (out / "metrics.json").exists()


def test_check_data_key_is_off_by_default_and_passes_good_data(tmp_path, pets_root):
    from dasslite.config import get_cfg_default
    from dasslite.data.build import build_dataset
    from tests.datasets.conftest import make_cfg

    assert get_cfg_default().DATASET.CHECK_DATA is False
    ds = build_dataset(make_cfg(pets_root, "OxfordPets"))
    paths = [d.impath for items in (ds.train_x, ds.val, ds.test) for d in items]
    assert images.check_images(paths + paths[:3], num_workers=2) == len(paths)
