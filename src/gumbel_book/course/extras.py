"""The coursework tools need two packages the book itself does not: otter-grader and nbclient.

``pip install "gumbel-book[course]"`` installs both (the repository's requirements.txt has them pinned). The
modules of :mod:`gumbel_book.course` import without them, and the first call that needs one says which to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL_HINT = 'pip install "gumbel-book[course]"'


def require(module: str, distribution: str) -> ModuleType:
    """``module`` imported, or an ImportError that names ``distribution`` and the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"the coursework tools need {distribution} (import of {module!r} failed: {err}); run {INSTALL_HINT}"
        ) from err
