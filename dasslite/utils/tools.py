"""Small helpers that have no better home."""

import datetime
import logging

logger = logging.getLogger(__name__)


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
