r"""Resource estimates before heavy work: refuse, naming the flag, what this machine cannot do in reasonable time.

Heavy entry points (the simulator, the bootstrap of a fit, a frontier over many budgets, sketches of
:math:`M\times d` matrices, ...) first build an :class:`Estimate` of their peak memory and their wall time (an
order of magnitude, from a cost model of operation counts) and call :func:`require`. It raises
:class:`ResourceError` (a :class:`~scalinglaw.errors.ParameterError`, so the CLI prints one line naming the
flag) when the estimate exceeds the machine's limits (:func:`machine_limits`):

* memory: the memory the operating system reports as available (``MemAvailable``), or the environment variable
  ``SCALINGLAW_MAX_MEMORY`` (bytes, suffixes ``K M G T`` accepted);
* time: five minutes by default, or ``SCALINGLAW_MAX_SECONDS``;
* processes: the CPUs this process may run on (``os.sched_getaffinity``, else ``os.cpu_count``).

The estimates are orders of magnitude, so the limits are generous: they stop runaway sizes (a 52 GiB bootstrap,
10^30 simulated steps) before they take the machine, not runs that are merely long.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from .errors import ParameterError

__all__ = [
    "Estimate",
    "Limits",
    "ResourceError",
    "available_cpus",
    "format_bytes",
    "format_seconds",
    "machine_limits",
    "require",
    "require_workers",
]

#: Default wall-time limit (seconds) when ``SCALINGLAW_MAX_SECONDS`` is not set: runs estimated longer are refused
#: before they start (they would otherwise run for many minutes with no result).
DEFAULT_MAX_SECONDS = 300.0
#: Used when the operating system does not report available memory.
FALLBACK_MEMORY = 4 * 2**30
#: Order-of-magnitude throughput of vectorised NumPy float64 work on one core (simple operations per second),
#: used to turn operation counts into seconds.
OPS_PER_SECOND = 1e8


class ResourceError(ParameterError):
    """A run would need more memory, time or processes than this machine allows.

    Attributes
    ----------
    estimate : Estimate
        What the run would need.
    limits : Limits
        What the machine allows.
    """

    def __init__(self, name: str, value: Any, requirement: str, estimate: Estimate | None = None,
                 limits: Limits | None = None) -> None:
        self.estimate = estimate
        self.limits = limits
        super().__init__(name, value, requirement)


@dataclass(frozen=True)
class Limits:
    """What a run may use on this machine: bytes of memory, seconds of wall time, worker processes."""

    memory: float
    seconds: float
    cpus: int
    memory_source: str = "available memory"
    seconds_source: str = "default limit"


@dataclass(frozen=True)
class Estimate:
    """The peak memory (bytes) and the wall time (seconds, an order of magnitude) of a piece of work.

    ``what`` names the work in messages (e.g. ``"the bootstrap"``).
    """

    what: str
    memory: float = 0.0
    seconds: float = 0.0

    @classmethod
    def from_ops(cls, what: str, *, memory: float = 0.0, ops: float = 0.0, ops_per_second: float = OPS_PER_SECOND
                 ) -> Estimate:
        """An estimate from an operation count (``ops`` simple float64 operations)."""
        return cls(what, float(memory), float(ops) / ops_per_second)


def available_cpus() -> int:
    """The number of CPUs this process may run on (affinity mask, else ``os.cpu_count()``, at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - platforms without affinity
        return max(1, os.cpu_count() or 1)


def _available_memory() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024.0
    except (OSError, ValueError, IndexError):
        pass
    try:  # POSIX fallback
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


_SUFFIX = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _env_number(name: str, *, suffixes: bool = False) -> float | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    scale = 1.0
    if suffixes:
        unit = text[-1:].upper()
        if unit == "B":
            text, unit = text[:-1], text[-2:-1].upper()
        if unit in _SUFFIX and unit:
            text, scale = text[:-1], float(_SUFFIX[unit])
    try:
        value = float(text) * scale
    except ValueError:
        raise ParameterError(name, os.environ[name], "be a positive number (environment variable)") from None
    if not value > 0 or math.isnan(value):
        raise ParameterError(name, os.environ[name], "be a positive number (environment variable)")
    return value


def machine_limits() -> Limits:
    """The limits :func:`require` checks against (read each time: environment variables may change)."""
    mem = _env_number("SCALINGLAW_MAX_MEMORY", suffixes=True)
    mem_source = "SCALINGLAW_MAX_MEMORY"
    if mem is None:
        avail = _available_memory()
        mem, mem_source = (avail, "available memory") if avail else (float(FALLBACK_MEMORY), "assumed memory")
    secs = _env_number("SCALINGLAW_MAX_SECONDS")
    secs_source = "SCALINGLAW_MAX_SECONDS"
    if secs is None:
        secs, secs_source = DEFAULT_MAX_SECONDS, "default limit"
    return Limits(memory=mem, seconds=secs, cpus=available_cpus(), memory_source=mem_source,
                  seconds_source=secs_source)


def format_bytes(n: float) -> str:
    """``52.2 GiB``-style text."""
    if not math.isfinite(n):
        return "an unbounded amount of memory"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if abs(n) < 1024 or unit == "EiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{n:.0f} B"
        n /= 1024.0
    return f"{n:.3g} EiB"  # pragma: no cover


def format_seconds(s: float) -> str:
    """``3 hours``-style text (an order of magnitude: two significant digits at most)."""
    if not math.isfinite(s) or s > 1e12:
        return f"about 1e{math.log10(s):.0f} s" if math.isfinite(s) else "forever"
    for unit, size in (("years", 3.15e7), ("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if s >= size:
            return f"about {s / size:.2g} {unit}"
    return f"about {s:.2g} s"


def require(estimate: Estimate, name: str, value: Any, *, hint: str = "", limits: Limits | None = None) -> None:
    """Refuse ``estimate`` if it exceeds the machine's limits, blaming parameter ``name`` (its value ``value``).

    The message states the estimate, the limit and where the limit comes from (and ``hint``, e.g. which other
    flags also drive the cost), e.g. ``--boot must be smaller: the bootstrap would need about 52.2 GiB of memory
    (limit 18 GiB: available memory; SCALINGLAW_MAX_MEMORY sets it), got 1e9``.
    """
    lim = limits if limits is not None else machine_limits()
    extra = f"; {hint}" if hint else ""

    def source(text: str, env: str) -> str:
        return f"set by {env}" if text == env else f"{text}; {env} sets it"

    if not estimate.memory <= lim.memory:
        raise ResourceError(
            name, value,
            f"be smaller: {estimate.what} would need {format_bytes(estimate.memory)} of memory (limit "
            f"{format_bytes(lim.memory)}, {source(lim.memory_source, 'SCALINGLAW_MAX_MEMORY')}){extra}",
            estimate, lim)
    if not estimate.seconds <= lim.seconds:
        raise ResourceError(
            name, value,
            f"be smaller: {estimate.what} would take {format_seconds(estimate.seconds)} (limit "
            f"{format_seconds(lim.seconds)}, {source(lim.seconds_source, 'SCALINGLAW_MAX_SECONDS')}){extra}",
            estimate, lim)


def require_workers(workers: int, name: str = "workers", *, force: bool = False, force_flag: str = "--force-workers",
                    limits: Limits | None = None) -> int:
    """Refuse more worker processes than CPUs this process may use, unless ``force``; returns ``workers``."""
    lim = limits if limits is not None else machine_limits()
    if workers > lim.cpus and not force:
        raise ResourceError(name, workers, f"be <= {lim.cpus}, the CPUs this process may use (more processes only "
                            f"compete for them; {force_flag} starts them anyway)", None, lim)
    return workers
