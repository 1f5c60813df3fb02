"""Sphinx extension: every chapter page offers a runnable ``.ipynb`` and Colab/Binder buttons that open it.

At build time each MyST chapter in the table of contents is converted (jupytext) into a notebook without
outputs whose first cell installs ``gumbel-book`` pinned to the book's version when it is missing. It is
written to ``_sources/<page>.ipynb``, where the theme's ".ipynb" download button points. The Colab and
Binder buttons open the same notebook from the ``notebooks`` branch, which the publish workflow fills
with these files; both are derived from the one ``repository.url`` setting in ``_config.yml``.

The notebook is what a student can use in Jupyter or Colab (:func:`student_cells`): its Markdown is plain
Markdown (:mod:`.jupyter_markdown`: roles and directives written out, glued values written in), it has no
grader markers, no hidden guard (cells tagged ``claim``) and no hidden test, and each solution is replaced by
its answer cell with ``...`` where the solution was, a note of the check to run, and a link to the solution
in the book.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jupytext
import nbformat
from sphinx.application import Sphinx

from .. import __version__
from ..notebook import HIDDEN_TAGS
from .jupyter_markdown import Directive, References, convert_markdown, split_blocks

NOTEBOOKS_BRANCH = "notebooks"
INSTALL_TAG = "gumbel-book-install"
#: Raw cells of the grader (otter-assign): ``# BEGIN QUESTION``, ``# END TESTS``, ``# ASSIGNMENT CONFIG``...
GRADER_MARKER = re.compile(r"^#\s*((BEGIN|END)\s+(QUESTION|SOLUTION|TESTS|PROMPT)\b|ASSIGNMENT CONFIG)", re.I)
#: Tags of cells the book hides: a notebook shows them collapsed (JupyterLab's ``source_hidden``).
ANSWER = "...  # your answer"


def install_cell_source(version: str = __version__) -> str:
    """The first cell of a downloaded notebook: install the package, pinned to the book's version, if missing."""
    return f"""# Run this cell first: it installs the book's package (gumbel-book {version}) where it is missing,
# as on Colab or in a fresh Jupyter. Where gumbel_book is already installed it does nothing.
import importlib
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("gumbel_book") is None:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "gumbel-book=={version}"])
    importlib.invalidate_caches()
if "google.colab" in sys.modules:  # Colab shows the live apps' widgets only with its custom widget manager
    from google.colab import output

    output.enable_custom_widget_manager()"""


def is_notebook_source(path: str | Path) -> bool:
    """True for a MyST Markdown notebook (a jupytext header with a kernelspec), False for plain pages."""
    path = Path(path)
    if path.suffix != ".md":
        return False
    return "kernelspec" in jupytext.read(path).metadata


def answer_cell_source(solution: str) -> str | None:
    """The answer cell a student fills in: ``solution`` with each ``# BEGIN SOLUTION`` ... ``# END SOLUTION``
    block replaced by ``...`` (none for ``# BEGIN SOLUTION NO PROMPT``) and each ``x = 1  # SOLUTION`` line by
    ``x = ...``, as otter-assign writes the student notebook; None when ``solution`` has no such marker."""
    lines, skipping, marked = [], False, False
    for line in solution.split("\n"):
        begin = re.match(r"^(\s*)#\s*BEGIN SOLUTION\b(.*)$", line)
        if begin:
            skipping = marked = True
            if "NO PROMPT" not in begin[2].upper():
                lines.append(begin[1] + ANSWER)
            continue
        if re.match(r"^\s*#\s*END SOLUTION\b", line):
            skipping = False
            continue
        one = re.match(r"^(\s*)(.*?)\s*#\s*SOLUTION\s*$", line)
        if skipping or one:
            marked = True
            assign = re.match(r"^([\w.\[\], ]+?)\s*=[^=]", one[2]) if one and not skipping else None
            if assign:
                lines.append(f"{one[1]}{assign[1]} = {ANSWER}")
            continue
        lines.append(line)
    return "\n".join(lines).strip("\n") if marked else None


