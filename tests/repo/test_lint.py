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
