"""The intro page's figure: one Gumbel-Softmax sample watched as the temperature changes."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
import torch

from ..sampling import sample_gumbel
from .style import base_layout, slider

DEFAULT_LOGITS = (1.5, 0.5, 1.0, -0.5, 0.0)
DEFAULT_TAUS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


def relaxed_sample_path(logits: Sequence[float], taus: Sequence[float], seed: int = 0) -> torch.Tensor:
    """One Gumbel-Softmax sample per ``tau``, all drawn with the *same* noise: shape ``[len(taus), K]``.

    Reusing the noise isolates what the temperature does: small tau gives the Gumbel-max one-hot
    sample, large tau the uniform vector.
    """
    lg = torch.as_tensor(logits, dtype=torch.float64)
    if lg.dim() != 1 or lg.numel() < 2:
        raise ValueError(f"logits must be a 1-d sequence of at least 2 numbers, got {logits!r}")
    if len(taus) == 0 or any(not (t > 0) for t in taus):
        raise ValueError(f"taus must be a non-empty sequence of positive numbers, got {taus!r}")
    g = sample_gumbel(lg.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    t = torch.as_tensor(taus, dtype=torch.float64).unsqueeze(-1)
    return torch.softmax((lg + g) / t, dim=-1)


def tau_slider_figure(
    logits: Sequence[float] = DEFAULT_LOGITS, taus: Sequence[float] = DEFAULT_TAUS, seed: int = 0
) -> go.Figure:
    """Bars of softmax(logits) beside one relaxed sample, with a slider over tau (no kernel needed)."""
    path = relaxed_sample_path(logits, taus, seed)
    probs = torch.softmax(torch.as_tensor(logits, dtype=torch.float64), dim=-1)
    names = [f"category {i + 1}" for i in range(len(probs))]
    active = min(range(len(taus)), key=lambda i: abs(taus[i] - 1.0))
    fig = go.Figure(
        [
            go.Bar(x=names, y=probs.tolist(), name="probabilities π = softmax(logits)", opacity=0.45),
            go.Bar(x=names, y=path[active].tolist(), name="one Gumbel-Softmax sample y"),
        ]
    )
    steps = [
        {"method": "restyle", "label": f"{tau:g}", "args": [{"y": [path[i].tolist()]}, [1]]}
        for i, tau in enumerate(taus)
    ]
    fig.update_layout(
        **base_layout("A relaxed sample from one draw of Gumbel noise", height=460),
        yaxis={"range": [0, 1.02], "title": "value"},
        barmode="group",
        legend={"orientation": "h", "y": 1.08, "x": 0},
        sliders=[slider(steps, "temperature τ = ", active=active)],
    )
    return fig
