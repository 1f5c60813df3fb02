"""Figures for the Gumbel-max chapter. Each takes data from a tested function in the package."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go
import torch

from ..labs.gumbel_max import (
    empirical_frequencies,
    gumbel_pdf,
    ordered_tuple_probabilities,
    sequential_without_replacement,
    tuple_frequencies,
)
from ..sampling import gumbel_max, gumbel_topk, sample_gumbel
from .style import COLORS, base_layout, slider

INF = float("inf")
TOP_LEGEND = {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"}
TOP_MARGIN = {"l": 60, "r": 20, "t": 90, "b": 50}
EMPIRICAL_CASES: dict[str, tuple[float, ...]] = {
    "plain": (1.5, 0.5, 1.0, -0.5, 0.0),
    "extreme": (12.0, 0.0, -4.0, 4.0, 8.0),
    "masked": (1.0, -INF, 0.0, -INF, 2.0, 0.5),
    "shifted +1000": (1001.5, 1000.5, 1001.0, 999.5, 1000.0),
    "K = 12": tuple(0.1 * ((3 * i) % 7) for i in range(12)),
}


def gumbel_histogram(n: int = 1_000_000, edges: torch.Tensor | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    """Density histogram of ``n`` draws of :func:`gumbel_book.sample_gumbel` and the Gumbel pdf at the bin centres."""
    edges = torch.linspace(-3, 9, 97, dtype=torch.float64) if edges is None else edges.double()
    g = sample_gumbel(n, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    counts = torch.histogram(g, bins=edges).hist
    centers = (edges[1:] + edges[:-1]) / 2
    return {"centers": centers, "density": counts / (n * (edges[1:] - edges[:-1])), "pdf": gumbel_pdf(centers)}


def gumbel_density_figure(n: int = 1_000_000, seed: int = 0) -> go.Figure:
    """Histogram of the book's Gumbel sampler against the Gumbel(0, 1) density."""
    h = gumbel_histogram(n, seed=seed)
    x = h["centers"].tolist()
    fig = go.Figure(
        [
            go.Bar(x=x, y=h["density"].tolist(), name=f"{n:,} draws of −log E", opacity=0.5, marker_color=COLORS[0]),
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


def case_frequencies(
    cases: Mapping[str, Sequence[float]] = EMPIRICAL_CASES, n: int = 1_000_000, seed: int = 0
) -> dict[str, dict[str, torch.Tensor]]:
    """For each named logit vector: softmax probabilities, Gumbel-max samples and their frequencies."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, logits in cases.items():
        lg = torch.tensor(logits, dtype=torch.float32)
        samples = gumbel_max(lg.expand(n, -1), generator=gen)
        out[name] = {
            "probs": torch.softmax(lg.double(), dim=-1),
            "samples": samples,
            "freq": empirical_frequencies(samples, lg.numel()),
        }
    return out


def frequency_figure(data: Mapping[str, Mapping[str, torch.Tensor]]) -> go.Figure:
    """Frequency against probability for every case in ``data`` (from :func:`case_frequencies`), a slider per case.

    The y axis is logarithmic so that probabilities of 1e-6 are visible; masked categories have no bar.
    """
    names = list(data)
    if not names:
        raise ValueError("data must hold at least one case")

    def xs(name: str) -> list[str]:
        return [f"{i}" for i in range(len(data[name]["probs"]))]

    first = data[names[0]]
    fig = go.Figure(
        [
            go.Bar(x=xs(names[0]), y=first["probs"].tolist(), name="probability π", marker_color=COLORS[0]),
            go.Bar(x=xs(names[0]), y=first["freq"].tolist(), name="Gumbel-max frequency", marker_color=COLORS[1]),
        ]
    )
    steps = [
        {
            "method": "restyle",
            "label": name,
            "args": [{"x": [xs(name), xs(name)], "y": [data[name]["probs"].tolist(), data[name]["freq"].tolist()]}],
        }
        for name in names
    ]
    fig.update_layout(
        **base_layout(
            "Gumbel-max frequencies from 10⁶ samples against the probabilities", height=500, margin=TOP_MARGIN
        ),
        barmode="group",
        xaxis={"title": "category", "type": "category"},
        yaxis={
            "title": "probability / frequency (log scale)",
            "type": "log",
            "range": [-8, 0.05],
            "exponentformat": "power",
        },
        legend=TOP_LEGEND,
        sliders=[slider(steps, "case: ", pad_top=50)],
    )
    return fig


def error_figure(result: Mapping[str, torch.Tensor]) -> go.Figure:
    """Mean total-variation error against N on log axes (from :func:`frequency_error_vs_n`), with the 1/√N law."""
    n = result["n"].tolist()
    fig = go.Figure(
        [
            go.Scatter(x=n, y=result["tv"].tolist(), mode="markers", name="measured", marker={"size": 10}),
            go.Scatter(x=n, y=result["expected"].tolist(), mode="lines", name="predicted C/√N", line={"dash": "dot"}),
        ]
    )
    fig.update_layout(
        **base_layout("Error of the Gumbel-max frequencies against the number of samples", height=420),
        xaxis={"title": "number of samples N", "type": "log"},
        yaxis={"title": "total variation distance", "type": "log", "exponentformat": "power"},
        legend={"x": 0.7, "y": 0.95},
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


def pitfall_figure(data: Mapping[str, torch.Tensor]) -> go.Figure:
    """Bars of π, of ``argmax(log π + g)`` and of ``argmax(π + g)`` (from :func:`pitfall_frequencies`)."""
    x = [f"{i}" for i in range(len(data["probs"]))]
    fig = go.Figure(
        [
            go.Bar(x=x, y=data["probs"].tolist(), name="π"),
            go.Bar(x=x, y=data["log_probs_plus_noise"].tolist(), name="argmax(log π + g): right"),
            go.Bar(x=x, y=data["probs_plus_noise"].tolist(), name="argmax(π + g): the log forgotten"),
        ]
    )
    fig.update_layout(
        **base_layout("Perturb log-probabilities, not probabilities", height=400, margin=TOP_MARGIN),
        barmode="group",
        xaxis={"title": "category", "type": "category"},
        yaxis={"title": "probability / frequency"},
        legend=TOP_LEGEND,
    )
    return fig


def topk_data(probs: Sequence[float], k: int = 2, n: int = 200_000, seed: int = 0) -> dict:
    """Ordered-tuple frequencies of Gumbel-top-k and of sequential sampling without replacement, with exact values."""
    p = torch.tensor(probs, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    topk = gumbel_topk(p.log().expand(n, -1), k, generator=gen)
    seq = sequential_without_replacement(p, k, n, generator=gen)
    exact = ordered_tuple_probabilities(p, k)
    return {"exact": exact, "topk": topk, "sequential": seq}


def topk_figure(data: Mapping) -> go.Figure:
    """Bars of exact, Gumbel-top-k and sequential frequencies of every ordered tuple (from :func:`topk_data`)."""
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
