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
from gumbel_book.vae import REFERENCE, split_validation

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


# ---------------------------------------------------------------- the learning experiment


@pytest.fixture(scope="module")
def learning():
    return T.learning_curves(steps=120, runs=16)


def test_learning_curves_shapes_and_start(learning):
    n_taus = len(T.LEARNING_TAUS)
    assert learning["relaxed"].shape == learning["relaxed_sd"].shape == (n_taus, 121)
    assert learning["relaxed_surrogate"].shape == (n_taus, 120)
    assert learning["relaxed_final"].shape == (n_taus, 16) and learning["reinforce_final"].shape == (16,)
    assert learning["reinforce"].shape == learning["exact"].shape == (121,)
    start = float(T.toy_values().mean())  # uniform logits: the average of the four values
    assert learning["relaxed"][:, 0] == pytest.approx([start] * n_taus) and learning["exact"][0] == pytest.approx(start)
    assert learning["optimum"] == pytest.approx(0.5)  # 1 - 2 * 0.4 + ||t||^2
    assert learning["settings"]["runs"] == 16 and learning["settings"]["steps"] == 120


def test_the_exact_descent_goes_down_and_the_relaxed_one_stalls_above_it(learning):
    assert bool(np.all(np.diff(learning["exact"]) < 0))
    assert bool((learning["relaxed"][:, -1] > learning["exact"][-1]).all())
    # The relaxed objective E f(y) goes below the optimum at warm temperatures: f is smallest inside the simplex.
    warm = learning["taus"] >= 1.0
    assert bool((learning["relaxed_surrogate"][warm, -20:].mean(axis=1) < learning["optimum"]).all())


def test_one_learning_run_is_the_plain_loop_of_the_chapter():
    one = T.learning_curves(taus=(0.3,), steps=40, lr=1.5, runs=1, seed=7)
    target = torch.tensor(T.LEARNING_TARGET)
    theta = torch.zeros(8, 4, requires_grad=True)
    gen = torch.Generator().manual_seed(7)
    for _ in range(40):
        y = gb.gumbel_softmax(theta, 0.3, generator=gen)
        ((y - target) ** 2).sum(-1).mean().backward()
        with torch.no_grad():
            theta -= 1.5 * theta.grad
            theta.grad = None
    final = float((torch.softmax(theta.detach(), -1) @ T.toy_values()).mean())
    assert one["relaxed"][0, -1] == pytest.approx(final, abs=1e-6)
    assert one["relaxed_sd"][0, -1] == 0.0
    other = T.learning_curves(taus=(0.3,), steps=40, lr=1.5, runs=1, seed=8)  # negative control: other noise
    assert other["relaxed"][0, -1] != pytest.approx(final, abs=1e-6)


def test_reinforce_is_unbiased_at_the_start():
    """At uniform logits the mean REINFORCE step follows the exact gradient: after one step its mean objective
    matches the exact descent within 5 standard errors (many runs), while the spread across runs is wide."""
    c = T.learning_curves(taus=(1.0,), steps=1, lr=0.5, runs=4000, seed=3)
    se = c["reinforce_sd"][-1] / math.sqrt(4000)
    assert abs(c["reinforce"][-1] - c["exact"][-1]) < 5 * se
    assert c["reinforce_sd"][-1] > 10 * c["relaxed_sd"][0, -1]


def test_learning_curves_reject_bad_input():
    with pytest.raises(ValueError, match="taus"):
        T.learning_curves(taus=[])
    with pytest.raises(ValueError, match="lr"):
        T.learning_curves(lr=0.0)
    with pytest.raises(ValueError, match="runs"):
        T.learning_curves(runs=0)
    with pytest.raises(ValueError, match="target"):
        T.learning_curves(target=[0.5])