@dataclass
class _Solution:
    """What a solution block leaves in a student's notebook: answer cells, the checks to run, and a link."""

    exercise: str
    answers: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    def cells(self, refs: References) -> list[nbformat.NotebookNode]:
        found = refs.label(self.exercise)
        words, url = found if found else ("the exercise", refs.url(refs.docname, self.exercise))
        out = [nbformat.v4.new_code_cell(source) for source in self.answers]
        text = []
        if self.checks:
            code = "\n\n".join(self.checks)
            text.append(f"Check your answer by running, in a new cell:\n\n```python\n{code}\n```\n")
        text.append(f"The solution is in the book, below [{words}]({url}) (click *Solution* to open it).")
        return [*out, nbformat.v4.new_markdown_cell("\n".join(text))]


def _grader_marker(cell: nbformat.NotebookNode) -> str:
    """The marker of a grader raw cell, upper case (``# BEGIN TESTS``), or ``""``."""
    first = cell.source.strip().split("\n", 1)[0].strip() if cell.cell_type == "raw" else ""
    return " ".join(first.upper().split()) if GRADER_MARKER.match(first) else ""


def _markdown_pieces(source: str) -> list[str | Directive]:
    """A Markdown cell in pieces: text, and the solution directives that open or close a solution block."""
    pieces: list[str | Directive] = []
    for piece in split_blocks(source):
        if isinstance(piece, Directive) and piece.name in ("solution-start", "solution-end", "solution"):
            pieces.append(piece)
            continue
        text = piece if isinstance(piece, str) else piece.original
        if pieces and isinstance(pieces[-1], str):
            pieces[-1] += "\n" + text
        else:
            pieces.append(text)
    return pieces


def student_cells(cells: list[nbformat.NotebookNode], refs: References) -> list[nbformat.NotebookNode]:
    """The chapter's cells as a student's notebook: Markdown converted, grader markers, hidden guards (``claim``)
    and hidden tests dropped, each solution replaced by :class:`_Solution`'s cells. Long because it is one pass
    over the cells with the state of the grader's blocks (in a solution, in its hidden part, in the tests)."""
    out: list[nbformat.NotebookNode] = []
    solution: _Solution | None = None
    hidden_part = in_tests = False
    for cell in cells:
        marker = _grader_marker(cell)
        if marker:
            in_tests = {"# BEGIN TESTS": True, "# END TESTS": False}.get(marker, in_tests)
            hidden_part = {"# BEGIN SOLUTION": True, "# END SOLUTION": False}.get(marker, hidden_part)
            continue
        tags = cell.metadata.get("tags", [])
        if in_tests or "claim" in tags:
            continue
        if cell.cell_type == "code" and (solution is not None or hidden_part):
            answer = answer_cell_source(cell.source)
            if answer is not None and answer.strip() and solution is not None:
                solution.answers.append(answer)
            elif answer is not None and answer.strip():
                out.append(nbformat.v4.new_code_cell(answer))
            elif answer is None and not hidden_part and "remove-cell" not in tags:
                solution.checks.append(cell.source.strip())
            continue
        if cell.cell_type != "markdown":
            if solution is None:
                if any(t in tags for t in HIDDEN_TAGS):
                    cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
                out.append(cell)
            continue
        text: list[str] = []
        for piece in _markdown_pieces(cell.source):
            if isinstance(piece, str):
                if solution is None and not hidden_part:
                    text.append(piece)
                continue
            if piece.name in ("solution-start", "solution"):
                out.extend(_flush(text, refs))
                solution = _Solution(piece.argument.split()[0] if piece.argument else "")
            if piece.name in ("solution-end", "solution") and solution is not None:
                out.extend(solution.cells(refs))
                solution, hidden_part = None, False
        out.extend(_flush(text, refs))
    return out


def _flush(text: list[str], refs: References) -> list[nbformat.NotebookNode]:
    converted = convert_markdown("\n\n".join(text), refs)
    text.clear()
    return [nbformat.v4.new_markdown_cell(converted)] if converted.strip() else []


