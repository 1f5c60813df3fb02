"""Tests of gumbel_book.labs.gumbel_softmax, the chapter's figures and its exercise checks.

Statistical tests use fixed seeds; z-tests use |z| < 5 (two-sided alpha ≈ 6e-7 per coordinate).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import gumbel_book as gb
from gumbel_book.exercises import gumbel_softmax as ex
from gumbel_book.figures import gumbel_softmax as F
from gumbel_book.labs import gumbel_softmax as T

LOGITS3 = (1.0, 0.0, -0.7)
LOGITS10 = tuple(np.linspace(1.5, -1.5, 10).round(2).tolist())


# ---------------------------------------------------------------- samples and the simplex


def test_relaxed_samples_lie_on_the_simplex_and_share_noise_across_taus():
    a = T.relaxed_samples(LOGITS3, 0.3, 500, seed=4, device="cpu")
    b = T.relaxed_samples(LOGITS3, 3.0, 500, seed=4, device="cpu")
    assert a.shape == (500, 3)
    assert bool((a > 0).all()) and torch.allclose(a.sum(-1), torch.ones(500), atol=1e-5)
    # Same seed, same noise: softmax((l + g) / tau) has the same argmax at every tau.
    assert torch.equal(a.argmax(-1), b.argmax(-1))
    c = T.relaxed_samples(LOGITS3, 0.3, 500, seed=5, device="cpu")
    assert not torch.equal(a, c)


def test_relaxed_samples_match_gumbel_softmax_with_the_same_generator():
    ref = gb.gumbel_softmax(torch.tensor(LOGITS3).expand(100, -1), 0.7, generator=torch.Generator().manual_seed(9))
    assert torch.equal(T.relaxed_samples(LOGITS3, 0.7, 100, seed=9, device="cpu"), ref)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"logits": [1.0], "tau": 1.0, "n_samples": 5}, ValueError, "at least 2"),
        ({"logits": [1.0, float("nan")], "tau": 1.0, "n_samples": 5}, ValueError, "finite"),
        ({"logits": "ab", "tau": 1.0, "n_samples": 5}, TypeError, "logits"),
        ({"logits": [1.0, 0.0], "tau": 0.0, "n_samples": 5}, ValueError, "tau"),
        ({"logits": [1.0, 0.0], "tau": 1.0, "n_samples": 0}, ValueError, "n_samples"),
        ({"logits": [1.0, 0.0], "tau": 1.0, "n_samples": 2.5}, TypeError, "n_samples"),
        ({"logits": [1.0, 0.0], "tau": 1.0, "n_samples": 5, "seed": -1}, ValueError, "seed"),
    ],
)
def test_relaxed_samples_rejects_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        T.relaxed_samples(**kwargs)


def test_simplex_xy_maps_vertices_to_the_triangle():
    x, h = T.simplex_xy(torch.eye(3))
    np.testing.assert_allclose(x, [0.0, 1.0, 0.5], atol=1e-12)
    np.testing.assert_allclose(h, [0.0, 0.0, math.sqrt(3) / 2], atol=1e-12)
    cx, ch = T.simplex_xy(torch.full((3,), 1 / 3))
    np.testing.assert_allclose([cx, ch], [0.5, math.sqrt(3) / 6], atol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        T.simplex_xy(torch.ones(4))


def test_density_grid_is_nan_outside_and_matches_concrete_log_prob_inside():
    g = T.concrete_density_grid(LOGITS3, 0.8, resolution=30, device="cpu")
    z = g["log_density"]
    assert z.shape == (len(g["y"]), len(g["x"]))
    xx, hh = np.meshgrid(g["x"], g["y"])
    y3 = hh / T.SQRT3_2
    y2 = xx - 0.5 * y3
    inside = (y3 > 1e-6) & (y2 > 1e-6) & (1 - y2 - y3 > 1e-6)
    assert np.isfinite(z[inside]).all() and np.isnan(z[~inside]).all()
    r, c = np.argwhere(inside)[len(np.argwhere(inside)) // 2]
    point = torch.tensor([1 - y2[r, c] - y3[r, c], y2[r, c], y3[r, c]], dtype=torch.float64)
    ref = gb.concrete_log_prob(point, torch.tensor(LOGITS3, dtype=torch.float64), 0.8)
    assert abs(float(ref) - z[r, c]) < 1e-4


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_density_grid_integrates_to_one(tau):
    g = T.concrete_density_grid(LOGITS3, tau, resolution=200, device="cpu")
    dx, dh = g["x"][1] - g["x"][0], g["y"][1] - g["y"][0]
    # The map (y2, y3) -> (x, h) has Jacobian sqrt(3)/2.
    mass = np.nansum(np.exp(g["log_density"])) * dx * dh / T.SQRT3_2
    assert abs(mass - 1.0) < 0.01


def test_density_grid_needs_three_logits():
    with pytest.raises(ValueError, match="exactly 3"):
        T.concrete_density_grid([1.0, 0.0], 1.0)


def test_simplex_view_samples_are_inside_and_mean_tends_to_pi_at_small_tau():
    v = T.simplex_view(LOGITS3, 0.02, n_samples=5000, seed=0, device="cpu")
    x, h = v["sample_x"], v["sample_y"]
    assert len(x) == 5000
    assert (h >= -1e-9).all() and (h <= math.sqrt(3) * x + 1e-6).all() and (h <= math.sqrt(3) * (1 - x) + 1e-6).all()
    pi = v["pi"]
    se = np.sqrt(pi * (1 - pi) / 5000)  # y is almost one-hot, so Var(y_i) <= pi_i (1 - pi_i)
    assert (np.abs(v["mean"] - pi) / se < 5).all()
    hot = T.simplex_view(LOGITS3, 5.0, n_samples=5000, seed=0, device="cpu")
    # At high temperature the mean is pulled from pi toward the centre (1/3, 1/3, 1/3).
    assert np.abs(hot["mean"] - 1 / 3).sum() < np.abs(pi - 1 / 3).sum() / 2


# ---------------------------------------------------------------- trade-offs against tau


@pytest.fixture(scope="module")
def trade3():
    return T.temperature_tradeoffs(LOGITS3, F.TRADEOFF_TAUS, n_samples=20_000, seed=0, device="cpu")


@pytest.mark.parametrize("logits", [LOGITS3, LOGITS10])
@pytest.mark.parametrize("seed", [0, 1])
def test_tradeoffs_are_monotone_in_tau(logits, seed):
    d = T.temperature_tradeoffs(logits, F.TRADEOFF_TAUS, n_samples=20_000, seed=seed, device="cpu")
    assert np.all(np.diff(d["mean_bias"]) > 0)
    assert np.all(np.diff(d["mean_max"]) < 0)
    assert np.all(np.diff(d["grad_var"]) < 0)


def test_tradeoff_limits(trade3):
    pi = trade3["pi"]
    assert trade3["mean_bias"][0] < 0.005  # tau = 0.05: E[y] is essentially pi
    assert trade3["mean_max"][0] > 0.95  # and the samples are essentially one-hot
    # tau = 10: E[y] is close to uniform, so the bias approaches TV(uniform, pi) from below.
    tv_uniform = 0.5 * np.abs(pi - 1 / 3).sum()
    assert 0.8 * tv_uniform < trade3["mean_bias"][-1] < tv_uniform


def test_gradient_variance_grows_like_one_over_tau(trade3):
    small = trade3["taus"] <= 0.3
    slope = np.polyfit(np.log(trade3["taus"][small]), np.log(trade3["grad_var"][small]), 1)[0]
    assert -1.4 < slope < -0.8


def test_the_chapter_claims_about_tau_half(trade3):
    i05, i005 = F.TRADEOFF_TAUS.index(0.5), F.TRADEOFF_TAUS.index(0.05)
    assert trade3["mean_max"][i05] > 0.75
    assert trade3["grad_var"][i05] < 0.1 * trade3["grad_var"][i005]


def test_tradeoff_gradient_variance_matches_the_analytic_gradient():
    """The per-sample autograd gradient is (1/tau) y * (c - c.y); its variance must match."""
    tau, n = 0.4, 4000
    d = T.temperature_tradeoffs(LOGITS3, [tau], n_samples=n, seed=3, device="cpu")
    y = T.relaxed_samples(LOGITS3, tau, n, seed=3, device="cpu").double()
    c = torch.linspace(0, 1, 3, dtype=torch.float64)
    grads = y * (c - (y @ c).unsqueeze(-1)) / tau
    assert abs(float(grads.var(0).sum()) - d["grad_var"][0]) < 1e-5 * d["grad_var"][0] + 1e-9


def test_tradeoffs_reject_bad_input():
    with pytest.raises(ValueError, match="taus"):
        T.temperature_tradeoffs(LOGITS3, [])
    with pytest.raises(ValueError, match="tau"):
        T.temperature_tradeoffs(LOGITS3, [1.0, -2.0])
    with pytest.raises(ValueError, match="cost"):
        T.temperature_tradeoffs(LOGITS3, [1.0], cost=[1.0, 2.0])
    with pytest.raises(ValueError, match="n_samples"):
        T.temperature_tradeoffs(LOGITS3, [1.0], n_samples=1)


# ---------------------------------------------------------------- annealing


@pytest.mark.parametrize(("rate", "every"), [(1e-5, 500), (1e-4, 1000), (3e-5, 700)])
def test_annealing_curves_are_anneal_tau_at_every_step(rate, every):
    c = T.annealing_curves(rate, every, total_steps=20_000, epoch_steps=600)
    rng = np.random.default_rng(0)
    for s in rng.integers(0, 20_001, size=300).tolist():
        i = np.searchsorted(c["step"], s, side="right") - 1  # piecewise constant: last change point <= s
        assert c["tau"][i] == gb.anneal_tau(s, rate=rate, every=every)
        assert c["tau_restarted"][i] == gb.anneal_tau(s % 600, rate=rate, every=every)


def test_restarting_each_epoch_never_anneals_when_n_exceeds_the_epoch():
    c = T.annealing_curves(1e-4, 1000, total_steps=100_000, epoch_steps=600)
    assert (c["tau_restarted"] == 1.0).all()
    assert c["tau"][-1] == 0.5
    assert c["step"][np.argmax(c["tau"] <= 0.5)] == 7000


def test_annealing_curves_reject_bad_input():
    with pytest.raises(ValueError, match="rate"):
        T.annealing_curves(-1.0, 500)
    with pytest.raises(ValueError, match="every"):
        T.annealing_curves(1e-4, 0)
    with pytest.raises(TypeError, match="epoch_steps"):
        T.annealing_curves(1e-4, 500, epoch_steps=1.5)


# ---------------------------------------------------------------- figures


def test_simplex_figure_slider_steps_carry_each_taus_data():
    taus = (0.2, 1.0, 4.0)
    fig = F.simplex_figure(LOGITS3, taus, n_samples=200, seed=1, resolution=20)
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["0.2", "1", "4"]
    assert fig.layout.height and fig.layout.sliders[0].active == 1
    for tau, step in zip(taus, steps, strict=True):
        assert step.method == "restyle"
        data, traces = step.args
        assert list(traces) == F.UPDATED_TRACES
        view = T.simplex_view(LOGITS3, tau, 200, 1, 20)
        np.testing.assert_allclose(data["x"][1], view["sample_x"], atol=1e-3)
        assert data["z"][1:] == [None, None, None]  # scatters have no z
    z0, z2 = (np.array(s.args[0]["z"][0], dtype=float) for s in (steps[0], steps[2]))
    assert not np.allclose(z0, z2, equal_nan=True)
    # The figure opens on the active step's data.
    np.testing.assert_allclose(fig.data[1].x, steps[1].args[0]["x"][1])


def test_simplex_figure_is_small_enough_for_a_page():
    fig = F.simplex_figure()
    assert len(fig.to_json()) < 400_000
    assert all(len(s.args[0]["x"][1]) <= 2000 for s in fig.layout.sliders[0].steps)


def test_tradeoff_and_bias_variance_figures_show_the_data(trade3):
    fig = F.tradeoff_figure(trade3)
    assert len(fig.data) == 3
    np.testing.assert_allclose(fig.data[2].y, trade3["grad_var"])
    bv = F.bias_variance_figure(trade3)
    np.testing.assert_allclose(bv.data[0].x, trade3["grad_var"])
    np.testing.assert_allclose(bv.data[0].y, trade3["mean_bias"])


def test_annealing_figure_has_one_distinct_step_per_setting():
    fig = F.annealing_figure(total_steps=20_000)
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["r=1e-5, N=500", "r=1e-5, N=1000", "r=1e-4, N=500", "r=1e-4, N=1000"]
    ys = [tuple(s.args[0]["y"][0]) for s in steps]
    assert len(set(ys)) == 4
    c = T.annealing_curves(1e-4, 1000, 20_000, 600)
    np.testing.assert_allclose(steps[3].args[0]["y"][0], c["tau"], atol=1e-4)


# ---------------------------------------------------------------- exercise checks


def _good_sampler(logits, tau, generator):
    u = torch.rand(logits.shape, generator=generator).clamp(torch.finfo(torch.float32).tiny, 1 - 1e-7)
    return torch.softmax((logits - torch.log(-torch.log(u))) / tau, dim=-1)


def _good_log_density(y1, logit_diff, tau):
    a, b = torch.log(y1), torch.log1p(-y1)
    lse = torch.logaddexp(logit_diff - tau * a, -tau * b)
    return math.log(tau) + logit_diff - (tau + 1) * (a + b) - 2 * lse


def test_exercise_checks_accept_correct_answers(capsys):
    ex.check_relaxed_sampler(_good_sampler)
    ex.check_binary_concrete_log_density(_good_log_density)
    ex.check_annealing_answers(7000, 1.0)
    assert capsys.readouterr().out.count("correct") == 3


@pytest.mark.parametrize(
    "sampler",
    [
        lambda lg, tau, gen: torch.softmax((lg + torch.randn(lg.shape, generator=gen)) / tau, -1),
        lambda lg, tau, gen: torch.softmax(lg - torch.log(-torch.log(torch.rand(lg.shape, generator=gen))), -1),
        lambda lg, tau, gen: _good_sampler(lg, tau, gen).detach(),
        lambda lg, tau, gen: torch.softmax(lg / tau, -1),
    ],
    ids=["gaussian-noise", "ignores-tau", "no-gradient", "no-noise"],
)
def test_sampler_check_rejects_wrong_samplers(sampler):
    with pytest.raises(AssertionError):
        ex.check_relaxed_sampler(sampler)


def test_density_and_annealing_checks_reject_wrong_answers():
    with pytest.raises(AssertionError, match="off by"):
        ex.check_binary_concrete_log_density(lambda y1, d, tau: _good_log_density(y1, d, tau) + 0.1)
    with pytest.raises(AssertionError, match="first step is not right"):
        ex.check_annealing_answers(6932, 1.0)
    with pytest.raises(AssertionError, match="restarts is not right"):
        ex.check_annealing_answers(7000, 0.5)
    with pytest.raises(TypeError, match="function"):
        ex.check_relaxed_sampler(3)


# ---------------------------------------------------------------- GPU


@pytest.mark.cuda
def test_tradeoffs_and_views_run_on_cuda():
    d = T.temperature_tradeoffs(LOGITS3, [0.1, 1.0], n_samples=5000, device="cuda")
    assert d["mean_bias"][0] < d["mean_bias"][1] and d["grad_var"][0] > d["grad_var"][1]
    v = T.simplex_view(LOGITS3, 0.5, 300, device="cuda")
    assert len(v["sample_x"]) == 300 and np.isfinite(v["log_density"]).any()


def test_concrete_log_prob_agrees_with_torch_as_the_chapter_prints():
    lg = torch.tensor(LOGITS3, dtype=torch.float64).expand(2000, -1)
    for tau in (0.2, 0.5, 1.0, 3.0):
        ys = gb.gumbel_softmax(lg, tau, generator=torch.Generator().manual_seed(1))
        ours = gb.concrete_log_prob(ys, lg, tau)
        ref = torch.distributions.RelaxedOneHotCategorical(torch.tensor(tau), logits=lg).log_prob(ys)
        assert float(((ours - ref).abs() / ref.abs().clamp(min=1)).max()) < 1e-6


def test_the_two_limits_as_the_chapter_prints():
    """tau -> 0: the relaxed sample's argmax is the Gumbel-max sample of the same noise; tau -> inf: uniform."""
    n, lg = 10_000, torch.tensor([1.0, 0.0, -0.7, 0.5, -1.2])
    cold = T.relaxed_samples(lg, 0.01, n, seed=5, device="cpu")
    idx = gb.gumbel_max(lg.expand(n, -1), generator=torch.Generator().manual_seed(5))
    assert torch.equal(cold.argmax(-1), idx)
    assert float(cold.max(-1).values.mean()) > 0.99
    hot = T.relaxed_samples(lg, 1000.0, n, seed=5, device="cpu")
    assert float((hot - 0.2).abs().max()) < 5e-3
