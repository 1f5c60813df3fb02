"""``course pdf``: the print edition. The book and each page as PDFs, in an instructor and a student edition.

The route: the built HTML, printed by the headless Chromium the browser tests already drive (playwright), with
the print rules of ``gumbel-book.css``. MathJax, theorems, exercises, citations and the bibliography print as the
page renders them; nothing needs TeX. Each plotly figure is replaced, before printing, by its matplotlib twin
(:func:`gumbel_book.figures.static.to_matplotlib`), drawn from the figure data the page itself holds; a slider
prints as a grid of panels.

- The **instructor** edition prints the full book (``_build/html``). Each page's solutions move to a section at
  its end, which starts on a new page; the book PDF puts the chapters first and all those sections after them,
  as an appendix. The built site links these PDFs (``pdf/<page>.pdf``, the button beside the ``.ipynb``).
- The **student** edition prints the student book (:func:`.book.build_student_book`, the same solution stripping
  as the coursework notebooks) and refuses to print a page that still holds a solution.

Writes ``<out>/<book>.pdf`` and ``<out>/<page>.pdf`` for every page of the table of contents, and the same under
``<out>/student/``; returns a summary (pages, bytes, seconds) that ``python -m gumbel_book.course pdf`` prints.
"""

from __future__ import annotations

import base64
import functools
import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..figures.static import figures_in_html, png
from ..settings import chromium_path
from .chapters import toc_files
from .extras import require
from .stamp import write_stamp

BOOK_NAME = "gumbel-softmax-book"
SOLUTIONS_HEADING = "Solutions"
EDITIONS = ("instructor", "student")
PAGE_TIMEOUT_MS = 120_000
LOCAL_URLS = ("file:", "data:", "blob:", "about:")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
PDF_OPTIONS = {
    "format": "A4",
    "print_background": True,
    "margin": {"top": "16mm", "bottom": "18mm", "left": "16mm", "right": "16mm"},
    "display_header_footer": True,
    "header_template": "<span></span>",
    "footer_template": (
        '<div style="font-size:8px;width:100%;text-align:center;color:#555">'
        '<span class="title"></span> · <span class="pageNumber"></span> / <span class="totalPages"></span></div>'
    ),
}

#: Run in the page before printing: MathJax done, figures swapped for their twins, dropdowns open, solutions
#: moved to the end (instructor) or counted (student). Returns the number of solutions it found.
PREPARE_JS = """
async ({figures, edition, heading}) => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  for (const [id, src] of Object.entries(figures)) {
    const div = document.getElementById(id);
    if (!div) { throw new Error("no figure " + id); }
    const img = document.createElement("img");
    img.src = src; img.className = "gb-print-figure"; img.alt = "figure (print edition)";
    const box = div.closest(".output") || div.parentElement;
    box.replaceWith(img);
  }
  document.querySelectorAll(".toggle-hidden").forEach(e => e.classList.remove("toggle-hidden"));
  document.querySelectorAll("details:not(.hide)").forEach(e => e.open = true);  // .hide: code the page hides
  document.querySelectorAll("button.toggle-button").forEach(e => e.remove());
  const solutions = [...document.querySelectorAll("div.solution")];
  if (edition === "instructor" && solutions.length) {
    const article = document.querySelector("article.bd-article") || document.body;
    const section = document.createElement("section");
    section.className = "gb-print-solutions";
    const title = document.createElement("h2");
    const page = (document.querySelector("article h1") || {}).textContent || document.title;
    title.textContent = heading + ": " + page.replace(/#\\s*$/, "").trim();
    section.appendChild(title);
    solutions.forEach(s => section.appendChild(s));
    article.appendChild(section);
  }
  await Promise.all([...document.images].map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  return solutions.length;
}
"""


@dataclass
class Printed:
    """One page's PDF: where it is, its page count, and the first page of its solutions section (or None)."""

    page: str
    path: Path
    pages: int
    solutions_at: int | None = None
    figures: int = 0


@dataclass
class Edition:
    """What one edition printed."""

    name: str
    book: Path
    printed: list[Printed] = field(default_factory=list)
    seconds: float = 0.0


