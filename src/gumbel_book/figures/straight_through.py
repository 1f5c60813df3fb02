"""Figures and the table of the straight-through chapter's estimator lab.

The data come from the chapter's lab, :mod:`gumbel_book.labs.straight_through` (``bias_against_tau``,
``run_lab``, ``lab_table``, ``optimization_race``), which the tests check; the functions here only draw them.
"""

from __future__ import annotations

import html
import math

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..estimators import LABELS, STRAIGHT_THROUGH_ESTIMATORS
from ..labs.straight_through import LabResult, TauSweep
from .style import COLORS, base_layout, slider


def _color(name: str) -> str:
    known = STRAIGHT_THROUGH_ESTIMATORS
    return COLORS[known.index(name) % len(COLORS)] if name in known else "#000000"


def _grid(result: LabResult, height: int, title: str) -> tuple[go.Figure, list[tuple[str, int, int]]]:
    problems = list(result.bias)
    cols = 2
    rows = math.ceil(len(problems) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[result.titles[p] for p in problems],
        horizontal_spacing=0.09,
        vertical_spacing=0.16,
    )
    fig.update_layout(**base_layout(title, height=height))
    return fig, [(p, i // cols + 1, i % cols + 1) for i, p in enumerate(problems)]


def _estimator_line(name: str, x: list, y: list, show_legend: bool, hover: str, **kwargs) -> go.Scatter:
    """One estimator's line, in its colour; the score-function estimators are dotted."""
    return go.Scatter(
        x=x,
        y=y,
        mode="lines+markers",
        name=LABELS[name],
        legendgroup=name,
        showlegend=show_legend,
        line={"color": _color(name), "dash": "dot" if name in ("reinforce", "reinforce_baseline") else None},
        hovertemplate=LABELS[name] + hover + "<extra></extra>",
        **kwargs,
    )


def _band_color(name: str, alpha: float = 0.18) -> str:
    h = _color(name).lstrip("#")
    return f"rgba({int(h[0:2], 16)}, {int(h[2:4], 16)}, {int(h[4:6], 16)}, {alpha})"


#: The bias figure's estimator groups: one group's lines at a time, chosen in the menu above the panels. The
#: labels are short enough for the menu to fit a phone's 390 px.
BIAS_GROUPS: dict[str, tuple[str, ...]] = {
    "GS, ST-GS, Gumbel-Rao": ("gumbel_softmax", "st_gumbel_softmax", "gumbel_rao"),
    "ST and ReinMax": ("straight_through", "reinmax"),
    "REINFORCE": ("reinforce", "reinforce_baseline"),
}

#: :func:`lab_table_html` greys out a bias within this many noise levels of 0.
UNBIASED_WITHIN = 3

#: The width of the bias figure's bands, in noise levels either side of the measured bias.
BAND = 2.0

LIMIT_NAME = "limit"
"""The name of the dashed line of the tau -> 0 limit of ST-GS and Gumbel-Rao in :func:`bias_figure`."""


def _band(name: str, x: list[float], y: torch.Tensor, half: torch.Tensor, band: float) -> go.Scatter:
    """The filled band ``y +- half`` of one estimator: a polygon drawn as lines only, so no vertex gets a marker."""
    upper, lower = (y + half).tolist(), (y - half).clamp(min=0.0).tolist()
    return go.Scatter(
        x=x + x[::-1],
        y=upper + lower[::-1],
        mode="lines",
        fill="toself",
        fillcolor=_band_color(name),
        line={"width": 0, "color": _band_color(name)},
        hoverinfo="skip",
        legendgroup=name,
        showlegend=False,
        name=f"{LABELS[name]} ± {band:g} noise levels",
    )


def _visible(owners: list[str], group: tuple[str, ...]) -> list[bool]:
    """Which traces a group shows: its estimators' lines and bands, and the limit line with the Gumbel group
    and with ReinMax (whose mean at tau = 1 the limit is)."""
    shows_limit = any(e in group for e in ("st_gumbel_softmax", "gumbel_rao", "reinmax"))
    return [owner in group or (owner == LIMIT_NAME and shows_limit) for owner in owners]


def bias_figure(sweep: TauSweep, band: float = BAND, groups: dict[str, tuple[str, ...]] | None = None) -> go.Figure:
    """Relative bias against tau, one panel per problem: a line per estimator with a band of ``band`` noise levels,
    and the exact relative bias of the tau -> 0 limit of ST-Gumbel-Softmax and Gumbel-Rao as a dashed line.

    Buttons choose which group of estimators (``groups``, by default :data:`BIAS_GROUPS`) the panels show; the
    first group is shown at first, through the same visibility rule the buttons use.
    """
    groups = BIAS_GROUPS if groups is None else groups
    problems = list(sweep.bias)
    fig = make_subplots(
        rows=1, cols=len(problems), subplot_titles=[sweep.titles[p] for p in problems], horizontal_spacing=0.08
    )
    fig.update_layout(**base_layout("Relative bias against the temperature", height=520))
    x = list(sweep.taus)
    owners: list[str] = []  # the estimator (or the limit) each trace belongs to, in trace order
    for k, p in enumerate(problems):
        col = k + 1
        for name in sweep.bias[p]:
            y, half = sweep.bias[p][name], band * sweep.noise[p][name]
            fig.add_trace(_band(name, x, y, half, band), row=1, col=col)
            hover = "<br>τ = %{x}<br>bias = %{y:.3f} ± %{customdata:.3f}"
            fig.add_trace(_estimator_line(name, x, y.tolist(), k == 0, hover, customdata=half.tolist()), row=1, col=col)
            owners += [name, name]
        fig.add_trace(_limit_line(x, sweep.limit_bias[p], k == 0), row=1, col=col)
        owners.append(LIMIT_NAME)
        ticks = [t for t in (0.01, 0.1, 1.0, 10.0) if min(x) <= t <= max(x)]
        fig.update_xaxes(type="log", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks], title_text="τ", row=1, col=col)
        fig.update_yaxes(rangemode="tozero", title_text="relative bias" if col == 1 else None, row=1, col=col)
    _add_group_buttons(fig, owners, groups)
    return fig


def _limit_line(x: list[float], bias: float, show_legend: bool) -> go.Scatter:
    """The exact relative bias of the tau -> 0 limit of ST-Gumbel-Softmax, as a dashed line across the panel."""
    return go.Scatter(
        x=[x[0], x[-1]],
        y=[bias] * 2,
        mode="lines",
        line={"color": "#000000", "dash": "dash", "width": 1.5},
        name="τ → 0 limit of ST-GS and Gumbel-Rao (= ReinMax at τ = 1 in expectation)",
        legendgroup=LIMIT_NAME,
        showlegend=show_legend,
        hovertemplate="τ → 0 limit of ST-GS: bias %{y:.3f}<extra></extra>",
    )


def _add_group_buttons(fig: go.Figure, owners: list[str], groups: dict[str, tuple[str, ...]]) -> None:
    """A drop-down menu that shows one group of estimators (a row of buttons would not fit a phone); the first
    group is shown at first, by the same rule."""
    first = next(iter(groups.values()))
    for trace, shown in zip(fig.data, _visible(owners, first), strict=True):
        trace.visible = shown
    buttons = [
        {"label": label, "method": "restyle", "args": [{"visible": _visible(owners, group)}]}
        for label, group in groups.items()
    ]
    fig.update_layout(
        updatemenus=[
            {
                "type": "dropdown",
                "direction": "down",
                "buttons": buttons,
                "x": 0,
                "xanchor": "left",
                "y": 1.12,
                "yanchor": "bottom",
            }
        ],
        legend={"orientation": "h", "y": -0.22, "x": 0},
        margin={"t": 140, "b": 130},
    )


def bias_table_html(sweep: TauSweep, problem: str, caption: str = "") -> str:
    """The numbers behind one panel of :func:`bias_figure`: relative bias and noise level per estimator and tau."""
    head = "".join(f"<th>{t:g}</th>" for t in sweep.taus)
    body = []
    for name in sweep.bias[problem]:
        cells = "".join(
            f"<td>{b:.2f}<br><small>±{s:.2f}</small></td>"
            for b, s in zip(sweep.bias[problem][name].tolist(), sweep.noise[problem][name].tolist(), strict=True)
        )
        body.append(f"<tr><td>{html.escape(LABELS[name])}</td>{cells}</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        '<div style="overflow-x:auto"><table class="table" style="font-size:0.8em">'
        + cap
        + f"<thead><tr><th>τ =</th>{head}</tr></thead><tbody>"
        + "".join(body)
        + "</tbody></table></div>"
    )


def cosine_figure(result: LabResult, active_tau: float = 1.0) -> go.Figure:
    """Mean cosine similarity to the exact gradient against the number of samples, with a slider over tau."""
    fig, cells = _grid(result, 760, "Cosine similarity to the exact gradient")
    active = min(range(len(result.taus)), key=lambda i: abs(result.taus[i] - active_tau))
    order = []
    for k, (p, r, c) in enumerate(cells):
        for name in result.cosine[p]:
            order.append((p, name))
            y = result.cosine[p][name][active].tolist()
            line = _estimator_line(name, result.ns, y, k == 0, "<br>n = %{x}<br>cosine = %{y:.3f}")
            fig.add_trace(line, row=r, col=c)
        fig.update_xaxes(type="log", tickvals=result.ns, title_text="samples n", row=r, col=c)
        fig.update_yaxes(range=[-0.2, 1.05], title_text="cosine" if c == 1 else None, row=r, col=c)
    steps = [
        {
            "method": "restyle",
            "label": f"{tau:g}",
            "args": [{"y": [result.cosine[p][name][i].tolist() for p, name in order]}, list(range(len(order)))],
        }
        for i, tau in enumerate(result.taus)
    ]
    fig.update_layout(
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.07, "x": 0},
        margin={"l": 60, "r": 20, "t": 160, "b": 50},
        title_y=0.99,
        title_yanchor="top",
        sliders=[slider(steps, "temperature τ = ", active=active, pad_top=50)],
    )
    return fig


