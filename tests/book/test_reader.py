"""What a reader of the built book sees, page by page, in Chromium at a laptop's width (1280 px) and a phone's
(390 px): no raw MyST in the text, nothing wider than its column unless it scrolls in its own box, no sideways
scrolling on a phone, solutions that open from anywhere on their title, figures whose titles, labels and
sliders fit a phone's screen, and pages light enough to load; and, with the network cut off, no console error, no
request leaving the book, every figure drawn, every formula typeset and every slider moving its figure. Each page
is loaded once per width for all of these. With ``$GUMBEL_BOOK_SCREENSHOTS`` set, a full-page screenshot of every
page at both widths is saved there (CI uploads them, so a change of look can be reviewed).

The book must be built first (README, command 1); ``$GUMBEL_BOOK_HTML_DIR`` points at another build.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import offline_browser as ob
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
HTML_DIR = Path(os.environ.get("GUMBEL_BOOK_HTML_DIR", ROOT / "_build" / "html"))
SCREENSHOTS = os.environ.get("GUMBEL_BOOK_SCREENSHOTS")
NOT_BUILT = f"no built book at {HTML_DIR}: run the README's install-and-build command"
WIDTHS = {"laptop": 1280, "phone": 390}
#: Bytes transferred on a cold load, as GitHub Pages serves the site (text gzip-compressed).
MAX_BYTES_WITHOUT_FIGURES = 1_000_000
MAX_BYTES_WITH_FIGURES = 3_500_000
#: MyST that shows raw when a directive or role fails to parse (a role in a fence's title, say).
RAW_MYST = ["```{", ":::{", "{glue", "{cite", "{doc}", "{prf:", "{eq}", "{ref}", "{numref}", "{math}", ":label:"]
RAW_ROLE = re.compile(r"\{[a-z][\w-]*(?::[\w-]+)?\}`")


def _pages() -> list[str]:
    if not (HTML_DIR / "index.html").exists():
        return ["<book not built>"]
    return sorted(str(p.relative_to(HTML_DIR)) for p in (HTML_DIR / "book").glob("*.html"))


def _has_figures(page_path: str) -> bool:
    return 'class="plotly-graph-div"' in (HTML_DIR / page_path).read_text()


@pytest.fixture(scope="module")
def server():
    """The built book on 127.0.0.1, text gzip-compressed as GitHub Pages sends it."""
    with ob.serve(HTML_DIR, compress=True) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with ob.chromium() as b:
        yield b


def _open(browser, server, page_path: str, width: int, weigh: bool = False):
    """A fresh context (cold cache) at ``width``, the page loaded and typeset; returns (context, page, errors,
    weight, external): console errors and requests that tried to leave the book, as they keep coming. With
    ``weigh``, weight is (bytes transferred, the largest six) once the network has been quiet for a second after
    the load and the typesetting (MathJax fetches its fonts late); else None."""
    assert page_path != "<book not built>", NOT_BUILT
    context = browser.new_context(viewport={"width": width, "height": 900}, device_scale_factor=1)
    page, external, errors = ob.offline_page(context, server)
    meter = _NetworkMeter(context, page) if weigh else None
    page.goto(f"{server}/{page_path}", wait_until="load")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.plotly-graph-div')]"
        ".every(el => el._fullLayout && el.querySelector('.main-svg'))",
        timeout=30_000,
    )
    page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
    # The book's script (deferred, so it has run by now) refits the figures to the width: wait for it.
    page.evaluate("() => window.gumbelBookFigures ? window.gumbelBookFigures.ready : null")
    assert not external, f"{page_path}: requests left the book: {external[:5]}"
    return context, page, errors, (meter.until_quiet(page) if meter else None), external


class _NetworkMeter:
    """Bytes transferred (headers and bodies, as sent) by one page's requests, through the DevTools protocol."""

    def __init__(self, context, page) -> None:
        self.urls: dict[str, str] = {}
        self.sizes: dict[str, int] = {}
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.on("Network.requestWillBeSent", lambda e: self.urls.__setitem__(e["requestId"], e["request"]["url"]))
        cdp.on("Network.loadingFinished", lambda e: self.sizes.__setitem__(e["requestId"], int(e["encodedDataLength"])))
        cdp.on("Network.loadingFailed", lambda e: self.sizes.__setitem__(e["requestId"], 0))

    def until_quiet(self, page) -> tuple[int, list[tuple[int, str]]]:
        quiet, seen = 0, -1
        for _ in range(100):  # 20 s at most
            page.wait_for_timeout(200)
            done = len(self.urls) == len(self.sizes) and len(self.urls) == seen
            quiet, seen = (quiet + 1 if done else 0), len(self.urls)
            if quiet >= 5:
                break
        largest = sorted(((n, self.urls.get(r, r).rsplit("/", 1)[-1]) for r, n in self.sizes.items()), reverse=True)
        return sum(self.sizes.values()), largest[:6]


