"""Tests for gumbel_book.labs.reparameterization and its figures: exact formulas, unbiasedness, variances, bad input."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import pytest
import torch

from gumbel_book.exercises import reparameterization as ex1
from gumbel_book.figures import reparameterization as figs
from gumbel_book.labs import reparameterization as reparam
from gumbel_book.labs.reparameterization import exact_variance

Z_CRIT = 3.29  # two-sided normal quantile, alpha = 1e-3


def test_objective_and_gradient_match_finite_differences():
    mu, sigma, t, h = 0.7, 1.3, -0.4, 1e-6
    grad = reparam.exact_gradient(mu, sigma, t)
    fd_mu = (reparam.objective(mu + h, sigma, t) - reparam.objective(mu - h, sigma, t)) / (2 * h)
    fd_sigma = (reparam.objective(mu, sigma + h, t) - reparam.objective(mu, sigma - h, t)) / (2 * h)
    assert grad["mu"] == pytest.approx(fd_mu, rel=1e-6)
    assert grad["sigma"] == pytest.approx(fd_sigma, rel=1e-6)


def test_sample_has_no_gradient_but_rsample_does():
    assert reparam.sample_has_gradient() == {"sample": False, "rsample": True}


@pytest.mark.parametrize("estimator", reparam.ESTIMATORS)
@pytest.mark.parametrize(("mu", "sigma", "target"), [(1.0, 1.0, 0.0), (-0.5, 0.6, 0.8)])
def test_estimators_are_unbiased(estimator, mu, sigma, target):
    """z-test of the mean of 200k single-sample estimates against the exact gradient, alpha = 1e-3 each."""
    gen = torch.Generator().manual_seed(11)
    samples = reparam.gradient_samples(estimator, mu, sigma, 200_000, target=target, generator=gen)
    exact = reparam.exact_gradient(mu, sigma, target)
    for p in reparam.PARAMS:
        se = float(samples[p].std()) / math.sqrt(200_000)
        assert abs(float(samples[p].mean()) - exact[p]) < Z_CRIT * se


@pytest.mark.parametrize(("mu", "sigma", "target"), [(1.0, 1.0, 0.0), (2.0, 0.5, 0.5), (0.0, 2.0, 0.0)])
def test_exact_variance_matches_monte_carlo(mu, sigma, target):
    """Sample variance of 400k estimates within 5% of the closed form (several standard errors for these tails)."""
    exact = reparam.exact_variance(mu, sigma, target)
    gen = torch.Generator().manual_seed(3)
    for estimator in reparam.ESTIMATORS:
        s = reparam.gradient_samples(estimator, mu, sigma, 400_000, target=target, generator=gen)
        for p in reparam.PARAMS:
            assert float(s[p].var()) == pytest.approx(exact[estimator][p], rel=0.05), (estimator, p)


def test_reparam_has_lower_variance_everywhere_on_a_grid():
    for mu in (-2.0, -0.5, 0.0, 1.0, 3.0):
        for sigma in (0.3, 1.0, 2.0):
            v = reparam.exact_variance(mu, sigma)
            assert v["reparam"]["mu"] < v["score"]["mu"]
            assert v["reparam"]["sigma"] < v["score"]["sigma"]


def test_custom_objective_through_autograd():
    """f(z) = sin(z): E[sin z] = sin(mu) exp(-sigma^2/2); both estimators agree with its derivative (alpha 1e-3)."""
    mu, sigma, n = 0.4, 0.9, 200_000
    exact_mu = math.cos(mu) * math.exp(-(sigma**2) / 2)
    for k, est in enumerate(reparam.ESTIMATORS):
        s = reparam.gradient_samples(est, mu, sigma, n, f=torch.sin, generator=torch.Generator().manual_seed(k))
        assert abs(float(s["mu"].mean()) - exact_mu) < Z_CRIT * float(s["mu"].std()) / math.sqrt(n)


def test_same_seed_same_estimates():
    a = reparam.gradient_samples("score", 1.0, 1.0, 100, generator=torch.Generator().manual_seed(5))
    b = reparam.gradient_samples("score", 1.0, 1.0, 100, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a["mu"], b["mu"]) and torch.equal(a["sigma"], b["sigma"])


def test_bias_check_z_scores_are_small():
    out = reparam.bias_check(1.0, 1.0, 100_000, seed=2)
    for est in reparam.ESTIMATORS:
        for p in reparam.PARAMS:
            assert abs(out[est][p]["z"]) < Z_CRIT
            assert out[est][p]["exact"] == reparam.exact_gradient(1.0, 1.0)[p]


def test_variance_vs_n_falls_as_one_over_n():
    """Measured n-sample variances within 30% of exact/n (400 repeats: the relative SE of a variance is ~7%+tails)."""
    ns = [1, 10, 100]
    data = reparam.variance_vs_n(1.0, 1.0, ns, repeats=400, seed=0)
    exact = reparam.exact_variance(1.0, 1.0)
    for est in reparam.ESTIMATORS:
        for n, v in zip(ns, data[est].tolist(), strict=True):
            assert v == pytest.approx(exact[est]["mu"] / n, rel=0.3)


def test_running_mean_and_histograms():
    path = reparam.running_mean("reparam", 1.0, 1.0, 1000, seed=0)
    s = reparam.gradient_samples("reparam", 1.0, 1.0, 1000, generator=torch.Generator().manual_seed(0))["mu"]
    assert path[0] == s[0] and torch.allclose(path[-1], s.mean())
    edges = torch.linspace(-30, 30, 61)
    h = reparam.estimator_histograms(1.0, 1.0, 50_000, edges)
    for est in reparam.ESTIMATORS:
        total = float((h[est] * (edges[1:] - edges[:-1]).double()).sum()) + float(h[f"{est}_outside"])
        assert total == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("call", "err", "match"),
    [
        (lambda: reparam.objective(0.0, 0.0), ValueError, "sigma"),
        (lambda: reparam.objective(float("nan"), 1.0), ValueError, "mu"),
        (lambda: reparam.exact_gradient("1", 1.0), TypeError, "mu"),
        (lambda: reparam.gradient_samples("pathwise", 0.0, 1.0, 10), ValueError, "estimator"),
        (lambda: reparam.gradient_samples("score", 0.0, -1.0, 10), ValueError, "sigma"),
        (lambda: reparam.gradient_samples("score", 0.0, 1.0, 0), ValueError, "n"),
        (lambda: reparam.gradient_samples("score", 0.0, 1.0, 2.5), TypeError, "n"),
        (lambda: reparam.gradient_samples("score", 0.0, 1.0, 10, f=3), TypeError, "f"),
        (lambda: reparam.gradient_samples("reparam", 0.0, 1.0, 10, f=lambda z: z.sum()), ValueError, "f"),
        (lambda: reparam.variance_vs_n(0.0, 1.0, []), ValueError, "ns"),
        (lambda: reparam.variance_vs_n(0.0, 1.0, [0]), ValueError, "ns"),
        (lambda: reparam.variance_vs_n(0.0, 1.0, [1], param="tau"), ValueError, "param"),
        (lambda: reparam.estimator_histograms(0.0, 1.0, 10, torch.tensor([1.0, 0.0])), ValueError, "bins"),
    ],
)
def test_bad_input_raises(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_figures_have_precomputed_sliders():
    sweep = reparam.histogram_sweep((-1.0, 0.0, 1.0), n=2000)
    fig = figs.histogram_figure(sweep)
    assert isinstance(fig, go.Figure)
    steps = fig.layout.sliders[0].steps
    assert len(steps) == 3 and all(s.method == "update" for s in steps)
    # Each step moves the exact-gradient line to 2 mu and carries that panel's histograms.
    assert [s.args[1]["shapes"][0]["x0"] for s in steps] == [-2.0, 0.0, 2.0]
    assert steps[0].args[0]["y"][0] != steps[2].args[0]["y"][0]
    assert steps[2].args[0]["y"][0] == pytest.approx(sweep["panels"][2]["score"].tolist())
    assert fig.layout.height
    data = reparam.variance_vs_n(1.0, 1.0, (1, 10), repeats=50)
    v = figs.variance_figure(data, 1.0, 1.0)
    assert len(v.data) == 4 and v.layout.xaxis.type == "log"
    assert list(v.data[0].y) == pytest.approx(data["score"].tolist())
    assert list(v.data[1].y) == pytest.approx([30.0, 3.0])  # the exact line, Var / n
    r = figs.running_mean_figure(n=1000, points=50)
    assert len(r.data) == 3 and len(r.data[0].x) <= 50


def test_z_critical_is_bonferroni_normal_quantile():
    assert reparam.z_critical(1) == pytest.approx(3.2905, abs=1e-4)
    assert reparam.z_critical(4) > reparam.z_critical(1)
    assert reparam.z_critical(4) == pytest.approx(reparam.z_critical(1, alpha=reparam.ALPHA / 4))
    with pytest.raises(ValueError, match="alpha"):
        reparam.z_critical(1, alpha=1.5)
    with pytest.raises(ValueError, match="tests"):
        reparam.z_critical(0)


def test_histogram_summaries_show_the_score_functions_median_at_zero():
    """The score-function estimate has the sign of eps: half negative at every mu, mean on 2 mu; the
    reparameterized one is centred on 2 mu, so at mu = 2 almost none of it is negative (negative control)."""
    sweep = reparam.histogram_sweep((-2.0, 0.0, 2.0), n=40_000, seed=4)
    z = reparam.z_critical(6)
    for mu, h in zip(sweep["mus"], sweep["panels"], strict=True):
        assert abs(float(h["score_negative"]) - 0.5) < z * 0.5 / 200
        assert abs(float(h["score_median"])) < 0.05
        for est in reparam.ESTIMATORS:
            assert abs(float(h[f"{est}_mean"]) - 2 * mu) < z * float(h[f"{est}_se"])
    at2 = sweep["panels"][2]
    assert float(at2["reparam_negative"]) < 0.05 and float(at2["reparam_median"]) == pytest.approx(4.0, abs=0.1)
    assert float(at2["score_peak"]) < 0 < float(at2["reparam_peak"])
    assert float(at2["score_var"]) == pytest.approx(87.0, rel=0.15) and float(at2["reparam_var"]) == pytest.approx(
        4.0, rel=0.05
    )
    with pytest.raises(ValueError, match="mus"):
        reparam.histogram_sweep([])


def test_variance_standard_errors_make_z_tests_that_pass_and_fail():
    data = reparam.variance_vs_n(1.0, 1.0, [1, 10], repeats=20_000, seed=3)
    exact = reparam.exact_variance(1.0, 1.0)
    z = reparam.z_critical(4)
    for est in reparam.ESTIMATORS:
        dev = (data[est] - exact[est]["mu"] / data["n"]) / data[f"{est}_se"]
        assert bool((dev.abs() < z).all())
        wrong = (data[est] - 1.3 * exact[est]["mu"] / data["n"]) / data[f"{est}_se"]  # a 30% wrong formula
        assert bool((wrong.abs() > z).all())


@pytest.mark.cuda
def test_gradient_samples_on_cuda():
    """Both estimators run on the GPU and stay unbiased (z-test, alpha = 1e-3)."""
    gen = torch.Generator(device="cuda").manual_seed(0)
    for est in reparam.ESTIMATORS:
        s = reparam.gradient_samples(est, 1.0, 1.0, 200_000, generator=gen)
        assert s["mu"].device.type == "cuda"
        assert abs(float(s["mu"].mean()) - 2.0) < Z_CRIT * float(s["mu"].std()) / math.sqrt(200_000)


# --- The exercise checks: right answers pass, plausible wrong ones fail with a message (alpha = 1e-4 inside) ---


def rsample_right(rate, n, generator=None):
    e = torch.empty(n, dtype=rate.dtype).exponential_(generator=generator)
    return e / rate


def rsample_no_gradient(rate, n, generator=None):
    return torch.empty(n, dtype=rate.dtype).exponential_(generator=generator) / rate.detach()


def rsample_wrong_scale(rate, n, generator=None):
    e = torch.empty(n, dtype=rate.dtype).exponential_(generator=generator)
    return e * rate


def rsample_without_generator(rate, n):
    return -torch.log1p(-torch.rand(n, dtype=rate.dtype)) / rate


def test_exponential_rsample_accepts_right_answers(capsys):
    assert ex1.check_exponential_rsample(rsample_right) is None
    assert "correct" in capsys.readouterr().out
    assert ex1.check_exponential_rsample(rsample_without_generator) is None


@pytest.mark.parametrize(
    ("answer", "match"),
    [(rsample_no_gradient, "not connected"), (rsample_wrong_scale, "Exp\\(rate"), (lambda r, n: r, "shape")],
)
def test_exponential_rsample_rejects_wrong_answers(answer, match):
    with pytest.raises(AssertionError, match=match):
        ex1.check_exponential_rsample(answer)


def test_score_variance():
    """The exercise asks for the d/dsigma variance at mu = 0, sigma = 1, which the page never prints."""
    assert ex1.check_score_variance(exact_variance(0.0, 1.0)["score"]["sigma"]) is None
    assert ex1.check_score_variance(74) is None
    eps = torch.randn(2_000_000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert float((eps**4 - eps**2).var()) == pytest.approx(74.0, rel=0.05)  # the solution's estimate, measured
    for slip, match in ((78.0, "second moment"), (8.0, "reparameterized"), (15.0, "d/dmu"), (30.0, "not right")):
        with pytest.raises(AssertionError, match=match):
            ex1.check_score_variance(slip)
    with pytest.raises(AssertionError, match="number"):  # a wrong answer, not a type error: one convention
        ex1.check_score_variance("74")


def baseline_right(mu, sigma, eps):
    z = mu + sigma * eps
    return (z**2 - (mu**2 + 3 * sigma**2)) * eps / sigma


def baseline_mean(mu, sigma, eps):
    z = mu + sigma * eps
    return (z**2 - (mu**2 + sigma**2)) * eps / sigma


def baseline_none(mu, sigma, eps):
    z = mu + sigma * eps
    return z**2 * eps / sigma


def baseline_from_sample(mu, sigma, eps):
    z = mu + sigma * eps
    return (z**2 - z) * eps / sigma  # the baseline depends on z: biased


def baseline_batch_mean(mu, sigma, eps):
    z = mu + sigma * eps
    return (z**2 - (z**2).mean()) * eps / sigma  # a statistic of this batch, not a constant


def test_baseline_variances_are_30_18_14():
    """The solution's claim: at mu = sigma = 1 the variance is 30 without a baseline, 18 with b = E f = 2 and 14
    with b* = mu^2 + 3 sigma^2 = 4 (exact), and 10^6 samples agree (relative SE of a variance ~0.8%: 3% is ~3.6 SE,
    alpha ~ 3e-4)."""
    assert [ex1.baseline_variance(1.0, 1.0, b) for b in (0.0, 2.0, 4.0)] == [30.0, 18.0, 14.0]
    assert min(range(-20, 21), key=lambda b: ex1.baseline_variance(1.0, 1.0, b / 2)) / 2 == 4.0
    eps = torch.randn(1_000_000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for answer, var in ((baseline_none, 30.0), (baseline_mean, 18.0), (baseline_right, 14.0)):
        assert float(answer(1.0, 1.0, eps).var()) == pytest.approx(var, rel=0.03)
    assert ex1.baseline_variance(1.0, 1.0, 0.0) == pytest.approx(exact_variance(1.0, 1.0)["score"]["mu"])


def test_baseline_estimator():
    ex1.check_baseline_estimator(baseline_right)
    ex1.check_baseline_estimator(baseline_mean)
    ex1.check_baseline_estimator(baseline_right, mu=-0.6, sigma=1.7, seed=3)
    with pytest.raises(AssertionError, match="variance"):
        ex1.check_baseline_estimator(baseline_none)
    with pytest.raises(AssertionError, match="one constant b"):
        ex1.check_baseline_estimator(baseline_from_sample)
    with pytest.raises(AssertionError, match="changes with the noise|one constant b"):
        ex1.check_baseline_estimator(baseline_batch_mean)
    with pytest.raises(TypeError, match="function"):
        ex1.check_baseline_estimator(3.0)