def figure_images(html: str) -> dict[str, str]:
    """div id -> the PNG data URI of its matplotlib twin, for every plotly figure of a built page."""
    return {div: _twin_uri(json.dumps(fig, sort_keys=True)) for div, fig in figures_in_html(html)}


@functools.lru_cache(maxsize=64)
def _twin_uri(figure_json: str) -> str:
    """The twin of a figure (as JSON) as a data URI; both editions print the same figures, so each is drawn once."""
    return "data:image/png;base64," + base64.b64encode(png(json.loads(figure_json))).decode("ascii")


@contextmanager
def chromium() -> Iterator[object]:
    """Headless Chromium (playwright) for printing: ``$GUMBEL_BOOK_CHROMIUM``, Debian's, or playwright's own."""
    sync_api = require("playwright.sync_api", "playwright", "print")
    with sync_api.sync_playwright() as pw:
        path = chromium_path()
        browser = pw.chromium.launch(executable_path=str(path) if path else None, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _solutions_page(reader, heading: str) -> int | None:
    """The first page (0-based) whose text starts the solutions section, or None."""
    for i, page in enumerate(reader.pages):
        if any(line.strip().startswith(f"{heading}:") for line in (page.extract_text() or "").splitlines()[:4]):
            return i
    return None


def print_page(browser, html_dir: Path, page: str, out: Path, edition: str) -> Printed:
    """Print one built page of ``html_dir`` to ``out``."""
    pypdf = require("pypdf", "pypdf", "print")
    source = html_dir / f"{page}.html"
    if not source.is_file():
        raise FileNotFoundError(f"page={page!r}: no {source}; build the book first")
    figures = figure_images(source.read_text(encoding="utf-8"))
    context = browser.new_context(viewport={"width": 1000, "height": 1400})
    # Offline: the built book is self-contained, and a request that left the machine could hang the print.
    context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(LOCAL_URLS) else r.abort())
    tab = context.new_page()
    try:
        tab.goto(source.resolve().as_uri(), wait_until="load", timeout=PAGE_TIMEOUT_MS)
        found = tab.evaluate(PREPARE_JS, {"figures": figures, "edition": edition, "heading": SOLUTIONS_HEADING})
        if edition == "student" and found:
            raise RuntimeError(f"page={page!r}: the student edition holds {found} solutions; not printing it")
        tab.emulate_media(media="print")
        out.parent.mkdir(parents=True, exist_ok=True)
        tab.pdf(path=str(out), **PDF_OPTIONS)
    finally:
        context.close()
    reader = pypdf.PdfReader(str(out))
    at = _solutions_page(reader, SOLUTIONS_HEADING) if edition == "instructor" and found else None
    return Printed(page, out, len(reader.pages), at, len(figures))


def merge_book(printed: Sequence[Printed], out: Path, title: str) -> int:
    """The book PDF: every page's body in order, then (as an appendix) every solutions section; one bookmark per
    page and per solutions section. Returns its page count."""
    pypdf = require("pypdf", "pypdf", "print")
    writer = pypdf.PdfWriter()
    writer.add_metadata({"/Title": title})
    appendix = []
    for item in printed:
        reader = pypdf.PdfReader(str(item.path))
        end = item.solutions_at if item.solutions_at is not None else len(reader.pages)
        start = len(writer.pages)
        for page in reader.pages[:end]:
            writer.add_page(page)
        writer.add_outline_item(_title(reader, item.page), start)
        if item.solutions_at is not None:
            appendix.append((item, reader))
    starts = []
    for item, reader in appendix:
        starts.append(len(writer.pages))
        for page in reader.pages[item.solutions_at :]:
            writer.add_page(page)
    if appendix:  # bookmarks once their pages exist
        parent = writer.add_outline_item(SOLUTIONS_HEADING, starts[0])
        for (item, reader), start in zip(appendix, starts, strict=True):
            writer.add_outline_item(_title(reader, item.page), start, parent=parent)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as f:
        writer.write(f)
    return len(writer.pages)


