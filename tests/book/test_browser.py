"""Open every page of the built book in headless Chromium with the network cut off.

Each page must load with no console error and no request leaving the book's own server; every
plotly figure must draw; every MathJax formula must typeset; and every plotly slider, moved with
the mouse, must change its figure. The book must be built first (README, command 1); point
``$GUMBEL_BOOK_HTML_DIR`` at another build to test that one instead. What a reader sees (raw MyST,
overflow, phone widths, page weight) and the screenshots are tests/book/test_reader.py's.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import offline_browser as ob
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
HTML_DIR = Path(os.environ.get("GUMBEL_BOOK_HTML_DIR", ROOT / "_build" / "html"))
NOT_BUILT = f"no built book at {HTML_DIR}: run the README's install-and-build command"


def _pages() -> list[str]:
    if not (HTML_DIR / "index.html").exists():
        return ["<book not built>"]
    return sorted(str(p.relative_to(HTML_DIR)) for p in (HTML_DIR / "book").glob("*.html"))


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


FIGURE_STATE = """el => JSON.stringify({
  active: (el._fullLayout.sliders || []).map(s => s.active),
  data: el.data.map(t => [t.x, t.y, t.z, t.a, t.b, t.c, t.visible, t.marker && t.marker.color]),
  svg: el.querySelector('.main-svg').innerHTML.length + ':' + el.querySelector('.main-svg').innerHTML.slice(0, 20000)
})"""


def _wait_for_figures(page) -> list:
    page.wait_for_function(
        "() => [...document.querySelectorAll('.plotly-graph-div')]"
        ".every(el => el._fullLayout && el.querySelector('.main-svg'))",
        timeout=30_000,
    )
    return page.query_selector_all(".plotly-graph-div")


def _move_slider(page, fig, index: int) -> None:
    """Click the far end of slider ``index`` of ``fig`` (the end away from its current step)."""
    n_steps, active = fig.evaluate(
        f"el => [el._fullLayout.sliders[{index}].steps.length, el._fullLayout.sliders[{index}].active]"
    )
    rail = fig.query_selector_all("g.slider-container")[index].query_selector("rect.slider-rail-touch-rect")
    rail.scroll_into_view_if_needed()
    box = rail.bounding_box()
    x = box["x"] + 4 if active >= n_steps / 2 else box["x"] + box["width"] - 4
    before = fig.evaluate(FIGURE_STATE)
    page.mouse.click(x, box["y"] + box["height"] / 2)
    # Until the slider has moved and the plot changed (an animate-style slider changes it at the end of its
    # transition), at most 3 s; the test then says which of the two did not happen.
    changed = f"""el => {{
      const before = {before};
      const now = ({FIGURE_STATE})(el);
      const after = JSON.parse(now);
      return JSON.stringify(after.active) !== JSON.stringify(before.active) &&
             (JSON.stringify(after.data) !== JSON.stringify(before.data) || after.svg !== before.svg);
    }}"""
    try:
        page.wait_for_function(f"el => ({changed})(el)", arg=fig, timeout=3_000, polling=50)
    except Exception:  # noqa: BLE001 - a Playwright timeout: the caller's assertions report what is missing
        pass


def test_the_book_is_built():
    assert (HTML_DIR / "index.html").exists(), NOT_BUILT
    assert (HTML_DIR / "_static" / "plotly.min.js").stat().st_size > 1_000_000
    assert (HTML_DIR / "_static" / "mathjax" / "tex-chtml.js").exists()


@pytest.mark.parametrize("page_path", _pages())
def test_page_works_offline(offline_page, server, page_path):
    assert page_path != "<book not built>", NOT_BUILT
    page, external, errors = offline_page
    page.goto(f"{server}/{page_path}", wait_until="load")
    figures = _wait_for_figures(page)
    page.wait_for_function("() => !window.MathJax || !MathJax.startup || MathJax.startup.promise", timeout=30_000)
    page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")

    dead_widgets = page.evaluate(
        "() => document.querySelectorAll('.jupyter-widgets, .widget-area, .jupyter-widget').length"
        " + [...document.scripts].filter(s => /widget-(state|view)/.test(s.type)).length"
    )
    assert dead_widgets == 0, f"{page_path}: ipywidgets output in the static page would be dead controls"

    plotly_scripts = page.evaluate("() => [...document.scripts].filter(s => /plotly/.test(s.src)).length")
    wanted = 1 if figures else 0  # only a page with a figure loads plotly.js (4.8 MB)
    assert plotly_scripts == wanted, f"{page_path}: plotly.js should be loaded {wanted} times, found {plotly_scripts}"
    for fig in figures:
        n_traces = fig.evaluate("el => el.data.length")
        assert n_traces > 0, f"{page_path}: a plotly figure has no traces"

    n_math = page.evaluate("() => document.querySelectorAll('.math').length")
    if n_math:
        typeset = page.evaluate("() => document.querySelectorAll('mjx-container').length")
        assert typeset >= n_math, f"{page_path}: {n_math} formulas but only {typeset} typeset by MathJax"
        assert page.evaluate("() => document.querySelectorAll('mjx-merror').length") == 0, f"{page_path}: TeX errors"

    for number, fig in enumerate(figures):
        n_sliders = fig.evaluate("el => (el._fullLayout.sliders || []).length")
        for s in range(n_sliders):
            before = fig.evaluate(FIGURE_STATE)
            _move_slider(page, fig, s)
            after = fig.evaluate(FIGURE_STATE)
            assert json.loads(before)["active"] != json.loads(after)["active"], (
                f"{page_path}: figure {number} slider {s} did not move when clicked"
            )
            assert (
                json.loads(before)["data"] != json.loads(after)["data"]
                or json.loads(before)["svg"] != json.loads(after)["svg"]
            ), f"{page_path}: figure {number} slider {s} moved but the plot did not change"

    assert not external, f"{page_path}: requests left the book: {external[:5]}"
    assert not errors, f"{page_path}: {errors[:5]}"


def test_intro_has_its_slider_figure(offline_page, server):
    """The intro page carries exactly one plotly figure, and it has a tau slider."""
    page, _, _ = offline_page
    page.goto(f"{server}/book/intro.html", wait_until="load")
    figures = _wait_for_figures(page)
    assert len(figures) == 1
    assert figures[0].evaluate("el => el._fullLayout.sliders.length") == 1
    assert "τ" in figures[0].evaluate("el => el._fullLayout.sliders[0].currentvalue.prefix")
