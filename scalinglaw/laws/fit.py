r"""Fit a law's constants to a user's training runs (Chinchilla approach 3, as refined by Besiroglu et al.).

Method (Hoffmann et al. 2022 §D.2; Besiroglu et al. 2024):

* Objective: the Huber loss of the log-loss residuals, :math:`\sum_i \mathrm{Huber}_\delta(\log \hat L_i -
  \log L_i)` with :math:`\delta = 10^{-3}` by default.
* Parametrisation: positive constants by their logs (:math:`A = e^a`, ...); bias constants (Kumar's
  :math:`n_x`, :math:`b`) directly. Tied constants (Kumar's and Chen's :math:`\beta = \alpha`) share one parameter.
* Optimiser: ``scipy.optimize.minimize(method="L-BFGS-B")`` with analytic gradients (SymPy derivatives of each
  term, compiled once), started from a grid of initialisations. The whole grid is evaluated (vectorised) and
  L-BFGS-B runs from the ``n_starts`` best grid points; the best optimum wins. (Hoffmann ran L-BFGS from every
  grid point; running it from the best few is a speed refinement that finds the same optimum on well-posed data.)
* Uncertainty: nonparametric bootstrap. Runs are resampled with replacement (seeded
  ``np.random.Generator``), refitted from the full-data optimum, and percentile intervals reported; the standard
  errors are the bootstrap standard deviations.

Input: :func:`read_runs` reads a CSV with a header (``N, D, loss`` plus the law's precision columns: ``P`` or
``P_w, P_a, P_kv`` (and optionally ``P_post``) for Kumar, ``E, M, B`` for Sun, ``G`` for Chen). Lines starting
with ``#`` are comments. Errors name the line and the column.

Which constants are free by default (the others stay at the law's constant set, e.g. the published values):

* ``chinchilla``: ``E, A, B, alpha, beta``.
* ``kumar``: ``A, B, E, alpha`` (``beta`` tied to ``alpha``, as in Table 2), ``gamma_w, gamma_a, gamma_kv``; the
  biases ``n_x`` and the PTQ constants stay fixed unless listed in ``free``.
* ``sun``: all eight constants.
* ``chen``: ``A, B, E, alpha`` (``beta`` tied), ``k, gamma_N, gamma_D, gamma_G``.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import io
import itertools
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, TextIO

import numpy as np
import sympy as sp
from scipy.optimize import minimize

from .. import _checks
from ..errors import ParameterError
from .base import Law
from .constants import ConstantSet

__all__ = [
    "FitResult",
    "example_path",
    "example_runs",
    "fit",
    "format_runs",
    "load_fit",
    "read_runs",
]

# ---------------------------------------------------------------------------------------------- columns
#: column -> (lower bound, inclusive, infinite allowed, description)
COLUMNS: dict[str, tuple[float, bool, bool, str]] = {
    "N": (0.0, False, False, "a positive finite number of parameters"),
    "D": (0.0, False, False, "a positive finite number of tokens"),
    "loss": (0.0, False, False, "a positive finite loss"),
    "P": (0.0, False, True, "a positive number of bits (inf = high precision)"),
    "P_w": (0.0, False, True, "a positive number of bits (inf = high precision)"),
    "P_a": (0.0, False, True, "a positive number of bits (inf = high precision)"),
    "P_kv": (0.0, False, True, "a positive number of bits (inf = high precision)"),
    "P_post": (0.0, False, True, "a positive number of bits (inf = no PTQ)"),
    "E": (0.0, True, True, "a non-negative number of exponent bits"),
    "M": (0.0, True, True, "a non-negative number of mantissa bits"),
    "B": (1.0, True, False, "a finite block size >= 1"),
    "G": (1.0, True, False, "a finite group size >= 1"),
}

#: law name -> (alternative sets of required columns besides N, D, loss; optional columns)
LAW_COLUMNS: dict[str, tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]] = {
    "chinchilla": (((),), ()),
    "kumar": ((("P",), ("P_w", "P_a", "P_kv")), ("P_post",)),
    "sun": ((("E", "M", "B"),), ()),
    "chen": ((("G",),), ()),
}

#: Default free constants and ties (follower -> leader) per law.
DEFAULT_FREE: dict[str, tuple[str, ...]] = {
    "chinchilla": ("E", "A", "B", "alpha", "beta"),
    "kumar": ("A", "B", "E", "alpha", "gamma_w", "gamma_a", "gamma_kv"),
    "sun": ("n", "alpha", "d", "beta", "epsilon", "gamma", "delta", "nu"),
    "chen": ("A", "B", "E", "alpha", "k", "gamma_N", "gamma_D", "gamma_G"),
}
DEFAULT_TIES: dict[str, dict[str, str]] = {"kumar": {"beta": "alpha"}, "chen": {"beta": "alpha"}}

#: Default initialisation grids (values, not logs), in the spirit of Hoffmann et al.'s grid.
DEFAULT_GRID: dict[str, dict[str, Sequence[float]]] = {
    "chinchilla": {
        "A": tuple(math.exp(a) for a in (0, 5, 10, 15, 20, 25)),
        "B": tuple(math.exp(b) for b in (0, 5, 10, 15, 20, 25)),
        "E": tuple(math.exp(e) for e in (-1, -0.5, 0, 0.5, 1)),
        "alpha": (0.1, 0.5, 1.0, 1.5),
        "beta": (0.1, 0.5, 1.0, 1.5),
    },
    "kumar": {
        "A": (1e2, 1e3, 1e4, 1e5, 1e6),
        "B": (1e2, 1e3, 1e4, 1e5, 1e6),
        "E": (1.5, 2.5, 3.5),
        "alpha": (0.25, 0.5, 0.75),
        "gamma_w": (1.5, 3.0, 5.0),
        "gamma_a": (1.0, 2.0),
        "gamma_kv": (0.5, 1.0),
    },
    "sun": {
        "n": (10.0, 100.0),
        "alpha": (0.2, 0.4),
        "d": (1e3, 1e5),
        "beta": (0.3, 0.6),
        "epsilon": (1.5, 2.5),
        "gamma": (1e3, 1e5),
        "delta": (1.0, 3.0),
        "nu": (1.0, 3.0),
    },
    "chen": {
        "A": (1e2, 1e3),
        "B": (1e2, 1e3),
        "E": (1.5, 2.5),
        "alpha": (0.2, 0.4),
        "k": (0.05, 0.3),
        "gamma_N": (0.1, 0.3),
        "gamma_D": (0.05, 0.15),
        "gamma_G": (0.3, 1.0),
    },
}

#: Constants that may have either sign (fitted directly, not through their log).
SIGNED = frozenset({"n_w", "n_a", "n_kv", "b"})
#: Exponent-like constants: bounded to [1e-3, 10].
EXPONENTS = frozenset({"alpha", "beta", "gamma_D", "gamma_N", "gamma_G", "delta", "nu", "gamma_post"})
_BIG_OBJECTIVE = 1e10
#: (law class, options, differentiated constants) -> [(term, compiled (value, *derivatives), constants)]
_GRADIENTS: dict[tuple, list[tuple[str, Any, list[str]]]] = {}


# ---------------------------------------------------------------------------------------------- reading
def _law_of(law: str | Law) -> Law:
    if isinstance(law, Law):
        return law
    if not isinstance(law, str):
        raise ParameterError("law", law, "be a law name (e.g. 'kumar' or 'chinchilla:epoch') or a Law")
    from .registry import get_law

    return get_law(law)


def _allowed_columns(law: Law) -> tuple[set[str], tuple[tuple[str, ...], ...]]:
    alternatives, optional = LAW_COLUMNS.get(law.name, (((),), ()))
    allowed = {"N", "D", "loss", *optional, *itertools.chain.from_iterable(alternatives)}
    if law.name not in LAW_COLUMNS:
        allowed |= {v.name for v in law.variables}
    return allowed, alternatives


def _open(source: str | os.PathLike[str] | TextIO) -> tuple[TextIO, str, bool]:
    if isinstance(source, str | os.PathLike):
        try:
            return open(source, newline="", encoding="utf-8"), os.fspath(source), True
        except OSError as exc:
            raise ParameterError("runs file", os.fspath(source), f"be a readable file ({exc.strerror})") from None
    if hasattr(source, "read"):
        return source, getattr(source, "name", "<stream>"), False
    raise ParameterError("runs", type(source).__name__, "be a path or a text file object")


def read_runs(source: str | os.PathLike[str] | TextIO, law: str | Law | None = None) -> dict[str, np.ndarray]:
    """Read training runs from a CSV file with a header line.

    Parameters
    ----------
    source : path or text file
        The CSV. Columns (any order): ``N``, ``D``, ``loss`` and precision columns from ``P, P_w, P_a, P_kv,
        P_post`` (Kumar), ``E, M, B`` (Sun), ``G`` (Chen). ``inf`` is allowed in precision columns (BF16, no PTQ).
        Blank lines and lines starting with ``#`` are skipped.
    law : str or Law, optional
        If given, the columns must be exactly what this law uses (``kumar``: ``P`` or ``P_w, P_a, P_kv``, optional
        ``P_post``) and every row must lie in the law's domain.

    Returns
    -------
    dict of str to ndarray
        One float array per column.

    Raises
    ------
    ParameterError
        One line naming the line number and column: unknown, duplicate or missing columns, a wrong number of
        fields, a non-numeric, missing or out-of-range value, or a row outside the law's domain.
    """
    handle, label, close = _open(source)
    try:
        text = handle.read()
    except UnicodeDecodeError as exc:
        raise ParameterError("runs file", label, f"be a UTF-8 text CSV (byte {exc.start} is not text)") from None
    finally:
        if close:
            handle.close()
    law_obj = _law_of(law) if law is not None else None
    header: list[str] | None = None
    rows: list[tuple[int, list[float]]] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in next(csv.reader([raw]))]
        if header is None:
            header = _parse_header(fields, lineno, law_obj, label)
            continue
        if len(fields) != len(header):
            raise ParameterError(
                f"{label}: line {lineno}", raw.strip(), f"have {len(header)} comma-separated fields like the header"
            )
        rows.append((lineno, [_parse_value(v, col, lineno, label) for v, col in zip(fields, header, strict=True)]))
    if header is None:
        raise ParameterError(f"{label}: line 1", "no header", "be a header line naming the columns (N,D,...,loss)")
    if not rows:
        raise ParameterError(label, "no data rows", "contain at least one run after the header")
    runs = {col: np.array([r[1][j] for r in rows], dtype=np.float64) for j, col in enumerate(header)}
    if law_obj is not None:
        _check_rows(law_obj, runs, [r[0] for r in rows], label)
    return runs


def _parse_header(fields: list[str], lineno: int, law: Law | None, label: str) -> list[str]:
    known = set(COLUMNS)
    allowed = known
    alternatives: tuple[tuple[str, ...], ...] = ((),)
    if law is not None:
        allowed, alternatives = _allowed_columns(law)
    seen: set[str] = set()
    for col in fields:
        if not col:
            raise ParameterError(f"{label}: line {lineno} (header)", ",".join(fields), "name every column")
        if col in seen:
            raise ParameterError(f"{label}: line {lineno}, column {col!r}", col, "appear only once in the header")
        seen.add(col)
        if col not in allowed:
            where = f"law {law.name} uses" if law is not None else "one of the laws uses"
            raise ParameterError(
                f"{label}: line {lineno}, column {col!r}", col, f"be a column {where}: {', '.join(sorted(allowed))}"
            )
    for col in ("N", "D", "loss"):
        if col not in seen:
            raise ParameterError(f"{label}: line {lineno} (header)", ",".join(fields), f"include the column {col!r}")
    if law is not None and not any(set(alt) <= seen for alt in alternatives):
        need = " or ".join(", ".join(alt) for alt in alternatives)
        raise ParameterError(
            f"{label}: line {lineno} (header)", ",".join(fields), f"include the column(s) {need} for law {law.name}"
        )
    return fields


def _parse_value(text: str, col: str, lineno: int, label: str) -> float:
    where = f"{label}: line {lineno}, column {col!r}"
    lower, inclusive, allow_inf, what = COLUMNS.get(col, (-math.inf, False, True, "a number"))
    if not text:
        raise ParameterError(where, "an empty field", f"be {what}")
    try:
        value = float(text)
    except ValueError:
        raise ParameterError(where, text, f"be {what}") from None
    ok = (value >= lower if inclusive else value > lower) and not math.isnan(value)
    if not ok or (math.isinf(value) and not allow_inf):
        raise ParameterError(where, text, f"be {what}")
    return value


def _check_rows(law: Law, runs: Mapping[str, np.ndarray], lines: Sequence[int], label: str) -> None:
    inputs = {k: v for k, v in runs.items() if k != "loss"}
    try:
        law._inputs(inputs)
    except ParameterError:
        pass
    else:
        return
    for i, lineno in enumerate(lines):
        try:
            law._inputs({k: v[i] for k, v in inputs.items()})
        except ParameterError as exc:
            raise ParameterError(f"{label}: line {lineno}, column {exc.name!r}", exc.value, exc.requirement) from None


def format_runs(runs: Mapping[str, Any], comments: Iterable[str] = ()) -> str:
    """CSV text of runs (header plus one line per run, ``%.7g`` numbers), with ``#`` comment lines first."""
    cols = list(runs)
    arrays = [np.atleast_1d(np.asarray(runs[c], dtype=np.float64)) for c in cols]
    n = max(a.size for a in arrays)
    arrays = [np.broadcast_to(a, (n,)) for a in arrays]
    out = io.StringIO()
    for line in comments:
        out.write(f"# {line}\n")
    out.write(",".join(cols) + "\n")
    for i in range(n):
        out.write(",".join("inf" if math.isinf(a[i]) else f"{a[i]:.7g}" for a in arrays) + "\n")
    return out.getvalue()


