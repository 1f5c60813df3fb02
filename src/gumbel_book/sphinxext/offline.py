"""Sphinx extension that makes the built book self-contained: plotly.js and MathJax come from ``_static``.

It also sets ``$GUMBEL_BOOK_HTML`` before any notebook executes; the kernels inherit it and
:mod:`gumbel_book.figures.style` then renders figures as HTML that uses the page's copy of plotly.js.
"""

from __future__ import annotations

from pathlib import Path

import plotly
from sphinx.application import Sphinx
from sphinx.util.fileutil import copy_asset, copy_asset_file

from ..settings import mark_book_build

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _mathjax_dir() -> Path:
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
    copy_asset(str(_mathjax_dir()), str(static / "mathjax"))


def _use_local_mathjax(app: Sphinx, config) -> None:
    config.mathjax_path = "mathjax/tex-chtml.js"


def _drop_thebe(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Remove sphinx-thebe's scripts: the static book runs no kernel, and Jupyter Book 1.x adds them
    twice, which is a JavaScript error ('THEBE_JS_URL' redeclared) and a CDN address on every page."""
    scripts = context.get("script_files")
    if scripts:
        context["script_files"] = [
            js
            for js in scripts
            if "thebe" not in str(getattr(js, "filename", js) or "").lower()
            and "THEBE" not in str(getattr(js, "attributes", {}).get("body", ""))
        ]


def setup(app: Sphinx) -> dict:
    mark_book_build()
    # Plotly must exist before the inline figure scripts run, so load it early and without defer.
    app.add_js_file("plotly.min.js", priority=100)
    app.connect("config-inited", _use_local_mathjax, priority=900)
    app.connect("html-page-context", _drop_thebe)
    app.connect("build-finished", _copy_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
