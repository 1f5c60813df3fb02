"""The student edition of the book (``python -m gumbel_book.course book``): no file of it holds a line of any
solution (nor of a hidden solution guard), and nothing in it leads to the full book (no canonical link to the
published site, no Colab or Binder button, whose notebooks are the full book's). Then, in headless Chromium, every
chapter page shows its exercises and no solution: no solution element, no line of any solution's code, no check
call, and no solution in the notebooks the pages offer for download. It checks the student book README command 1
built when that still matches the sources, and otherwise builds one (reusing the figures of a full book build when
there is one, without outputs when there is none)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import offline_browser as ob
import pytest
import yaml

from gumbel_book.course import discover_chapters, solution_lines
from gumbel_book.course.book import build_student_book, student_config
from gumbel_book.course.build import assignment_notebook
from gumbel_book.course.leaks import guard_lines, secret_lines
from gumbel_book.course.stamp import is_fresh
from gumbel_book.sphinxext.offline import mathjax_dir

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = discover_chapters(ROOT)


@pytest.fixture(scope="module")
def student_book(tmp_path_factory):
    """The student book README command 1 built (``course pdf`` keeps it in ``_build/student``) while its stamp
    matches the sources; built afresh otherwise (after an edit, or without command 1)."""
    built = ROOT / "_build" / "student"
    if is_fresh(built, ROOT, "student-book"):
        return built
    return build_student_book(ROOT, tmp_path_factory.mktemp("student") / "html")


@pytest.fixture(scope="module")
def server(student_book):
    with ob.serve(student_book) as url:
        yield url


@pytest.fixture(scope="module")
def page(server):
    with ob.chromium() as browser:
        context = browser.new_context()
        context.set_default_timeout(120_000)  # the first page loads MathJax and plotly.js on a busy machine
        context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(server) else r.abort())
        yield context.new_page()


def _upstream_copy(path: Path, folder: Path) -> bool:
    """Whether ``path`` is a byte-for-byte copy of a MathJax file as its distribution ships it (24 MB of the
    site, which no build of ours can have written a solution into: scanning them would only cost time)."""
    rel = path.relative_to(folder).as_posix()
    if not rel.startswith("_static/mathjax/"):
        return False
    upstream = mathjax_dir() / rel.removeprefix("_static/mathjax/")  # where the book build copies them from
    return upstream.is_file() and upstream.read_bytes() == path.read_bytes()


def _texts(folder: Path) -> dict[Path, str]:
    """Every text file of the built site (plotly's bundle and MathJax's unchanged files aside), HTML entities
    decoded."""
    suffixes = (".html", ".js", ".ipynb", ".txt", ".json", ".md")
    return {
        p: html.unescape(p.read_text(errors="replace"))
        for p in folder.rglob("*")
        if p.is_file() and p.suffix in suffixes and p.stat().st_size < 3_000_000 and not _upstream_copy(p, folder)
    }


def test_the_scan_skips_only_unchanged_mathjax_files(student_book, tmp_path):
    """Negative control for the skip: a MathJax file that differs from the distribution's is scanned."""
    site = tmp_path / "site"
    (site / "_static" / "mathjax").mkdir(parents=True)
    original = student_book / "_static" / "mathjax" / "tex-chtml.js"
    (site / "_static" / "mathjax" / "tex-chtml.js").write_bytes(original.read_bytes())
    assert _texts(site) == {}
    (site / "_static" / "mathjax" / "tex-chtml.js").write_bytes(original.read_bytes() + b"\nsecret = 1\n")
    assert list(_texts(site)) == [site / "_static" / "mathjax" / "tex-chtml.js"]


def _leaks(texts: dict[Path, str], lines: list[str]) -> list[str]:
    return [
        f"{p.name}: {line!r}" for line in lines for p, t in texts.items() if line in t or json.dumps(line)[1:-1] in t
    ]


def test_student_html_holds_no_solution_line(student_book):
    """A solution line that a chapter also shows every reader before its exercises (the Gumbel-Softmax sample line,
    reused in the VAE loss) is taught, not leaked; every other solution line must be absent."""
    lines = [line for c in CHAPTERS for nb in [assignment_notebook(c)] for line in solution_lines(nb) + guard_lines(nb)]
    secret = secret_lines(lines, *(c.read() for c in CHAPTERS))
    texts = _texts(student_book)
    assert len(secret) > 50 and len(texts) > len(CHAPTERS) and len(secret) >= 0.9 * len(lines)
    assert _leaks(texts, secret) == []
    page = next(p for p in texts if p.name == f"{CHAPTERS[0].name}.html")
    assert _leaks({page: texts[page] + lines[0]}, lines), "the scan finds a solution line when one is there"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.name)
def test_student_pages_show_every_glued_number(student_book, chapter):
    """The student book is built without executing: the values its prose glues come from the full build's
    ``.glue.json``. Each glued value of the full page is in the student page (the full page is the control: it
    has them)."""
    pasted = re.compile(r'<span class="pasted-text">([^<]*)</span>')
    full = pasted.findall((ROOT / "_build" / "html" / "book" / f"{chapter.name}.html").read_text())
    student = pasted.findall((student_book / "book" / f"{chapter.name}.html").read_text())
    assert full, "the full page glues numbers"
    assert [v for v in full if v not in student] == [], "glued values missing from the student page"


def test_student_html_leads_nowhere_near_the_full_book(student_book):
    pages = {p: t for p, t in _texts(student_book).items() if p.suffix == ".html"}
    assert pages
    for marker in ('rel="canonical"', "colab.research.google.com", "mybinder.org", "github.io/"):
        found = [p.name for p, t in pages.items() if marker in t]
        assert not found, f"{marker} in {found[:3]}"
    full = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert full.get("repository") and full["launch_buttons"].get("colab_url"), "the full book has both (control)"
    student = student_config(full)
    assert not student["repository"]["url"] and not student["launch_buttons"].get("colab_url")


@pytest.mark.browser
def test_student_book_has_no_instructor_page(student_book):
    assert (student_book / "index.html").is_file()
    assert not (student_book / "book" / "instructor.html").exists()


@pytest.mark.browser
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.name)
def test_no_solution_in_the_browser(page, server, student_book, chapter):
    page.goto(f"{server}/book/{chapter.name}.html", wait_until="load")
    text = page.evaluate("() => document.body.textContent")
    source = assignment_notebook(chapter)
    titles = [c.source.splitlines()[0] for c in source.cells if c.source.startswith("**Exercise: ")]
    assert titles and all(t.removeprefix("**Exercise: ").rstrip("*") in text for t in titles), "exercises missing"
    assert page.evaluate("() => document.querySelectorAll('.solution, [class*=\"solution\"]').length") == 0
    code_lines = [line for line in secret_lines(solution_lines(source), chapter.read()) if "(" in line or "=" in line]
    assert code_lines
    shown = [line for line in code_lines if line in text]
    assert not shown, f"solution lines in the student page: {shown}"
    downloads = "\n".join(p.read_text() for p in (student_book / "_sources").rglob(f"{chapter.name}.*"))
    assert downloads and not [line for line in code_lines if line in downloads]
