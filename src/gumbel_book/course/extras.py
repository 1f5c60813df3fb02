"""The coursework tools need packages the book itself does not: otter-grader and nbclient to build and grade,
playwright and pypdf to print the PDFs.

``pip install "gumbel-book[course]"`` installs the first two, ``pip install "gumbel-book[print]"`` the others (the
repository's requirements.txt has them all pinned). The modules of :mod:`gumbel_book.course` import without them,
and the first call that needs one says which to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINT = 'pip install "gumbel-book[{extra}]"'


def require(module: str, distribution: str, extra: str = "course") -> ModuleType:
    """``module`` imported, or an ImportError that names ``distribution`` and the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        hint = INSTALL_HINT.format(extra=extra)
        raise ImportError(
            f"the coursework tools need {distribution} (import of {module!r} failed: {err}); run {hint}"
        ) from err
