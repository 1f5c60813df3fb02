"""The print edition (``python -m gumbel_book.course pdf``, run by README command 1 into ``_build/html/pdf``): every
page's PDF exists in both editions and opens; its text has the page's headings and no raw MyST; every plotly figure
of a page is an image (its matplotlib twin) in the PDF; the instructor PDFs put the solutions after the chapter, and
the student PDFs hold no solution line. The site's ``.pdf`` buttons link these files."""

from __future__ import annotations

import functools
import html as html_lib
import re
import shutil
import unicodedata
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_package import HTML_DIR, NOT_BUILT, toc_pages
from test_reader import RAW_MYST, RAW_ROLE, raw_myst

from gumbel_book.course import discover_chapters, solution_lines
from gumbel_book.course.book import INSTRUCTOR_PAGES
from gumbel_book.course.build import assignment_notebook
from gumbel_book.course.leaks import secret_lines
from gumbel_book.course.pdf import BOOK_NAME, SOLUTIONS_HEADING, image_count, page_texts
from gumbel_book.figures.static import figures_in_html

pytest.importorskip("pypdf")
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PDF_DIR = HTML_DIR / "pdf"
PAGES = toc_pages()
STUDENT_PAGES = [p for p in PAGES if p not in INSTRUCTOR_PAGES]
CHAPTERS = discover_chapters(ROOT)


def _pdf(page: str, edition: str = "instructor") -> Path:
    path = PDF_DIR / ("student" if edition == "student" else "") / f"{page}.pdf"
    assert path.is_file(), f"{path} missing; {NOT_BUILT}"
    return path


#: The text of each page of a PDF, read once per test process (text extraction is the slow part).
_pages = functools.cache(page_texts)


def page_text(path: Path) -> str:
    return "\n".join(_pages(path))


def _squeeze(text: str) -> str:
    """Text without whitespace (PDF text extraction breaks lines and spaces where the layout does) and without
    ligatures (a PDF font draws "fi" as one glyph)."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


class _Headings(HTMLParser):
    """The text of the article's h1 and h2 headings, and of its code blocks (``pre``)."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.code: list[str] = []
        self._in: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("h1", "h2", "pre"):
            self._in.append(tag)
            (self.code if tag == "pre" else self.headings).append("")
        elif tag == "a" and ("class", "headerlink") in attrs:
            self._in.append("skip")

    def handle_endtag(self, tag):
        if self._in and (tag == "a" and self._in[-1] == "skip" or tag == self._in[-1]):
            self._in.pop()

    def handle_data(self, data):
        if self._in and self._in[-1] != "skip":
            target = self.code if "pre" in self._in else self.headings
            target[-1] += data


@functools.cache
def _page_html(page: str) -> _Headings:
    parser = _Headings()
    source = HTML_DIR / f"{page}.html"
    assert source.is_file(), NOT_BUILT
    parser.feed(source.read_text(encoding="utf-8"))
    return parser


def test_every_page_and_the_book_print_in_both_editions():
    import pypdf

    for edition, pages in (("instructor", PAGES), ("student", STUDENT_PAGES)):
        counts = {page: len(pypdf.PdfReader(str(_pdf(page, edition))).pages) for page in pages}
        assert all(n >= 1 for n in counts.values()), counts
        book = PDF_DIR / ("student" if edition == "student" else "") / f"{BOOK_NAME}.pdf"
        assert book.is_file(), NOT_BUILT
        assert len(pypdf.PdfReader(str(book)).pages) == sum(counts.values()), "the book is its pages, all of them"
    assert not (PDF_DIR / "student" / "book" / "instructor.pdf").exists()


@pytest.mark.parametrize("page", PAGES)
def test_pdf_has_the_pages_headings_and_no_raw_myst(page):
    """Every h1 and h2 of the built page is in its PDF's text; MyST syntax appears only as often as the page's code
    blocks show it (the instructor page teaches the exercise markup in one)."""
    parsed = _page_html(page)
    text = page_text(_pdf(page))
    squeezed = _squeeze(text)
    headings = [h.strip() for h in parsed.headings if h.strip()]
    assert headings
    # A heading's inline math prints as typeset glyphs: its text around the math is what must be there.
    pieces = {h: [p for p in re.split(r"\\\(.*?\\\)", html_lib.unescape(h)) if p.strip()] for h in headings}
    missing = [h for h, parts in pieces.items() if not all(_squeeze(p) in squeezed for p in parts)]
    assert not missing, f"{page}: headings missing from the PDF: {missing}"
    assert not _raw_myst_beyond_code(text, "\n".join(parsed.code)), page


def _raw_myst_beyond_code(text: str, code: str) -> list[str]:
    """The MyST needles and roles found in ``text`` more often than in the page's code blocks."""
    found = [n for n in RAW_MYST if text.count(n) > code.count(n)]
    if len(RAW_ROLE.findall(text)) > len(RAW_ROLE.findall(code)):
        found.append(f"a role: {raw_myst(text)[:3]}")
    return found