@pytest.fixture(scope="module")
def loaded(browser, server):
    """``loaded(page_path, width)``: the page's cold load at that width, shared by the tests that only look at it
    (conftest.py runs this module's tests page by page, so only the current page's loads stay open). The laptop
    load is weighed. Tests that change a page beyond undoing (the negative controls) open their own."""
    cache: dict[tuple[str, int], tuple] = {}

    def get(page_path: str, width: int) -> tuple:
        if (page_path, width) not in cache:
            for key in [k for k in cache if k[0] != page_path]:
                cache.pop(key)[0].close()
            cache[page_path, width] = _open(browser, server, page_path, width, weigh=width == WIDTHS["laptop"])
        return cache[page_path, width]

    yield get
    for context, *_ in cache.values():
        context.close()


# ------------------------------------------------------------------------------------------------ raw MyST

VISIBLE_TEXT = """() => {
  const article = document.querySelector('article.bd-article') || document.body;
  const skip = 'pre, script, style, mjx-container, .math, .MathJax, .highlight, .cell_input, .cell_output';
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
  const out = [];
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.parentElement.closest(skip)) out.push(node.textContent);
  }
  return out.join('');
}"""


def raw_myst(text: str) -> list[str]:
    """The pieces of MyST syntax in ``text`` (the page's text outside code blocks and math), with context."""
    found = []
    for needle in RAW_MYST:
        for m in re.finditer(re.escape(needle), text):
            found.append(text[max(0, m.start() - 40) : m.end() + 40].replace("\n", " "))
    for m in RAW_ROLE.finditer(text):
        found.append(text[max(0, m.start() - 40) : m.end() + 40].replace("\n", " "))
    return found


def test_raw_myst_detector_finds_what_a_failed_parse_leaves():
    """Negative control: the text of a directive whose title held a role, and a role inside emphasis."""
    failed = "```{prf:theorem} Gumbel-top-k [Kool et al., 2019] :label: thm-top-k With ..."
    assert raw_myst(failed) and raw_myst("the mean is {glue:text}`mean:.3f` here")
    assert raw_myst("as {cite:t}`jang2017` showed") and raw_myst("see {doc}`gumbel_max`")
    assert not raw_myst("The Gumbel-max trick {draws} samples; $\\operatorname{softmax}$ and `{}` are fine.")


@pytest.mark.parametrize("page_path", _pages())
def test_no_raw_myst_in_the_text(loaded, page_path):
    """The text outside code blocks and math holds no MyST syntax (inline code included: a role wrapped in
    backticks shows raw there): every role and directive was parsed and rendered."""
    _, page, _, _, _ = loaded(page_path, WIDTHS["laptop"])
    found = raw_myst(page.evaluate(VISIBLE_TEXT))
    assert not found, f"{page_path}: raw MyST in the rendered text: {found[:5]}"


# ------------------------------------------------------------------------------------------------ overflow

