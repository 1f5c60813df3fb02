"""MuProp, REBAR and RELAX (gumbel_book.control_variates): the conditional Gumbel sampler has the law of the
perturbed logits given their argmax, and each estimator's mean matches exact_grad on the linear, quadratic and
pick-the-target problems. Each check has a negative control: a conditional sampler that ignores the truncation
fails the law test and makes REBAR biased; the relaxed Gumbel-Softmax gradient, biased, fails the mean test."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

from gumbel_book import control_variates as cv
from gumbel_book.estimators import (
    CONTROL_VARIATES,
    STRAIGHT_THROUGH_ESTIMATORS,
    exact_grad,
    linear_objective,
    quadratic_objective,
    sample_grads,
    target_objective,
)
from gumbel_book.sampling import sample_gumbel

ALPHA = 1e-3
K = 5
THETA = torch.tensor([0.3, -0.5, 1.0, 0.0, -1.2], dtype=torch.float64)
COEF = torch.tensor([1.0, -2.0, 0.5, 3.0, 0.0], dtype=torch.float64)
PROBLEMS = {
    "linear": linear_objective(COEF),
    "quadratic": quadratic_objective(0.3 * COEF),
    "target": target_objective(2, K),
}
N = 40_000


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def unconditioned_sampler(theta: torch.Tensor, b: torch.Tensor, generator) -> torch.Tensor:
    """The plausible mistake: the maximum at the right place and law, the others fresh Gumbels, not truncated."""
    z = theta + sample_gumbel(theta.shape, dtype=theta.dtype, generator=generator)
    top = torch.logsumexp(theta, -1, keepdim=True) + sample_gumbel((theta.shape[0], 1), dtype=theta.dtype,
                                                                   generator=generator)  # fmt: skip
    return z.scatter(-1, b[:, None], top)


def _law_pvalues(sampler) -> list[float]:
    """Two-sample Kolmogorov-Smirnov p-values, per coordinate, of z and of z~ drawn given z's argmax."""
    gen = _gen(1)
    z = THETA + sample_gumbel((N, K), dtype=torch.float64, generator=gen)
    tilde = sampler(THETA.expand(N, -1), z.argmax(-1), gen)
    return [scipy.stats.ks_2samp(z[:, j].numpy(), tilde[:, j].numpy()).pvalue for j in range(K)]


def test_conditional_gumbel_has_the_law_of_the_perturbed_logits_given_their_argmax():
    """Drawn given b = argmax z, z~ has argmax b and, coordinate by coordinate, the law of z (Bonferroni at ALPHA);
    the untruncated sampler is rejected."""
    gen = _gen(2)
    b = torch.randint(0, K, (1000,), generator=gen)
    assert torch.equal(cv.conditional_gumbel(THETA.expand(1000, -1), b, gen).argmax(-1), b)
    assert min(_law_pvalues(cv.conditional_gumbel)) > ALPHA / K
    assert min(_law_pvalues(unconditioned_sampler)) < ALPHA / K


def _z_scores(grads: torch.Tensor, f) -> np.ndarray:
    """|mean - exact| over the standard error, per coordinate (with a floor for an estimator without variance)."""
    exact = exact_grad(THETA, f)
    se = grads.std(0) / grads.shape[0] ** 0.5
    return ((grads.mean(0) - exact).abs() / se.clamp_min(1e-12)).numpy()


CRITICAL = scipy.stats.norm.ppf(1 - ALPHA / (2 * K))  # two-sided, Bonferroni over the K coordinates


@pytest.mark.parametrize("problem", list(PROBLEMS))
@pytest.mark.parametrize("name", CONTROL_VARIATES)
def test_control_variate_estimators_are_unbiased(name, problem):
    """The mean of 40,000 single-sample estimates is within CRITICAL standard errors of exact_grad on every
    coordinate (family-wise ALPHA per problem)."""
    f = PROBLEMS[problem]
    grads = sample_grads(name, THETA, f, N, tau=0.5, generator=_gen(3))[0]
    assert grads.shape == (N, K) and bool(torch.isfinite(grads).all())
    assert _z_scores(grads, f).max() < CRITICAL, (name, problem, _z_scores(grads, f))