# ---------------------------------------------------------------------------------------------- example
EXAMPLE_COMMENTS = (
    "Synthetic Kumar-style training runs (NOT measurements): scalinglaw.laws.fit.example_runs(seed=0, noise=0.005).",
    "loss = KumarLaw('table2') (bias convention, no PTQ) * exp(0.005 * z), z ~ N(0, 1) from numpy default_rng(0).",
    "N: parameters; D: tokens; P_w, P_a, P_kv: training precision in bits (inf = BF16 high precision).",
)


def example_runs(seed: int = 0, noise: float = 0.005) -> dict[str, np.ndarray]:
    """The synthetic Kumar-style runs shipped as ``scalinglaw/data/example_runs.csv`` (40 runs).

    The design is Kumar et al.'s sweep: :math:`N \\in \\{30, 60, 110, 220\\}` M times
    :math:`D \\in \\{1.5, 3, 6, 13, 26\\}` B, two runs per (N, D), whose precision configurations
    ``(P_w, P_a, P_kv)`` cycle through BF16, tied 4, 5, 6, 8 bits, and one part at a time in low precision
    (3-bit weights, 4-bit activations, 4-bit KV cache). The losses are the Table 2 law (bias convention, no PTQ)
    times independent lognormal noise :math:`e^{\\sigma z}`, :math:`z \\sim N(0,1)` from
    ``np.random.default_rng(seed)``, then written with 7 significant digits.

    Parameters
    ----------
    seed : int
        Seed of the noise.
    noise : float
        :math:`\\sigma`, the standard deviation of the log-loss noise.

    Returns
    -------
    dict of str to ndarray
        Columns ``N, D, P_w, P_a, P_kv, loss``.
    """
    from .kumar import KumarLaw

    inf = math.inf
    configs = [
        (inf, inf, inf),
        (4.0, 4.0, 4.0),
        (6.0, 6.0, 6.0),
        (8.0, 8.0, 8.0),
        (3.0, inf, inf),
        (inf, 4.0, inf),
        (inf, inf, 4.0),
        (5.0, 5.0, 5.0),
    ]
    rows = []
    pairs = list(itertools.product((30e6, 60e6, 110e6, 220e6), (1.5e9, 3e9, 6e9, 13e9, 26e9)))
    for i, (N, D) in enumerate(pairs):
        for j in range(2):
            rows.append((N, D, *configs[(2 * i + j) % len(configs)]))
    arr = np.array(rows)
    law = KumarLaw("table2")
    clean = law(N=arr[:, 0], D=arr[:, 1], P_w=arr[:, 2], P_a=arr[:, 3], P_kv=arr[:, 4])
    rng = np.random.default_rng(seed)
    loss = clean * np.exp(noise * rng.standard_normal(clean.shape))
    out = {"N": arr[:, 0], "D": arr[:, 1], "P_w": arr[:, 2], "P_a": arr[:, 3], "P_kv": arr[:, 4], "loss": loss}
    # round-trip through the file format so that the function and the shipped file agree exactly
    return read_runs(io.StringIO(format_runs(out)))