#: Elements wider than the article column that are not inside a box of their own that scrolls sideways.
OVERFLOWING = """() => {
  const column = document.querySelector('article.bd-article');
  if (!column) return ['no article.bd-article'];
  const col = column.getBoundingClientRect();
  const selectors = ['div.math', 'mjx-container[display="true"]', 'table', 'div.cell_input pre', 'div.highlight pre',
                     'div.cell_output', 'div.cell_output > *', '.plotly-graph-div', 'img', 'div.admonition',
                     'p', 'li', 'h1', 'h2', 'h3', 'dl'];
  const describe = el => el.tagName.toLowerCase() + (el.className && typeof el.className === 'string' ?
    '.' + el.className.trim().split(/\\s+/).slice(0, 2).join('.') : '') +
    ' "' + (el.textContent || '').trim().slice(0, 50).replace(/\\s+/g, ' ') + '"';
  const scrollsInside = el => {
    for (let a = el.parentElement; a && a !== column; a = a.parentElement) {
      const style = getComputedStyle(a);
      const r = a.getBoundingClientRect();
      if (['auto', 'scroll'].includes(style.overflowX) && r.left >= col.left - 1 && r.right <= col.right + 1)
        return true;
    }
    return false;
  };
  const clipped = el => {
    for (let a = el.parentElement; a && a !== column; a = a.parentElement) {
      const style = getComputedStyle(a);
      if (['auto', 'scroll'].includes(style.overflowX)) return false;
      if (['hidden', 'clip'].includes(style.overflowX)) {
        const r = a.getBoundingClientRect(), e = el.getBoundingClientRect();
        if (e.right > r.right + 1 || e.left < r.left - 1) return true;
      }
    }
    return false;
  };
  const bad = [];
  for (const el of column.querySelectorAll(selectors.join(','))) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    const style = getComputedStyle(el);
    const ownScroll = ['auto', 'scroll'].includes(style.overflowX) &&
                      r.right <= col.right + 1 && r.left >= col.left - 1;
    if ((r.right > col.right + 1 || r.left < col.left - 1) && !scrollsInside(el))
      bad.push(`${describe(el)} spans ${Math.round(r.left - col.left)}..${Math.round(r.right - col.left)} px ` +
               `of a ${Math.round(col.width)} px column`);
    else if (!ownScroll && el.scrollWidth > el.clientWidth + 1 && ['hidden', 'clip'].includes(style.overflowX))
      bad.push(`${describe(el)} cuts its content: ${el.scrollWidth} px in ${el.clientWidth} px`);
    else if (style.overflowX === 'visible' && el.scrollWidth > el.clientWidth + 1 && !scrollsInside(el))
      bad.push(`${describe(el)} runs out of its box: ${el.scrollWidth} px in ${el.clientWidth} px`);
    else if (clipped(el))
      bad.push(`${describe(el)} is cut by a box that hides what overflows`);
    for (const child of el.children) {  // a child past the column, centred in a flex box, say
      const c = child.getBoundingClientRect();
      if (c.width && (c.right > col.right + 1 || c.left < col.left - 1) && !scrollsInside(child))
        bad.push(`${describe(child)} in ${describe(el)} runs past the column`);
    }
  }
  return bad;
}"""


@pytest.mark.parametrize("width", list(WIDTHS.values()), ids=list(WIDTHS))
@pytest.mark.parametrize("page_path", _pages())
def test_nothing_is_wider_than_its_column(loaded, page_path, width):
    """Display equations, tables, code, outputs and figures fit the column or scroll inside their own box; on a
    phone the page itself never scrolls sideways. Saves the page's screenshot when asked to."""
    _, page, errors, _, _ = loaded(page_path, width)
    bad = page.evaluate(OVERFLOWING)
    page_width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        shot = Path(SCREENSHOTS) / f"{Path(page_path).stem}-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
    assert not bad, f"{page_path} at {width} px: {len(bad)} elements overflow their column: {bad[:6]}"
    assert page_width[0] <= page_width[1], f"{page_path} at {width} px scrolls sideways: {page_width[0]} px wide"
    assert not errors, f"{page_path} at {width} px: {errors[:5]}"


