"""Plotly set-up shared by every figure: one look, and kernel-free HTML output in the book build.

Inside the Jupyter Book build (``$GUMBEL_BOOK_HTML`` is set by :mod:`gumbel_book.sphinxext.offline`)
figures render as plain HTML that calls the page's single copy of plotly.js, because myst-nb drops
plotly's own mime type. Everywhere else (Jupyter, VS Code) plotly's usual renderers apply.

One layout serves every width: in the book, ``gumbel-book.js`` (:mod:`gumbel_book.sphinxext.offline`)
refits a drawn figure to its width (a title under the toolbar and wrapped, the legend below the plot on a
phone, margins for labels and slider ticks). The toolbar keeps four buttons, so that it takes little of
the title's row.
"""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer

from ..settings import in_book_build

RENDERER = "gumbel_book_html"
DEFAULT_HEIGHT = 450
#: The toolbar's buttons that a reader of a static figure rarely needs (box and lasso select, zoom in and out,
#: autoscale, spike lines, hover modes); it keeps: save as PNG, zoom, pan, reset axes.
MODEBAR_REMOVED = [
    "select2d",
    "lasso2d",
    "zoomIn2d",
    "zoomOut2d",
    "autoScale2d",
    "toggleSpikelines",
    "hoverClosestCartesian",
    "hoverCompareCartesian",
]
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": MODEBAR_REMOVED}
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def figure_html(fig: go.Figure | dict) -> str:
    """The figure as an HTML fragment that expects ``Plotly`` to be loaded once by the page."""
    layout = fig["layout"] if isinstance(fig, dict) else fig.layout
    height = (layout.get("height") if isinstance(layout, dict) else layout.height) or DEFAULT_HEIGHT
    return pio.to_html(
        fig,
        include_plotlyjs=False,
        full_html=False,
        config=PLOTLY_CONFIG,
        default_height=f"{height}px",
        validate=False,
    )


class BookHtmlRenderer(MimetypeRenderer):
    """Render figures as ``text/html`` without embedding plotly.js (the book page loads it once)."""

    def to_mimebundle(self, fig_dict: dict) -> dict:
        return {"text/html": figure_html(fig_dict)}


def use_book_renderer() -> None:
    """Make the book's HTML renderer plotly's default in this process."""
    pio.renderers[RENDERER] = BookHtmlRenderer()
    pio.renderers.default = RENDERER


def base_layout(title: str | None = None, height: int = DEFAULT_HEIGHT, **kwargs) -> dict:
    """The layout every figure in the book starts from."""
    layout = {
        "template": "plotly_white",
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 60 if title else 30, "b": 50},
        "font": {"size": 13},
        "colorway": COLORS,
    }
    if title:
        layout["title"] = {"text": title, "x": 0.02, "xanchor": "left"}
    layout.update(kwargs)
    return layout


def print_steps(*labels: str) -> dict:
    """Layout that names the slider steps the print edition draws as panels (:mod:`gumbel_book.figures.static`)."""
    return {"meta": {"print_steps": list(labels)}}


def slider(steps: list[dict], prefix: str, active: int = 0, pad_top: int = 40) -> dict:
    """A plotly slider whose steps were precomputed at build time, so it works without a kernel."""
    return {
        "active": active,
        "currentvalue": {"prefix": prefix, "font": {"size": 14}},
        "pad": {"t": pad_top},
        "steps": steps,
    }


if in_book_build():
    use_book_renderer()
