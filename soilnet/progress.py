"""Progress bars for long work, quiet when not attached to a terminal or when disabled."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def enabled() -> bool:
    """Progress bars show on a terminal unless ``SOILNET_PROGRESS=0``."""
    flag = os.environ.get("SOILNET_PROGRESS")
    if flag is not None:
        return flag not in ("0", "false", "no")
    return sys.stderr.isatty()


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar labelled ``desc``."""
    yield from tqdm(items, desc=desc, total=total, disable=not enabled(), leave=False, dynamic_ncols=True)
