"""The student edition of the book (``python -m gumbel_book.course book``) in headless Chromium: every chapter page
shows its exercises and no solution: no solution element, no line of any solution's code, no check call, and no
solution in the notebooks the pages offer for download. It reuses the figures of a full book build when there is
one (README, command 1) and is built from the sources without outputs otherwise."""

from __future__ import annotations

from pathlib import Path

import offline_browser as ob
import pytest

from gumbel_book.course import discover_chapters, solution_lines
from gumbel_book.course.book import build_student_book
from gumbel_book.course.build import assignment_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = discover_chapters(ROOT)


@pytest.fixture(scope="module")
def student_book(tmp_path_factory):
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


def test_student_book_has_no_instructor_page(student_book):
    assert (student_book / "index.html").is_file()
    assert not (student_book / "book" / "instructor.html").exists()


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.name)
def test_no_solution_in_the_browser(page, server, student_book, chapter):
    page.goto(f"{server}/book/{chapter.name}.html", wait_until="load")
    text = page.evaluate("() => document.body.textContent")
    source = assignment_notebook(chapter)
    titles = [c.source.splitlines()[0] for c in source.cells if c.source.startswith("**Exercise: ")]
    assert titles and all(t.removeprefix("**Exercise: ").rstrip("*") in text for t in titles), "exercises missing"
    assert page.evaluate("() => document.querySelectorAll('.solution, [class*=\"solution\"]').length") == 0
    code_lines = [line for line in solution_lines(source) if "(" in line or "=" in line]
    assert code_lines
    shown = [line for line in code_lines if line in text]
    assert not shown, f"solution lines in the student page: {shown}"
    downloads = "\n".join(p.read_text() for p in (student_book / "_sources").rglob(f"{chapter.name}.*"))
    assert downloads and not [line for line in code_lines if line in downloads]