def test_the_mean_test_rejects_a_biased_estimator_and_a_wrong_conditional_sampler():
    """Negative controls: the relaxed Gumbel-Softmax gradient, and REBAR with the untruncated sampler, are biased."""
    f = PROBLEMS["quadratic"]
    relaxed = sample_grads("gumbel_softmax", THETA, f, N, tau=0.5, generator=_gen(4))[0]
    assert _z_scores(relaxed, f).max() > CRITICAL
    wrong = cv.rebar_grads(THETA.expand(N, -1), f, 0.5, 1.0, _gen(5), sampler=unconditioned_sampler)
    assert _z_scores(wrong, f).max() > CRITICAL


def test_rebar_has_less_variance_than_reinforce_and_muprop_none_on_a_linear_objective():
    """The point of a control variate: REBAR's total variance is below REINFORCE's on all three problems, and
    MuProp's Taylor expansion is exact for a linear objective, so its estimate has no variance there."""
    for f in PROBLEMS.values():
        rebar = sample_grads("rebar", THETA, f, N, tau=0.5, generator=_gen(6))[0].var(0).sum()
        reinforce = sample_grads("reinforce", THETA, f, N, generator=_gen(6))[0].var(0).sum()
        assert rebar < reinforce
    muprop = sample_grads("muprop", THETA, PROBLEMS["linear"], 1000, generator=_gen(7))[0]
    assert muprop.var(0).sum() < 1e-20 and torch.allclose(muprop[0], exact_grad(THETA, PROBLEMS["linear"]))


def test_the_straight_through_chapter_keeps_its_seven_estimators():
    assert len(STRAIGHT_THROUGH_ESTIMATORS) == 7 and not set(CONTROL_VARIATES) & set(STRAIGHT_THROUGH_ESTIMATORS)
    assert CONTROL_VARIATES == ("muprop", "rebar", "relax")


# --- REBAR's temperature and scale -----------------------------------------------------------------------------


def _mean_square(grads: torch.Tensor) -> tuple[float, float]:
    """The mean of ||g||^2 over estimates ``grads`` ``[n, K]`` and its standard error. Estimators with the same mean
    gradient (REBAR at any (tau, eta), RELAX with any network) differ in mean square as they do in variance."""
    square = grads.pow(2).sum(-1)
    return float(square.mean()), float(square.std() / square.shape[0] ** 0.5)


def _rebar(f, tau, eta, seed: int) -> tuple[float, float]:
    return _mean_square(cv.rebar_grads(THETA.expand(N, -1), f, tau, eta, generator=_gen(seed)))


def _lower(a: tuple[float, float], b: tuple[float, float], tests: int) -> bool:
    """Whether mean square ``a`` is significantly below ``b`` (one-sided z test, Bonferroni over ``tests``; the
    independent-samples standard error is conservative for the positively correlated common-seed estimates)."""
    return (b[0] - a[0]) / (a[1] ** 2 + b[1] ** 2) ** 0.5 > scipy.stats.norm.isf(ALPHA / tests)


def test_rebar_variance_against_tau_has_its_minimum_inside():
    """On the quadratic problem REBAR's variance at tau = 1 is below its variance at tau = 0.1 and at tau = 10:
    the best temperature is neither tau -> 0 (the relaxed term's variance grows like 1 / tau) nor tau -> inf."""
    f = PROBLEMS["quadratic"]
    middle = _rebar(f, 1.0, 1.0, seed=11)
    assert _lower(middle, _rebar(f, 0.1, 1.0, seed=12), tests=2)
    assert _lower(middle, _rebar(f, 10.0, 1.0, seed=13), tests=2)