def test_learning_figure_slider_steps_carry_each_taus_curves(learning):
    f = F.learning_figure(learning, active_tau=0.5)
    steps = f.layout.sliders[0].steps
    assert [s.label for s in steps] == [f"{t:g}" for t in T.LEARNING_TAUS]
    assert f.layout.sliders[0].active == T.LEARNING_TAUS.index(0.5)
    for i, step in enumerate(steps):
        data, traces = step.args
        assert list(traces) == F.LEARNING_UPDATED_TRACES
        np.testing.assert_allclose(data["y"][2], learning["relaxed"][i], atol=1e-4)
        np.testing.assert_allclose(data["y"][0], learning["relaxed"][i] + learning["relaxed_sd"][i], atol=1e-4)
        np.testing.assert_allclose(data["y"][3], learning["relaxed_surrogate"][i], atol=1e-4)
    assert steps[0].args[0]["y"][2] != steps[-1].args[0]["y"][2]
    np.testing.assert_allclose(f.data[2].y, learning["relaxed"][T.LEARNING_TAUS.index(0.5)], atol=1e-4)
    np.testing.assert_allclose(f.data[6].y, learning["reinforce"], atol=1e-4)  # REINFORCE does not move
    assert len(f.to_json()) < 400_000


# ---------------------------------------------------------------- near ties, the density's precision, the epoch


def test_near_ties_carry_the_variance_at_small_tau():
    d = T.near_ties(LOGITS3, (0.05, 0.1, 0.2, 1.0), n_samples=20_000, seed=0, device="cpu")
    assert d["near_fraction"][0] < 0.1 and d["variance_share"][0] > 0.9
    slope = np.polyfit(np.log(d["taus"][:3]), np.log(d["tie_prob"][:3]), 1)[0]
    assert 0.8 < slope < 1.2
    # Negative control: at tau = 1 most samples are "near ties" within 3 tau, and they are not rare.
    assert d["near_fraction"][-1] > 0.5
    # The gap read off y is the gap of logits + g: compare with the noise itself.
    g = gb.sample_gumbel((20_000, 3), generator=torch.Generator().manual_seed(0))
    top = (torch.tensor(LOGITS3) + g).topk(2, -1).values
    assert d["tie_prob"][1] == pytest.approx(float(((top[:, 0] - top[:, 1]) < 0.1).double().mean()), abs=1e-3)


def test_density_precision_finds_the_float32_normalising_constant():
    d = T.density_precision(LOGITS3, (0.2, 3.0), n_samples=500)
    assert (d["float64"] < 1e-13).all() and (d["rounded_const"] < 1e-13).all()
    assert (d["exact"] > 1e-8).all()
    assert d["rounded"][1] == d["exact"][1]  # tau = 3 is exact in float32: rounding changes nothing
    assert d["rounded"][0] > 0.5 * d["exact"][0]


def test_vae_epoch_is_50000_digits_in_batches_of_100():
    e = T.vae_epoch()
    assert e == {"digits": 50_000, "held_out": 10_000, "batch": 100, "steps": 500}
    assert T.vae_epoch(600)["steps"] == 5
    # The same split as the VAE's own: hold out the last sixth, train on the rest.
    train, val = split_validation(torch.zeros(6_000, 28, 28, dtype=torch.uint8))
    assert (len(train), len(val)) == (T.vae_epoch(6_000)["digits"], T.vae_epoch(6_000)["held_out"])
    assert T.vae_epoch()["batch"] == REFERENCE.batch_size
    c = T.annealing_curves(1e-4, 500, total_steps=20_000, epoch_steps=e["steps"])
    assert (c["tau_restarted"] == 1.0).all() and c["tau"][-1] == 0.5


# ---------------------------------------------------------------- exercise checks


def _good_sampler(logit_diff, tau, generator):
    u = torch.rand(logit_diff.shape, generator=generator).clamp(torch.finfo(torch.float32).tiny, 1 - 1e-7)
    return torch.sigmoid((logit_diff + torch.log(u) - torch.log1p(-u)) / tau)


