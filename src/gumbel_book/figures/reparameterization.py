"""Figures for the reparameterization chapter: score-function vs reparameterized gradients on a Gaussian."""

from __future__ import annotations

import plotly.graph_objects as go
import torch

from ..labs.reparameterization import exact_gradient, exact_variance, running_mean
from .style import COLORS, base_layout, slider

LABELS = {"score": "score function (REINFORCE)", "reparam": "reparameterization"}
DEFAULT_MUS = (-2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)
"""The means on the histogram figure's slider."""
DEFAULT_NS = (1, 3, 10, 30, 100, 300, 1000)
"""The sample counts of the variance figure."""


def _vline(x: float) -> dict:
    return {
        "type": "line",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "yref": "paper",
        "line": {"color": "black", "dash": "dash", "width": 2},
    }


def histogram_figure(sweep: dict) -> go.Figure:
    """Histograms of single-sample estimates of d/dmu E[z^2] from both estimators, with a slider over ``mu``.

    ``sweep`` is :func:`gumbel_book.labs.reparameterization.histogram_sweep`. The dashed line is the exact
    gradient 2 mu. Every slider position was computed in advance.
    """
    mus, sigma, edges, hists = sweep["mus"], sweep["sigma"], sweep["edges"], sweep["panels"]
    centers = ((edges[1:] + edges[:-1]) / 2).tolist()
    width = float(edges[1] - edges[0])
    active = min(range(len(mus)), key=lambda i: abs(mus[i] - 1.0))
    tops = [1.05 * max(float(h["score"].max()), float(h["reparam"].max())) for h in hists]
    fig = go.Figure(
        [
            go.Bar(
                x=centers,
                y=hists[active][est].tolist(),
                width=width,
                name=LABELS[est],
                marker_color=COLORS[j],
                opacity=0.6,
            )
            for j, est in enumerate(("score", "reparam"))
        ]
    )
    steps = [
        {
            "method": "update",
            "label": f"{mu:g}",
            "args": [
                {"y": [h["score"].tolist(), h["reparam"].tolist()]},
                {"shapes": [_vline(exact_gradient(mu, sigma)["mu"])], "yaxis.range": [0, top]},
            ],
        }
        for mu, h, top in zip(mus, hists, tops, strict=True)
    ]
    fig.update_layout(
        **base_layout("Single-sample estimates of ∂/∂μ E[z²] (dashed: the exact gradient 2μ)", height=480),
        barmode="overlay",
        bargap=0,
        xaxis={"title": "gradient estimate", "range": [float(edges[0]), float(edges[-1])]},
        yaxis={"title": "density", "range": [0, tops[active]]},
        legend={"x": 0.98, "xanchor": "right", "y": 0.98, "bgcolor": "rgba(255,255,255,0.8)"},
        shapes=[_vline(exact_gradient(mus[active], sigma)["mu"])],
        sliders=[slider(steps, "mean μ = ", active=active)],
    )
    return fig


def variance_figure(data: dict, mu: float = 1.0, sigma: float = 1.0) -> go.Figure:
    """Variance of the n-sample gradient estimate of d/dmu against n: measured (markers) and exact (lines).

    ``data`` is :func:`gumbel_book.labs.reparameterization.variance_vs_n` at this ``mu`` and ``sigma``.
    """
    exact = exact_variance(mu, sigma)
    n = data["n"].tolist()
    traces = []
    for j, est in enumerate(("score", "reparam")):
        traces.append(
            go.Scatter(
                x=n,
                y=data[est].tolist(),
                mode="markers",
                name=f"{LABELS[est]}: measured",
                marker={"color": COLORS[j], "size": 9},
            )
        )
        traces.append(
            go.Scatter(
                x=n,
                y=[exact[est]["mu"] / k for k in n],
                mode="lines",
                name=f"{LABELS[est]}: exact {exact[est]['mu']:g}/n",
                line={"color": COLORS[j], "dash": "dot"},
            )
        )
    fig = go.Figure(traces)
    fig.update_layout(
        **base_layout(f"Variance of the n-sample estimate of ∂/∂μ at μ = {mu:g}, σ = {sigma:g}", height=460),
        xaxis={"title": "number of samples n", "type": "log"},
        yaxis={"title": "variance", "type": "log", "exponentformat": "power"},
        legend={"x": 0.55, "y": 0.98},
    )
    return fig


def running_mean_figure(
    mu: float = 1.0, sigma: float = 1.0, n: int = 100_000, points: int = 400, seed: int = 0
) -> go.Figure:
    """Running averages of both estimators of d/dmu converging to the exact gradient (log-spaced points)."""
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ValueError(f"points must be an int >= 2, got {points!r}")
    idx = torch.unique(torch.logspace(0, torch.log10(torch.tensor(float(n))), points).long().clamp(1, n)) - 1
    traces = []
    for j, est in enumerate(("score", "reparam")):
        path = running_mean(est, mu, sigma, n, seed=seed + j)
        traces.append(
            go.Scatter(x=(idx + 1).tolist(), y=path[idx].tolist(), name=LABELS[est], line={"color": COLORS[j]})
        )
    exact = exact_gradient(mu, sigma)["mu"]
    traces.append(
        go.Scatter(
            x=[1, n], y=[exact, exact], name=f"exact gradient {exact:g}", line={"color": "black", "dash": "dash"}
        )
    )
    fig = go.Figure(traces)
    fig.update_layout(
        **base_layout("Running average of the gradient estimates", height=420),
        xaxis={"title": "number of samples averaged", "type": "log"},
        yaxis={"title": "estimate of ∂/∂μ", "range": [exact - 4, exact + 4]},
        legend={"x": 0.98, "xanchor": "right", "y": 0.98, "bgcolor": "rgba(255,255,255,0.8)"},
    )
    return fig
