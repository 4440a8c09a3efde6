"""Executors for sweeps: a local process pool or a ``dask.distributed`` cluster, with a function that releases it."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Callable
from typing import Any

from . import _checks
from .errors import ParameterError

__all__ = ["make_executor"]


def _nothing() -> None:
    return None


_CONNECT_TIMEOUT = 20.0


def _connect(client_cls: Any, address: str, timeout: float) -> Any:
    """``Client(address)`` with a hard deadline.

    A peer that accepts TCP but never completes dask's handshake (say, an HTTP server) can stall the client past
    its own timeout, so the connection runs in a daemon thread that is abandoned at the deadline.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["client"] = client_cls(address, timeout=f"{timeout}s")
        except Exception as exc:  # any failure to connect is the user's address, reported as such
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name="scalinglaw-dask-connect")
    thread.start()
    thread.join(timeout + 5.0)
    if "client" in box:
        return box["client"]
    reason = f"{type(box['error']).__name__}: {box['error']}" if "error" in box else f"no answer in {timeout:g} s"
    raise ParameterError("--dask", address, f"be the address of a reachable dask scheduler ({reason})")


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
        client = _connect(Client, dask, _CONNECT_TIMEOUT)
        return client.get_executor(), client.close
    if workers is None or _checks.integer("--workers", workers, minimum=1) == 1:
        return None, _nothing
    pool = cf.ProcessPoolExecutor(max_workers=int(workers))
    return pool, pool.shutdown
