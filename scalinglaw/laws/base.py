r"""The :class:`Law` interface shared by the regression laws and the empirical precision laws.

A law is a *symbolic* object: named terms as SymPy expressions in documented variables and constants, with
LaTeX. Numeric evaluation lives in :mod:`scalinglaw.laws.numeric` (cached, lambdified with pinned modules,
broadcasting; an mpmath path for arbitrary precision), the way sympy.stats keeps distributions apart from its
sampling backends. Public methods validate their inputs (``ParameterError`` naming the variable and its valid
range) and then call the compiled pure-math core.

Constants enter compiled functions as arguments, so one compiled function serves every constant set.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import sympy as sp

from .. import _checks
from ..errors import ParameterError
from .constants import ConstantSet

__all__ = ["Law", "Variable"]


@dataclass(frozen=True)
class Variable:
    """An input of a law.

    Parameters
    ----------
    name : str
        Keyword used by :meth:`Law.__call__` (e.g. ``"N"``).
    description : str
        What it is, with units.
    lower, upper : float
        The open domain ``(lower, upper)``; values outside raise ``ParameterError``.
    lower_inclusive : bool
        Whether ``lower`` itself is allowed.
    why : str
        Why the domain is what it is (used in the error message).
    positive : bool
        Passed to SymPy as an assumption.
    """

    name: str
    description: str
    lower: float = 0.0
    upper: float = math.inf
    lower_inclusive: bool = False
    why: str = ""
    positive: bool = True

    @property
    def symbol(self) -> sp.Symbol:
        return sp.Symbol(self.name, positive=self.positive) if self.positive else sp.Symbol(self.name, real=True)

    def check(self, value: Any) -> np.ndarray:
        arr = _checks.as_array(self.name, value)
        lo_ok = arr >= self.lower if self.lower_inclusive else arr > self.lower
        ok = lo_ok & (arr < self.upper) if math.isfinite(self.upper) else lo_ok
        if not np.all(ok):
            bad = arr[~ok].ravel()[0] if arr.ndim else float(arr)
            op = ">=" if self.lower_inclusive else ">"
            rng = f"{op} {self.lower:g}" + (f" and < {self.upper:g}" if math.isfinite(self.upper) else "")
            raise ParameterError(self.name, float(bad), "be " + rng + (f" ({self.why})" if self.why else ""))
        return arr


class Law(ABC):
    """A scaling law: named symbolic terms, constants with provenance, compiled evaluation.

    Subclasses set the class attributes and implement :meth:`_terms`. By default the law is the sum of its
    terms; override :meth:`_combine` otherwise.

    Attributes
    ----------
    name : str
        Registry name (``"sgd"``, ``"kumar"``, ...).
    title : str
        One-line description.
    provenance : str
        SPEC §0 / empirical-laws.md tag of the functional form.
    variables : tuple of Variable
        Inputs, in the order compiled functions take them.
    constant_sets : dict
        Named :class:`~scalinglaw.laws.constants.ConstantSet` objects; ``default_constants`` names the default.
    """

    name: ClassVar[str]
    title: ClassVar[str] = ""
    provenance: ClassVar[str] = ""
    variables: ClassVar[tuple[Variable, ...]] = ()
    constant_sets: ClassVar[dict[str, ConstantSet]] = {}
    default_constants: ClassVar[str] = ""
    #: Descriptions of the constants' symbols (for docs and ``formula`` output).
    constant_descriptions: ClassVar[dict[str, str]] = {}

    def __init__(self, constants: str | ConstantSet | Mapping[str, float] | None = None, **options: Any) -> None:
        self.options = dict(options)
        self.constants = self._resolve_constants(constants)

    # ------------------------------------------------------------------------------------------ constants
    def _resolve_constants(self, constants: str | ConstantSet | Mapping[str, float] | None) -> ConstantSet:
        if constants is None:
            constants = self.default_constants
        if isinstance(constants, ConstantSet):
            cs = constants
        elif isinstance(constants, str):
            if constants not in self.constant_sets:
                raise ParameterError(
                    "constants", constants, "be one of " + ", ".join(self.constant_sets) + f" for law {self.name}"
                )
            cs = self.constant_sets[constants]
        else:
            cs = ConstantSet(name="custom", values=dict(constants), provenance="[user]")
        missing = [c for c in self.constant_names if c not in cs]
        if missing:
            raise ParameterError("constants", cs.name, "define " + ", ".join(missing))
        return cs

    @property
    def constant_names(self) -> tuple[str, ...]:
        """Names of the constants the terms use, in compiled-argument order."""
        names: set[str] = set()
        var_names = {v.name for v in self.variables}
        for expr in self.terms().values():
            names |= {s.name for s in expr.free_symbols if s.name not in var_names}
        return tuple(sorted(names))

    def constant_symbol(self, name: str) -> sp.Symbol:
        return sp.Symbol(name, real=True)

    # ------------------------------------------------------------------------------------------ symbolic
    @abstractmethod
    def _terms(self) -> dict[str, sp.Expr]:
        """Named terms in the variable symbols and constant symbols."""

    def terms(self) -> dict[str, sp.Expr]:
        """The named terms (SymPy expressions)."""
        key = ("terms", tuple(sorted(self.options.items())))
        cache = self.__dict__.setdefault("_sym_cache", {})
        if key not in cache:
            cache[key] = self._terms()
        return cache[key]

    def _combine(self, terms: Mapping[str, sp.Expr]) -> sp.Expr:
        return sp.Add(*terms.values())

    def expression(self, term: str | None = None) -> sp.Expr:
        """The whole law, or one named term."""
        terms = self.terms()
        if term is None:
            return self._combine(terms)
        if term not in terms:
            raise ParameterError("term", term, "be one of " + ", ".join(terms))
        return terms[term]

    def symbols(self) -> dict[str, sp.Symbol]:
        """Every symbol of the law by name (variables then constants)."""
        out = {v.name: v.symbol for v in self.variables}
        out.update({c: self.constant_symbol(c) for c in self.constant_names})
        return out

    def latex(self, term: str | None = None, *, substitute: bool = False) -> str:
        """LaTeX of the law or a term; ``substitute=True`` plugs in this law's constants."""
        expr = self.expression(term)
        if substitute:
            expr = expr.subs({self.constant_symbol(k): v for k, v in self.constants.items()})
        return sp.latex(expr)

    # ------------------------------------------------------------------------------------------ numeric
    def compile(self, term: str | None = None) -> Callable[..., np.ndarray]:
        """Cached NumPy function ``f(*variables, *constants)`` of the law or a term (broadcasts)."""
        from .numeric import compile_expression

        args = [v.symbol for v in self.variables] + [self.constant_symbol(c) for c in self.constant_names]
        key = (type(self).__qualname__, term, tuple(sorted(self.options.items())))
        return compile_expression(key, self.expression(term), args)

    def _inputs(self, values: Mapping[str, Any]) -> list[np.ndarray]:
        names = [v.name for v in self.variables]
        unknown = set(values) - set(names)
        if unknown:
            raise ParameterError(sorted(unknown)[0], "given", f"be one of the law's inputs ({', '.join(names)})")
        missing = [n for n in names if n not in values]
        if missing:
            raise ParameterError(missing[0], "missing", f"be given for law {self.name}")
        return [v.check(values[v.name]) for v in self.variables]

    def _constant_args(self) -> list[float]:
        return [self.constants[c] for c in self.constant_names]

    def __call__(self, **values: Any) -> np.ndarray:
        """Evaluate the law (validated, broadcast, float64)."""
        return self.evaluate(**values)

    def evaluate(self, term: str | None = None, **values: Any) -> np.ndarray:
        args = self._inputs(values)
        out = self.compile(term)(*args, *self._constant_args())
        return np.asarray(out, dtype=np.float64) + np.zeros(np.broadcast(*args).shape)

    def breakdown(self, **values: Any) -> dict[str, np.ndarray]:
        """Every named term evaluated at the same inputs."""
        args = self._inputs(values)
        shape = np.broadcast(*args).shape
        return {
            t: np.asarray(self.compile(t)(*args, *self._constant_args()), dtype=np.float64) + np.zeros(shape)
            for t in self.terms()
        }

    def evaluate_mpmath(self, term: str | None = None, *, dps: int = 50, **values: Any) -> Any:
        """Arbitrary-precision evaluation with mpmath (scalars; for reference checks, not hot paths)."""
        from .numeric import evaluate_mpmath

        self._inputs(values)
        subs = {v.symbol: values[v.name] for v in self.variables}
        subs.update({self.constant_symbol(c): self.constants[c] for c in self.constant_names})
        return evaluate_mpmath(self.expression(term), subs, dps=dps)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly description: name, title, provenance, variables, constants."""
        return {
            "law": self.name,
            "title": self.title,
            "provenance": self.provenance,
            "variables": {v.name: v.description for v in self.variables},
            "constants": self.constants.to_dict(),
            "terms": list(self.terms()),
        }
