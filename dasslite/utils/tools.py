"""Small helpers that have no better home."""

import datetime
import logging

from .io import mkdir_if_missing  # noqa: F401 (Dassl's dassl.utils.tools defines it; ported files import it here)

logger = logging.getLogger(__name__)


def tolist_if_not(x):
    """x as a list: a list stays as it is, anything else is wrapped (Dassl's)."""
    return x if isinstance(x, list) else [x]


def collect_env_info():
    """torch's environment report plus the Pillow version; never raises (it only feeds the log)."""
    try:
        from torch.utils.collect_env import get_pretty_env_info

        text = get_pretty_env_info()
    except Exception as exc:  # the report shells out to nvidia-smi, pip, ...; any of it may fail
        text = f"(torch environment report unavailable: {exc})"
    try:
        import PIL

        text += f"\n        Pillow ({PIL.__version__})"
    except Exception:
        pass
    return text


def format_seconds(seconds):
    """H:MM:SS, as the reference prints `Elapsed:` and ETAs."""
    return str(datetime.timedelta(seconds=int(round(seconds))))
