"""The package, the tests and the benchmarks are ruff clean and ruff formatted (the project's style gate)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGETS = [p for p in ("src", "tests", "benchmarks") if (ROOT / p).exists()]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff_is_clean(command):
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command, *TARGETS], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_bibliography_parses_and_every_citation_resolves():
    """references.bib parses (a merge that drops a closing brace fails here, not after a ten-minute build) and
    every ``{cite:p}``/``{cite:t}`` key of the chapters is one of its entries."""
    from pybtex.database import parse_file

    root = Path(__file__).resolve().parents[2]
    entries = set(parse_file(root / "book" / "references.bib").entries)
    cited = {
        key.strip()
        for page in (root / "book").glob("*.md")
        for keys in re.findall(r"\{cite:[pt]\}`([^`]+)`", page.read_text())
        for key in keys.split(",")
    }
    assert cited and not cited - entries, f"cited but not in references.bib: {sorted(cited - entries)}"


def test_no_proof_is_a_dropdown():
    """sphinx-proof writes ``{prf:proof}`` without an ``admonition-title``; given ``:class: dropdown``,
    sphinx-togglebutton's script throws on it and stops, leaving every later solution on the page open. A
    collapsible proof is an ``{admonition} Proof`` with ``:class: dropdown``."""
    root = Path(__file__).resolve().parents[2]
    found = [
        f"{page.name}:{text[: m.start()].count(chr(10)) + 1}"
        for page in (root / "book").glob("*.md")
        for text in [page.read_text()]
        for m in re.finditer(r"\{prf:proof\}[^\n]*\n(?::[a-z-]+:[^\n]*\n)*:class:[^\n]*dropdown", text)
    ]
    assert not found, f"{{prf:proof}} with :class: dropdown at {found}"


MAX_VISIBLE = 88  # the guide's limit for a line a reader sees in a code cell


def visible_cell_problems(markdown_notebook: str) -> list[str]:
    """In the code cells a reader sees (no tag of ``notebook.HIDDEN_TAGS``): lines over :data:`MAX_VISIBLE` characters
    and ``glue(`` calls, which belong in hidden cells."""
    import jupytext

    from gumbel_book.notebook import HIDDEN_TAGS

    problems = []
    for cell in jupytext.reads(markdown_notebook, fmt="md:myst").cells:
        if cell.cell_type != "code" or set(HIDDEN_TAGS) & set(cell.metadata.get("tags", [])):
            continue
        problems += [
            f"{len(line)} characters: {line[:50]}" for line in cell.source.splitlines() if len(line) > MAX_VISIBLE
        ]
        problems += ["glue() in a visible cell"] if "glue(" in cell.source else []
    return problems


@pytest.mark.parametrize("page", sorted(p.name for p in (Path(__file__).resolve().parents[2] / "book").glob("*.md")))
def test_visible_code_is_short_and_glue_free(page):
    source = (Path(__file__).resolve().parents[2] / "book" / page).read_text()
    problems = visible_cell_problems(source)
    assert not problems, f"{page}: {problems[:5]}"


def test_the_visible_cell_check_sees_a_long_line_and_a_glue():
    """Negative control: a visible cell with a 90-character line and a glue() call, beside a hidden one."""
    front = (
        "---\njupytext:\n  text_representation:\n    format_name: myst\n"
        "kernelspec:\n  display_name: Python 3\n  name: python3\n---\n"
    )
    long_line = "x = " + "1 + " * 21 + "1"
    visible = f"```{{code-cell}} ipython3\n{long_line}\nglue('a', 1)\n```\n"
    hidden = f"```{{code-cell}} ipython3\n:tags: [remove-cell]\n{long_line}\nglue('b', 2)\n```\n"
    assert len(long_line) > MAX_VISIBLE
    assert len(visible_cell_problems(front + visible + hidden)) == 2
    assert visible_cell_problems(front + hidden) == []