def example_path() -> Any:
    """Path (a ``Traversable``) of the shipped example, ``scalinglaw/data/example_runs.csv``."""
    return resources.files("scalinglaw") / "data" / "example_runs.csv"


# ---------------------------------------------------------------------------------------------- BLAS threads
def _openblas_thread_controls() -> list[tuple[Any, Any]]:
    """(get, set) thread-count functions of the OpenBLAS libraries loaded in this process (Linux only)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as fh:
            paths = sorted({line.split()[-1] for line in fh if "openblas" in line.lower() and "/" in line})
    except OSError:
        return []
    controls = []
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in itertools.product(("scipy_openblas", "openblas"), ("", "64_", "_64")):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                get.restype = ctypes.c_int
                controls.append((get, put))
                break
    return controls


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Run BLAS on one thread while fitting.

    L-BFGS-B makes many tiny BLAS calls; with OpenBLAS's thread pool each costs about a millisecond of thread
    wake-up (50 times the single-threaded cost), which dominates a fit. Uses threadpoolctl when installed, else
    OpenBLAS's own ``*_set_num_threads`` through ctypes; restores the previous settings afterwards.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        with threadpool_limits(1, user_api="blas"):
            yield
        return
    controls = _openblas_thread_controls()
    previous = [int(get()) for get, _ in controls]
    for _, put in controls:
        put(1)
    try:
        yield
    finally:
        for (_, put), n in zip(controls, previous, strict=True):
            put(max(n, 1))


# ---------------------------------------------------------------------------------------------- objective
@dataclass
class _Problem:
    """Huber loss of log residuals for a law, with analytic gradients in the fit parameters."""

    law: Law
    args: list[np.ndarray]
    y: np.ndarray
    params: list[str]
    groups: dict[str, list[str]]
    bounds: list[tuple[float, float]]
    delta: float
    term_fns: list[tuple[str, Any, list[str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        from .numeric import compile_expression

        names = list(self.law.constant_names)
        self._names = names
        self._fixed = {c: self.law.constants[c] for c in names}
        self._log = {p: p not in SIGNED for p in self.params}
        free_consts = [c for p in self.params for c in self.groups[p]]
        cache_key = (type(self.law).__qualname__, tuple(sorted(self.law.options.items())), tuple(free_consts))
        if cache_key not in _GRADIENTS:
            syms = [v.symbol for v in self.law.variables] + [self.law.constant_symbol(c) for c in names]
            fns = []
            for t, expr in self.law.terms().items():
                consts = [c for c in free_consts if self.law.constant_symbol(c) in expr.free_symbols]
                derivs = [sp.diff(expr, self.law.constant_symbol(c)) for c in consts]
                fn = compile_expression(("fit-grad", *cache_key, t), sp.Tuple(expr, *derivs), syms)
                fns.append((t, fn, consts))
            _GRADIENTS[cache_key] = fns
        self.term_fns = list(_GRADIENTS[cache_key])
        self._masks: dict[str, np.ndarray] = self.law._zero_masks(list(self.args))
        self._logy = np.log(self.y)
        self._inf_rows = np.zeros(self.y.shape, dtype=bool)
        for a in self.args:
            self._inf_rows |= np.isinf(a)
        self._n = self.y.size

    # parameters <-> constants
    def values(self, theta: np.ndarray) -> dict[str, float]:
        out = dict(self._fixed)
        for p, th in zip(self.params, np.broadcast_to(theta, (len(self.params),)), strict=True):
            v = math.exp(th) if self._log[p] else float(th)
            for c in self.groups[p]:
                out[c] = v
        return out

    def theta(self, values: Mapping[str, float]) -> np.ndarray:
        return np.array([math.log(values[p]) if self._log[p] else values[p] for p in self.params])

    def _huber(self, r: np.ndarray) -> np.ndarray:
        a = np.abs(r)
        return np.where(a <= self.delta, 0.5 * r * r, self.delta * (a - 0.5 * self.delta))

    def predict_grid(self, thetas: np.ndarray) -> np.ndarray:
        """Predicted losses, shape (len(thetas), n), for many parameter vectors at once."""
        cols = {c: np.full((thetas.shape[0], 1), v) for c, v in self._fixed.items()}
        for j, p in enumerate(self.params):
            v = np.exp(thetas[:, j : j + 1]) if self._log[p] else thetas[:, j : j + 1]
            for c in self.groups[p]:
                cols[c] = v
        cargs = [cols[c] for c in self._names]
        total = np.zeros((thetas.shape[0], self._n))
        args = [a[None, :] for a in self.args]
        with np.errstate(all="ignore"):
            for t in self.law.terms():
                val = np.asarray(self.law.compile(t)(*args, *cargs), dtype=np.float64) + total * 0
                if t in self._masks:
                    val = np.where(self._masks[t][None, :], 0.0, val)
                total = total + val
        return total

    def objective_grid(self, thetas: np.ndarray, chunk: int = 2_000_000) -> np.ndarray:
        step = max(1, chunk // max(self._n, 1))
        out = []
        for i in range(0, thetas.shape[0], step):
            pred = self.predict_grid(thetas[i : i + step])
            with np.errstate(all="ignore"):
                obj = self._huber(np.log(pred) - self._logy[None, :]).sum(axis=1)
            out.append(np.where(np.isfinite(obj), obj, np.inf))
        return np.concatenate(out)

    def predict_with_grad(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """Predicted losses (n,) and their derivatives in the parameters (n_params, n)."""
        vals = self.values(theta)
        cargs = [vals[c] for c in self._names]
        total = np.zeros(self._n)
        dconst: dict[str, np.ndarray] = {}
        with np.errstate(all="ignore"):
            for t, fn, consts in self.term_fns:
                out = fn(*self.args, *cargs)
                val = np.asarray(out[0], dtype=np.float64) + total * 0
                mask = self._masks.get(t)
                if mask is not None:
                    val = np.where(mask, 0.0, val)
                total = total + val
                for c, g in zip(consts, out[1:], strict=True):
                    g = np.asarray(g, dtype=np.float64) + total * 0
                    # 0*inf at infinite precisions: the limit of the derivative there is 0 (e.g. P e^{-P/gamma})
                    bad = np.isnan(g) & self._inf_rows
                    if mask is not None:
                        bad |= mask
                    dconst[c] = dconst.get(c, 0.0) + np.where(bad, 0.0, g)
        grad = np.zeros((len(self.params), self._n))
        for j, p in enumerate(self.params):
            dp = sum((dconst.get(c, 0.0) for c in self.groups[p]), np.zeros(self._n))
            grad[j] = dp * (vals[self.groups[p][0]] if self._log[p] else 1.0)
        return total, grad, vals

    def value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Scaled objective and its gradient (for L-BFGS-B)."""
        total, dtot, _ = self.predict_with_grad(theta)
        with np.errstate(all="ignore"):
            r = np.log(total) - self._logy
        if not np.all(np.isfinite(r)) or np.any(total <= 0):
            return _BIG_OBJECTIVE, np.zeros(len(self.params))
        scale = 1.0 / (self._n * self.delta)
        obj = float(self._huber(r).sum()) * scale
        psi = np.clip(r, -self.delta, self.delta) / total
        grad = (dtot @ psi) * scale
        if not np.all(np.isfinite(grad)):
            return _BIG_OBJECTIVE, np.zeros(len(self.params))
        return obj, grad

    def minimise(self, theta0: np.ndarray) -> Any:
        lo = np.array([b[0] for b in self.bounds])
        hi = np.array([b[1] for b in self.bounds])
        x0 = np.clip(theta0, lo, hi)
        return minimize(
            self.value_and_grad,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=self.bounds,
            options={"maxiter": 3000, "ftol": 1e-15, "gtol": 1e-10, "maxcor": 20},
        )

    def constrained(self, theta: np.ndarray) -> np.ndarray:
        """Whether each parameter moves any prediction at all (exactly zero derivatives mean it cannot be fitted)."""
        _, grad, _ = self.predict_with_grad(theta)
        return np.any(grad != 0, axis=1)


