"""Named, immutable constant sets with provenance (lmfit-style parameters for scaling laws).

A :class:`ConstantSet` is what a law's fitted constants are: values, optional standard errors, and where they
come from (paper, table, confidence, provenance tag). Sets are immutable, compare by value, and round-trip
through JSON, so users can save, edit and supply their own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..errors import ParameterError

__all__ = ["ConstantSet"]


@dataclass(frozen=True, eq=False)
class ConstantSet(Mapping[str, float]):
    """An immutable mapping of constant names to values, with provenance.

    Parameters
    ----------
    name : str
        Identifier, e.g. ``"hoffmann"`` or ``"table2"``.
    values : Mapping[str, float]
        The constants.
    source : str
        Citation (paper and URL).
    table : str
        Where in the source (e.g. ``"App. K, Table 2"``).
    confidence : str
        ``"high"``, ``"medium"``, ``"low"`` or a sentence.
    provenance : str
        A SPEC §0 tag: ``[paper]``, ``[derived]``, ``[recon]``, or an empirical-laws.md label
        (``[SRC]``, ``[SRC-garbled]``, ``[RECON]``, ``[COMPUTED]``).
    notes : str
        Free text.
    standard_errors : Mapping[str, float]
        Optional standard errors of some constants.
    """

    name: str
    values: Mapping[str, float]
    source: str = ""
    table: str = ""
    confidence: str = ""
    provenance: str = ""
    notes: str = ""
    standard_errors: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        vals = {}
        for k, v in dict(self.values).items():
            try:
                x = float(v)
            except (TypeError, ValueError):
                raise ParameterError(f"constant {k}", v, "be a real number") from None
            if not math.isfinite(x):
                raise ParameterError(f"constant {k}", v, "be finite")
            vals[str(k)] = x
        object.__setattr__(self, "values", MappingProxyType(vals))
        object.__setattr__(
            self, "standard_errors", MappingProxyType({str(k): float(v) for k, v in dict(self.standard_errors).items()})
        )

    # Mapping protocol
    def __getitem__(self, key: str) -> float:
        try:
            return self.values[key]
        except KeyError:
            raise KeyError(f"constant set {self.name!r} has no constant {key!r}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConstantSet):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def with_values(self, name: str | None = None, **values: float) -> ConstantSet:
        """A new set with some values replaced (provenance marked as user-modified)."""
        unknown = set(values) - set(self.values)
        if unknown:
            raise ParameterError("constant", sorted(unknown)[0], "be one of " + ", ".join(self.values))
        merged = {**self.values, **values}
        return ConstantSet(
            name=name or f"{self.name}+custom",
            values=merged,
            source=self.source,
            table=self.table,
            confidence="user-modified" if values else self.confidence,
            provenance="[user]" if values else self.provenance,
            notes=self.notes,
            standard_errors={k: v for k, v in self.standard_errors.items() if k not in values},
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "values": dict(self.values),
            "source": self.source,
            "table": self.table,
            "confidence": self.confidence,
            "provenance": self.provenance,
            "notes": self.notes,
            "standard_errors": dict(self.standard_errors),
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConstantSet:
        if "values" not in data:
            raise ParameterError("constants", "JSON without 'values'", "have a 'values' object")
        return cls(
            name=str(data.get("name", "custom")),
            values=data["values"],
            source=str(data.get("source", "")),
            table=str(data.get("table", "")),
            confidence=str(data.get("confidence", "")),
            provenance=str(data.get("provenance", "")),
            notes=str(data.get("notes", "")),
            standard_errors=data.get("standard_errors", {}) or {},
        )

    @classmethod
    def from_json(cls, text: str) -> ConstantSet:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            msg = f"be valid JSON ({exc.msg} at line {exc.lineno})"
            raise ParameterError("constants", "invalid JSON", msg) from None
        return cls.from_dict(data)
