"""The formula blocks of theory/ are generated from the code: regenerate them and compare."""

from __future__ import annotations

from pathlib import Path

from scalinglaw.laws.docs import update_pages

THEORY = Path(__file__).resolve().parents[1] / "theory"


def test_generated_blocks_are_current():
    changed = update_pages(THEORY, write=False)
    stale = [name for name, was in changed.items() if was]
    assert not stale, f"regenerate with `python -m scalinglaw.laws.docs`: {stale}"


def test_every_law_has_a_page_with_a_generated_block():
    from scalinglaw.laws.registry import law_names

    for name in law_names():
        page = THEORY / f"{name}.md"
        assert page.exists(), name
        assert f"<!-- BEGIN GENERATED: {name}" in page.read_text(), name


def test_every_formula_page_carries_provenance_tags():
    for page in THEORY.glob("*.md"):
        text = page.read_text()
        assert "[paper" in text or "[derived" in text or "[recon" in text or "[SRC" in text, page.name