# ---------------------------------------------------------------------------------------------- result
@dataclass(frozen=True)
class FitResult:
    """The outcome of :func:`fit`.

    Attributes
    ----------
    law : str
        Name of the fitted law.
    constants : ConstantSet
        All the law's constants (fitted and fixed), named ``"fit"``, provenance ``"[fit]"``, with bootstrap
        standard errors of the fitted ones; pass it back to the law (``KumarLaw(result.constants)``).
    ci : dict
        Fitted (and tied) constant -> ``(lo, hi)`` bootstrap percentile interval at ``level``.
    loss : float
        The minimised objective :math:`\\sum_i \\mathrm{Huber}_\\delta(\\log\\hat L_i - \\log L_i)`.
    n_runs : int
        Number of runs fitted.
    free, tied, fixed
        Fitted constants, ties (follower -> leader) and constants held fixed.
    bootstrap : dict
        Fitted (and tied) constant -> its ``n_boot`` bootstrap estimates (the draws behind ``ci``).
    options, base_constants
        The law's options (e.g. Kumar's ``bias``) and the name of the constant set that supplied the fixed
        constants: with ``constants`` they rebuild the fitted law (:meth:`law_object`).

    A result saves to strict JSON with its bootstrap draws (:meth:`save`) and loads back (:func:`load_fit`), so
    that the uncertainty of everything computed from the law (e.g. an optimal allocation) can be propagated
    later: ``scalinglaw fit ... --out fit.json`` then ``scalinglaw optimize --from-fit fit.json``.
    """

    law: str
    constants: ConstantSet
    ci: dict[str, tuple[float, float]]
    loss: float
    n_runs: int
    free: tuple[str, ...]
    tied: dict[str, str]
    fixed: tuple[str, ...]
    huber_delta: float
    level: float
    n_boot: int
    seed: int | None
    converged: bool
    n_grid: int
    n_starts: int
    rms_log_residual: float
    max_abs_log_residual: float
    bootstrap: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    initial: dict[str, float] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    base_constants: str = ""

    def report(self) -> str:
        """A readable, lmfit-style text report."""
        pct = f"{100 * self.level:g}%"
        lines = [
            "[[Fit Statistics]]",
            f"    law                = {self.law}",
            f"    # runs             = {self.n_runs}",
            f"    # free constants   = {len(self.free)}",
            f"    objective          = sum Huber(delta={self.huber_delta:g}) of log L_pred - log L_obs",
            f"    objective value    = {self.loss:.6g}",
            f"    rms log residual   = {self.rms_log_residual:.4g}",
            f"    max |log residual| = {self.max_abs_log_residual:.4g}",
            f"    optimiser          = L-BFGS-B from the best {self.n_starts} of {self.n_grid} grid points",
            f"    converged          = {self.converged}",
            f"    bootstrap          = {self.n_boot} resamples (seed {self.seed}), {pct} percentile intervals",
            "[[Constants]]",
        ]
        width = max(len(c) for c in self.constants)
        for c, v in self.constants.items():
            if c in self.free:
                se = self.constants.standard_errors.get(c)
                lo, hi = self.ci.get(c, (math.nan, math.nan))
                se_txt = f" +/- {se:.4g}" if se is not None and math.isfinite(se) else ""
                lines.append(
                    f"    {c:<{width}} = {v:<12.6g}{se_txt:<16} {pct} CI [{lo:.6g}, {hi:.6g}]"
                    f"  (init {self.initial.get(c, math.nan):.4g})"
                )
            elif c in self.tied:
                lines.append(f"    {c:<{width}} = {v:<12.6g} (tied to {self.tied[c]})")
            else:
                lines.append(f"    {c:<{width}} = {v:<12.6g} (fixed)")
        if len(self.free) > 1 and self.n_boot > 2:
            mat = np.array([self.bootstrap[c] for c in self.free])
            with np.errstate(all="ignore"):
                corr = np.corrcoef(mat)
            pairs = [
                (abs(corr[i, j]), self.free[i], self.free[j], corr[i, j])
                for i in range(len(self.free))
                for j in range(i + 1, len(self.free))
                if np.isfinite(corr[i, j]) and abs(corr[i, j]) > 0.5
            ]
            if pairs:
                lines.append("[[Correlations]] (bootstrap, |C| > 0.5)")
                for _, a, b, cval in sorted(pairs, reverse=True):
                    lines.append(f"    C({a}, {b}) = {cval:+.3f}")
        return "\n".join(lines)

    def to_dict(self, *, bootstrap: bool = False) -> dict[str, Any]:
        """JSON-friendly summary; ``bootstrap=True`` adds the draws (what :meth:`save` writes)."""
        out: dict[str, Any] = {
            "law": self.law,
            "options": dict(self.options),
            "base_constants": self.base_constants,
            "constants": self.constants.to_dict(),
            "ci": {k: [float(a), float(b)] for k, (a, b) in self.ci.items()},
            "level": self.level,
            "loss": self.loss,
            "n_runs": self.n_runs,
            "free": list(self.free),
            "tied": dict(self.tied),
            "fixed": list(self.fixed),
            "huber_delta": self.huber_delta,
            "n_boot": self.n_boot,
            "seed": self.seed,
            "converged": self.converged,
            "n_grid": self.n_grid,
            "n_starts": self.n_starts,
            "rms_log_residual": self.rms_log_residual,
            "max_abs_log_residual": self.max_abs_log_residual,
            "initial": dict(self.initial),
        }
        if bootstrap:
            out = {"format": FIT_FORMAT, "version": FIT_VERSION, **out,
                   "bootstrap": {k: np.asarray(v, dtype=np.float64).tolist() for k, v in self.bootstrap.items()}}
        return out

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the result, bootstrap draws included, as strict JSON (non-finite numbers become ``null``)."""
        from .._json import dumps

        text = dumps(self.to_dict(bootstrap=True), indent=1)
        try:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
        except OSError as exc:
            raise ParameterError("fit file", os.fspath(path), f"be writable ({exc.strerror})") from None
        return os.fspath(path)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], label: str = "fit") -> FitResult:
        """Rebuild a result written by :meth:`save` (validated: one-line errors naming the entry)."""
        return _fit_from_dict(data, label)

    def law_object(self, values: Mapping[str, float] | None = None) -> Law:
        """The fitted law (its options and constants); ``values`` replaces some constants (e.g. one draw)."""
        from .registry import get_law

        law = get_law(self.law, **self.options)
        constants = self.constants if values is None else ConstantSet(
            name="fit-draw", values={**self.constants.values, **values}, source=self.constants.source,
            provenance="[fit]", notes="one bootstrap draw of " + self.constants.name)
        return type(law)(constants, **self.options)

    def draws(self) -> dict[str, np.ndarray]:
        """Every constant of the law -> its ``n_boot`` bootstrap values (fixed constants repeated)."""
        n = self.n_boot
        return {c: (np.asarray(self.bootstrap[c], dtype=np.float64) if c in self.bootstrap
                    else np.full(n, self.constants[c])) for c in self.constants}


FIT_FORMAT = "scalinglaw-fit"
FIT_VERSION = 1


def load_fit(source: str | os.PathLike[str] | Mapping[str, Any]) -> FitResult:
    """Load a :class:`FitResult` saved with :meth:`FitResult.save` (path) or its dict.

    Raises
    ------
    ParameterError
        One line naming the file and the entry when the file is missing, not JSON, not a scalinglaw fit, or
        inconsistent (unknown law, draws of the wrong length, non-numeric constants).
    """
    if isinstance(source, Mapping):
        return _fit_from_dict(source, "fit")
    label = os.fspath(source)
    try:
        with open(source, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise ParameterError("fit file", label, f"be a readable file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ParameterError("fit file", label, "be a UTF-8 JSON file written by scalinglaw fit --out") from None
    import json

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParameterError("fit file", label, f"be JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, Mapping):
        raise ParameterError("fit file", label, "hold a JSON object written by scalinglaw fit --out")
    return _fit_from_dict(data, label)


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def _fit_from_dict(data: Mapping[str, Any], label: str) -> FitResult:
    from .registry import LAW_MODULES

    if data.get("format") != FIT_FORMAT:
        raise ParameterError(f"{label}: format", data.get("format"),
                             f"be {FIT_FORMAT!r} (a file written by scalinglaw fit --out)")
    if data.get("version") != FIT_VERSION:
        raise ParameterError(f"{label}: version", data.get("version"), f"be {FIT_VERSION}")
    law = data.get("law")
    if law not in LAW_MODULES:
        raise ParameterError(f"{label}: law", law, "name a law: " + ", ".join(LAW_MODULES))
    try:
        constants = ConstantSet.from_dict(data["constants"])
        free = tuple(str(c) for c in data["free"])
        tied = {str(k): str(v) for k, v in dict(data.get("tied", {})).items()}
        n_boot = int(data["n_boot"])
        boot = {str(k): np.asarray([_num(x) for x in v], dtype=np.float64) for k, v in data["bootstrap"].items()}
        ci = {str(k): (_num(v[0]), _num(v[1])) for k, v in dict(data.get("ci", {})).items()}
        level = float(data["level"])
        options = dict(data.get("options", {}))
    except KeyError as exc:
        raise ParameterError(f"{label}", f"no entry {exc.args[0]!r}", "hold every entry fit --out writes") from None
    except (TypeError, ValueError, ParameterError) as exc:
        raise ParameterError(f"{label}", "malformed entries", f"be a file written by scalinglaw fit --out ({exc})"
                             ) from None
    for c in (*free, *tied):
        if c not in constants:
            raise ParameterError(f"{label}: free", c, "name constants of the file's constant set")
        if c not in boot or boot[c].shape != (n_boot,):
            raise ParameterError(f"{label}: bootstrap[{c!r}]", "missing or wrong length", f"hold {n_boot} draws")
    if not 0 < level < 1:
        raise ParameterError(f"{label}: level", level, "be in (0, 1)")
    result = FitResult(
        law=str(law), constants=constants, ci=ci, loss=_num(data.get("loss")), n_runs=int(data.get("n_runs", 0)),
        free=free, tied=tied, fixed=tuple(str(c) for c in data.get("fixed", ())),
        huber_delta=_num(data.get("huber_delta")), level=level, n_boot=n_boot, seed=data.get("seed"),
        converged=bool(data.get("converged", False)), n_grid=int(data.get("n_grid", 0)),
        n_starts=int(data.get("n_starts", 0)), rms_log_residual=_num(data.get("rms_log_residual")),
        max_abs_log_residual=_num(data.get("max_abs_log_residual")), bootstrap=boot,
        initial={str(k): _num(v) for k, v in dict(data.get("initial", {})).items()}, options=options,
        base_constants=str(data.get("base_constants", "")),
    )
    result.law_object()  # the law, its options and its constants must fit together
    return result


# ---------------------------------------------------------------------------------------------- fit
def _bounds(law: Law, name: str, runs_inputs: Mapping[str, np.ndarray]) -> tuple[float, float]:
    """Bounds of a constant in value space."""
    if name in SIGNED:
        return -20.0, 20.0
    if name in EXPONENTS:
        return 1e-3, 10.0
    if name in ("E", "epsilon"):
        return 1e-3, 100.0
    if law.name == "kumar" and name in ("gamma_w", "gamma_a", "gamma_kv") and law.options.get("bias"):
        part = name.split("_", 1)[1]
        P = runs_inputs[f"P_{part}"]
        finite = P[np.isfinite(P)]
        bias = law.constants[f"n_{part}"]
        if finite.size and bias > 0:
            # keep every factor 1-exp(-P/gamma+n) of the data positive
            return 1e-2, float(finite.min()) / bias * (1.0 - 1e-6)
        return 1e-2, 1e3
    return 1e-12, 1e15


#: Cost model of a fit (measured on the 2-core development machine, Kumar's law, 7 free constants): one
#: L-BFGS-B minimisation costs about this many seconds per run (row), plus a fixed overhead; a grid point costs
#: about one law evaluation per run.
_SECONDS_PER_ROW_MINIMISE, _SECONDS_PER_MINIMISE, _SECONDS_PER_GRID_EVAL = 5e-5, 0.05, 3e-8


def _require_resources(n: int, n_columns: int, n_params: int, n_grid: int, n_starts: int, n_boot: int) -> None:
    """Refuse a fit whose memory or time exceeds the machine's limits (:mod:`scalinglaw.resources`)."""
    from ..resources import Estimate, require

    per_fit = _SECONDS_PER_MINIMISE + n * _SECONDS_PER_ROW_MINIMISE
    base_seconds = n_starts * per_fit + n_grid * n * _SECONDS_PER_GRID_EVAL
    # the runs and their resampled copies, the work arrays of one evaluation; then the bootstrap table
    base_memory = 8.0 * (2 * n * (n_columns + 1) + 16 * min(n * n_grid, max(n, 2_000_000)))
    boot_memory = 8.0 * n_boot * (n_params + 1)
    est = Estimate("the fit" + (f" with {n_boot} bootstrap resamples" if n_boot else ""), base_memory + boot_memory,
                   base_seconds + n_boot * per_fit)
    if n_boot * per_fit >= base_seconds or boot_memory >= base_memory:
        require(est, "n_boot", n_boot, hint=f"{n} runs, about {per_fit:.2g} s per resample")
    else:
        require(est, "runs", f"{n} rows", hint="fit a subsample of the runs")


