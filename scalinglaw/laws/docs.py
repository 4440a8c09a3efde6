"""Formula blocks of the ``theory/`` pages, generated from the laws themselves.

Each page holds one or more blocks between markers::

    <!-- BEGIN GENERATED: sgd-quantized data=additive,params=additive -->
    ...
    <!-- END GENERATED -->

:func:`render` produces a block from a law; :func:`update_pages` rewrites every block in ``theory/``;
``tests/test_theory_pages.py`` regenerates them and compares, so the documentation cannot drift from the code.
Run ``python -m scalinglaw.laws.docs [THEORY_DIR]`` after changing a law or its constants.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import sympy as sp

from .base import Law
from .registry import get_law

__all__ = ["render", "render_spec", "update_pages"]

_BLOCK = re.compile(r"<!-- BEGIN GENERATED: (?P<spec>[^>]*?) -->\n.*?<!-- END GENERATED -->", re.S)


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def render(law: Law) -> str:
    """Markdown of a law: its terms and definitions in LaTeX, its symbols, its constant set and the code object."""
    lines = [f"**`{law.name}`**: {law.title}.", "", f"Provenance: {law.provenance}.", ""]
    names = law.latex_names
    for term, expr in law.terms().items():
        sym = {s: names[s.name] for s in expr.free_symbols if s.name in names}
        lines += [f"Term `{term}`:", "", f"$$\\mathrm{{{term.replace('_', chr(92) + '_')}}}="
                  f"{sp.latex(expr, symbol_names=sym)}$$", ""]
    defs = law.latex_definitions()
    if defs:
        lines += ["where", ""]
        lines += [f"$${lhs}={rhs}$$" for lhs, rhs in defs.items()]
        lines += [""]
    lines += ["| input | meaning |", "|---|---|"]
    lines += [f"| `{v.name}` | {v.description} |" for v in law.variables]
    lines += [""]
    cs = law.constants
    lines += [f"Constants: set `{cs.name}` ({cs.provenance}; {cs.source or 'user'}"
              + (f"; {cs.table}" if cs.table else "") + ").", ""]
    lines += ["| constant | value | meaning |", "|---|---|---|"]
    lines += [f"| `{c}` | {_fmt(cs[c])} | {law.constant_descriptions.get(c, '')} |" for c in law.constant_names]
    opts = {k: v for k, v in law.options.items() if v is not None}
    lines += ["", f"Code: `{type(law).__module__}.{type(law).__qualname__}`"
              + (f" with options {opts}" if opts else "")
              + f"; `scalinglaw formula --law {law.name} --latex`."]
    return "\n".join(lines)


def _law_from_spec(spec: str) -> Law:
    """``name[:set] [k=v,k=v]`` -> a law."""
    head, _, opts = spec.strip().partition(" ")
    options = {}
    for item in filter(None, opts.split(",")):
        k, _, v = item.partition("=")
        options[k.strip()] = v.strip()
    return get_law(head, **options) if options else get_law(head)


def _range(v: list[float] | None) -> str:
    return "-" if not v else f"{_fmt(v[0])}–{_fmt(v[1])}"


def _shipped_calibration() -> dict:
    import json
    from importlib import resources

    return json.loads(resources.files("scalinglaw.data").joinpath("calibration.json").read_text())


def render_designs() -> str:
    """Table of what the shipped calibration's designs hold (from ``design_summary`` of the records)."""
    data = _shipped_calibration()
    lines = ["| law | design | n | d = inf | finite d | N | max B | step fraction | sketches (M) | reference: "
             "deterministic equivalent | max eps | largest numerical error / exact |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, entry in data.items():
        for which, g in entry.get("designs", {}).items():
            sk = f"{g['sketches']} ({_range(g['M_range'])})" if g["sketches"] else "-"
            lines.append(f"| `{name}` | {which} | {g['n']} | {g['d_inf']} | {_range(g['d_finite_range'])} | "
                         f"{_range(g['N_range'])} | {g['B_max']} | {_range(g['step_fraction_range'])} | {sk} | "
                         f"{g['reference_de']} | {_fmt(g['eps_max']) if 'eps_max' in g else '-'} | "
                         f"{g['max_relative_numerical_error']:.1e} |")
    return "\n".join(lines)


def render_calibration() -> str:
    """Tables of the shipped calibration: constants, closed/exact on both designs, and per region."""
    data = _shipped_calibration()
    lines = ["| law | constants | calibration design: n, min, median, max of closed/exact | test design: n, min, "
              "median, 90th percentile, max | test problems with closed < exact |", "|---|---|---|---|---|"]
    for name, entry in data.items():
        consts = ", ".join(f"`{k}`={_fmt(v)}" for k, v in entry["constants"]["values"].items())
        c, t = entry["calibration"], entry["test"]
        below = round((1.0 - t["fraction_bounded"]) * t["n"])
        lines.append(f"| `{name}` | {consts} | {c['n']}, {_fmt(c['min'])}, {_fmt(c['median'])}, {_fmt(c['max'])} | "
                     f"{t['n']}, {_fmt(t['min'])}, {_fmt(t['median'])}, {_fmt(t['p90'])}, {_fmt(t['max'])} | "
                     f"{below} |")
    tests = [e["test"] for e in data.values()]
    below = sum(round((1.0 - t["fraction_bounded"]) * t["n"]) for t in tests)
    worst = max(((t["median"], name, region) for name, e in data.items() for region, t in e["regions"].items()
                 if "median" in t), default=None)
    lines += ["", f"Test designs: {sum(t['n'] for t in tests)} problems in all; closed < exact on {below}; median "
              f"closed/exact {min(t['median'] for t in tests):.3g}–{max(t['median'] for t in tests):.3g} per law, "
              f"90th percentile at most {max(t['p90'] for t in tests):.3g}"
              + (f"; largest median of a region {worst[0]:.3g} (`{worst[1]}`, {worst[2]})." if worst else ".")]
    zero = {name: e["test"].get("exact_zero", 0) for name, e in data.items() if e["test"].get("exact_zero", 0)}
    if zero:
        lines += ["", "Test problems whose exact excess risk underflows to 0 (bounded, not in the quantiles): "
                  + ", ".join(f"`{k}` {v}" for k, v in zero.items()) + "."]
    lines += ["", "Tightness (closed/exact) on the test design, per region:", "",
              "| law | region | n | min | median | 90th percentile | max |", "|---|---|---|---|---|---|---|"]
    for name, entry in data.items():
        for region, t in sorted(entry["regions"].items(), key=lambda kv: (kv[0] != "all", kv[0])):
            if "median" not in t:
                continue
            lines.append(f"| `{name}` | {region} | {t['n']} | {_fmt(t['min'])} | {_fmt(t['median'])} | "
                         f"{_fmt(t['p90'])} | {_fmt(t['max'])} |")
    return "\n".join(lines)


def render_spec(spec: str) -> str:
    """The full block (markers included) for a marker spec."""
    special = {"calibration": render_calibration, "calibration-designs": render_designs}
    body = special[spec.strip()]() if spec.strip() in special else render(_law_from_spec(spec))
    return f"<!-- BEGIN GENERATED: {spec} -->\n{body}\n<!-- END GENERATED -->"


def update_pages(theory_dir: str | Path, *, write: bool = True) -> dict[str, bool]:
    """Regenerate every block in ``theory_dir/*.md``; returns which pages changed (written if ``write``)."""
    changed = {}
    for page in sorted(Path(theory_dir).glob("*.md")):
        text = page.read_text()
        new = _BLOCK.sub(lambda m: render_spec(m.group("spec")), text)
        changed[page.name] = new != text
        if write and new != text:
            page.write_text(new)
    return changed


if __name__ == "__main__":  # pragma: no cover
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "theory"
    for name, was_changed in update_pages(root).items():
        if was_changed:
            print(f"updated {name}")
