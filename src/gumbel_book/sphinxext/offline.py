"""Sphinx extension that makes the built book self-contained: plotly.js and MathJax come from ``_static``.

It also sets ``$GUMBEL_BOOK_HTML`` before any notebook executes; the kernels inherit it and
:mod:`gumbel_book.figures.style` then renders figures as HTML that uses the page's copy of plotly.js.
Only a page that holds a figure loads plotly.js (4.8 MB); every page loads the book's own small
``gumbel-book.css`` and ``gumbel-book.js`` (``static/``): wide equations, tables and outputs scroll in
their own box, a solution's whole title opens it, and figures fit a phone's width.

No page loads the theme's ``fontawesome.js`` (1.5 MB; 0.54 MB compressed): it is there "so that users can add
custom icons", and the book has none; the theme's stylesheet draws its icons from the Font Awesome web fonts.

The installed plotly ships only the full plotly.js bundle; the partial bundles (``plotly.js-cartesian``,
which would cover every trace type the book draws, see ``tests/book/test_reader.py``) come from npm only.
"""

from __future__ import annotations

import re
from pathlib import Path

import plotly
from sphinx.application import Sphinx
from sphinx.util.fileutil import copy_asset, copy_asset_file

from ..settings import mark_book_build

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
STATIC = Path(__file__).parent / "static"
#: The marker of a figure in a page's body (plotly's ``to_html`` output).
FIGURE_MARKER = 'class="plotly-graph-div"'
#: pydata-sphinx-theme's template tag for its Font Awesome script (custom icons; the book has none).
FONTAWESOME_JS = re.compile(r'[ \t]*<script defer src="[^"]*_static/scripts/fontawesome\.js[^"]*"></script>\n?')


def drop_fontawesome_js(outdir: str | Path) -> int:
    """Remove the theme's ``fontawesome.js`` tag from every page under ``outdir``; returns how many pages had it."""
    changed = 0
    for page in Path(outdir).rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        new = FONTAWESOME_JS.sub("", text)
        if new != text:
            page.write_text(new, encoding="utf-8")
            changed += 1
    return changed


def mathjax_dir() -> Path:
    """MathJax 3, as shipped by the ``sphinx-mathjax-offline`` distribution."""
    import importlib.util

    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or spec.origin is None:
        raise RuntimeError("sphinx-mathjax-offline is not installed; run the README's install command")
    return Path(spec.origin).parent / "static" / "mathjax"


def _copy_assets(app: Sphinx, exc: Exception | None) -> None:
    if exc is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    copy_asset_file(str(PLOTLY_JS), str(static / "plotly.min.js"))
    copy_asset(str(mathjax_dir()), str(static / "mathjax"))
    copy_asset(str(STATIC), str(static))
    drop_fontawesome_js(app.outdir)


def _use_local_mathjax(app: Sphinx, config) -> None:
    config.mathjax_path = "mathjax/tex-chtml.js"


def _page_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """plotly.js on the pages that hold a figure, and on no other; no sphinx-thebe scripts: the static book runs
    no kernel, and Jupyter Book 1.x adds them twice, which is a JavaScript error ('THEBE_JS_URL' redeclared)
    and a CDN address on every page."""
    if FIGURE_MARKER in str(context.get("body", "")):
        # Plotly must exist before the inline figure scripts run, so load it early and without defer.
        app.add_js_file("plotly.min.js", priority=100)
    scripts = context.get("script_files")
    if scripts:
        scripts[:] = [
            js
            for js in scripts
            if "thebe" not in str(getattr(js, "filename", js) or "").lower()
            and "THEBE" not in str(getattr(js, "attributes", {}).get("body", ""))
        ]


def setup(app: Sphinx) -> dict:
    mark_book_build()
    app.add_css_file("gumbel-book.css")
    app.add_js_file("gumbel-book.js", loading_method="defer")
    app.connect("config-inited", _use_local_mathjax, priority=900)
    app.connect("html-page-context", _page_scripts)
    app.connect("build-finished", _copy_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