def test_tuning_rebar_by_the_gradient_of_its_variance_lowers_it_and_keeps_it_unbiased():
    """tune_rebar (60 steps) from (tau, eta) = (1, 1) on pick-the-target: fresh estimates at the tuned values have
    a lower mean square, and their mean still matches exact_grad. Negative control: a step too small to move
    (lr = 1e-9) gives no significant decrease, so the decrease is the tuning's."""
    f = PROBLEMS["target"]
    tuned = cv.tune_rebar(THETA, f, steps=60, batch=256, generator=_gen(14))
    assert len(tuned.mean_squares) == 60 and (tuned.tau, tuned.eta) != (1.0, 1.0)
    start = _rebar(f, 1.0, 1.0, seed=15)
    assert _lower(_rebar(f, tuned.tau, tuned.eta, seed=16), start, tests=2)
    grads = cv.rebar_grads(THETA.expand(N, -1), f, tuned.tau, tuned.eta, generator=_gen(17))
    assert _z_scores(grads, f).max() < CRITICAL
    still = cv.tune_rebar(THETA, f, steps=60, batch=256, lr=1e-9, generator=_gen(14))
    assert not _lower(_rebar(f, still.tau, still.eta, seed=16), start, tests=2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cv.rebar_grads(THETA.expand(4, -1), PROBLEMS["linear"], tau=0.0), "tau must be finite and > 0"),
        (lambda: cv.rebar_grads(THETA.expand(4, -1), PROBLEMS["linear"], eta=float("nan")), "eta must be finite"),
        (lambda: cv.relax_grads(THETA.expand(4, -1), PROBLEMS["linear"], tau=-1.0), "tau must be finite and > 0"),
        (lambda: cv.tune_rebar(THETA, PROBLEMS["linear"], tau=0.0), "tau must be finite and > 0"),
        (lambda: cv.tune_rebar(THETA, PROBLEMS["linear"], steps=0), "steps must be >= 1"),
        (lambda: cv.tune_rebar(THETA, PROBLEMS["linear"], batch=1), "batch must be >= 2"),
        (lambda: cv.tune_rebar(THETA, PROBLEMS["linear"], lr=0.0), "lr must be"),
        (lambda: cv.tune_rebar(THETA[:1], PROBLEMS["linear"]), "theta must have at least 2 categories"),
    ],
)
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- RELAX's network, trained as it optimizes ------------------------------------------------------------------


def _relax(f, net, seed: int) -> tuple[float, float]:
    return _mean_square(cv.relax_grads(THETA.expand(10_000, -1), f, 0.5, net, _gen(seed)))


def test_relax_steps_train_the_network_on_the_variance_and_stay_unbiased():
    """40 relax_steps at fixed logits on pick-the-target: fresh estimates from the trained network have a lower
    mean square than from the untrained one, and the mean of 20,000 still matches exact_grad. Negative control:
    with a zero step the network does not move, and the mean square does not fall significantly."""
    f = PROBLEMS["target"]

    def trained(lr: float) -> cv.ControlVariateNet:
        net = cv.ControlVariateNet(K)
        opt = torch.optim.Adam(net.parameters(), lr=lr) if lr else torch.optim.SGD(net.parameters(), lr=0.0)
        gen = _gen(21)
        for _ in range(40):
            step = cv.relax_step(THETA[None], f, 64, 0.5, net, opt, gen)
            assert step.shape == (1, K) and bool(torch.isfinite(step).all())
        return net

    untrained = _relax(f, cv.ControlVariateNet(K), seed=22)
    net = trained(0.03)
    assert _lower(_relax(f, net, seed=23), untrained, tests=2)
    grads = cv.relax_grads(THETA.expand(20_000, -1), f, 0.5, net, _gen(24))
    assert _z_scores(grads, f).max() < CRITICAL
    assert not _lower(_relax(f, trained(0.0), seed=23), untrained, tests=2)


def test_the_race_trains_relax_and_gets_as_far_as_reinforce():
    """RELAX in the optimization race: its runs are finite and, with its network training as it goes, end at
    least as low as REINFORCE's on pick-the-target (mean final objective within two standard errors, or lower)."""
    from gumbel_book.labs.straight_through import optimization_race, race_summary, toy_problems

    problem = toy_problems("cpu")["target"]
    curves = optimization_race(problem, ["relax", "reinforce"], steps=40, seeds=4, include_exact=False)
    assert all(bool(torch.isfinite(c).all()) for c in curves.values())
    summary = race_summary(curves)
    (relax, relax_se), (reinforce, reinforce_se) = summary["relax"], summary["reinforce"]
    assert relax <= reinforce + 2 * (relax_se**2 + reinforce_se**2) ** 0.5, summary
