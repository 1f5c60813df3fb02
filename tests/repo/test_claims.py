"""Guarded claims: the register counts them from the chapter sources, and no chapter may lose any.

Convention (one for the whole book): a *guarded claim* is one ``assert`` statement in a code cell tagged
both ``remove-cell`` and ``claim``, e.g.

    ```{code-cell} ipython3
    :tags: [remove-cell, claim]
    assert bias_gs[-1] < 2 * noise_gs[-1], "'only the relaxed Gumbel-Softmax loses its bias as tau -> 0'"
    ```

Each assert's message quotes or names the sentence of the prose it guards. Numbers in prose are glued
(myst-nb ``glue``), not typed. ``tests/repo/claim_floors.json`` holds each chapter's count; the test fails when a
chapter has fewer guarded claims than its floor (raise the floor when you add claims).
"""

from __future__ import annotations

import ast
import json
import textwrap
from pathlib import Path

import pytest

from gumbel_book.notebook import CHAPTERS, book_sources, claim_asserts, claims_register, count_claims

ROOT = Path(__file__).resolve().parents[2]
FLOORS = json.loads((ROOT / "tests" / "repo" / "claim_floors.json").read_text())

HEADER = textwrap.dedent(
    """\
    ---
    jupytext:
      text_representation:
        extension: .md
        format_name: myst
        format_version: 0.13
    kernelspec:
      display_name: Python 3
      language: python
      name: python3
    ---

    # A chapter
    """
)


def _cell(source: str, tags: str | None = None) -> str:
    meta = f":tags: [{tags}]\n" if tags else ""
    return f"\n```{{code-cell}} ipython3\n{meta}{source}\n```\n"


def test_floors_cover_every_chapter():
    assert sorted(FLOORS) == sorted(CHAPTERS)
    assert all(isinstance(v, int) and v >= 0 for v in FLOORS.values())


@pytest.mark.parametrize("name", CHAPTERS)
def test_no_chapter_loses_guarded_claims(name):
    count = count_claims(ROOT / "book" / f"{name}.md")
    assert count >= FLOORS[name], f"{name}.md guards {count} claims, fewer than its floor {FLOORS[name]}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_claim_names_its_sentence(name):
    for node in claim_asserts(ROOT / "book" / f"{name}.md"):
        assert node.msg is not None, f"{name}.md: an assert at line {node.lineno} of a claim cell has no message"
        msg = ast.unparse(node.msg)
        assert len(msg) >= 12, f"{name}.md: the message {msg} does not name a sentence"


def test_counting_follows_the_convention(tmp_path):
    src = HEADER + _cell("x = 1")
    claims = 'assert x == 1, "the first sentence"\nfor i in range(3):\n    assert i < 3, "the second one"'
    src += _cell(claims, "remove-cell, claim")
    src += _cell('assert x, "a visible check, not a claim"')
    src += _cell('assert x, "hidden but not a claim"', "remove-cell")
    (tmp_path / "a.md").write_text(src)
    assert count_claims(tmp_path / "a.md") == 2


def test_a_claim_cell_must_be_hidden(tmp_path):
    (tmp_path / "a.md").write_text(HEADER + _cell('assert True, "shown to readers"', "claim"))
    with pytest.raises(ValueError, match="remove-cell"):
        count_claims(tmp_path / "a.md")


def test_register_reads_every_chapter_and_says_none_without_sources(tmp_path):
    register = claims_register(ROOT / "book")
    assert register is not None and list(register) == list(CHAPTERS)
    assert register["straight_through"] == count_claims(ROOT / "book" / "straight_through.md")
    assert claims_register(tmp_path) is None  # a notebook downloaded on its own: nothing to count
    with pytest.raises(FileNotFoundError, match="no chapter source"):
        count_claims(tmp_path / "missing.md")


def test_book_sources_prefers_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT / "book")
    assert book_sources() == ROOT / "book"
    monkeypatch.chdir(tmp_path)  # elsewhere: the book next to an editable install, or the (empty) working directory
    found = book_sources()
    assert found == tmp_path or (found / "intro.md").is_file()
