"""The built book is there (plotly.js and MathJax served from it), and the intro page's figure has its slider.

Every page, opened in headless Chromium with the network cut off (no console error, no request leaving the book,
figures drawn, formulas typeset, sliders that move their figures), is tests/book/test_reader.py's: it loads each
page once for all its checks. The book must be built first (README, command 1); point ``$GUMBEL_BOOK_HTML_DIR``
at another build to test that one instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import offline_browser as ob
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
HTML_DIR = Path(os.environ.get("GUMBEL_BOOK_HTML_DIR", ROOT / "_build" / "html"))
NOT_BUILT = f"no built book at {HTML_DIR}: run the README's install-and-build command"


@pytest.fixture(scope="module")
def server():
    """Serve the built book on 127.0.0.1, the only origin the browser may reach."""
    with ob.serve(HTML_DIR) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with ob.chromium() as b:
        yield b


@pytest.fixture
def offline_page(browser, server):
    """A page whose requests outside the local server are aborted and recorded, with console errors collected."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page, external, errors = ob.offline_page(context, server)
    yield page, external, errors
    context.close()


def _wait_for_figures(page) -> list:
    page.wait_for_function(
        "() => [...document.querySelectorAll('.plotly-graph-div')]"
        ".every(el => el._fullLayout && el.querySelector('.main-svg'))",
        timeout=30_000,
    )
    return page.query_selector_all(".plotly-graph-div")


def test_the_book_is_built():
    assert (HTML_DIR / "index.html").exists(), NOT_BUILT
    assert (HTML_DIR / "_static" / "plotly.min.js").stat().st_size > 1_000_000
    assert (HTML_DIR / "_static" / "mathjax" / "tex-chtml.js").exists()


def test_intro_has_its_slider_figure(offline_page, server):
    """The intro page carries exactly one plotly figure, and it has a tau slider."""
    page, _, _ = offline_page
    page.goto(f"{server}/book/intro.html", wait_until="load")
    figures = _wait_for_figures(page)
    assert len(figures) == 1
    assert figures[0].evaluate("el => el._fullLayout.sliders.length") == 1
    assert "τ" in figures[0].evaluate("el => el._fullLayout.sliders[0].currentvalue.prefix")