def _title(reader, page: str) -> str:
    meta = reader.metadata or {}
    title = str(meta.get("/Title") or "").split(" — ")[0].strip()
    return title or page.rsplit("/", 1)[-1].replace("_", " ")


def print_edition(html_dir: Path, pages: Sequence[str], out: Path, edition: str, title: str) -> Edition:
    """Print ``pages`` of the built book ``html_dir`` into ``out`` and merge them into the book PDF."""
    if edition not in EDITIONS:
        raise ValueError(f"edition={edition!r}: expected one of {EDITIONS}")
    start, result = time.perf_counter(), Edition(edition, out / f"{BOOK_NAME}.pdf")
    progress = require("tqdm", "tqdm").tqdm(pages, desc=f"printing the {edition} edition", unit="page")
    with chromium() as browser:
        for page in progress:
            result.printed.append(print_page(browser, html_dir, page, out / f"{page}.pdf", edition))
    merge_book(result.printed, result.book, title)
    result.seconds = time.perf_counter() - start
    return result


def build_pdfs(root: Path, html_dir: Path, out: Path, editions: Sequence[str] = EDITIONS) -> list[Edition]:
    """Both editions of the print edition of the book at ``root`` (built into ``html_dir``) under ``out``."""
    import yaml

    from .book import INSTRUCTOR_PAGES, build_student_book

    title = yaml.safe_load((root / "_config.yml").read_text()).get("title", "The book")
    pages = toc_files(root)
    done = []
    if "instructor" in editions:
        done.append(print_edition(html_dir, pages, out, "instructor", title))
    if "student" in editions:
        student = build_student_book(root, Path(root) / "_build" / "student")  # kept and stamped for the tests
        kept = [p for p in pages if p not in INSTRUCTOR_PAGES]
        done.append(print_edition(student, kept, out / "student", "student", f"{title} (student edition)"))
        write_stamp(student, root, "student-book")
    return done


def summary(editions: Sequence[Edition]) -> str:
    """A few lines: for each edition, the book PDF's pages and size, the page PDFs, and the time taken."""
    pypdf = require("pypdf", "pypdf", "print")
    lines = []
    for e in editions:
        pages = len(pypdf.PdfReader(str(e.book)).pages)
        size = sum(p.path.stat().st_size for p in e.printed)
        lines.append(
            f"{e.name}: {e.book} ({pages} pages, {e.book.stat().st_size / 1e6:.1f} MB); {len(e.printed)} page PDFs "
            f"({size / 1e6:.1f} MB in all, {sum(p.figures for p in e.printed)} figures) in {e.seconds:.0f} s"
        )
    return "\n".join(lines)


def page_texts(path: Path) -> list[str]:
    """The text of each page of a PDF, for the tests and for a quick look."""
    pypdf = require("pypdf", "pypdf", "print")
    return [page.extract_text() or "" for page in pypdf.PdfReader(str(path)).pages]


def image_count(path: Path) -> int:
    """How many raster images a PDF draws (the figures' twins are PNGs): the image XObjects each page's resources
    name, forms' included, counted as pypdf's ``page.images`` lists them but without decoding a single image."""
    pypdf = require("pypdf", "pypdf", "print")
    return sum(_images_in(page.get("/Resources"), set()) for page in pypdf.PdfReader(str(path)).pages)


def _images_in(resources, seen: set) -> int:
    """Image XObjects named by ``resources`` and, once each, by the form XObjects it names."""
    xobjects = resources.get_object().get("/XObject") if resources else None
    count = 0
    for ref in xobjects.get_object().values() if xobjects else ():
        obj = ref.get_object()
        if obj.get("/Subtype") == "/Image":
            count += 1
        elif obj.get("/Subtype") == "/Form" and id(obj) not in seen:
            seen.add(id(obj))
            count += _images_in(obj.get("/Resources"), seen)
    return count


__all__ = [
    "BOOK_NAME",
    "EDITIONS",
    "Edition",
    "Printed",
    "build_pdfs",
    "chromium",
    "figure_images",
    "image_count",
    "merge_book",
    "page_texts",
    "print_edition",
    "print_page",
    "summary",
]
