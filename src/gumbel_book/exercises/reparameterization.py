"""Check functions for the exercises of the reparameterization chapter.

Every check returns None when the answer is right and raises ``AssertionError`` with a hint (never the
expected values) when it is wrong; ``TypeError`` only when a function was expected and something else came.
The student's function runs inside :func:`guard.own_work`, so the package's samplers and
``torch.distributions`` sampling are unavailable to it. Statistical checks use a fixed seed and
reject a correct answer with probability below about 1e-4.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from scipy import stats

from .guard import call_with_generator, check_callable, check_digest, check_number, own_work

Z_CRIT = 4.0  # two-sided normal quantile for alpha ~ 6e-5
ALPHA = 1e-4
RSAMPLE_RULE = "write the draws from noise you make yourself (torch.rand or Tensor.exponential_)"
BASELINE_RULE = "use only the noise eps you are given and torch arithmetic"


def _correct() -> None:
    print("correct")


def check_exponential_rsample(rsample: Callable, rate: float = 2.0, n: int = 100_000, *, seed: int = 0) -> None:
    """Exercise: ``rsample(rate, n, generator=None)`` must return ``n`` reparameterized draws from Exp(rate).

    ``rate`` is passed as a scalar tensor with ``requires_grad=True``; the draws must follow Exp(rate)
    (Kolmogorov-Smirnov, alpha = 1e-4) and the gradient of their mean must estimate d/d rate E[z] = -1/rate^2.
    """
    check_callable(rsample)
    rate_t = torch.tensor(float(rate), dtype=torch.float64, requires_grad=True)
    with own_work(RSAMPLE_RULE):
        z = call_with_generator(rsample, rate_t, n, seed=seed)
    assert isinstance(z, torch.Tensor), f"rsample must return a tensor, got {type(z).__name__}"
    assert z.shape == (n,), f"rsample(rate, {n}) must return shape ({n},), got {tuple(z.shape)}"
    assert z.is_floating_point(), f"the draws must be floating point, got dtype {z.dtype}"
    assert bool(torch.isfinite(z).all()), "some draws are NaN or infinite"
    assert bool((z >= 0).all()), "Exp(rate) draws are never negative, but some of yours are"
    ks = stats.kstest(z.detach().double().numpy(), "expon", args=(0, 1 / rate))
    assert ks.pvalue > ALPHA, (
        f"the draws do not look like Exp(rate) (KS p-value {ks.pvalue:.2g}). "
        "Hint: if E ~ Exp(1), then E / rate ~ Exp(rate); compare your sample mean with 1/rate."
    )
    assert z.requires_grad, (
        "the draws are not connected to rate, so no gradient can flow: did you call .sample()? "
        "Write z as a differentiable function of rate and of noise that does not depend on rate."
    )
    (grad,) = torch.autograd.grad(z.mean(), rate_t)
    se = 1 / (rate**2 * math.sqrt(n))  # each per-sample gradient is -E / rate^2, with sd 1 / rate^2
    assert abs(float(grad) + 1 / rate**2) < Z_CRIT * se, (
        "the gradient of the sample mean w.r.t. rate does not estimate d/d rate E[z]: differentiate E / rate by hand "
        "and compare"
    )
    _correct()


def check_score_variance(value: float) -> None:
    """Exercise: the variance of the single-sample score-function estimate of d/dsigma E[z^2] at mu = 0, sigma = 1.

    The page prints the d/dmu variances, never this one; the hints name the three likeliest slips (the second
    moment, the reparameterized estimator's variance, and the d/dmu variance at this point). Compared by digest
    (:func:`.guard.answer_digest`): the value is in no file of the package.
    """
    check_digest(
        check_number(value),
        "reparam-score-variance",
        "3d0c4cc694666bb8",
        {
            "c26ebc12c46d28cd": "that is the second moment: subtract the squared mean of the estimator",
            "4a16dda98a491f3d": "that is the variance of the reparameterized estimate 2 z eps of d/dsigma, "
            "not of the score function",
            "8f24d34f64c190f8": "that is the variance of the d/dmu estimate at this point: the question asks about "
            "d/dsigma",
        },
        "not right. With mu = 0 and sigma = 1, z = eps and d/dsigma log p(z) = ((z - mu)^2 - sigma^2) / sigma^3, "
        "so the estimate is a polynomial in eps: expand its square and use E eps^(2k) = (2k - 1)!!; do not forget "
        "to subtract the squared mean.",
    )
    _correct()


def _normal_moment(k: int) -> int:
    """E[eps^k] for a standard normal eps: 0 for odd k, (k - 1)!! for even k."""
    return 0 if k % 2 else math.prod(range(k - 1, 0, -2))


def baseline_variance(mu: float, sigma: float, b: float) -> float:
    """Exact variance of ``(z^2 - b) (z - mu) / sigma^2`` for ``z ~ N(mu, sigma^2)``.

    The estimate is a polynomial in the standard-normal noise ``eps`` (``z = mu + sigma eps``); its mean and
    second moment follow from the moments of ``eps``, term by term (exact for integer inputs).
    """
    coeffs = np.polynomial.polynomial.polymul([mu * mu - b, 2 * mu * sigma, sigma * sigma], [0.0, 1.0 / sigma])
    square = np.polynomial.polynomial.polymul(coeffs, coeffs)
    mean = sum(c * _normal_moment(k) for k, c in enumerate(coeffs))
    return float(sum(c * _normal_moment(k) for k, c in enumerate(square)) - mean * mean)


def check_baseline_estimator(estimator: Callable, mu: float = 1.0, sigma: float = 1.0, *, seed: int = 1) -> None:
    """Exercise: ``estimator(mu, sigma, eps)`` turns standard-normal noise ``eps`` (one entry per sample) into
    score-function estimates ``(f(z) - b) d/dmu log p(z)`` of d/dmu E[z^2], with ``z = mu + sigma eps`` and one
    constant baseline ``b``. The noise is fixed, so the check recovers ``b`` from every estimate: it must be one
    number (the same for other noise), and it must cut the variance to at most 3/4 of the plain estimator's.
    A constant or a reparameterized answer (``2 z``) has no such form and fails.
    """
    check_callable(estimator)
    gen = torch.Generator().manual_seed(seed)
    recovered = []
    for _ in range(2):  # two different noise draws: b must not depend on them
        eps = torch.randn(4096, dtype=torch.float64, generator=gen)
        eps = eps[eps.abs() > 0.05]  # recovering b divides by the score eps / sigma
        with own_work(BASELINE_RULE):
            g = estimator(mu, sigma, eps.clone())
        assert isinstance(g, torch.Tensor), f"the estimator must return a tensor, got {type(g).__name__}"
        assert g.shape == eps.shape, (
            f"return one estimate per noise value, shape {tuple(eps.shape)}: got {tuple(g.shape)}"
        )
        g = g.detach().double()
        assert bool(torch.isfinite(g).all()), "some estimates are NaN or infinite"
        z = sigma * eps + mu
        b = z**2 - g * sigma / eps  # from g = (z^2 - b) * eps / sigma
        spread = float(b.max() - b.min())
        assert spread < 1e-6 * (1 + float(b.abs().mean())), (
            "the estimates are not (f(z) - b) * d/dmu log p(z) with one constant b: with "
            "z = mu + sigma eps (as in the question), "
            "d/dmu log p(z) = (z - mu) / sigma^2. A baseline computed from the sample itself, a constant answer or "
            "the reparameterized 2z all fail this."
        )
        recovered.append(float(b.mean()))
    assert math.isclose(recovered[0], recovered[1], rel_tol=1e-9, abs_tol=1e-9), (
        "your baseline changes with the noise: b must be a constant, not a statistic of this batch's samples"
    )
    b = recovered[0]
    plain = baseline_variance(mu, sigma, 0.0)
    assert baseline_variance(mu, sigma, b) < 0.75 * plain, (
        "the estimator has the right form, but your baseline does not cut the variance by more than a quarter: "
        "choose b close to the typical size of f(z) = z^2"
    )
    _correct()