def test_the_overflow_check_sees_a_wide_equation(browser, server):
    """Negative control: a formula made wider than the column, in a box that does not scroll, is reported."""
    page_path = next((p for p in _pages() if "intro" in p), _pages()[0])  # short, with display math
    context, page, _, _, _ = _open(browser, server, page_path, WIDTHS["phone"])
    try:
        page.evaluate(
            """() => { const m = document.querySelector('div.math') || document.querySelector('article.bd-article p');
                       m.style.overflow = 'visible';  // both axes: 'visible' beside 'hidden' computes to 'auto'
                       const wide = document.createElement('div');
                       wide.style.setProperty('min-width', '2000px', 'important'); wide.textContent = 'x';
                       m.appendChild(wide); }"""
        )
        bad = page.evaluate(OVERFLOWING)
    finally:
        context.close()
    assert bad, "a 2000 px wide formula on a phone went unreported"


# ------------------------------------------------------------------------------------------------ solutions


def _solution_pages() -> list[str]:
    return [p for p in _pages() if p == "<book not built>" or 'class="solution' in (HTML_DIR / p).read_text()]


def _settle(page, element, condition: str) -> None:
    """Wait until ``condition`` holds for ``element`` (at most 2 s; the caller's assertion says if it never did),
    then 50 ms more for the toggle's handlers (a jump to the exercise would come in that time)."""
    try:
        page.wait_for_function(f"s => ({condition})(s)", arg=element, timeout=2_000, polling=20)
    except Exception:  # noqa: BLE001 - a Playwright timeout: the assertion that follows reports it
        pass
    page.wait_for_timeout(50)


@pytest.mark.parametrize("page_path", _solution_pages())
def test_clicking_a_solution_title_opens_it(loaded, page_path):
    """Every solution opens from a click on its title's link text ("Exercise 3 (...)"), the largest part of the
    title, without an error and without the page jumping to the exercise; a second click closes it."""
    _, page, errors, _, _ = loaded(page_path, WIDTHS["laptop"])
    titles = page.query_selector_all("div.solution.toggle > .admonition-title")
    assert titles, f"{page_path}: no collapsed solution found"
    for number, title in enumerate(titles):
        solution = title.evaluate_handle("t => t.parentElement")
        assert solution.evaluate("s => s.classList.contains('toggle-hidden')"), f"solution {number} starts open"
        target = title.query_selector("a") or title
        target.scroll_into_view_if_needed()
        hash_before = page.evaluate("() => location.hash")
        target.click()
        _settle(page, solution, "s => !s.classList.contains('toggle-hidden')")
        opened = solution.evaluate(
            "s => !s.classList.contains('toggle-hidden') && [...s.children].slice(1).some(c => c.offsetHeight > 0)"
        )
        assert opened, f"{page_path}: solution {number} did not open when its title's text was clicked"
        assert page.evaluate("() => location.hash") == hash_before, f"{page_path}: the click jumped away"
        target.click()
        _settle(page, solution, "s => s.classList.contains('toggle-hidden')")
        assert solution.evaluate("s => s.classList.contains('toggle-hidden')"), f"solution {number} stays open"
    assert not errors, f"{page_path}: {errors[:5]}"


# ------------------------------------------------------------------------------------------------ figures

