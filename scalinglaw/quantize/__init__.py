"""Quantizers: the idealised schemes of the theory and real INT/FP formats with stochastic rounding (SPEC §2)."""

from .base import IdealizedScheme, Quantizer
from .formats import FORMAT_NAMES, FloatFormat, IntFormat
from .parse import parse_quantizer
from .schemes import Additive, Multiplicative, MultiplicativeCoord, idealized

__all__ = [
    "FORMAT_NAMES",
    "Additive",
    "FloatFormat",
    "IdealizedScheme",
    "IntFormat",
    "Multiplicative",
    "MultiplicativeCoord",
    "Quantizer",
    "idealized",
    "parse_quantizer",
]
