"""Sphinx extension: the HTML book's code cells do not show the otter-grader markers of the course build.

A solution's body sits between ``# BEGIN SOLUTION`` and ``# END SOLUTION`` comments so that
``gumbel_book.course`` can cut it out of the student notebooks; readers of the book need not see them.
Only code cells lose them: the instructor page, which explains the markers, keeps its literal blocks.
"""

from __future__ import annotations

import re

from docutils import nodes
from sphinx.application import Sphinx

MARKER_LINE = re.compile(r"^[ \t]*# (?:BEGIN|END) SOLUTION\b[^\n]*(?:\n|$)", re.M)


def strip_markers(source: str) -> str:
    """``source`` without its ``# BEGIN SOLUTION`` / ``# END SOLUTION`` lines."""
    return MARKER_LINE.sub("", source)


def _strip_cells(app: Sphinx, doctree: nodes.document) -> None:
    for block in list(doctree.findall(nodes.literal_block)):
        cell = block.parent
        if not (isinstance(cell, nodes.container) and "cell_input" in cell.get("classes", [])):
            continue
        text = block.astext()
        stripped = strip_markers(text)
        if stripped != text:
            block.children = [nodes.Text(stripped)]
            block.rawsource = stripped


def setup(app: Sphinx) -> dict:
    app.connect("doctree-read", _strip_cells)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