#: For each figure: what is cut off by the figure's edges, and what covers what (boxes in page pixels).
FIGURE_PROBLEMS = r"""el => {
  const box = n => { const r = n.getBoundingClientRect(); return {l: r.left, r: r.right, t: r.top, b: r.bottom}; };
  const meets = (a, b) => a.l < b.r - 1 && b.l < a.r - 1 && a.t < b.b - 1 && b.t < a.b - 1;
  const svg = box(el.querySelector('.main-svg'));
  const fig = box(el);
  const visible = n => {
    const r = n.getBoundingClientRect();
    const style = getComputedStyle(n);
    return r.width > 0 && r.height > 0 && style.visibility !== 'hidden' && style.opacity !== '0';
  };
  const texts = sel => [...el.querySelectorAll(sel)].filter(n => visible(n) && n.textContent.trim());
  const name = n => `"${n.textContent.trim().slice(0, 40)}"`;
  const problems = [];
  if (fig.r - fig.l > el.parentElement.getBoundingClientRect().width + 1) problems.push('wider than its column');
  for (const t of texts('text')) {
    const b = box(t);
    if (b.l < svg.l - 1 || b.r > svg.r + 1 || b.t < svg.t - 1 || b.b > svg.b + 1)
      problems.push(`text ${name(t)} is cut off by the figure's edge`);
    const clipped = t.closest('[clip-path]');
    const subplot = t.closest('g.subplot');
    const id = subplot && [...subplot.classList].find(c => c !== 'subplot');
    const area = clipped && id && el.querySelector(`.draglayer g.${id} rect.nsewdrag`);
    if (area && subplot.contains(clipped)) {
      const a = box(area);
      if (b.l < a.l - 1 || b.r > a.r + 1 || b.t < a.t - 1 || b.b > a.b + 1)
        problems.push(`text ${name(t)} is cut off by the edge of its plot`);
    }
  }
  const modebar = el.querySelector('.modebar');
  const titles = [...texts('.gtitle'), ...texts('.annotation-text')];
  if (modebar) for (const t of titles) if (meets(box(t), box(modebar)))
    problems.push(`the toolbar covers the title ${name(t)}`);
  const notes = texts('.annotation-text');
  for (let i = 0; i < notes.length; i++) for (let j = i + 1; j < notes.length; j++)
    if (meets(box(notes[i]), box(notes[j]))) problems.push(`${name(notes[i])} overlaps ${name(notes[j])}`);
  const axisTitles = [...el.querySelectorAll('.infolayer g')]
    .filter(g => /^g-[xy]\d*title$/.test(g.getAttribute('class') || ''))
    .flatMap(g => [...g.querySelectorAll('text')].filter(n => visible(n) && n.textContent.trim()));
  for (const n of notes) for (const a of axisTitles)
    if (meets(box(n), box(a))) problems.push(`${name(n)} overlaps the axis title ${name(a)}`);
  const sliders = [...el.querySelectorAll('g.slider-container')].filter(visible);
  const ticks = [...texts('.xtick text'), ...texts('.g-xtitle text'), ...texts('.legend text')];
  for (const s of sliders) for (const t of ticks) if (meets(box(s), box(t)))
    problems.push(`the slider covers ${name(t)}`);
  return problems;
}"""


def _figure_pages() -> list[str]:
    return [p for p in _pages() if p == "<book not built>" or _has_figures(p)]


@pytest.mark.parametrize("page_path", _figure_pages())
def test_figures_fit_a_phone(loaded, page_path):
    """At 390 px every figure stays in its column, no text is cut off by its edges, the toolbar (shown, as a
    touch shows it) covers no title, subplot titles do not collide, and sliders cover no label."""
    _, page, errors, _, _ = loaded(page_path, WIDTHS["phone"])
    problems = []
    for number, fig in enumerate(page.query_selector_all(".plotly-graph-div")):
        fig.scroll_into_view_if_needed()
        fig.hover(position={"x": 5, "y": 5})  # a touch shows the toolbar; so does the mouse
        page.wait_for_timeout(50)
        problems += [f"figure {number}: {p}" for p in fig.evaluate(FIGURE_PROBLEMS)]
    assert not problems, f"{page_path} at 390 px: {problems[:8]}"
    assert not errors, f"{page_path}: {errors[:5]}"


# ------------------------------------------------------------------------------------------------ weight


@pytest.mark.parametrize("page_path", _pages())
def test_page_weight(loaded, page_path):
    """A cold load of a page without figures moves under 1 MB and loads no plotly.js; a chapter with figures
    stays under 3.5 MB."""
    assert page_path != "<book not built>", NOT_BUILT
    _, _, _, (total, largest), _ = loaded(page_path, WIDTHS["laptop"])
    if _has_figures(page_path):
        assert total < MAX_BYTES_WITH_FIGURES, f"{page_path}: {total:,} bytes on a cold load; largest {largest}"
    else:
        assert not any("plotly" in name for _, name in largest), f"{page_path} loads plotly.js without a figure"
        assert total < MAX_BYTES_WITHOUT_FIGURES, f"{page_path}: {total:,} bytes on a cold load; largest {largest}"


