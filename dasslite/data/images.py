"""Reading one image file as 8-bit RGB, with errors that name the file and the reason."""

import errno
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from ..errors import UserError, UserFileNotFoundError

CHECK_CHUNK = 1024  # images handed to the decoding threads at a time
HIGH_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


class ImageReadError(UserError, OSError):
    """An image that cannot be read: the message names the file, the reason and the fix."""


def to_8bit(img):
    """16-bit, 32-bit integer and float images scaled to 8 bits (PIL's convert("RGB") clips them).

    16-bit data (and 32-bit integers within 0..65535, as PIL opens some 16-bit PNGs) map 0..65535
    to 0..255; float data within 0..1 maps to 0..255; anything else is stretched from its own
    minimum and maximum, so no image turns all white or all black.
    """
    values = np.asarray(img, dtype=np.float64)
    low, high = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if img.mode == "F" and low >= 0.0 and high <= 1.0:
        scaled = values * 255.0
    elif img.mode != "F" and low >= 0 and high <= 65535:
        scaled = values / 257.0
    else:
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def read_image(path):
    """The image at `path` as 8-bit RGB; any failure is an ImageReadError naming the file and why."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # reading a named pipe or a device would never end
            raise ImageReadError(
                f'Cannot read image "{path}": not a regular file (a named pipe, socket or device); remove it'
            )
        with Image.open(path) as img:
            img.load()
            if img.mode in HIGH_DEPTH_MODES:
                img = to_8bit(img)
            return img.convert("RGB")
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise UserFileNotFoundError(f'Image file not found: "{path}"') from None
    except PermissionError as e:
        raise ImageReadError(
            f'Cannot read image "{path}": permission denied ({e.strerror}); give this user read access to it'
        ) from None
    except Image.DecompressionBombError as e:
        raise ImageReadError(
            f'Cannot read image "{path}": it is over PIL\'s size limit ({e}); resize it or remove it from the dataset'
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        if isinstance(e, OSError) and e.errno in (errno.EACCES, errno.EPERM):
            raise ImageReadError(f'Cannot read image "{path}": permission denied ({e})') from None
        reason = "truncated" if "truncated" in str(e).lower() else "corrupt or not an image"
        raise ImageReadError(
            f'Cannot decode image "{path}": {reason} ({e}); replace the file (download or extract it again) '
            f"or remove it from the dataset"
        ) from None


class BadImagesError(ImageReadError):
    """`--check-data` found images that cannot be read; the message lists every one."""


def _problem(path):
    try:
        read_image(path)
    except (OSError, ValueError) as e:
        return str(e)
    return None


def unreadable_images(paths, num_workers=0, desc="check data"):
    """Decode every image once (a progress bar with ETA); the message of each one that cannot be read.

    Decoding runs in threads (PIL releases the GIL while it decodes), as many as `num_workers` (the
    loader's DATALOADER.NUM_WORKERS), so the check takes about as long as one epoch of loading.
    """
    paths = list(dict.fromkeys(paths))  # an image in two splits is decoded once
    bad = []
    with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool, tqdm(total=len(paths), desc=desc) as bar:
        for start in range(0, len(paths), CHECK_CHUNK):  # chunks: no million pending futures at once
            for problem in pool.map(_problem, paths[start : start + CHECK_CHUNK]):
                bad += [problem] if problem else []
                bar.update()
    return bad


def check_images(paths, num_workers=0):
    """Decode every image once; raise BadImagesError listing all bad ones, else return how many were read."""
    paths = list(dict.fromkeys(paths))
    bad = unreadable_images(paths, num_workers)
    if bad:
        listed = "\n  ".join(bad)
        raise BadImagesError(
            f"{len(bad)} of the {len(paths)} images cannot be read:\n  {listed}\nReplace or remove these "
            f"files (for a benchmark, extract it again), then run again."
        )
    return len(paths)
