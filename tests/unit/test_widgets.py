"""Tests of the live Jupyter app: the callback driven programmatically, and the app in a real kernel."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch

from gumbel_book.figures.gumbel_softmax import simplex_trace_updates
from gumbel_book.labs.gumbel_softmax import simplex_view
from gumbel_book.widgets import TemperatureApp, temperature_app


def _samples(app: TemperatureApp) -> np.ndarray:
    return np.array([app.figure.data[1].x, app.figure.data[1].y])


def _heat(app: TemperatureApp) -> np.ndarray:
    return np.array(app.figure.data[0].z, dtype=float)


def test_app_opens_on_the_same_data_as_the_static_figure():
    app = temperature_app(tau=0.5, n_samples=300, seed=2)
    expected = simplex_trace_updates(simplex_view((1.0, 0.0, -0.7), 0.5, 300, 2, 40))
    np.testing.assert_allclose(_samples(app), [expected[1]["x"], expected[1]["y"]])
    np.testing.assert_allclose(_heat(app), np.array(expected[0]["z"], dtype=float), equal_nan=True)


def test_moving_tau_redraws_samples_and_density_in_place():
    app = temperature_app()
    figure, before_s, before_z = app.figure, _samples(app), _heat(app)
    app.tau.value = 0.2
    assert app.figure is figure  # updated in place, not replaced
    assert not np.allclose(_samples(app), before_s)
    assert not np.allclose(_heat(app), before_z, equal_nan=True)
    expected = simplex_trace_updates(simplex_view((1.0, 0.0, -0.7), app.tau.value, 500, 0, 40))
    np.testing.assert_allclose(_samples(app), [expected[1]["x"], expected[1]["y"]])
    assert app.last_redraw_s > 0


def test_seed_sample_count_and_logits_each_redraw():
    app = temperature_app(n_samples=200)
    s0 = _samples(app)
    app.seed.value = 11
    assert not np.allclose(_samples(app), s0)
    app.n_samples.value = 1000
    assert _samples(app).shape == (2, 1000)
    assert "1000" in app.figure.layout.title.text
    pi_before = (app.figure.data[2].x[0], app.figure.data[2].y[0])
    app.params[2].value = 2.0
    assert (app.figure.data[2].x[0], app.figure.data[2].y[0]) != pytest.approx(pi_before)
    assert "π = (" in app.info.value


def test_switching_to_probabilities_keeps_the_distribution():
    app = temperature_app(logits=(1.0, 0.0, -0.7))
    pi = torch.softmax(torch.tensor([1.0, 0.0, -0.7], dtype=torch.float64), -1)
    app.mode.value = "probabilities"
    assert [p.description for p in app.params] == ["prob 1", "prob 2", "prob 3"]
    np.testing.assert_allclose([p.value for p in app.params], pi.numpy(), atol=0.01)
    np.testing.assert_allclose(torch.softmax(app.logits(), -1).numpy(), pi.numpy(), atol=0.01)
    app.params[0].value = 0.2  # weights (0.2, 0.24, 0.12): category 2 now most likely
    assert int(torch.softmax(app.logits(), -1).argmax()) == 1
    app.mode.value = "logits"
    assert int(torch.softmax(app.logits(), -1).argmax()) == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"logits": (1.0, 0.0)}, ValueError, "exactly 3"),
        ({"logits": (9.0, 0.0, 0.0)}, ValueError, "logits"),
        ({"tau": 0.0}, ValueError, "tau"),
        ({"tau": 50.0}, ValueError, "tau"),
        ({"n_samples": 10**6}, ValueError, "n_samples"),
        ({"seed": -3}, ValueError, "seed"),
        ({"n_samples": "many"}, TypeError, "n_samples"),
    ],
)
def test_app_rejects_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        temperature_app(**kwargs)


NOTEBOOK_CELLS = [
    "from gumbel_book.widgets import temperature_app\napp = temperature_app(n_samples=300)\napp",
    textwrap.dedent(
        """
        import numpy as np
        before_x = np.array(app.figure.data[1].x)
        before_z = np.array(app.figure.data[0].z, dtype=float)
        app.tau.value = 0.15
        app.seed.value = 3
        assert not np.allclose(np.array(app.figure.data[1].x), before_x)
        assert not np.allclose(np.array(app.figure.data[0].z, dtype=float), before_z, equal_nan=True)
        print("changed", len(app.figure.data[1].x), round(app.tau.value, 3))
        """
    ),
]


@pytest.mark.slow
def test_app_runs_in_a_real_jupyter_kernel():
    """Execute the app in an ipykernel via nbclient, move the sliders there and check the figure changed."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    display = nb.cells[0].outputs
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in display), display
    out = "".join(o.get("text", "") for o in nb.cells[1].outputs if o["output_type"] == "stream")
    assert "changed 300 0.15" in out
