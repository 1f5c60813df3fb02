"""The downloaded notebooks (the ``.ipynb`` button, and what Colab and Binder open) are notebooks a student can
use: Markdown that Jupyter and Colab render (no MyST roles or directives, glued values written in), no grader
markers, no hidden guard or hidden test, no solution in plain view (an answer cell with ``...`` and a link to the
book's collapsed solution instead), and every name a cell uses defined by an earlier cell.

The first tests need no build (the converter alone); the others read the notebooks of the built book.
"""

from __future__ import annotations

import ast
import builtins
import json
import os
import re
from pathlib import Path

import jupytext
import nbformat
import pytest
from test_package import notebook_pages
from test_reader import raw_myst

from gumbel_book.course.leaks import secret_lines
from gumbel_book.sphinxext.jupyter_markdown import Directive, References, convert_markdown, split_blocks
from gumbel_book.sphinxext.notebooks import answer_cell_source, download_notebook, student_cells

ROOT = Path(__file__).resolve().parents[2]
HTML_DIR = Path(os.environ.get("GUMBEL_BOOK_HTML_DIR", ROOT / "_build" / "html"))
GLUE_DIR = HTML_DIR.parent / "jupyter_execute"
NOT_BUILT = f"no built book at {HTML_DIR}: run the README's install-and-build command"
TARGET = re.compile(r"^\([\w-]+\)=\s*$", re.M)
GRADER = re.compile(r"#\s*(BEGIN|END)\s+(QUESTION|SOLUTION|TESTS|PROMPT)|#\s*SOLUTION\s*$|ASSIGNMENT CONFIG", re.M)


