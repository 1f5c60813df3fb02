"""Figures of the Gumbel-Softmax chapter: the temperature on the simplex, its trade-offs, a learning experiment,
and annealing.

The simplex figure is drawn by :func:`simplex_base_figure` and updated by :func:`simplex_trace_updates`;
the static book precomputes those updates as slider steps, and :mod:`gumbel_book.widgets` applies
them live. Both therefore draw exactly the same thing. The learning figure works the same way: one
:func:`learning_trace_updates` per temperature, precomputed as slider steps that run in the browser and in
Jupyter alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..labs.gumbel_softmax import SQRT3_2, annealing_curves, simplex_view
from .style import COLORS, base_layout, print_steps, slider

SIMPLEX_LOGITS = (1.0, 0.0, -0.7)
SIMPLEX_TAUS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
SIMPLEX_PRINT_TAUS = (0.1, 0.5, 1.0, 3.0)  # the simplex's panels in the print edition
TRADEOFF_TAUS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
PAPER_RATES = (1e-5, 1e-4)
PAPER_EVERY = (500, 1000)
LOG_DENSITY_RANGE = 10.0  # the heat map shows log densities within this many nats of the maximum
TAU_TICKS = [0.1, 0.3, 1, 3, 10]
UPDATED_TRACES = [0, 1, 2, 3]  # heat map, samples, pi, E[y]; trace 4 (the triangle) never changes


def _rounded(a: np.ndarray, digits: int = 4) -> list:
    """A numpy array as nested lists of rounded floats (NaN becomes None), to keep the HTML small."""
    r = np.round(np.asarray(a, dtype=np.float64), digits)
    return np.where(np.isnan(r), None, r).tolist()


def simplex_trace_updates(view: dict) -> list[dict]:
    """Per-trace data of the simplex figure for one :func:`gumbel_book.labs.gumbel_softmax.simplex_view`.

    One dict per trace in :data:`UPDATED_TRACES` order. The static slider turns them into restyle
    steps; the live widget assigns them to the ``FigureWidget``'s traces.
    """
    z = np.asarray(view["log_density"], dtype=np.float64)
    z = np.maximum(z, np.nanmax(z) - LOG_DENSITY_RANGE)
    mx, my = view["mean_xy"]
    px, py = view["pi_xy"]
    mean_text = "E[y] ≈ (" + ", ".join(f"{v:.3f}" for v in view["mean"]) + ")"
    pi_text = "π = (" + ", ".join(f"{v:.3f}" for v in view["pi"]) + ")"
    return [
        {"x": _rounded(view["grid_x"]), "y": _rounded(view["grid_y"]), "z": _rounded(z, 2)},
        {"x": _rounded(view["sample_x"], 3), "y": _rounded(view["sample_y"], 3)},
        {"x": [float(px)], "y": [float(py)], "text": [pi_text]},
        {"x": [float(mx)], "y": [float(my)], "text": [mean_text]},
    ]


def _restyle_args(updates: list[dict]) -> list:
    """One restyle call that sets every updated trace; keys a trace lacks (z on a scatter) are null."""
    keys = sorted({k for u in updates for k in u})
    return [{k: [u.get(k) for u in updates] for k in keys}, UPDATED_TRACES]


def simplex_base_figure(view: dict, title: str | None = None, height: int = 520) -> go.Figure:
    """The simplex figure for one setting: density heat map, samples, pi and the sample mean of y."""
    heat, samples, pi, mean = simplex_trace_updates(view)
    corners_x, corners_y = [0.0, 1.0, 0.5, 0.0], [0.0, 0.0, SQRT3_2, 0.0]
    fig = go.Figure(
        [
            go.Heatmap(
                **heat,
                colorscale="Blues",
                colorbar={"title": {"text": "log p(y)"}, "len": 0.8},
                hovertemplate="log density %{z:.2f}<extra></extra>",
                name="Concrete log density",
            ),
            go.Scatter(
                **samples,
                mode="markers",
                marker={"size": 4, "color": COLORS[3], "opacity": 0.6},
                name="samples y",
                hoverinfo="skip",
            ),
            go.Scatter(
                **pi,
                mode="markers",
                marker={"size": 14, "symbol": "x", "color": COLORS[1]},
                name="π = softmax(logits)",
                hovertemplate="%{text}<extra></extra>",
            ),
            go.Scatter(
                **mean,
                mode="markers",
                marker={"size": 13, "symbol": "circle-open", "color": "black", "line": {"width": 3}},
                name="mean of the samples",
                hovertemplate="%{text}<extra></extra>",
            ),
            go.Scatter(
                x=corners_x,
                y=corners_y,
                mode="lines+text",
                line={"color": "black", "width": 1},
                text=["category 1", "category 2", "category 3", ""],
                textposition=["bottom center", "bottom center", "top center", "bottom center"],
                hoverinfo="skip",
                showlegend=False,
            ),
        ]
    )
    fig.update_layout(
        **base_layout(title, height=height),
        xaxis={"range": [-0.12, 1.12], "visible": False, "constrain": "domain"},
        yaxis={"range": [-0.1, 0.95], "visible": False, "scaleanchor": "x", "scaleratio": 1},
        legend={"orientation": "h", "y": 1.06, "x": 0},
    )
    return fig


def simplex_figure(
    logits: Sequence[float] = SIMPLEX_LOGITS,
    taus: Sequence[float] = SIMPLEX_TAUS,
    n_samples: int = 400,
    seed: int = 0,
    resolution: int = 40,
) -> go.Figure:
    """Samples on the 2-simplex over the Concrete density, with a precomputed slider over tau."""
    views = [simplex_view(logits, tau, n_samples, seed, resolution) for tau in taus]
    active = min(range(len(taus)), key=lambda i: abs(taus[i] - 1.0))
    fig = simplex_base_figure(views[active], title=f"{n_samples} Gumbel-Softmax samples on the simplex (K = 3)")
    steps = [
        {"method": "restyle", "label": f"{tau:g}", "args": _restyle_args(simplex_trace_updates(v))}
        for tau, v in zip(taus, views, strict=True)
    ]
    fig.update_layout(
        sliders=[slider(steps, "temperature τ = ", active=active, pad_top=10)],
        **print_steps(*(f"{t:g}" for t in SIMPLEX_PRINT_TAUS if t in taus)),
    )
    return fig


def tradeoff_figure(data: dict) -> go.Figure:
    """Three panels against tau (log axis) from :func:`gumbel_book.labs.gumbel_softmax.temperature_tradeoffs`."""
    taus = np.asarray(data["taus"]).tolist()
    panels = [
        ("mean_bias", "bias: TV(E[y], π)", "linear"),
        ("mean_max", "one-hotness: E[max<sub>i</sub> y<sub>i</sub>]", "linear"),
        ("grad_var", "gradient variance", "log"),
    ]
    fig = make_subplots(rows=1, cols=3, subplot_titles=[p[1] for p in panels], horizontal_spacing=0.09)
    for col, (key, label, scale) in enumerate(panels, start=1):
        fig.add_trace(
            go.Scatter(
                x=taus,
                y=np.asarray(data[key]).tolist(),
                mode="lines+markers",
                name=label,
                line={"color": COLORS[col - 1]},
                hovertemplate="τ = %{x}<br>%{y:.4g}<extra></extra>",
                showlegend=False,
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(type="log", title_text="τ", tickvals=TAU_TICKS, tickangle=0, row=1, col=col)
        fig.update_yaxes(type=scale, exponentformat="power", row=1, col=col)
    fig.update_layout(**base_layout(None, height=380, margin={"l": 50, "r": 20, "t": 50, "b": 50}))
    return fig


def bias_variance_figure(data: dict) -> go.Figure:
    """The bias of E[y] against the gradient variance, one point per tau: the price of each temperature."""
    taus = np.asarray(data["taus"])
    var = np.asarray(data["grad_var"], dtype=np.float64)
    fig = go.Figure(
        go.Scatter(
            x=np.asarray(data["grad_var"]).tolist(),
            y=np.asarray(data["mean_bias"]).tolist(),
            mode="lines+markers+text",
            text=[f"τ={t:g}" for t in taus],
            textposition="top right",
            marker={"size": 8, "color": COLORS[0]},
            hovertemplate="τ = %{text}<br>variance %{x:.3g}<br>bias %{y:.3g}<extra></extra>",
            showlegend=False,
        )
    )
    fig.update_layout(
        **base_layout("Bias against variance, one point per temperature", height=420),
        xaxis={
            "type": "log",
            "title": "variance of the gradient (log scale)",
            "exponentformat": "power",
            # room for the tau labels on the right of the last point
            "range": [float(np.log10(var.min())) - 0.3, float(np.log10(var.max())) + 0.6],
        },
        yaxis={"type": "log", "title": "bias: TV(E[y], π) (log scale)", "exponentformat": "power"},
    )
    return fig


LEARNING_UPDATED_TRACES = [0, 1, 2, 3]  # the relaxed band (upper, lower), its mean and its surrogate E f(y)


def _band(mean: np.ndarray, sd: np.ndarray) -> tuple[list, list]:
    return np.round(mean + sd, 4).tolist(), np.round(mean - sd, 4).tolist()


def learning_trace_updates(curves: dict, i: int) -> list[dict]:
    """The relaxed estimator's traces of :func:`learning_figure` at temperature ``curves["taus"][i]``, in
    :data:`LEARNING_UPDATED_TRACES` order (``curves`` is :func:`gumbel_book.labs.gumbel_softmax.learning_curves`)."""
    upper, lower = _band(curves["relaxed"][i], curves["relaxed_sd"][i])
    return [
        {"y": upper},
        {"y": lower},
        {"y": np.round(curves["relaxed"][i], 4).tolist()},
        {"y": np.round(curves["relaxed_surrogate"][i], 4).tolist()},
    ]


def learning_figure(curves: dict, active_tau: float = 0.5) -> go.Figure:
    """Learning curves of :func:`gumbel_book.labs.gumbel_softmax.learning_curves`: the exact objective E f(z)
    (mean and ±1 standard deviation over runs) for the relaxed estimator, with a precomputed slider over tau,
    for REINFORCE and for the exact gradient, with the relaxed objective E f(y) that the relaxed gradient
    descends (dotted) and the optimum."""
    taus = [float(t) for t in curves["taus"]]
    active = min(range(len(taus)), key=lambda i: abs(taus[i] - active_tau))
    fig = go.Figure(_learning_traces(curves, active))
    slider_steps = [
        {
            "method": "restyle",
            "label": f"{tau:g}",
            "args": [{"y": [u["y"] for u in learning_trace_updates(curves, i)]}, LEARNING_UPDATED_TRACES],
        }
        for i, tau in enumerate(taus)
    ]
    settings = curves["settings"]
    fig.update_layout(
        **base_layout(None, height=560, margin={"l": 60, "r": 20, "t": 110, "b": 40}),
        xaxis={"title": "gradient step"},
        yaxis={"title": f"objective (mean ± sd of {settings['runs']} runs)"},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        sliders=[slider(slider_steps, "temperature τ = ", active=active, pad_top=50)],
    )
    return fig


def _learning_traces(curves: dict, active: int) -> list[go.Scatter]:
    """The traces of :func:`learning_figure`, the relaxed ones at temperature index ``active``."""
    steps = curves["step"].tolist()
    first = learning_trace_updates(curves, active)
    up, low = _band(curves["reinforce"], curves["reinforce_sd"])
    band = {"mode": "lines", "line": {"width": 0}, "hoverinfo": "skip", "showlegend": False}

    def line(y: np.ndarray, name: str, **style) -> go.Scatter:
        return go.Scatter(x=steps, y=np.round(y, 4).tolist(), mode="lines", name=name, line=style)

    return [
        go.Scatter(x=steps, **first[0], **band),
        go.Scatter(x=steps, **first[1], fill="tonexty", fillcolor="rgba(31,119,180,0.2)", **band),
        go.Scatter(x=steps, **first[2], mode="lines", name="Gumbel-Softmax: E f(z)", line={"color": COLORS[0]}),
        go.Scatter(
            x=steps[:-1],
            **first[3],
            mode="lines",
            name="Gumbel-Softmax: E f(y), what it descends",
            line={"color": COLORS[0], "dash": "dot", "width": 1},
        ),
        go.Scatter(x=steps, y=up, **band),
        go.Scatter(x=steps, y=low, fill="tonexty", fillcolor="rgba(214,39,40,0.15)", **band),
        line(curves["reinforce"], "REINFORCE: E f(z)", color=COLORS[1]),
        line(curves["exact"], "exact gradient: E f(z)", color="black", dash="dash"),
        line(np.full(len(steps), curves["optimum"]), "the optimum", color="gray", dash="dot"),
    ]


def _short(x: float) -> str:
    """Small numbers in short scientific notation for slider labels: 1e-05 -> 1e-5, 0.0001 -> 1e-4."""
    if not 0 < abs(x) < 1e-2:
        return f"{x:g}"
    mantissa, exponent = f"{x:e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def annealing_figure(
    rates: Sequence[float] = PAPER_RATES,
    everys: Sequence[int] = PAPER_EVERY,
    total_steps: int = 100_000,
    epoch_steps: int = 600,
) -> go.Figure:
    """The annealing schedule, correct (global step) and buggy (restarted every epoch), with a slider over (r, N)."""
    combos = [(r, n) for r in rates for n in everys]
    curves = [annealing_curves(r, n, total_steps, epoch_steps) for r, n in combos]

    def trace_data(c: dict) -> list[dict]:
        x = c["step"].tolist()
        return [{"x": x, "y": np.round(c["tau"], 4).tolist()}, {"x": x, "y": np.round(c["tau_restarted"], 4).tolist()}]

    active = len(combos) - 1
    first = trace_data(curves[active])
    fig = go.Figure(
        [
            go.Scatter(**first[0], mode="lines", line={"shape": "hv", "width": 3}, name="global step t (correct)"),
            go.Scatter(
                **first[1],
                mode="lines",
                line={"shape": "hv", "width": 1.5, "dash": "dot"},
                name=f"step restarted every epoch of {epoch_steps} steps (bug)",
            ),
        ]
    )
    steps = []
    for (r, n), c in zip(combos, curves, strict=True):
        a, b = trace_data(c)
        steps.append(
            {
                "method": "restyle",
                "label": f"r={_short(r)}, N={n}",
                "args": [{"x": [a["x"], b["x"]], "y": [a["y"], b["y"]]}, [0, 1]],
            }
        )
    fig.update_layout(
        **base_layout(
            "τ = max(0.5, exp(−r·t)), updated every N steps",
            height=440,
            margin={"l": 60, "r": 60, "t": 60, "b": 50},
        ),
        xaxis={"title": "training step", "range": [0, total_steps]},
        yaxis={"title": "temperature τ", "range": [0.4, 1.05]},
        legend={"orientation": "h", "y": 1.1, "x": 0},
        sliders=[slider(steps, "schedule: ", active=active, pad_top=50)],
    )
    return fig
