"""Parse quantizer spec strings (the CLI's ``Q`` values).

Grammar::

    none | fp64 | exact                       full precision (no quantizer)
    additive:EPS | multiplicative:EPS | multiplicative-coord:EPS
    FORMAT[:OPTION[,OPTION...]]               a real format, e.g. int8, fp8_e4m3, e5m2, int4:range=3

Real formats and their options are defined in :mod:`scalinglaw.quantize.formats`.
"""

from __future__ import annotations

from ..errors import ParameterError
from . import formats
from .base import IDEALIZED_KINDS, Quantizer
from .schemes import idealized

__all__ = ["parse_quantizer"]

_NONE = {"none", "fp64", "exact", "full"}


def _valid(name: str) -> str:
    fp = [n for n in formats.FORMAT_NAMES if not n.startswith("int")]
    return (
        "be one of none, additive:EPS, multiplicative:EPS, multiplicative-coord:EPS, or a format name ("
        + ", ".join(fp)
        + ", int2..int16, or eXmY)"
    )


def parse_quantizer(spec: str | Quantizer | None, *, name: str = "quantizer") -> Quantizer | None:
    """Turn a spec string into a :class:`Quantizer` (``None`` for full precision).

    Parameters
    ----------
    spec : str, Quantizer or None
        The spec; a :class:`Quantizer` is returned unchanged.
    name : str
        The parameter name used in error messages (e.g. ``"data"``).

    Raises
    ------
    ParameterError
        For an unknown scheme or format, a malformed or negative epsilon, or a bad option.
    """
    if spec is None or isinstance(spec, Quantizer):
        return spec
    if not isinstance(spec, str):
        raise ParameterError(name, spec, _valid(name))
    text = spec.strip().lower()
    if text in _NONE:
        return None
    head, _, rest = text.partition(":")
    if head in IDEALIZED_KINDS:
        try:
            eps = float(rest)
        except ValueError:
            raise ParameterError(name, spec, f"give a number after '{head}:' (e.g. {head}:0.01)") from None
        if not eps >= 0 or eps == float("inf"):
            raise ParameterError(name, spec, "have epsilon >= 0 and finite")
        if eps == 0 and any(ch in "123456789" for ch in rest.partition("e")[0]):
            raise ParameterError(name, spec, "have an epsilon that float64 can hold (it underflows to 0)")
        if eps == 0:
            return None
        return idealized(head, eps)
    options: dict[str, str] = {}
    if rest:
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            options[key.strip()] = value.strip() if eq else ""
    q = formats.parse_format(head, options, name=name)
    if q is None:
        raise ParameterError(name, spec, _valid(name))
    return q
