"""Figures for the language-models chapter: training loss, temperature, and watermark p-values."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
import torch

from .style import COLORS, base_layout, slider


def loss_figure(losses: Sequence[float]) -> go.Figure:
    """Training loss of the character model, in nats per character, per Adam step."""
    fig = go.Figure(go.Scatter(y=list(losses), mode="lines", line={"color": COLORS[0]}, name="loss"))
    fig.update_layout(
        **base_layout("The tiny character model learns the book", height=320),
        xaxis={"title": "Adam step"},
        yaxis={"title": "cross-entropy (nats per character)"},
    )
    return fig


#: The temperatures of :func:`temperature_figure`'s slider.
TEMPERATURES = (0.25, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0)


def _char_label(char: str) -> str:
    return repr(char)[1:-1] if char.strip() else "␣"


def temperature_figure(
    logits: torch.Tensor,
    vocab: str,
    temperatures: Sequence[float] = TEMPERATURES,
    active: float = 1.0,
    top: int = 12,
) -> go.Figure:
    """The next-character distribution softmax(logits / T), its ``top`` likeliest characters, with a slider over
    ``temperatures`` (precomputed steps) and the T = 1 distribution as a grey reference.

    The bars a step shows and the bars the figure starts with come from the same function, so the page before
    any slider move is exactly its ``active`` step.
    """
    if not temperatures:
        raise ValueError("temperatures must not be empty")
    order = logits.argsort(descending=True)[:top]
    labels = [_char_label(vocab[i]) for i in order.tolist()]

    def bars(t: float) -> list[float]:
        return [round(v, 5) for v in torch.softmax(logits.double() / t, dim=-1)[order].tolist()]

    start = min(range(len(temperatures)), key=lambda i: abs(temperatures[i] - active))
    fig = go.Figure(
        [
            go.Bar(x=labels, y=bars(1.0), name="T = 1", marker_color="#c7c7c7"),
            go.Bar(x=labels, y=bars(temperatures[start]), name="T (slider)", marker_color=COLORS[0]),
        ]
    )
    steps = [{"method": "restyle", "label": f"{t:g}", "args": [{"y": [bars(t)]}, [1]]} for t in temperatures]
    fig.update_layout(
        **base_layout("Temperature reshapes the next-character distribution", height=420),
        barmode="group",
        xaxis={"title": "next character"},
        yaxis={"title": "probability", "range": [0, 1]},
        legend={"orientation": "h", "y": 1.12, "x": 0},
        sliders=[slider(steps, "temperature T = ", active=start, pad_top=50)],
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
