"""Optional progress bars: tqdm when installed and enabled, a no-op otherwise."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")

try:  # tqdm is an optional extra
    from tqdm import tqdm as _tqdm
except ImportError:  # pragma: no cover - exercised only without tqdm
    _tqdm = None


def progress(it: Iterable[T], total: int | None = None, enabled: bool = True, desc: str = "") -> Iterable[T]:
    """Wrap ``it`` in a tqdm bar when ``enabled`` and tqdm is installed; otherwise return it unchanged."""
    if not enabled or _tqdm is None:
        return it
    return _tqdm(it, total=total, desc=desc)


def available() -> bool:
    return _tqdm is not None


__all__ = ["available", "progress"]