def download_notebook(
    source: str | Path, version: str = __version__, refs: References | None = None
) -> nbformat.NotebookNode:
    """The chapter ``source`` (MyST Markdown) as a student's ``.ipynb`` without outputs, headed by the install
    cell (:func:`student_cells`); ``refs`` brings the numbers, titles and glued values of the build."""
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"source={str(source)!r}: no such chapter file")
    nb = jupytext.read(source)
    if "kernelspec" not in nb.metadata:
        raise ValueError(f"source={str(source)!r} is not a MyST notebook (its header has no kernelspec)")
    nb.metadata.pop("jupytext", None)  # a plain .ipynb, not paired with a text file the reader does not have
    nb.metadata["gumbel_book"] = {"version": version, "source": source.name}
    nb.cells = student_cells(nb.cells, refs or References(docname=f"book/{source.stem}"))
    install = nbformat.v4.new_code_cell(install_cell_source(version), metadata={"tags": [INSTALL_TAG]})
    nb.cells.insert(0, install)
    for cell in nb.cells:
        cell.pop("id", None)
    nb = nbformat.v4.upgrade(nb)
    for i, cell in enumerate(nb.cells):  # stable ids, so that a rebuild gives byte-identical files
        cell["id"] = f"cell-{i}"
    nbformat.validate(nb)
    return nb


def github_parts(repository_url: str) -> tuple[str, str]:
    """``(owner, repo)`` of a ``https://github.com/<owner>/<repo>`` URL; anything else is an error naming it."""
    url = repository_url.strip().removesuffix("/").removesuffix(".git")
    prefix = "https://github.com/"
    parts = url[len(prefix) :].split("/") if url.startswith(prefix) else []
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"repository.url={repository_url!r} must look like https://github.com/<owner>/<repo>")
    return parts[0], parts[1]


def launch_urls(
    repository_url: str,
    pagename: str,
    *,
    branch: str = NOTEBOOKS_BRANCH,
    colab_url: str = "https://colab.research.google.com",
    binderhub_url: str = "https://mybinder.org",
) -> dict[str, str]:
    """The Colab and Binder addresses of page ``pagename``'s notebook on ``branch`` of the repository."""
    owner, repo = github_parts(repository_url)
    path = f"{pagename}.ipynb"
    return {
        "Colab": f"{colab_url.rstrip('/')}/github/{owner}/{repo}/blob/{branch}/{path}",
        "Binder": f"{binderhub_url.rstrip('/')}/v2/gh/{owner}/{repo}/{quote(branch)}?urlpath=lab/tree/{path}",
    }


def pages_url(repository_url: str) -> str:
    """The GitHub Pages address of the repository: ``https://<owner>.github.io/<repo>/``."""
    owner, repo = github_parts(repository_url)
    return f"https://{owner.lower()}.github.io/{repo}/"


def _set_baseurl(app: Sphinx, config) -> None:
    url = config.html_theme_options.get("repository_url") if config.html_theme_options else None
    if url and not config.html_baseurl:
        config.html_baseurl = pages_url(url)


