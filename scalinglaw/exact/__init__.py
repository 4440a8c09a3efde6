"""The exact engine: expected risk of quantized SGD by moment recursion (SPEC §4)."""

from .engine import ExactResult, exact_risk

__all__ = ["ExactResult", "exact_risk"]