# ------------------------------------------------------------------------------------------------ trace types

#: The trace types the book draws, all in plotly.js's "cartesian" partial bundle (plotly.js-cartesian-dist-min:
#: scatter, bar, box, heatmap, histogram, histogram2d, histogram2dcontour, image, pie, contour, scatterternary,
#: violin), should the book ever ship that 1.4 MB bundle instead of the full 4.8 MB one.
CARTESIAN_BUNDLE = {
    "scatter",
    "bar",
    "box",
    "heatmap",
    "histogram",
    "histogram2d",
    "histogram2dcontour",
    "image",
    "pie",
    "contour",
    "scatterternary",
    "violin",
}


def trace_types(html: str) -> set[str]:
    """The trace types of every ``Plotly.newPlot`` call in a page (plotly.py writes each trace's ``"type"``)."""
    found = set()
    for call in re.findall(r"Plotly\.newPlot\(\s*\"[^\"]+\",\s*(\[.*?\]),\s*\{", html, re.S):
        found |= set(re.findall(r"\"type\":\s*\"(\w+)\"", call))
    return found


def test_every_trace_type_is_in_the_cartesian_bundle():
    """The figures of every page draw only trace types of the cartesian partial bundle (a list, so a new type
    shows up here first)."""
    assert (HTML_DIR / "index.html").exists(), NOT_BUILT
    used = {p: trace_types((HTML_DIR / p).read_text()) for p in _figure_pages()}
    assert all(used.values()), f"pages with figures but no trace type read: {[p for p, t in used.items() if not t]}"
    everything = set().union(*used.values())
    assert everything <= CARTESIAN_BUNDLE, f"trace types outside the cartesian bundle: {everything - CARTESIAN_BUNDLE}"
    assert trace_types('Plotly.newPlot("x", [{"type": "sankey"}], {})') == {"sankey"}  # the reader sees a type


# ------------------------------------------------------------------------------------------------ offline, sliders

FIGURE_STATE = """el => JSON.stringify({
  active: (el._fullLayout.sliders || []).map(s => s.active),
  data: el.data.map(t => [t.x, t.y, t.z, t.a, t.b, t.c, t.visible, t.marker && t.marker.color]),
  svg: el.querySelector('.main-svg').innerHTML.length + ':' + el.querySelector('.main-svg').innerHTML.slice(0, 20000)
})"""


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


@pytest.mark.parametrize("page_path", _pages())
def test_page_works_offline(loaded, page_path):
    """Loads with no console error and no request leaving the book; no dead ipywidgets; plotly.js only where there
    is a figure, and every figure drawn; every formula typeset; and every slider, moved with the mouse, changes its
    figure (last of this page's tests, as it moves the sliders)."""
    _, page, errors, _, external = loaded(page_path, WIDTHS["laptop"])
    figures = page.query_selector_all(".plotly-graph-div")

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


def test_the_book_is_built():
    assert (HTML_DIR / "index.html").exists(), NOT_BUILT
    assert (HTML_DIR / "_static" / "plotly.min.js").stat().st_size > 1_000_000
    assert (HTML_DIR / "_static" / "mathjax" / "tex-chtml.js").exists()


@pytest.mark.parametrize("page_path", ["book/intro.html"])  # runs with the intro's other tests: one load
def test_intro_has_its_slider_figure(loaded, page_path):
    """The intro page carries exactly one plotly figure, and it has a tau slider."""
    _, page, _, _, _ = loaded(page_path, WIDTHS["laptop"])
    figures = page.query_selector_all(".plotly-graph-div")
    assert len(figures) == 1
    assert figures[0].evaluate("el => el._fullLayout.sliders.length") == 1
    assert "τ" in figures[0].evaluate("el => el._fullLayout.sliders[0].currentvalue.prefix")
