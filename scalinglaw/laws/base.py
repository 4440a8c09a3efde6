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
    default : float or None
        Value used when the input is omitted (``None``: the input is required).
    allow_inf : bool
        Whether ``+inf`` is a valid value (e.g. ``d = inf``, or a precision meaning "high precision").
    """

    name: str
    description: str
    lower: float = 0.0
    upper: float = math.inf
    lower_inclusive: bool = False
    why: str = ""
    positive: bool = True
    default: float | None = None
    allow_inf: bool = False

    @property
    def symbol(self) -> sp.Symbol:
        return sp.Symbol(self.name, positive=self.positive) if self.positive else sp.Symbol(self.name, real=True)

    def check(self, value: Any) -> np.ndarray:
        arr = _checks.as_array(self.name, value)
        if not self.allow_inf and np.any(np.isinf(arr)):
            raise ParameterError(self.name, float(arr[np.isinf(arr)].ravel()[0]), "be finite")
        lo_ok = arr >= self.lower if self.lower_inclusive else arr > self.lower
        ok = lo_ok & (arr < self.upper) if math.isfinite(self.upper) else lo_ok
        if not np.all(ok):
            bad = arr[~ok].ravel()[0] if arr.ndim else float(arr)
            op = ">=" if self.lower_inclusive else ">"
            rng = f"{op} {self.lower:g}" + (f" and < {self.upper:g}" if math.isfinite(self.upper) else "")
            raise ParameterError(self.name, float(bad), "be " + rng + (f" ({self.why})" if self.why else ""))
        return arr


def refuse_options(options: Mapping[str, Any], why: str) -> None:
    """Raise for the first (sorted) option of a law that takes none: ``option <name> must not be passed: <why>``."""
    if options:
        k = sorted(options)[0]
        raise ParameterError(f"option {k}", options[k], f"not be passed: {why}")


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
    #: LaTeX for symbol names that SymPy would print poorly (e.g. ``sigma2`` -> ``\sigma^2``).
    latex_names: ClassVar[dict[str, str]] = {}

    def __init__(self, constants: str | ConstantSet | Mapping[str, float] | None = None, **options: Any) -> None:
        self.options = dict(options)
        self.constants = self._resolve_constants(constants)

    # ------------------------------------------------------------------------------------------ constants
    def _resolve_constants(self, constants: str | ConstantSet | Mapping[str, float] | None) -> ConstantSet:
        if constants is None:
            constants = self.default_constants
        if isinstance(constants, str) and constants not in self.constant_sets:
            loaded = self._extra_constant_sets().get(constants)
            if loaded is not None:
                constants = loaded
        if isinstance(constants, ConstantSet):
            cs = constants
        elif isinstance(constants, str):
            if constants not in self.constant_sets:
                names = ", ".join(self.constant_set_names())
                raise ParameterError("constants", constants, f"be one of {names} for law {self.name}")
            cs = self.constant_sets[constants]
        else:
            cs = ConstantSet(name="custom", values=dict(constants), provenance="[user]")
        missing = [c for c in self.constant_names if c not in cs]
        if missing:
            raise ParameterError("constants", cs.name, "define " + ", ".join(missing))
        return cs

    def _extra_constant_sets(self) -> dict[str, ConstantSet]:
        """Constant sets loaded lazily (e.g. calibrated constants shipped as data); none by default."""
        return {}

    def constant_set_names(self) -> list[str]:
        """Every name the ``constants`` argument accepts (the sets defined here and those loaded lazily)."""
        return list(dict.fromkeys([*self.constant_sets, *self._extra_constant_sets()]))

    @property
    def constant_names(self) -> tuple[str, ...]:
        """Names of the constants the law uses, in compiled-argument order."""
        names: set[str] = set()
        var_names = {v.name for v in self.variables}
        for expr in self.terms(expand=True).values():
            names |= {s.name for s in expr.free_symbols if s.name not in var_names}
        return tuple(sorted(names))

    def constant_symbol(self, name: str) -> sp.Symbol:
        return sp.Symbol(name, real=True)

    # ------------------------------------------------------------------------------------------ symbolic
    @abstractmethod
    def _terms(self) -> dict[str, sp.Expr]:
        """Named terms in the variable symbols, constant symbols and definition symbols."""

    def _definitions(self) -> dict[sp.Symbol, sp.Expr]:
        """Intermediate quantities (e.g. the effective dimension :math:`k^*`), in dependency order."""
        return {}

    def definitions(self) -> dict[sp.Symbol, sp.Expr]:
        """Intermediate quantities used by the terms, each in terms of variables, constants and earlier ones."""
        cache = self.__dict__.setdefault("_sym_cache", {})
        if "definitions" not in cache:
            cache["definitions"] = self._definitions()
        return cache["definitions"]

    def _expand(self, expr: sp.Expr) -> sp.Expr:
        for sym, definition in reversed(list(self.definitions().items())):
            expr = expr.subs(sym, definition)
        return expr

    def terms(self, *, expand: bool = False) -> dict[str, sp.Expr]:
        """The named terms (SymPy expressions); ``expand=True`` substitutes the definitions."""
        key = ("terms", expand)
        cache = self.__dict__.setdefault("_sym_cache", {})
        if key not in cache:
            raw = self._terms()
            cache[key] = {k: self._expand(v) for k, v in raw.items()} if expand else raw
        return cache[key]

    def _combine(self, terms: Mapping[str, sp.Expr]) -> sp.Expr:
        return sp.Add(*terms.values())

    def expression(self, term: str | None = None, *, expand: bool = True) -> sp.Expr:
        """The whole law, or one named term (definitions substituted unless ``expand=False``)."""
        terms = self.terms(expand=expand)
        if term is None:
            return self._combine(terms)
        if term not in terms:
            raise ParameterError("term", term, "be one of " + ", ".join(terms))
        return terms[term]

    def symbols(self) -> dict[str, sp.Symbol]:
        """Every symbol of the law by name (variables, then constants, then definitions)."""
        out = {v.name: v.symbol for v in self.variables}
        out.update({c: self.constant_symbol(c) for c in self.constant_names})
        out.update({s.name: s for s in self.definitions()})
        return out

    def latex(self, term: str | None = None, *, substitute: bool = False, expand: bool = False) -> str:
        """LaTeX of the law or a term, with intermediate symbols kept (``expand=True`` inlines them);
        ``substitute=True`` plugs in this law's constants."""
        expr = self.expression(term, expand=expand)
        if substitute:
            expr = expr.subs({self.constant_symbol(k): v for k, v in self.constants.items()})
        return sp.latex(expr, symbol_names=self._latex_symbol_names(expr))

    def _latex_symbol_names(self, expr: sp.Expr) -> dict[sp.Symbol, str]:
        return {s: self.latex_names[s.name] for s in expr.free_symbols if s.name in self.latex_names}

    def latex_definitions(self) -> dict[str, str]:
        """LaTeX of every intermediate definition, keyed by the LaTeX of its symbol."""
        out = {}
        for sym, expr in self.definitions().items():
            names = self._latex_symbol_names(expr)
            out[self.latex_names.get(sym.name, sp.latex(sym))] = sp.latex(expr, symbol_names=names)
        return out

    # ------------------------------------------------------------------------------------------ numeric
    def compile(self, term: str | None = None) -> Callable[..., np.ndarray]:
        """Cached NumPy function ``f(*variables, *constants)`` of the law or a term (broadcasts)."""
        from .numeric import compile_expression

        cache = self.__dict__.setdefault("_compiled", {})
        if term not in cache:
            args = [v.symbol for v in self.variables] + [self.constant_symbol(c) for c in self.constant_names]
            key = (type(self).__qualname__, term, tuple(sorted(self.options.items())))
            cache[term] = compile_expression(key, self.expression(term), args)
        return cache[term]

    def _canonical(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Hook: map user inputs onto the variables (aliases, tied inputs); identity by default."""
        return dict(values)

    def _validate(self, values: dict[str, np.ndarray]) -> None:  # noqa: B027 - optional hook
        """Hook: cross-variable checks after each variable passed its own domain check."""

    def _inputs(self, values: Mapping[str, Any]) -> list[np.ndarray]:
        values = self._canonical(values)
        names = [v.name for v in self.variables]
        unknown = set(values) - set(names)
        if unknown:
            k = sorted(unknown)[0]
            raise ParameterError(f"input {k}", values[k], f"be one of the law's inputs ({', '.join(names)})")
        checked: dict[str, np.ndarray] = {}
        for v in self.variables:
            if v.name in values and values[v.name] is not None:
                checked[v.name] = v.check(values[v.name])
            elif v.default is not None:
                checked[v.name] = np.asarray(v.default, dtype=np.float64)
            else:
                raise ParameterError(v.name, "missing", f"be given for law {self.name} ({v.description})")
        self._validate(checked)
        return [checked[n] for n in names]

    def _constant_args(self) -> list[float]:
        return [self.constants[c] for c in self.constant_names]

    def _zero_masks(self, args: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Hook: terms that are exactly 0 where a mask is True (where the compiled form would give 0*inf)."""
        return {}

    def _evaluate_args(self, term: str | None, args: list[np.ndarray]) -> np.ndarray:
        shape = np.broadcast(*args).shape
        masks = self._zero_masks(args)
        consts = self._constant_args()
        # every input at least 1-d, in grids and in scalar calls alike: 0-d inputs decay to NumPy scalars, whose
        # power is C's pow, while arrays take NumPy's power loop; the two differ in the last bit (x**4, 5% of x)
        args_1d = [v.reshape(1) if v.ndim == 0 else v for v in args]
        shape_1d = np.broadcast(*args_1d).shape

        def one(t: str | None) -> np.ndarray:
            with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
                out = np.asarray(self.compile(t)(*args_1d, *consts), dtype=np.float64) + np.zeros(shape_1d)
            out = out.reshape(shape)
            return np.where(masks[t], 0.0, out) if t in masks else out

        if term is None and masks:
            return sum((one(t) for t in self.terms()), np.zeros(shape))
        if term is not None:
            self.expression(term)  # validates the name
        return one(term)

    def __call__(self, **values: Any) -> np.ndarray:
        """Evaluate the law (validated, broadcast, float64)."""
        return self.evaluate(**values)

    def evaluate(self, term: str | None = None, **values: Any) -> np.ndarray:
        """Evaluate the law or one term (validated, broadcast, float64)."""
        return self._evaluate_args(term, self._inputs(values))

    def breakdown(self, **values: Any) -> dict[str, np.ndarray]:
        """Every named term evaluated at the same inputs."""
        args = self._inputs(values)
        return {t: self._evaluate_args(t, args) for t in self.terms()}

    def evaluate_mpmath(self, term: str | None = None, *, dps: int = 50, **values: Any) -> Any:
        """Arbitrary-precision evaluation with mpmath (scalars; for reference checks, not hot paths)."""
        from .numeric import evaluate_mpmath

        args = self._inputs(values)
        subs = {v.symbol: (sp.oo if np.isinf(x) else float(x)) for v, x in zip(self.variables, args, strict=True)}
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