def _leaf_buttons(buttons: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The theme's header buttons, with each group's buttons in place of the group."""
    for button in buttons:
        if button.get("type") == "group":
            yield from _leaf_buttons(button.get("buttons", []))
        else:
            yield button


def _rewrite_buttons(buttons: list[dict[str, Any]], urls: dict[str, str]) -> int:
    found = 0
    for button in _leaf_buttons(buttons):
        if button.get("text") in urls:
            button["url"] = urls[button["text"]]
            found += 1
    return found


def _citations(app: Sphinx) -> dict[str, tuple[str, str]]:
    """key -> (authors, year) of the book's bibliography, as the author-year style names them."""
    from pybtex.database import parse_file
    from pybtex.richtext import Text

    found: dict[str, tuple[str, str]] = {}
    for bib in app.config.bibtex_bibfiles or []:
        for key, entry in parse_file(str(Path(app.srcdir) / bib)).entries.items():
            people = entry.persons.get("author") or entry.persons.get("editor") or []
            last = [Text.from_latex(" ".join(p.last_names)).render_as("text") for p in people]
            authors = last[0] if len(last) == 1 else " and ".join(last) if len(last) == 2 else f"{last[0]} et al."
            found[key] = (authors or key, entry.fields.get("year", ""))
    return found


def references(app: Sphinx, docname: str) -> References:
    """The numbers, titles, sections, citations and glued values a page's notebook needs, from the build."""
    env = app.env
    numbers: dict[str, tuple[str, str, str]] = {}
    for doc, kinds in getattr(env, "toc_fignumbers", {}).items():
        for kind, ids in kinds.items():
            for node_id, number in ids.items():
                numbers[node_id] = (doc, kind, ".".join(map(str, number)))
    for label, (doc, number) in env.domaindata.get("math", {}).get("objects", {}).items():
        if number:
            numbers.setdefault(label, (doc, "equation", str(number)))
    sections = {label: tuple(value) for label, value in env.domaindata["std"]["labels"].items()}
    glue_dir = Path(getattr(getattr(env, "mystnb_config", None), "output_folder", "") or app.outdir)
    glue = {}
    for doc in env.found_docs:
        path = glue_dir / f"{doc}.glue.json"
        if path.is_file():
            glue[doc] = json.loads(path.read_text())
    if not hasattr(app, "_gumbel_citations"):
        app._gumbel_citations = _citations(app)
    return References(
        site=pages_url_of(app),
        docname=docname,
        titles={doc: title.astext() for doc, title in env.titles.items()},
        numbers=numbers,
        sections=sections,
        citations=app._gumbel_citations,
        glue=glue,
    )


def pages_url_of(app: Sphinx) -> str:
    """The published site's address: ``html_baseurl`` (set from ``repository.url``), ending in ``/``."""
    base = app.config.html_baseurl or ""
    return base if not base or base.endswith("/") else base + "/"


def _notebook_page(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Write the page's download notebook and point its Colab/Binder buttons at it (after the theme's buttons)."""
    if doctree is None or pagename not in app.env.found_docs:
        return
    source = Path(app.env.doc2path(pagename))
    if not is_notebook_source(source):
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(download_notebook(source, refs=references(app, pagename)), target)
    context["ipynb_source"] = f"{pagename}.ipynb"
    options = app.config.html_theme_options or {}
    launch = options.get("launch_buttons", {})
    if options.get("repository_url"):
        urls = launch_urls(
            options["repository_url"],
            pagename,
            branch=app.config.gumbel_notebooks_branch,
            colab_url=launch.get("colab_url") or "https://colab.research.google.com",
            binderhub_url=launch.get("binderhub_url") or "https://mybinder.org",
        )
        configured = {"Colab": launch.get("colab_url"), "Binder": launch.get("binderhub_url")}
        urls = {name: url for name, url in urls.items() if configured[name]}
        _rewrite_buttons(context.get("header_buttons", []), urls)


#: Where the print edition's page PDFs are, in the built site (:mod:`gumbel_book.course.pdf` writes them).
PDF_DIR = "pdf"


def pdf_button(buttons: list[dict[str, Any]], url: str) -> int:
    """Point the theme's ``.pdf`` download entry (``window.print()``) at the page's PDF; returns how many changed."""
    found = 0
    for button in _leaf_buttons(buttons):
        if button.get("label") == "download-pdf-button":
            button.update(type="link", url=url, tooltip="Download this page as a PDF (print edition)")
            button.pop("javascript", None)
            found += 1
    return found


def _pdf_page(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Every page's ``.pdf`` entry downloads its print-edition PDF (``pdf/<page>.pdf``)."""
    if doctree is not None and pagename in app.env.found_docs:
        pdf_button(context.get("header_buttons", []), context["pathto"](f"{PDF_DIR}/{pagename}.pdf", 1))


def setup(app: Sphinx) -> dict:
    app.add_config_value("gumbel_notebooks_branch", NOTEBOOKS_BRANCH, "html")
    app.connect("html-page-context", _pdf_page, priority=600)
    app.connect("config-inited", _set_baseurl)
    app.connect("html-page-context", _notebook_page, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
