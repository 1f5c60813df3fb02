"""The matplotlib twins of the plotly figures (gumbel_book.figures.static): they draw the figure's own data, a
slider prints as one panel per chosen step with that step applied, and a figure they cannot draw is an error."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

from gumbel_book.figures.static import (
    MAX_PANELS,
    apply_step,
    figure_dict,
    figures_in_html,
    png,
    print_states,
    to_matplotlib,
)
from gumbel_book.figures.style import figure_html, print_steps, slider


def _slider_figure(n_steps: int = 7, **layout) -> go.Figure:
    """A line whose y is k * x at slider step k (restyle of trace 0)."""
    x = [0.0, 1.0, 2.0]
    fig = go.Figure([go.Scatter(x=x, y=[0.0, 0.0, 0.0], mode="lines", name="line")])
    steps = [{"method": "restyle", "label": f"{k}", "args": [{"y": [[k * v for v in x]]}, [0]]} for k in range(n_steps)]
    fig.update_layout(sliders=[slider(steps, "k = ", active=3)], **layout)
    return fig


def _lines(mpl_fig) -> list[np.ndarray]:
    return [np.asarray(line.get_ydata(), dtype=float) for ax in mpl_fig.axes for line in ax.get_lines()]


def test_a_line_is_drawn_from_the_figures_own_numbers():
    y = np.array([3.0, 1.0, 4.0, 1.0, 5.0])
    fig = go.Figure(go.Scatter(x=np.arange(5.0), y=y, mode="lines", name="data"))  # numpy: plotly's typed arrays
    drawn = _lines(to_matplotlib(fig))
    assert len(drawn) == 1 and np.array_equal(drawn[0], y)
    assert not np.array_equal(_lines(to_matplotlib(go.Figure(go.Scatter(y=y[::-1], mode="lines"))))[0], y)


def test_a_slider_prints_evenly_spaced_steps_with_the_active_one_and_each_steps_data():
    states = print_states(_slider_figure(n_steps=7))
    assert [label for label, _ in states] == ["k = 0", "k = 3", "k = 4", "k = 6"]  # 0, 2, 4, 6; 3 is active
    assert len(states) == MAX_PANELS
    drawn = _lines(to_matplotlib(_slider_figure(n_steps=7)))
    assert [d.tolist() for d in drawn] == [[0, 0, 0], [0, 3, 6], [0, 4, 8], [0, 6, 12]]


def test_a_figure_names_the_steps_it_prints_and_a_wrong_name_is_an_error():
    fig = _slider_figure(n_steps=7, **print_steps("1", "5"))
    assert [label for label, _ in print_states(fig)] == ["k = 1", "k = 5"]
    with pytest.raises(ValueError, match="print_steps.*'9'"):
        print_states(_slider_figure(**print_steps("9")))


def test_restyle_relayout_and_update_change_what_a_click_would():
    fig = figure_dict(go.Figure([go.Scatter(y=[1, 2]), go.Scatter(y=[3, 4])]))
    out = apply_step(fig, {"method": "restyle", "args": [{"visible": [False]}, [1]]})
    assert out["data"][1]["visible"] is False and "visible" not in out["data"][0] and "visible" not in fig["data"][1]
    out = apply_step(fig, {"method": "update", "args": [{"y": [[9, 9]]}, {"title.text": "new", "xaxis.range": [0, 1]}]})
    assert out["data"][0]["y"] == [9, 9] == out["data"][1]["y"]  # no trace list: every trace
    assert out["layout"]["title"]["text"] == "new" and out["layout"]["xaxis"]["range"] == [0, 1]
    out = apply_step(fig, {"method": "relayout", "args": [{"annotations[1].text": "b"}]})
    assert out["layout"]["annotations"][1]["text"] == "b"
    with pytest.raises(ValueError, match="animate"):
        apply_step(fig, {"method": "animate", "args": []})


def test_menu_buttons_print_one_panel_each():
    fig = go.Figure([go.Scatter(y=[1, 2], name="a"), go.Scatter(y=[2, 1], name="b")])
    buttons = [
        {"label": "a", "method": "update", "args": [{"visible": [True, False]}]},
        {"label": "b", "method": "update", "args": [{"visible": [False, True]}]},
    ]
    fig.update_layout(updatemenus=[{"buttons": buttons}])
    mpl = to_matplotlib(fig)
    assert [ax.get_title() for ax in mpl.axes if ax.get_visible()] == ["a", "b"]
    assert [d.tolist() for d in _lines(mpl)] == [[1, 2], [2, 1]]


def test_subplots_keep_their_places_titles_and_log_axes():
    fig = make_subplots(rows=1, cols=2, subplot_titles=("left", "right"))
    fig.add_trace(go.Scatter(x=[1, 10, 100], y=[1, 2, 3]), row=1, col=1)
    fig.add_trace(go.Bar(x=["a", "b"], y=[5, 6]), row=1, col=2)
    fig.update_xaxes(type="log", row=1, col=1)
    left, right = to_matplotlib(fig).axes[:2]
    assert left.get_title() == "left" and right.get_title() == "right"
    assert left.get_xscale() == "log" and [p.get_height() for p in right.patches] == [5, 6]


def test_heatmaps_images_bars_and_fills_draw():
    from gumbel_book.figures.categorical_vae import png_data_uri

    grid = np.linspace(0, 1, 12).reshape(3, 4)
    fig = make_subplots(rows=1, cols=3)
    fig.add_trace(go.Heatmap(z=grid.tolist(), colorscale="Blues"), row=1, col=1)
    fig.add_trace(go.Image(source=png_data_uri(grid)), row=1, col=2)
    fig.add_trace(go.Scatter(x=[0, 1, 1, 0], y=[0, 0, 1, 1], fill="toself", fillcolor="rgba(0,0,255,0.2)"), 1, 3)
    axes = to_matplotlib(fig).axes
    assert axes[0].images and axes[1].images and axes[2].patches
    assert np.allclose(axes[0].images[0].get_array(), grid)
    assert np.allclose(axes[1].images[0].get_array(), 1 - grid, atol=1 / 255)  # the PNG: 1 = black ink


def test_a_trace_it_cannot_draw_is_an_error_that_names_it():
    with pytest.raises(ValueError, match="'pie'"):
        to_matplotlib(go.Figure(go.Pie(values=[1, 2])))


def test_figures_come_back_out_of_a_built_pages_html():
    one, two = go.Figure(go.Scatter(y=[1, 2, 3])), _slider_figure()
    page = "<p>text</p>" + figure_html(one) + "<p>more</p>" + figure_html(two)
    found = figures_in_html(page)
    assert len(found) == 2 and found[0][0] != found[1][0]
    assert found[0][1]["data"][0]["y"] == [1, 2, 3] and len(found[1][1]["layout"]["sliders"][0]["steps"]) == 7
    assert png(found[1][1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert figures_in_html("<p>no figure</p>") == []


def test_every_figure_builder_of_a_chapter_has_a_twin():
    """The book's slider figures of the Gumbel-Softmax chapter print; the simplex at its chosen temperatures."""
    from gumbel_book.figures.gumbel_softmax import SIMPLEX_PRINT_TAUS, simplex_figure

    fig = simplex_figure(n_samples=30, resolution=8)
    assert [label for label, _ in print_states(fig)] == [f"temperature τ = {t:g}" for t in SIMPLEX_PRINT_TAUS]
    assert len([ax for ax in to_matplotlib(fig).axes if ax.collections]) >= len(SIMPLEX_PRINT_TAUS)
