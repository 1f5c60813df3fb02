"""Notebook helpers that work in the book build and in a plain Jupyter session alike."""

from __future__ import annotations

from typing import Any


def glue(name: str, value: Any, display: bool = False) -> None:
    """Store ``value`` under ``name`` for the book's ``{glue:text}`` roles (myst-nb's ``glue``).

    Where myst-nb is not installed (a downloaded notebook), there is nothing to glue into: the value is
    shown when ``display`` is true and otherwise dropped, so the notebook still runs top to bottom.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be an identifier-like string, got {name!r}")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            from IPython.display import display as show

            show(value)
        return
    myst_glue(name, value, display=display)
