"""The book tier's modules share helpers (``test_package.notebook_pages`` and friends): pytest's importlib mode
does not put this folder on ``sys.path``, so this file does, whatever order the modules are collected in."""

import sys
from pathlib import Path

HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)


def pytest_collection_modifyitems(config, items):
    """test_reader.py runs page by page (its tests share each page's loads, see its ``loaded`` fixture): its items,
    contiguous as collected, are sorted by their ``page_path`` (stable, so each page keeps the tests' order)."""
    index = [i for i, item in enumerate(items) if item.path.name == "test_reader.py"]
    if not index:
        return
    block = [items[i] for i in index]

    def page(item) -> str:
        callspec = getattr(item, "callspec", None)
        return str(callspec.params.get("page_path", "")) if callspec else ""

    for i, item in zip(index, sorted(block, key=page), strict=True):
        items[i] = item
