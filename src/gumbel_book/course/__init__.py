"""The coursework edition: student notebooks, an offline autograder and a student HTML book.

``python -m gumbel_book.course build`` turns every chapter whose ``## Exercises`` section starts with a raw
``# ASSIGNMENT CONFIG`` cell into ``<out>/<chapter>/{student,autograder,instructor}``; ``grade`` grades a
submission (or a folder of them) offline, each notebook in a sandboxed worker process while the tests run in the
grader (:mod:`.grade`, :mod:`.remote`, :mod:`.worker`, :mod:`.sandbox`); ``book`` builds the HTML book without
solutions.

The names below are imported on first use, so the grading worker, which imports this package, stays light.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Chapter": ".chapters",
    "discover_chapters": ".chapters",
    "find_leaks": ".leaks",
    "hidden_test_sources": ".leaks",
    "solution_lines": ".leaks",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