def race_figure(curves: dict[str, torch.Tensor], optimum: float, title: str = "Optimisation race") -> go.Figure:
    """Mean (over seeds) excess loss ``E[f(z)] - min f`` against the step, one line per estimator."""
    fig = go.Figure()
    for name, runs in curves.items():
        label = LABELS.get(name, "exact gradient")
        excess = (runs.mean(dim=0) - optimum).clamp(min=1e-12).tolist()
        fig.add_trace(
            go.Scatter(
                x=list(range(len(excess))),
                y=excess,
                mode="lines",
                name=label,
                line={"color": _color(name), "dash": "dash" if name == "exact" else None},
                hovertemplate=label + "<br>step %{x}<br>excess loss %{y:.3g}<extra></extra>",
            )
        )
    fig.update_layout(
        **base_layout(title, height=460),
        xaxis={"title": "Adam step"},
        yaxis={"type": "log", "title": "E[f(z)] − min f (mean over seeds)"},
    )
    return fig


def race_table_html(summary: dict[str, tuple[float, float]], caption: str = "") -> str:
    """:func:`gumbel_book.labs.straight_through.race_summary` as a small HTML table: final loss and standard error."""
    body = "".join(
        f"<tr><td>{html.escape(LABELS.get(name, 'exact gradient'))}</td><td>{m:.4f}</td><td>{se:.4f}</td></tr>"
        for name, (m, se) in summary.items()
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    head = "<tr><th>gradient</th><th>final E[f(z)]</th><th>standard error</th></tr>"
    return f'<table class="table" style="font-size:0.9em">{cap}<thead>{head}</thead><tbody>{body}</tbody></table>'


def ratio_table_html(taus: list[float], ratios: dict[str, tuple[torch.Tensor, torch.Tensor]], caption: str = "") -> str:
    """Variance ratios per problem (rows) and tau (columns), each with its standard error: a small HTML table."""
    head = "".join(f"<th>{t:g}</th>" for t in taus)
    body = []
    for title, (ratio, se) in ratios.items():
        cells = "".join(
            f"<td>{r:.2f}<br><small>±{s:.2f}</small></td>" for r, s in zip(ratio.tolist(), se.tolist(), strict=True)
        )
        body.append(f"<tr><td>{html.escape(title)}</td>{cells}</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        f'<table class="table" style="font-size:0.85em">{cap}<thead><tr><th>τ =</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def lab_table_html(result: LabResult, rows: list[dict[str, object]], caption: str = "") -> str:
    """The rows of :func:`gumbel_book.labs.straight_through.lab_table` as an HTML table, one block of rows per problem.

    A bias within :data:`UNBIASED_WITHIN` noise levels of 0 is shown in grey italics: it is consistent with an
    unbiased estimator.
    """
    body = []
    for p in result.bias:
        for i, row in enumerate(rows):
            bias, se = row[(p, "bias")], row[(p, "bias_se")]
            style = ' style="color:#888;font-style:italic"' if bias <= UNBIASED_WITHIN * se else ""
            first = f'<th rowspan="{len(rows)}">{html.escape(result.titles[p])}</th>' if i == 0 else ""
            body.append(
                f"<tr>{first}<td>{html.escape(str(row['estimator']))}</td><td{style}>{bias:.3f}</td>"
                f"<td>{se:.3f}</td><td>{row[(p, 'std')]:.3f}</td><td>{row[(p, 'cosine')]:.3f}</td></tr>"
            )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    head = "<tr><th>problem</th><th>estimator</th><th>bias</th><th>noise</th><th>std</th><th>cosine</th></tr>"
    return (
        '<div style="overflow-x:auto"><table class="table" style="font-size:0.9em">'
        + cap
        + f"<thead>{head}</thead><tbody>"
        + "".join(body)
        + "</tbody></table></div>"
    )


def edge_profile(f, num_categories: int, i: int = 0, j: int = 1, points: int = 101) -> dict[str, torch.Tensor]:
    """``f`` along the simplex edge ``z(u) = (1 - u) e_i + u e_j`` and its slopes there, all float64.

    Returns ``u``, ``values`` (``f(z(u))``), ``secant`` (``f(e_j) - f(e_i)``: what the exact gradient sees) and
    ``slope_i``/``slope_j`` (``d f(z(u)) / du`` at ``u = 0`` and ``u = 1``: what straight-through sees).
    """
    if isinstance(num_categories, bool) or not isinstance(num_categories, int) or num_categories < 2:
        raise ValueError(f"num_categories must be an int >= 2, got {num_categories!r}")
    for name, v in (("i", i), ("j", j)):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < num_categories:
            raise ValueError(f"{name} must be an int in [0, {num_categories - 1}], got {v!r}")
    if i == j:
        raise ValueError(f"i and j must differ, got i = j = {i}")
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ValueError(f"points must be an int >= 2, got {points!r}")
    eye = torch.eye(num_categories, dtype=torch.float64)
    u = torch.linspace(0.0, 1.0, points, dtype=torch.float64)
    with torch.no_grad():
        values = f((1 - u).unsqueeze(1) * eye[i] + u.unsqueeze(1) * eye[j])
    ends = torch.tensor([0.0, 1.0], dtype=torch.float64, requires_grad=True)
    z = (1 - ends).unsqueeze(1) * eye[i] + ends.unsqueeze(1) * eye[j]
    (slopes,) = torch.autograd.grad(f(z).sum(), ends)
    return {
        "u": u,
        "values": values,
        "secant": values[-1] - values[0],
        "slope_i": slopes[0].detach(),
        "slope_j": slopes[1].detach(),
    }


def edge_figure(profiles: dict[str, dict[str, torch.Tensor]]) -> go.Figure:
    """``f`` along one edge of the simplex with the secant (exact gradient) and the end tangents (ST), with a
    slider over the objectives in ``profiles`` (title -> :func:`edge_profile` output)."""
    if not profiles:
        raise ValueError("profiles must not be empty")
    titles = list(profiles)

    def lines(d: dict[str, torch.Tensor]) -> list[tuple[list[float], list[float]]]:
        v0, v1 = float(d["values"][0]), float(d["values"][-1])
        s0, s1 = float(d["slope_i"]), float(d["slope_j"])
        return [
            (d["u"].tolist(), d["values"].tolist()),
            ([0.0, 1.0], [v0, v1]),
            ([0.0, 0.5], [v0, v0 + 0.5 * s0]),
            ([0.5, 1.0], [v1 - 0.5 * s1, v1]),
        ]

    names = [
        "f along the edge",
        "secant: what the exact gradient uses",
        "tangent at u = 0 (ST if z = e_i)",
        "tangent at u = 1 (ST if z = e_j)",
    ]
    styles = [
        {"color": COLORS[0], "width": 3},
        {"color": COLORS[1], "dash": "dash"},
        {"color": COLORS[2]},
        {"color": COLORS[3]},
    ]
    first = lines(profiles[titles[0]])
    fig = go.Figure(
        [go.Scatter(x=x, y=y, mode="lines", name=n, line=s) for (x, y), n, s in zip(first, names, styles, strict=True)]
    )
    steps = []
    for t in titles:
        data = lines(profiles[t])
        steps.append(
            {
                "method": "restyle",
                "label": t,
                "args": [{"x": [d[0] for d in data], "y": [d[1] for d in data]}, [0, 1, 2, 3]],
            }
        )
    fig.update_layout(
        **base_layout(
            "One edge of the simplex: secant versus tangents",
            height=520,
            margin={"l": 60, "r": 20, "t": 130, "b": 50},
        ),
        xaxis={"title": "u, where z = (1 − u) e_i + u e_j", "range": [-0.02, 1.02]},
        yaxis={"title": "f(z)"},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        sliders=[{**slider(steps, "objective: ", pad_top=70), "x": 0.06, "len": 0.86}],
    )
    return fig
