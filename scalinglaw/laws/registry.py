"""Look up laws by name: ``get_law("chinchilla:epoch")`` (``NAME[:CONSTANT_SET]``).

Modules are imported lazily, so that importing the registry (and ``scalinglaw --help``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import ParameterError
from .base import Law

__all__ = ["LAW_MODULES", "get_law", "law_names"]

#: law name -> "module:ClassName" (relative to scalinglaw.laws)
LAW_MODULES: dict[str, str] = {
    "sgd": "regression:SGDLaw",
    "sgd-quantized": "regression:QuantizedSGDLaw",
    "sketched": "regression:SketchedLaw",
    "sketched-quantized": "regression:QuantizedSketchedLaw",
    "kumar": "kumar:KumarLaw",
    "sun": "sun:SunLaw",
    "chen": "chen:ChenLaw",
    "chinchilla": "chinchilla:ChinchillaLaw",
    "communication": "communication:CommunicationLaw",
}


def law_names() -> list[str]:
    return list(LAW_MODULES)


def law_class(name: str) -> type[Law]:
    if name not in LAW_MODULES:
        raise ParameterError("law", name, "be one of " + ", ".join(LAW_MODULES))
    module, cls = LAW_MODULES[name].split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls)


def get_law(spec: str, **options: Any) -> Law:
    """Build a law from ``NAME`` or ``NAME:CONSTANTS`` (e.g. ``chinchilla:hoffmann-tex``)."""
    name, _, constants = spec.partition(":")
    cls = law_class(name)
    return cls(constants or None, **options)
