"""Numeric back ends for symbolic laws: cached lambdify (NumPy/SciPy) and an mpmath path.

Pitfalls handled here (ENGINEERING.md): modules are pinned to ``["scipy", "numpy"]`` (SciPy provides
``zeta``); compiled functions are cached by key so a law compiles once per process; unevaluated ``Sum`` objects
are refused (they would print a Python loop).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import mpmath
import numpy as np
import sympy as sp

__all__ = ["clear_cache", "compile_expression", "evaluate_mpmath"]

_CACHE: dict[Hashable, Callable[..., np.ndarray]] = {}
MODULES = ["scipy", "numpy"]


def compile_expression(key: Hashable, expr: sp.Expr, args: Sequence[sp.Symbol]) -> Callable[..., np.ndarray]:
    """Lambdify ``expr`` over ``args`` once per ``key`` (and expression), with pinned modules."""
    full_key = (key, sp.srepr(expr), tuple(a.name for a in args))
    fn = _CACHE.get(full_key)
    if fn is None:
        if expr.has(sp.Sum) or expr.has(sp.Product):
            raise ValueError("refusing to lambdify an unevaluated Sum/Product: close it first (Hurwitz zeta)")
        from .special import NUMPY_FUNCTIONS

        fn = sp.lambdify(list(args), expr, modules=[NUMPY_FUNCTIONS, *MODULES], cse=True)
        _CACHE[full_key] = fn
    return fn


def clear_cache() -> None:
    """Forget every compiled function (for benchmarks of compilation cost)."""
    _CACHE.clear()


def evaluate_mpmath(expr: sp.Expr, subs: dict[sp.Symbol, Any], *, dps: int = 50) -> mpmath.mpf:
    """Evaluate ``expr`` at ``subs`` with ``dps`` decimal digits."""
    with mpmath.workdps(dps):
        vals = {k: sp.Float(str(mpmath.mpf(v)), dps) if not isinstance(v, sp.Basic) else v for k, v in subs.items()}
        if any(v == sp.oo for v in vals.values()):
            # substitute symbolically first so that limits such as exp(-oo) and zeta(s, oo) resolve
            expr = expr.subs({k: v for k, v in vals.items() if v == sp.oo})
            vals = {k: v for k, v in vals.items() if v != sp.oo}
        # xreplace plugs the high-precision numbers in without re-simplifying at every node (evalf's subs= does,
        # which is orders of magnitude slower on large expressions)
        out = expr.xreplace(vals).evalf(dps)
        return mpmath.mpf(str(out)) if out.is_real is not False else mpmath.mpc(complex(out))