def as_rendered(markdown: str) -> str:
    """Roughly the text Jupyter shows for ``markdown``: code fences dropped (code may hold anything), code spans
    replaced by their content (a role wrapped in backticks shows raw there, as in the book)."""
    markdown = re.sub(r"^(`{3,}|~{3,})(?!\{).*?^\1\s*$", "", markdown, flags=re.M | re.S)
    return re.sub(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", r"\2", markdown, flags=re.S)


def raw_markdown(markdown: str) -> list[str]:
    """MyST syntax that Jupyter would show as text: what the browser test looks for, and ``(label)=`` targets."""
    text = as_rendered(markdown)
    return raw_myst(text) + TARGET.findall(text)


# ------------------------------------------------------------------------------------------- the converter


def _refs() -> References:
    return References(
        site="https://o.github.io/r/",
        docname="book/gumbel_max",
        titles={"book/gumbel_softmax": "The Gumbel-Softmax", "book/gumbel_max": "Gumbel-max"},
        numbers={
            "thm-gm": ("book/gumbel_max", "theorem", "2"),
            "ex-a": ("book/gumbel_max", "exercise", "5"),
            "eq-race": ("book/gumbel_max", "equation", "3"),
        },
        citations={"kool2019": ("Kool et al.", "2019"), "jang2017": ("Jang et al.", "2017")},
        glue={"book/gumbel_max": {"tv": {"data": {"text/plain": "0.012345"}}, "name": {"data": {"text/plain": "'x'"}}}},
    )


def test_raw_markdown_sees_a_wrapped_role_but_not_a_quoted_name():
    """Negative control: a role inside backticks shows raw; a directive's name quoted as code does not."""
    assert raw_markdown("The best is `{glue:text}`ref_best_est``, at") and raw_markdown("(sec-x)=\n# X")
    assert not raw_markdown("Raw cells (a `{raw-cell}` block in MyST Markdown), and:\n\n```md\n{doc}`x`\n```")


def test_roles_become_text_links_and_glued_values():
    text = (
        "TV is {glue:text}`tv:.3f` for {glue:text}`name`, by {prf:ref}`thm-gm` and {eq}`eq-race`; see "
        "{doc}`gumbel_softmax`, {doc}`the next page <gumbel_softmax>` and {cite:p}`kool2019,jang2017`, "
        "as {cite:t}`jang2017` show. Code `{doc}` stays, and so does $\\operatorname{softmax}$."
    )
    out = convert_markdown(text, _refs())
    assert out == (
        "TV is 0.012 for x, by [Theorem 2](https://o.github.io/r/book/gumbel_max.html#thm-gm) and (3); see "
        "[The Gumbel-Softmax](https://o.github.io/r/book/gumbel_softmax.html), "
        "[the next page](https://o.github.io/r/book/gumbel_softmax.html) and (Kool et al., 2019; Jang et al., 2017), "
        "as Jang et al. (2017) show. Code `{doc}` stays, and so does $\\operatorname{softmax}$."
    )


def test_directives_become_labels_and_quotes():
    source = """(sec-x)=
## Section

````{prf:theorem} Gumbel-top-k {cite:p}`kool2019`
:label: thm-gm

The first $k$ indices.
````

```{prf:proof}
By the race.

$$
x = 1
$$ (eq-race)
```

:::{note}
Mind the tail.
:::

```{exercise} Top-k
:label: ex-a

Write it.
```

```python
print("{doc}`kept`")
```
"""
    out = convert_markdown(source, _refs())
    assert "(sec-x)=" not in out and "## Section" in out
    assert "**Theorem 2 (Gumbel-top-k (Kool et al., 2019)).** The first $k$ indices." in out
    assert "**Proof.** By the race.\n\n$$\nx = 1\n\\tag{3}$$\n\n∎" in out
    assert "> **Note.** Mind the tail." in out
    assert "**Exercise 5 (Top-k).** Write it." in out
    assert '```python\nprint("{doc}`kept`")\n```' in out, "a code fence is kept as it is"
    assert not raw_markdown(out), out


def test_without_a_build_roles_fall_back_to_their_text():
    out = convert_markdown("See {doc}`gumbel_softmax` and {prf:ref}`thm-x`; {unknown}`words`.")
    assert out == "See [gumbel_softmax](gumbel_softmax.html) and thm-x; words."


def test_answer_cells_keep_the_prompt_and_hide_the_solution():
    solution = "def f(x):\n    # BEGIN SOLUTION\n    return x + 1\n    # END SOLUTION\n\n\nf(2)"
    assert answer_cell_source(solution) == "def f(x):\n    ...  # your answer\n\n\nf(2)"
    assert answer_cell_source("first = 7000  # SOLUTION\nprint(first)") == "first = ...  # your answer\nprint(first)"
    assert answer_cell_source("# BEGIN SOLUTION NO PROMPT\nassert x\n# END SOLUTION") == ""
    assert answer_cell_source("check(f)") is None


def test_student_cells_drop_markers_guards_tests_and_solutions():
    md = nbformat.v4.new_markdown_cell
    code = nbformat.v4.new_code_cell
    raw = nbformat.v4.new_raw_cell
    cells = [
        code("x = 1"),
        code("assert x == 1, 'x is one'", metadata={"tags": ["remove-cell", "claim"]}),
        code("glue('x', x)", metadata={"tags": ["remove-cell"]}),
        raw("# BEGIN QUESTION\nname: q"),
        md("```{exercise} Add one\n:label: ex-a\n\nWrite `f`.\n```\n\n````{solution-start} ex-a\n````"),
        raw("# BEGIN SOLUTION"),
        md("The secret explanation."),
        code("def f(x):\n    # BEGIN SOLUTION\n    return x + 1\n    # END SOLUTION"),
        raw("# END SOLUTION"),
        code("check(f)"),
        md("````{solution-end}\n````"),
        raw("# BEGIN TESTS"),
        code("def test_q():\n    check(f)", metadata={"tags": ["remove-cell"]}),
        raw("# END TESTS"),
        raw("# END QUESTION"),
    ]
    out = student_cells(cells, _refs())
    sources = [c.source for c in out]
    assert sources[0] == "x = 1" and sources[1] == "glue('x', x)"
    assert out[1].metadata["jupyter"]["source_hidden"], "a cell the book hides starts collapsed"
    assert sources[2] == "**Exercise 5 (Add one).** Write `f`."
    assert sources[3] == "def f(x):\n    ...  # your answer"
    assert "check(f)" in sources[4] and "https://o.github.io/r/book/gumbel_max.html#ex-a" in sources[4]
    assert len(out) == 5 and not [c for c in out if c.cell_type == "raw"]
    assert not any("secret" in s or "return x + 1" in s or "test_q" in s or "x is one" in s for s in sources)


# ------------------------------------------------------------------------------------------- built notebooks


def _built(page: str) -> nbformat.NotebookNode:
    path = HTML_DIR / "_sources" / f"{page}.ipynb"
    assert path.exists(), f"{path} missing; {NOT_BUILT}"
    return nbformat.read(path, as_version=4)


def _solution_lines(page: str) -> list[str]:
    """Lines of the source's solutions, long enough to be telling: code between ``# BEGIN SOLUTION`` and
    ``# END SOLUTION`` lines or on a ``# SOLUTION`` line, and every line of the cells between the raw
    ``# BEGIN SOLUTION`` and ``# END SOLUTION`` cells that carry no such marker (prose, helper code)."""
    lines, in_block = [], False
    for cell in jupytext.read(ROOT / f"{page}.md").cells:
        head = cell.source.strip().split("\n", 1)[0].strip().upper() if cell.source.strip() else ""
        if cell.cell_type == "raw" and head in ("# BEGIN SOLUTION", "# END SOLUTION"):
            in_block = head == "# BEGIN SOLUTION"
            continue
        if cell.cell_type == "markdown" and not in_block:
            continue  # Markdown outside a solution block may quote the markers (the instructor page does)
        marked = re.search(r"#\s*(BEGIN SOLUTION|SOLUTION\s*$)", cell.source, re.M)
        in_code = False
        for line in cell.source.split("\n"):
            if re.match(r"^\s*#\s*BEGIN SOLUTION", line):
                in_code = True
            elif re.match(r"^\s*#\s*END SOLUTION", line):
                in_code = False
            elif in_code or re.search(r"#\s*SOLUTION\s*$", line) or (in_block and not marked):
                if len(line.strip()) > 24:
                    lines.append(line.strip())
    return secret_lines(lines, jupytext.read(ROOT / f"{page}.md"))  # a line the page teaches first is no secret


@pytest.mark.parametrize("page", notebook_pages())
def test_downloaded_markdown_is_plain(page):
    """No MyST role, directive, target or option in any Markdown cell (code fences and spans aside)."""
    nb = _built(page)
    raw = [found for c in nb.cells if c.cell_type == "markdown" for found in raw_markdown(c.source)]
    assert not raw, f"{page}.ipynb: MyST left in its Markdown: {raw[:5]}"


@pytest.mark.parametrize("page", notebook_pages())
def test_downloaded_notebook_has_no_grader_markers_guards_or_tests(page):
    nb = _built(page)
    assert not [c for c in nb.cells if c.cell_type == "raw"], f"{page}.ipynb: raw cells (grader markers)"
    assert not [c for c in nb.cells if "claim" in c.metadata.get("tags", [])], f"{page}.ipynb: hidden guards"
    marked = [m.group(0) for c in nb.cells if c.cell_type == "code" for m in GRADER.finditer(c.source)]
    assert not marked, f"{page}.ipynb: grader markers in code: {marked[:3]}"
    assert not [c for c in nb.cells if re.search(r"^def test_", c.source, re.M)], f"{page}.ipynb: hidden tests"


@pytest.mark.parametrize("page", notebook_pages())
def test_downloaded_notebook_shows_no_solution(page):
    """No line of a solution is in the notebook; each solution leaves a link to the book's collapsed one."""
    nb = _built(page)
    text = "\n".join(c.source for c in nb.cells)
    leaked = [line for line in _solution_lines(page) if line in text]
    assert not leaked, f"{page}.ipynb shows solution lines: {leaked[:3]}"
    n_solutions = sum(  # top-level solution blocks: not the instructor page's quoted example
        isinstance(piece, Directive) and piece.name == "solution-start"
        for cell in jupytext.read(ROOT / f"{page}.md").cells
        if cell.cell_type == "markdown"
        for piece in split_blocks(cell.source)
    )
    assert text.count("The solution is in the book") == n_solutions


def _glue_values(page: str) -> list[str]:
    """Each ``{glue:text}`` of the source, formatted from the build's glue cache as the page shows it."""
    from myst_nb.core.variables import format_plain_text

    cache = GLUE_DIR / f"{page}.glue.json"
    glued = json.loads(cache.read_text()) if cache.exists() else {}
    values = []
    for key, _, spec in re.findall(r"\{glue:text\}`([\w-]+)(:([^`]*))?`", (ROOT / f"{page}.md").read_text()):
        spec = spec.lstrip(":") if spec else ""
        assert key in glued, f"{page}: {key} is not in the glue cache {cache}"
        values.append(format_plain_text(glued[key]["data"]["text/plain"], spec))
    return values


@pytest.mark.parametrize("page", notebook_pages())
def test_downloaded_notebook_has_the_glued_values_written_in(page):
    nb = _built(page)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    missing = [v for v in _glue_values(page) if v not in text]
    assert not missing, f"{page}.ipynb lacks the glued values {missing[:5]}"


def _names(source: str) -> tuple[set[str], set[str]]:
    """(names a cell binds, names it reads) of one code cell; IPython magics and shell lines left out."""
    tree = ast.parse("\n".join(line for line in source.split("\n") if not line.lstrip().startswith(("%", "!"))))
    bound, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return bound, read


def undefined_names(cells: list[nbformat.NotebookNode]) -> list[tuple[int, str]]:
    """(cell, name) for each name a code cell reads that neither it nor an earlier cell binds, nor Python does."""
    known = set(dir(builtins)) | {"__file__", "display", "get_ipython"}
    missing = []
    for i, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        bound, read = _names(cell.source)
        missing += [(i, name) for name in sorted(read - bound - known)]
        known |= bound
    return missing


def test_undefined_names_are_found():
    """Negative control: a cell that reads a name only a dropped cell defined."""
    cells = [nbformat.v4.new_code_cell("a = 1"), nbformat.v4.new_code_cell("print(a + b)")]
    assert undefined_names(cells) == [(1, "b")]


@pytest.mark.parametrize("page", notebook_pages())
def test_every_name_a_cell_reads_is_defined_before_it(page):
    """Dropping the guards, tests and solutions took nothing that a later cell needs (a static check: the run in
    a fresh environment is tests/book/test_package.py's)."""
    missing = undefined_names(_built(page).cells)
    assert not missing, f"{page}.ipynb: cells read names nothing before them defines: {missing[:5]}"


def test_download_notebook_without_a_build_is_plain_too():
    """download_notebook works from the source alone (no glue cache): still no MyST directive and no solution."""
    page = next(p for p in notebook_pages() if "{solution-start}" in (ROOT / f"{p}.md").read_text())
    nb = download_notebook(ROOT / f"{page}.md", "9.8.7")
    text = "\n".join(c.source for c in nb.cells)
    assert not [c for c in nb.cells if c.cell_type == "markdown" and raw_markdown(c.source)]
    assert _solution_lines(page) and not [line for line in _solution_lines(page) if line in text]
