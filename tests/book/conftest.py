"""The book tier's modules share helpers (``test_package.notebook_pages`` and friends): pytest's importlib mode
does not put this folder on ``sys.path``, so this file does, whatever order the modules are collected in."""

import shutil
import sys
import tempfile
import threading
from concurrent.futures import Future
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


def pytest_collection_finish(session):
    """When test_package.py is to run in this process, start building its wheel and fresh venv now, in a daemon
    thread: the install (a minute or more, mostly pip unpacking torch) overlaps the tests that run before it. Its
    ``prepared`` fixture waits for the result, and re-raises what went wrong. (Under pytest-xdist, which the README
    command uses, the other worker's files overlap it instead.)"""
    if hasattr(session.config, "workerinput") or not any(item.path.name == "test_package.py" for item in session.items):
        return  # under pytest-xdist every worker collects everything: the one that gets test_package.py builds it
    import test_package

    base = Path(tempfile.mkdtemp(prefix="gumbel-book-package-"))
    session.config.add_cleanup(lambda: shutil.rmtree(base, ignore_errors=True))
    future: Future = Future()

    def work() -> None:
        try:
            future.set_result(test_package.prepare(base))
        except BaseException as err:  # noqa: BLE001 - handed to the fixture, which raises it in the test
            future.set_exception(err)

    threading.Thread(target=work, name="fresh-venv", daemon=True).start()
    session.config.fresh_venv_future = future
