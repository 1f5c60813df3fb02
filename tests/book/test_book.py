"""The book's sources: every chapter opens as a notebook, imports the package instead of redefining it,
keeps live widgets out of the static build, and is built with fresh execution and warnings as errors."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

import gumbel_book
import gumbel_book.notebook

ROOT = Path(__file__).resolve().parents[2]
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
NOTEBOOKS = list(gumbel_book.notebook.CHAPTERS)  # the package's one list of pages, checked against _toc.yml below
CHAPTERS = NOTEBOOKS[1:]


def _package_functions() -> set[str]:
    """Names of the public functions defined anywhere in gumbel_book."""
    names = set()
    for info in pkgutil.walk_packages(gumbel_book.__path__, "gumbel_book."):
        if info.name.endswith("sphinx_offline"):
            continue
        module = importlib.import_module(info.name)
        for n, obj in vars(module).items():
            if callable(obj) and not n.startswith("_") and getattr(obj, "__module__", None) == info.name:
                names.add(n)
    return names


def test_toc_lists_the_chapters_in_the_packages_order():
    files = [entry["file"] for part in TOC["parts"] for entry in part["chapters"]]
    assert TOC["root"] == "book/intro"
    assert files[: len(CHAPTERS)] == [f"book/{c}" for c in CHAPTERS]


def test_build_executes_afresh_with_warnings_as_errors():
    """jupyter-cache cannot see changes in src/, so every build must execute every notebook."""
    assert CONFIG["execute"]["execute_notebooks"] == "force"
    assert CONFIG["sphinx"]["config"]["nb_execution_raise_on_error"] is True
    script = (ROOT / "scripts" / "install_and_build.sh").read_text()
    assert "--warningiserror" in script and "--all" in script
    assert "scripts/install_and_build.sh" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_chapter_opens_as_a_notebook(name):
    nb = jupytext.read(ROOT / "book" / f"{name}.md")
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.metadata["jupytext"]["text_representation"]["format_name"] == "myst"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{name} has no code cells"
    assert any("gumbel_book" in c.source for c in code), f"{name} does not import gumbel_book"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_chapter_does_not_redefine_package_functions(name):
    """One implementation: notebooks import gumbel_book; exercise answers use their own names."""
    package = _package_functions()
    nb = jupytext.read(ROOT / "book" / f"{name}.md")
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                assert node.name not in package, f"{name} redefines gumbel_book's {node.name}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_live_widgets_do_not_run_in_the_static_book(name):
    nb = jupytext.read(ROOT / "book" / f"{name}.md")
    for cell in nb.cells:
        if cell.cell_type == "code" and "gumbel_book.widgets" in cell.source:
            assert "skip-execution" in cell.metadata.get("tags", []), f"{name}: a widget cell would run in the build"
