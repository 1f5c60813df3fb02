"""Figures for the language-models chapter: training loss, temperature, and watermark p-values."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
import torch

from .style import COLORS, base_layout


def loss_figure(losses: Sequence[float]) -> go.Figure:
    """Training loss of the character model, in nats per character, per Adam step."""
    fig = go.Figure(go.Scatter(y=list(losses), mode="lines", line={"color": COLORS[0]}, name="loss"))
    fig.update_layout(
        **base_layout("The tiny character model learns the book", height=320),
        xaxis={"title": "Adam step"},
        yaxis={"title": "cross-entropy (nats per character)"},
    )
    return fig


def temperature_figure(logits: torch.Tensor, vocab: str, temperatures: Sequence[float], top: int = 12) -> go.Figure:
    """The next-character distribution softmax(logits / T) for several temperatures T (the ``top`` likeliest)."""
    order = logits.argsort(descending=True)[:top]
    labels = [repr(vocab[i])[1:-1] or " " for i in order.tolist()]
    fig = go.Figure()
    for j, t in enumerate(temperatures):
        probs = torch.softmax(logits.double() / t, dim=-1)[order]
        fig.add_bar(x=labels, y=probs.tolist(), name=f"T = {t:g}", marker_color=COLORS[j % len(COLORS)])
    fig.update_layout(
        **base_layout("Temperature reshapes the next-character distribution", height=360),
        barmode="group",
        xaxis={"title": "next character"},
        yaxis={"title": "probability"},
    )
    return fig


def pvalue_figure(pvalues: dict[str, Sequence[float]], alpha: float) -> go.Figure:
    """Watermark-test p-values (log scale) of several groups of texts, with the rejection level ``alpha``."""
    fig = go.Figure()
    for j, (name, ps) in enumerate(pvalues.items()):
        ps = [max(p, 1e-300) for p in ps]
        fig.add_scatter(
            x=ps, y=[name] * len(ps), mode="markers", name=name, marker={"color": COLORS[j % len(COLORS)], "size": 8}
        )
    fig.add_vline(x=alpha, line_dash="dash", line_color="black", annotation_text=f"flagged below {alpha:.1e}")
    fig.update_layout(
        **base_layout("Watermark detection: one p-value per text", height=340),
        xaxis={"title": "p-value (log scale)", "type": "log"},
        showlegend=False,
    )
    return fig