@_single_threaded_blas()
def fit(
    law: str | Law,
    runs: Mapping[str, Any] | str | os.PathLike[str],
    *,
    free: Sequence[str] | None = None,
    tie: Mapping[str, str] | None = None,
    huber_delta: float = 1e-3,
    n_boot: int = 200,
    seed: int | None = 0,
    init_grid: Mapping[str, Sequence[float]] | None = None,
    n_starts: int = 10,
    level: float = 0.95,
) -> FitResult:
    """Fit a law's constants to runs: Huber loss in log space, L-BFGS-B from a grid, bootstrap intervals.

    Parameters
    ----------
    law : str or Law
        ``"kumar"``, ``"chinchilla:epoch"``, ... or a law instance (with options such as ``bias=False``). Its
        constant set supplies the values of the constants that are not fitted.
    runs : mapping or path
        Columns ``N, D, loss`` plus the law's precision columns (see :func:`read_runs`), or a CSV path.
    free : sequence of str, optional
        Constants to fit; default per law (module docstring).
    tie : mapping, optional
        ``follower -> leader``: the follower takes the leader's value (default: ``beta -> alpha`` for Kumar and
        Chen when ``beta`` is not itself free). Pass ``{}`` to untie.
    huber_delta : float
        Huber threshold on the log residuals (Hoffmann et al. and Besiroglu et al.: 1e-3).
    n_boot : int
        Bootstrap resamples (0 for none: the intervals are then NaN).
    seed : int, optional
        Seed of the bootstrap's ``np.random.Generator``.
    init_grid : mapping, optional
        Constant -> initial values to combine in a grid (values, not logs). Unlisted free constants use the
        law's default grid, or their current value.
    n_starts : int
        L-BFGS-B runs from the best grid points.
    level : float
        Confidence level of the percentile intervals.

    Returns
    -------
    FitResult
    """
    law_obj = _law_of(law)
    if isinstance(runs, str | os.PathLike):
        runs = read_runs(runs, law_obj)
    if not isinstance(runs, Mapping):
        raise ParameterError("runs", type(runs).__name__, "be a mapping of column -> values or a CSV path")
    if "loss" not in runs:
        raise ParameterError("runs", ", ".join(runs), "have a 'loss' column")
    huber_delta = _checks.positive("huber_delta", huber_delta)
    n_boot = int(_checks.integer("n_boot", n_boot, minimum=0))
    if n_boot == 1:
        raise ParameterError("n_boot", n_boot, "be 0 (no intervals) or >= 2 (one resample gives no interval)")
    n_starts = int(_checks.integer("n_starts", n_starts, minimum=1))
    level = _checks.as_float("level", level)
    if not 0 < level < 1:
        raise ParameterError("level", level, "be in (0, 1)")

    y = _checks.as_array("loss", runs["loss"]).ravel()
    if np.any(~(y > 0)) or np.any(np.isinf(y)):
        raise ParameterError("loss", float(y[~((y > 0) & np.isfinite(y))][0]), "be > 0 and finite in every run")
    inputs = {k: runs[k] for k in runs if k != "loss"}
    try:
        args = law_obj._inputs(inputs)
    except ParameterError as exc:
        raise ParameterError(f"runs column {exc.name!r}", exc.value, exc.requirement) from None
    args = [np.broadcast_to(a, y.shape).astype(np.float64) for a in args]
    if y.size < 2:
        raise ParameterError("runs", y.size, "contain at least 2 runs")
    named_inputs = {v.name: a for v, a in zip(law_obj.variables, args, strict=True)}

    names = list(law_obj.constant_names)
    free_list = list(DEFAULT_FREE.get(law_obj.name, tuple(names)) if free is None else free)
    for c in free_list:
        if c not in names:
            raise ParameterError("free", c, f"name constants of law {law_obj.name}: {', '.join(names)}")
    if len(set(free_list)) != len(free_list):
        raise ParameterError("free", ", ".join(free_list), "list each constant once")
    ties = dict(DEFAULT_TIES.get(law_obj.name, {}) if tie is None else tie)
    ties = {f: lead for f, lead in ties.items() if f in names and f not in free_list and lead in free_list}
    if tie is not None:
        for f, lead in tie.items():
            if f not in ties:
                raise ParameterError("tie", f"{f} -> {lead}", "map a fixed constant to a free one of this law")
    params = [c for c in free_list if c in names]
    groups = {p: [p] + [f for f, lead in ties.items() if lead == p] for p in params}
    if not params:
        raise ParameterError("free", "nothing", "name at least one constant to fit")
    if y.size < len(params):
        raise ParameterError("runs", y.size, f"contain at least as many runs as free constants ({len(params)})")

    bounds_val = {p: _bounds(law_obj, p, named_inputs) for p in params}
    bounds = [
        (math.log(bounds_val[p][0]), math.log(bounds_val[p][1])) if p not in SIGNED else bounds_val[p] for p in params
    ]
    problem = _Problem(law_obj, args, y, params, groups, bounds, huber_delta)

    # the grid of initialisations
    grid_spec = dict(DEFAULT_GRID.get(law_obj.name, {}))
    if init_grid is not None:
        for k, v in init_grid.items():
            if k not in params:
                raise ParameterError("init_grid", k, "name free constants only: " + ", ".join(params))
            grid_spec[k] = tuple(v)
    axes = []
    for j, p in enumerate(params):
        values = [float(v) for v in grid_spec.get(p, (law_obj.constants[p],))]
        if not values:
            raise ParameterError("init_grid", p, "give at least one initial value")
        if problem._log[p]:
            if any(v <= 0 for v in values):
                raise ParameterError(f"init_grid[{p!r}]", min(values), "be > 0 (the constant is fitted by its log)")
            th = np.log(values)
        else:
            th = np.asarray(values)
        axes.append(np.clip(th, bounds[j][0], bounds[j][1]))
    grid = np.array(list(itertools.product(*axes)), dtype=np.float64)
    _require_resources(y.size, len(args), len(params), grid.shape[0], n_starts, n_boot)
    obj_grid = problem.objective_grid(grid)
    order = np.argsort(obj_grid, kind="stable")
    starts = [grid[i] for i in order[: min(n_starts, grid.shape[0])] if np.isfinite(obj_grid[i])]
    if not starts:
        raise ParameterError("init_grid", "every grid point", "give a finite loss prediction for the runs")

    dead = [p for p, ok in zip(params, problem.constrained(starts[0]), strict=True) if not ok]
    if dead:
        if free is None:  # the default free set: the runs cannot pin one of its constants
            raise ParameterError("runs", f"{y.size} rows",
                                 f"vary the inputs that constant {dead[0]} multiplies: the predictions do not depend "
                                 f"on it for these runs (e.g. identical rows, or one precision only); name fewer "
                                 f"constants to fit (free, --free)")
        raise ParameterError("free", dead[0], "be a constant the runs constrain (the predictions do not depend on it)")

    best = None
    for th0 in starts:
        res = problem.minimise(th0)
        if best is None or res.fun < best.fun:
            best = res
    assert best is not None
    theta = np.asarray(best.x, dtype=np.float64)
    values = problem.values(theta)
    initial = problem.values(starts[0])

    # bootstrap
    rng = np.random.default_rng(seed)
    boot = np.full((n_boot, len(params)), np.nan)
    n = y.size
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        sub = _Problem(law_obj, [a[idx] for a in args], y[idx], params, groups, bounds, huber_delta)
        res = sub.minimise(theta)
        vb = sub.values(res.x)
        boot[b] = [vb[p] for p in params]
    alpha_tail = (1.0 - level) / 2.0
    ci: dict[str, tuple[float, float]] = {}
    se: dict[str, float] = {}
    boot_dict: dict[str, np.ndarray] = {}
    for j, p in enumerate(params):
        col = boot[:, j]
        if n_boot >= 2:
            lo, hi = np.quantile(col, [alpha_tail, 1.0 - alpha_tail])
            s = float(np.std(col, ddof=1))
        else:
            lo = hi = s = math.nan
        for c in groups[p]:
            ci[c] = (float(lo), float(hi))
            se[c] = s
            boot_dict[c] = col.copy()

    pred = problem.predict_grid(theta[None, :])[0]
    resid = np.log(pred) - np.log(y)
    constants = ConstantSet(
        name="fit",
        values=values,
        source=f"fit of law {law_obj.name} to {n} runs (Huber delta {huber_delta:g} in log space, L-BFGS-B)",
        table="",
        confidence=f"bootstrap {100 * level:g}% percentile intervals from {n_boot} resamples",
        provenance="[fit]",
        notes=(
            f"free: {', '.join(params)}"
            + (f"; tied: {', '.join(f'{f}={lead}' for f, lead in ties.items())}" if ties else "")
            + f"; fixed at {law_obj.constants.name!r} ({law_obj.constants.provenance}): "
            + ", ".join(c for c in names if c not in se)
        ),
        standard_errors={k: v for k, v in se.items() if math.isfinite(v)},
    )
    return FitResult(
        law=law_obj.name,
        constants=constants,
        ci=ci,
        loss=float(problem._huber(resid).sum()),
        n_runs=int(n),
        free=tuple(params),
        tied=ties,
        fixed=tuple(c for c in names if c not in se),
        huber_delta=huber_delta,
        level=level,
        n_boot=n_boot,
        seed=seed,
        converged=bool(best.success),
        n_grid=int(grid.shape[0]),
        n_starts=len(starts),
        rms_log_residual=float(np.sqrt(np.mean(resid**2))),
        max_abs_log_residual=float(np.max(np.abs(resid))),
        bootstrap=boot_dict,
        initial={c: initial[c] for c in params},
        options=dict(law_obj.options),
        base_constants=law_obj.constants.name,
    )
