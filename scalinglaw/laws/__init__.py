"""Scaling laws: symbolic definitions (SymPy) with compiled numeric evaluation, and their constants."""

from .base import Law, Variable
from .constants import ConstantSet

__all__ = ["ConstantSet", "Law", "Variable"]
