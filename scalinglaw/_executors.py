"""Executors for sweeps: a local process pool or a ``dask.distributed`` cluster, with a function that releases it."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Callable
from typing import Any

from . import _checks
from .errors import ParameterError
from .resources import require_workers

__all__ = ["make_executor"]


def _nothing() -> None:
    return None


_CONNECT_TIMEOUT = 20.0
#: How long a scheduler may go without any worker before the run is refused (a scheduler with no workers would
#: otherwise hold every task forever).
_WORKER_TIMEOUT = 20.0


def _connect(client_cls: Any, address: str, timeout: float, worker_timeout: float = _WORKER_TIMEOUT) -> Any:
    """``Client(address)`` with a hard deadline, then a deadline for at least one worker.

    A peer that accepts TCP but never completes dask's handshake (say, an HTTP server) can stall the client past
    its own timeout, so the connection runs in a daemon thread that is abandoned at the deadline. A scheduler
    without workers accepts tasks and never runs them, so the client also waits at most ``worker_timeout`` for a
    worker to join.
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
        client = box["client"]
        try:
            client.wait_for_workers(1, timeout=worker_timeout)
        except Exception:  # TimeoutError (or the scheduler went away): no worker to run the tasks
            client.close()
            raise ParameterError("--dask", address, f"be a scheduler with at least one worker (none joined within "
                                 f"{worker_timeout:g} s; start one with: dask worker {address})") from None
        return client
    reason = f"{type(box['error']).__name__}: {box['error']}" if "error" in box else f"no answer in {timeout:g} s"
    raise ParameterError("--dask", address, f"be the address of a reachable dask scheduler ({reason})")


def make_executor(workers: Any = None, dask: str | None = None, *, force_workers: bool = False
                  ) -> tuple[cf.Executor | None, Callable[[], None]]:
    """The executor for ``--workers W`` or ``--dask ADDRESS`` (``None`` = serial) and the function that releases it.

    Raises :class:`~scalinglaw.errors.ParameterError` for a bad worker count, more workers than the CPUs this
    process may use (unless ``force_workers``), both options at once, a missing ``dask`` extra, a scheduler that
    cannot be reached (20 s timeout) or one with no worker (20 s more).
    """
    if workers is not None and dask is not None:
        raise ParameterError("--workers", workers, "be omitted when --dask is given")
    if dask is not None:
        try:
            from distributed import Client
        except ImportError:
            raise ParameterError("--dask", dask, "be used with the dask extra installed "
                                 "(pip install 'scalinglaw[dask]')") from None
        client = _connect(Client, dask, _CONNECT_TIMEOUT, _WORKER_TIMEOUT)
        return client.get_executor(), client.close
    if workers is None:
        return None, _nothing
    n = int(_checks.integer("--workers", workers, minimum=1))
    require_workers(n, "--workers", force=force_workers)
    if n == 1:
        return None, _nothing
    pool = cf.ProcessPoolExecutor(max_workers=n)
    return pool, pool.shutdown
