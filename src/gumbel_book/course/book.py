"""``course book``: the HTML book without any solution, for students.

sphinx-exercise's ``hide_solutions`` crashes on gated solutions (sphinx-exercise issue 89), so the solutions are
stripped from the notebooks instead (:func:`chapters.strip_solutions`). Outputs come from the executed notebooks of
the full book build (``_build/jupyter_execute``) when they exist, so the student book is not executed again; without
them it is built from the sources with execution off (no figures) and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jupytext
import nbformat
import yaml

from .chapters import strip_solutions, toc_files

INSTRUCTOR_PAGES = ("book/instructor",)
BUILD_TIMEOUT_S = 900


def _student_toc(root: Path) -> dict:
    toc = yaml.safe_load((root / "_toc.yml").read_text())

    def prune(node: object) -> object:
        if isinstance(node, dict):
            return {k: prune(v) for k, v in node.items()}
        if isinstance(node, list):
            kept = [
                prune(item) for item in node if not (isinstance(item, dict) and item.get("file") in INSTRUCTOR_PAGES)
            ]
            return kept
        return node

    return prune(toc)


def student_config(config: dict) -> dict:
    """The full book's ``_config.yml`` for the student edition: not executed, and with nothing that leads to the
    full book (which shows the solutions): no repository address (so no Colab or Binder buttons, whose notebooks
    are the full book's) and no canonical link to the published site (or to any other)."""
    config = dict(config)
    config["title"] = f"{config.get('title', 'The book')} (student edition)"
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    config["repository"] = {"url": ""}  # without the key, Jupyter Book falls back to its own repository
    config["launch_buttons"] = {"notebook_interface": "jupyterlab", "thebe": False}
    html = config.setdefault("html", {})
    html.update(use_repository_button=False, use_issues_button=False, use_edit_page_button=False, baseurl="")
    config.setdefault("sphinx", {}).setdefault("config", {})["html_baseurl"] = ""
    return config


def _page(root: Path, entry: str, executed: Path | None) -> tuple[nbformat.NotebookNode | None, Path]:
    """The page as a notebook (executed if available) or, for plain Markdown pages, None and the source path."""
    source = root / f"{entry}.md"
    done = executed / f"{entry}.ipynb" if executed else None
    if done is not None and done.is_file():
        return with_glue(nbformat.read(done, as_version=4), done.with_suffix(".glue.json")), source
    text = source.read_text()
    if text.startswith("---") and "jupytext" in text.split("---", 2)[1]:
        return jupytext.read(source), source
    return None, source


def with_glue(nb: nbformat.NotebookNode, glue: Path) -> nbformat.NotebookNode:
    """``nb`` with the values its page glues (myst-nb keeps them beside the executed notebook, in ``glue``, and out
    of its outputs) back in a hidden cell, so a build that does not execute still fills in every glued number."""
    if not glue.is_file():
        return nb
    outputs = []
    for output in json.loads(glue.read_text()).values():
        prefix = output.get("metadata", {}).get("scrapbook", {}).get("mime_prefix", "")
        outputs.append(nbformat.from_dict({**output, "data": {prefix + k: v for k, v in output["data"].items()}}))
    cell = nbformat.v4.new_code_cell("# the page's glued values", metadata={"tags": ["remove-cell"]})
    cell.outputs = outputs
    nb.cells.append(cell)
    lines = nb.metadata.get("source_map")
    if lines:  # myst-nb maps each cell to its source line
        lines.append(lines[-1])
    return nb


def build_student_book(root: Path, out: Path, executed: Path | None = None) -> Path:
    """Build the student book; its HTML (``index.html`` and the pages) lands in ``out``, which is returned."""
    root, out = Path(root).resolve(), Path(out).resolve()
    if executed is None and (root / "_build" / "jupyter_execute").is_dir():
        executed = root / "_build" / "jupyter_execute"
    missing = []
    with tempfile.TemporaryDirectory(prefix="course-book-") as tmp:
        src = Path(tmp)
        config = student_config(yaml.safe_load((root / "_config.yml").read_text()))
        (src / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        toc = _student_toc(root)
        (src / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False))
        for bib in config.get("bibtex_bibfiles", []):
            (src / bib).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(root / bib, src / bib)
        for entry in toc_files(root):
            if entry in INSTRUCTOR_PAGES:
                continue
            nb, source = _page(root, entry, executed)
            dest = src / entry
            dest.parent.mkdir(parents=True, exist_ok=True)
            if nb is None:
                shutil.copy(source, dest.with_suffix(".md"))
                continue
            if not any(cell.get("outputs") for cell in nb.cells if cell.cell_type == "code"):
                missing.append(entry)
            nb.metadata.pop("jupytext", None)
            nbformat.write(strip_solutions(nb), dest.with_suffix(".ipynb"))
        if missing:
            print(
                f"note: no executed notebooks for {missing}: built without outputs (build the full book first, "
                "or pass --executed, to get the figures)",
                file=sys.stderr,
            )
        build = src / "_out"
        cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", "--all", "--keep-going"]
        cmd += ["--path-output", str(build), str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, env=os.environ.copy())
        html = build / "_build" / "html"
        if proc.returncode != 0 or not (html / "index.html").is_file():
            raise RuntimeError(
                f"jupyter-book failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
            )
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(html, out)
    html = out
    return html