def test_raw_myst_check_catches_a_failed_parse():
    """Negative control: MyST in the prose of a printed page (outside any code block) is reported."""
    text = page_text(_pdf("book/gumbel_max"))
    assert not _raw_myst_beyond_code(text, "")
    assert _raw_myst_beyond_code(text + "\nas {prf:ref}`thm-gumbel-max` shows", "")
    assert not _raw_myst_beyond_code("```{exercise} Title", "```{exercise} Title"), "shown in a code block: fine"


def test_the_image_count_is_pypdfs_without_decoding():
    """image_count walks the resources instead of decoding every image: on a page PDF with figures and one without,
    it gives the count of pypdf's own (decoding) ``page.images``, and 0 where there is none."""
    import pypdf

    counts = {}
    for page in ("book/reparameterization", "book/testing"):
        path = _pdf(page)
        counts[page] = image_count(path)
        assert counts[page] == sum(len(p.images) for p in pypdf.PdfReader(str(path)).pages), page
    assert counts["book/reparameterization"] > 0 == counts["book/testing"]


@pytest.mark.parametrize("page", PAGES)
def test_every_plotly_figure_prints_as_an_image(page):
    source = (HTML_DIR / f"{page}.html").read_text(encoding="utf-8")
    figures = len(figures_in_html(source))
    for edition in ("instructor", "student") if page in STUDENT_PAGES else ("instructor",):
        images = image_count(_pdf(page, edition))
        assert images >= figures, f"{page} ({edition}): {figures} plotly figures, {images} images in the PDF"
    assert ("Plotly.newPlot" in source) == (figures > 0), "the page's figures were all found"


def _code_lines(chapter) -> list[str]:
    """The chapter's solution lines that its built page shows as code (prose prints as typeset math, not as written,
    and the hidden guards are on no page)."""
    shown = _squeeze("\n".join(_page_html(f"book/{chapter.name}").code))
    lines = secret_lines(solution_lines(assignment_notebook(chapter)), chapter.read())
    return [line for line in lines if len(_squeeze(line)) >= 12 and _squeeze(line) in shown]


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda c: c.name)
def test_student_pdf_holds_no_solution_and_the_instructor_pdf_has_them_after_the_chapter(chapter):

    page = f"book/{chapter.name}"
    lines = _code_lines(chapter)
    assert len(lines) >= 4
    student = _squeeze(page_text(_pdf(page, "student")))
    assert [line for line in lines if _squeeze(line) in student] == []
    # The control: the instructor PDF has most of the same lines, all in its solutions section at the end.
    texts = [_squeeze(text) for text in _pages(_pdf(page))]
    start = next(i for i, t in enumerate(texts) if t.startswith(_squeeze(SOLUTIONS_HEADING) + ":"))
    body, appendix = "".join(texts[:start]), "".join(texts[start:])
    found = [line for line in lines if _squeeze(line) in appendix]
    assert len(found) >= 0.9 * len(lines), f"{len(found)} of {len(lines)} solution lines in the instructor PDF"
    assert [line for line in found if _squeeze(line) in body] == [], "a solution line before the solutions section"


def test_the_book_pdf_has_a_bookmark_per_page_and_the_solutions_appendix():
    import pypdf

    reader = pypdf.PdfReader(str(PDF_DIR / f"{BOOK_NAME}.pdf"))
    top = [item for item in reader.outline if not isinstance(item, list)]
    assert len(top) == len(PAGES) + 1 and top[-1].title == SOLUTIONS_HEADING
    nested = next(item for item in reader.outline if isinstance(item, list))
    assert len(nested) == len(CHAPTERS)
    first = [reader.get_destination_page_number(item) for item in top]
    assert first == sorted(first), "bookmarks in the order of the table of contents"


@pytest.mark.parametrize("page", PAGES)
def test_the_download_button_links_the_pages_pdf(page):
    source = (HTML_DIR / f"{page}.html").read_text(encoding="utf-8")
    depth = page.count("/")
    href = f'href="{"../" * depth}pdf/{page}.pdf"'
    assert href in source and "window.print()" not in source, f"{page}: no link to its PDF"


def test_a_page_with_a_solution_is_not_printed_as_the_student_edition(tmp_path):
    """Negative control of the student edition's refusal: a built page that still holds a solution."""
    from gumbel_book.course.pdf import chromium, print_page

    site = tmp_path / "site"
    shutil.copytree(HTML_DIR, site, ignore=shutil.ignore_patterns("pdf", "_sources", "mathjax", "plotly.min.js"))
    with chromium() as browser, pytest.raises(RuntimeError, match="student edition holds"):
        print_page(browser, site, "book/reparameterization", tmp_path / "out.pdf", "student")