def _good_log_density(y1, logit_diff, tau):
    a, b = torch.log(y1), torch.log1p(-y1)
    lse = torch.logaddexp(logit_diff - tau * a, -tau * b)
    return math.log(tau) + logit_diff - (tau + 1) * (a + b) - 2 * lse


def test_binary_concrete_cdf_matches_the_package_sampler():
    y1 = gb.gumbel_softmax(torch.tensor([0.7, 0.0]).expand(40_000, -1), 0.6, generator=torch.Generator().manual_seed(2))
    x = torch.tensor([0.1, 0.3, 0.5, 0.8, 0.95])
    empirical = (y1[:, :1] <= x).float().mean(0).double()
    exact = ex.binary_concrete_cdf(x.double(), 0.7, 0.6)
    assert torch.allclose(empirical, exact, atol=5 * 0.5 / math.sqrt(40_000))


def test_exercise_checks_accept_correct_answers(capsys):
    ex.check_relaxed_sampler(_good_sampler)
    ex.check_relaxed_sampler(_good_sampler, seed=86_420, diffs=(-0.4, 1.3))
    ex.check_binary_concrete_log_density(_good_log_density)
    ex.check_annealing_answers(gb.anneal_tau(30_599, rate=2e-5, every=700), gb.anneal_tau(99, rate=1e-3, every=50))
    ex.check_annealing_answers(0.5477, 0.9512)  # four digits are enough
    assert capsys.readouterr().out.count("correct") == 5


def _gumbel_not_logistic(d, tau, gen):
    return torch.sigmoid((d - torch.log(-torch.log(torch.rand(d.shape, generator=gen)))) / tau)


@pytest.mark.parametrize(
    ("sampler", "match"),
    [
        (lambda d, tau, gen: torch.sigmoid((d + 1.8 * torch.randn(d.shape, generator=gen)) / tau), "law"),
        (_gumbel_not_logistic, "law"),
        (lambda d, tau, gen: _good_sampler(d, 1.0, gen), "law"),
        (lambda d, tau, gen: _good_sampler(d.detach(), tau, gen), "no gradient"),
        (lambda d, tau, gen: _good_sampler(d.detach(), tau, gen) + 0 * d, "pathwise"),
        (lambda d, tau, gen: torch.sigmoid(d / tau), "law"),
        (lambda d, tau, gen: _good_sampler(d[:10], tau, gen), "shape"),
    ],
    ids=["gaussian-noise", "gumbel-noise", "ignores-tau", "no-gradient", "gradient-not-pathwise", "no-noise", "shape"],
)
def test_sampler_check_rejects_wrong_samplers(sampler, match):
    with pytest.raises(AssertionError, match=match):
        ex.check_relaxed_sampler(sampler)


def test_density_and_annealing_checks_reject_wrong_answers():
    with pytest.raises(AssertionError, match="off by"):
        ex.check_binary_concrete_log_density(lambda y1, d, tau: _good_log_density(y1, d, tau) + 0.1)
    right_global, right_restarted = 0.5477, 0.9512
    with pytest.raises(AssertionError, match="round t down"):
        ex.check_annealing_answers(math.exp(-2e-5 * 30_599), right_restarted)  # the rounding forgotten
    with pytest.raises(AssertionError, match="global schedule"):
        ex.check_annealing_answers(right_global, 0.5)  # no restart
    with pytest.raises(AssertionError, match="epoch"):
        ex.check_annealing_answers(right_global, gb.anneal_tau(30_599 % 600, rate=1e-3, every=50))  # 600-step epoch
    with pytest.raises(AssertionError, match="tau_restarted is not right"):
        ex.check_annealing_answers(right_global, math.exp(-1e-3 * 99))  # within-epoch step not rounded
    with pytest.raises(AssertionError, match="must be a number"):
        ex.check_annealing_answers("0.55", right_restarted)
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
