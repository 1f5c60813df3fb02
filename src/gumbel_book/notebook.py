"""What a chapter page needs at run time: ``glue`` for numbers in the prose, the chapter list, and the
register of guarded claims.

``glue`` works in the book build and in a plain Jupyter session alike. A *guarded claim* is one ``assert``
statement inside a code cell tagged both ``remove-cell`` (hidden from readers) and ``claim``; its message
names the sentence of the prose it guards. When the sentence turns false, the assert fails the build.
:func:`count_claims` counts them in one chapter source and :func:`claims_register` in every chapter next to
it, so the intro's register is computed, never typed.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

__all__ = [
    "CHAPTERS",
    "CLAIM_TAG",
    "HIDDEN_TAGS",
    "HIDE_TAG",
    "book_sources",
    "claim_asserts",
    "claims_register",
    "count_claims",
    "glue",
]


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


CLAIM_TAG = "claim"
"""The cell tag that marks a guarded-claim cell (together with :data:`HIDE_TAG`)."""

HIDE_TAG = "remove-cell"
"""The tag that hides a guarded-claim cell from readers."""

HIDDEN_TAGS = ("remove-cell", "remove-input", "hide-input", "hide-cell")
"""The cell tags that keep a code cell's source from a reader of the page (removed, or folded away)."""

CHAPTERS: tuple[str, ...] = (
    "intro",
    "reparameterization",
    "gumbel_max",
    "gumbel_softmax",
    "straight_through",
    "categorical_vae",
    "language_models",
)
"""The book's pages, in reading order (their sources are ``book/<name>.md``)."""


def _claim_cells(path: Path) -> list[tuple[list[str], str]]:
    """``(tags, source)`` of every code cell tagged :data:`CLAIM_TAG` in the MyST notebook at ``path``."""
    import jupytext  # imported here: the book's runtime needs it only for the register

    nb = jupytext.read(path)
    cells = []
    for cell in nb.cells:
        tags = list(cell.metadata.get("tags", []))
        if cell.cell_type == "code" and CLAIM_TAG in tags:
            cells.append((tags, cell.source))
    return cells


def claim_asserts(path: str | Path) -> list[ast.Assert]:
    """Every ``assert`` statement of the guarded-claim cells of the chapter source at ``path``.

    Raises ``ValueError`` for a claim cell that is not also tagged ``remove-cell``, or whose source does not parse.
    """
    path = Path(path)
    found: list[ast.Assert] = []
    for tags, source in _claim_cells(path):
        if HIDE_TAG not in tags:
            msg = f"{path.name}: a cell tagged {CLAIM_TAG!r} must also be tagged {HIDE_TAG!r}: {source[:80]!r}"
            raise ValueError(msg)
        try:
            tree = ast.parse(source)
        except SyntaxError as err:
            raise ValueError(f"{path.name}: a claim cell does not parse ({err}): {source[:80]!r}") from err
        found.extend(node for node in ast.walk(tree) if isinstance(node, ast.Assert))
    return found


def count_claims(path: str | Path) -> int:
    """The number of guarded claims (asserts in hidden ``claim`` cells) in the chapter source at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no chapter source at {path}")
    return len(claim_asserts(path))


def book_sources() -> Path:
    """Where the chapter sources are: the working directory (the book build runs each page from ``book/``),
    else ``book/`` of the repository this package was installed from in editable mode, else the working directory."""
    here = Path.cwd()
    if (here / "intro.md").is_file():
        return here
    repo_book = Path(__file__).resolve().parents[2] / "book"
    return repo_book if (repo_book / "intro.md").is_file() else here


def claims_register(book_dir: str | Path = ".", chapters: tuple[str, ...] = CHAPTERS) -> dict[str, int] | None:
    """Guarded claims per chapter, read from ``book_dir/<chapter>.md``; ``None`` when those sources are absent.

    A notebook downloaded on its own has no chapter sources beside it, and then there is nothing to count.
    """
    book_dir = Path(book_dir)
    paths = {name: book_dir / f"{name}.md" for name in chapters}
    if not all(p.is_file() for p in paths.values()):
        return None
    return {name: count_claims(p) for name, p in paths.items()}
