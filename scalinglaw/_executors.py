"""Executors for sweeps: a local process pool or a ``dask.distributed`` cluster, with a function that releases it."""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable
from typing import Any

from . import _checks
from .errors import ParameterError

__all__ = ["make_executor"]


def _nothing() -> None:
    return None


def make_executor(workers: Any = None, dask: str | None = None) -> tuple[cf.Executor | None, Callable[[], None]]:
    """The executor for ``--workers W`` or ``--dask ADDRESS`` (``None`` = serial) and the function that releases it.

    Raises :class:`~scalinglaw.errors.ParameterError` for a bad worker count, both options at once, a missing
    ``dask`` extra, or a scheduler that cannot be reached (20 s timeout).
    """
    if workers is not None and dask is not None:
        raise ParameterError("--workers", workers, "be omitted when --dask is given")
    if dask is not None:
        try:
            from distributed import Client
        except ImportError:
            raise ParameterError("--dask", dask, "be used with the dask extra installed "
                                 "(pip install 'scalinglaw[dask]')") from None
        try:
            client = Client(dask, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise ParameterError("--dask", dask, f"be the address of a reachable scheduler ({exc})") from None
        return client.get_executor(), client.close
    if workers is None or _checks.integer("--workers", workers, minimum=1) == 1:
        return None, _nothing
    pool = cf.ProcessPoolExecutor(max_workers=int(workers))
    return pool, pool.shutdown
