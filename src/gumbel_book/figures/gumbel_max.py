"""Figures for the Gumbel-max chapter. Each takes data from a tested function in the package."""

from __future__ import annotations

import math
from collections.abc import Mapping

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..labs.gumbel_max import gumbel_pdf, tuple_frequencies
from .style import COLORS, base_layout, slider

TOP_LEGEND = {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"}
TOP_MARGIN = {"l": 60, "r": 20, "t": 90, "b": 50}
SAMPLER_TITLES = ("argmax(ℓ + g): right", "argmax(π + g): wrong")


def gumbel_histogram(g: torch.Tensor, edges: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Density histogram of the noise ``g`` and the Gumbel(0, 1) pdf at the bin centres."""
    edges = torch.linspace(-3, 9, 97, dtype=torch.float64) if edges is None else edges.double()
    g = g.detach().reshape(-1).double().cpu()
    counts = torch.histogram(g, bins=edges).hist
    centers = (edges[1:] + edges[:-1]) / 2
    density = counts / (g.numel() * (edges[1:] - edges[:-1]))
    return {"centers": centers, "density": density, "pdf": gumbel_pdf(centers)}


def gumbel_density_figure(g: torch.Tensor) -> go.Figure:
    """Histogram of the noise ``g`` against the Gumbel(0, 1) density."""
    h = gumbel_histogram(g)
    x = h["centers"].tolist()
    fig = go.Figure(
        [
            go.Bar(x=x, y=h["density"].tolist(), name=f"{g.numel():,} draws", opacity=0.5, marker_color=COLORS[0]),
            go.Scatter(x=x, y=h["pdf"].tolist(), name="density exp(−(x + e^−x))", line={"color": COLORS[1]}),
        ]
    )
    fig.update_layout(
        **base_layout("The standard Gumbel distribution", height=400),
        bargap=0,
        xaxis={"title": "x"},
        yaxis={"title": "density"},
        legend={"x": 0.6, "y": 0.95},
    )
    return fig


def _residual_traces(result: Mapping, col: int) -> list[go.BaseTraceType]:
    """The exact band (grey bars), the residuals (dots) and the masked categories drawn (red x, at the top)."""
    k = len(result["probs"])
    x = [str(i) for i in range(k)]
    lower, upper, res = result["lower"], result["upper"], result["residual"]
    masked = [i for i in range(k) if float(result["probs"][i]) == 0]
    top = float(torch.nan_to_num(torch.cat([upper, res]), nan=0.0).abs().max())
    color = COLORS[2] if result["all_inside"] else COLORS[1]
    return [
        go.Bar(
            x=x,
            y=torch.nan_to_num(upper - lower).tolist(),
            base=torch.nan_to_num(lower).tolist(),
            marker_color="rgba(0,0,0,0.15)",
            width=0.6,
            name="band",
            hoverinfo="skip",
        ),
        go.Scatter(
            x=x,
            y=[None if math.isnan(v) else v for v in res.tolist()],
            mode="markers",
            marker={"size": 10, "color": color},
            name="residual",
        ),
        go.Scatter(
            x=[str(i) for i in masked],
            y=[top if int(result["counts"][i]) else None for i in masked],
            mode="markers+text",
            marker={"size": 12, "symbol": "x", "color": COLORS[1]},
            text=[f"π=0, drawn {int(result['counts'][i]):,}×" if int(result["counts"][i]) else "" for i in masked],
            textposition="bottom center",
            name="masked, drawn",
        ),
    ]


def _p_text(p: float) -> str:
    return "p < 10⁻³⁰⁰" if p < 1e-300 else f"p = {p:.2g}"


def _residual_titles(case: Mapping) -> list[str]:
    return [
        f"{title}<br>χ² {_p_text(case[key]['chi_square']['p_value'])}"
        for title, key in zip(SAMPLER_TITLES, ("right", "wrong"), strict=True)
    ]


def residual_figure(data: Mapping[str, Mapping]) -> go.Figure:
    """Standardized residuals of the right and the wrong sampler, side by side, with a slider over the cases.

    ``data`` is :func:`gumbel_book.labs.gumbel_max.residual_cases`. Grey bars are each count's exact band
    (Bonferroni over every category shown); a dot outside its bar is a count the law does not allow at the
    stated alpha. The two panels have their own y scales: the wrong sampler's residuals reach the hundreds.
    Every case's traces are in the figure and the slider shows one case at a time; no legend (the text explains
    the bars and dots), so nothing covers the panel titles on a phone.
    """
    names = list(data)
    if not names:
        raise ValueError("data must hold at least one case")
    fig = make_subplots(rows=1, cols=2, subplot_titles=_residual_titles(data[names[0]]), horizontal_spacing=0.12)
    owner = []
    for j, name in enumerate(names):
        for col, key in ((1, "right"), (2, "wrong")):
            for trace in _residual_traces(data[name][key], col):
                trace.visible = j == 0
                fig.add_trace(trace, row=1, col=col)
                owner.append(j)
    steps = []
    for j, name in enumerate(names):
        layout = {f"annotations[{i}].text": t for i, t in enumerate(_residual_titles(data[name]))}
        visible = [o == j for o in owner]
        steps.append({"method": "update", "label": name, "args": [{"visible": visible}, layout]})
    first = data[names[0]]["right"]
    fig.update_layout(
        **base_layout(f"Residuals of {int(first['counts'].sum()):,} draws", height=520, margin=TOP_MARGIN),
        showlegend=False,
        barmode="overlay",
        sliders=[slider(steps, "case: ", pad_top=50)],
    )
    fig.update_xaxes(title_text="category", type="category")
    fig.update_yaxes(title_text="(count − Nπ) / √(Nπ(1 − π))", row=1, col=1)
    return fig


def error_figure(result: Mapping[str, torch.Tensor], wrong: Mapping[str, torch.Tensor] | None = None) -> go.Figure:
    """Mean total-variation error against N on log axes (from :func:`frequency_error_vs_n`), with the 1/√N law,
    and, when given, the same measurement for the wrong sampler."""
    n = result["n"].tolist()
    traces = [
        go.Scatter(x=n, y=result["tv"].tolist(), mode="markers", name="gumbel_max", marker={"size": 10}),
        go.Scatter(
            x=n,
            y=result["expected"].tolist(),
            mode="lines",
            name="predicted C/√N",
            line={"dash": "dot", "color": "black"},
        ),
    ]
    if wrong is not None:
        traces.append(
            go.Scatter(
                x=wrong["n"].tolist(),
                y=wrong["tv"].tolist(),
                mode="markers",
                name="argmax(π + g)",
                marker={"size": 10, "symbol": "x", "color": COLORS[1]},
            )
        )
    fig = go.Figure(traces)
    fig.update_layout(
        **base_layout("Frequency error against the number of samples", height=420),
        xaxis={"title": "number of samples N", "type": "log"},
        yaxis={"title": "total variation distance", "type": "log", "exponentformat": "power"},
        legend={"x": 0.02, "y": 0.02, "yanchor": "bottom"},
    )
    return fig


def max_law_figure(index: torch.Tensor, values: torch.Tensor, logits: torch.Tensor, bins: int = 60) -> go.Figure:
    """Density of the max of ``logits + g`` given each argmax, against the Gumbel(logsumexp(logits), 1) density."""
    lse = float(torch.logsumexp(logits.double(), dim=-1))
    v = values.double().cpu()
    edges = torch.linspace(lse - 2.5, lse + 6, bins + 1, dtype=torch.float64)
    centers = ((edges[1:] + edges[:-1]) / 2).tolist()
    widths = edges[1:] - edges[:-1]
    traces = []
    for i in range(logits.numel()):
        sel = v[index.cpu() == i]
        if sel.numel() == 0:
            continue
        dens = torch.histogram(sel, bins=edges).hist / (sel.numel() * widths)
        traces.append(
            go.Scatter(
                x=centers,
                y=dens.tolist(),
                mode="lines",
                line={"shape": "hvh", "width": 1.5, "color": COLORS[i % len(COLORS)]},
                name=f"max, given argmax = {i}",
            )
        )
    traces.append(
        go.Scatter(
            x=centers,
            y=gumbel_pdf(torch.tensor(centers), loc=lse).tolist(),
            mode="lines",
            name=f"Gumbel(logsumexp = {lse:.3f}, 1)",
            line={"color": "black", "dash": "dash", "width": 2.5},
        )
    )
    fig = go.Figure(traces)
    fig.update_layout(
        **base_layout("The max has the same law whichever category wins", height=440),
        xaxis={"title": "max_i (logit_i + g_i)"},
        yaxis={"title": "density"},
        legend={"x": 0.62, "y": 0.95},
    )
    return fig


def topk_figure(data: Mapping) -> go.Figure:
    """Bars of exact, Gumbel-top-k and sequential frequencies of every ordered tuple (from
    :func:`gumbel_book.labs.gumbel_max.topk_samples`)."""
    tuples = sorted(data["exact"], key=lambda t: -data["exact"][t])
    labels = ["(" + ", ".join(map(str, t)) + ")" for t in tuples]
    ft, fs = tuple_frequencies(data["topk"]), tuple_frequencies(data["sequential"])
    fig = go.Figure(
        [
            go.Bar(x=labels, y=[data["exact"][t] for t in tuples], name="exact"),
            go.Bar(x=labels, y=[ft.get(t, 0.0) for t in tuples], name="Gumbel-top-k"),
            go.Bar(x=labels, y=[fs.get(t, 0.0) for t in tuples], name="sequential, without replacement"),
        ]
    )
    fig.update_layout(
        **base_layout("Ordered pairs drawn without replacement", height=420, margin=TOP_MARGIN),
        barmode="group",
        xaxis={"title": "ordered tuple (first, second, ...)", "type": "category"},
        yaxis={"title": "probability / frequency"},
        legend=TOP_LEGEND,
    )
    return fig
