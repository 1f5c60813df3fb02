"""Check functions for the exercises of the reparameterization chapter.

Each takes the student's answer, raises ``AssertionError`` with an explanation when it is wrong,
and prints "correct" and returns True when it is right. Statistical checks use a fixed seed and
reject a correct answer with probability below about 1e-4.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from numbers import Real

import torch
from scipy import stats

from ..reparameterization_lab import exact_variance

Z_CRIT = 4.0  # two-sided normal quantile for alpha ~ 6e-5
ALPHA = 1e-4


def _correct() -> bool:
    print("correct")
    return True


def _call_with_generator(fn: Callable, *args, seed: int):
    """Call ``fn(*args, generator=...)`` if it accepts a generator, else seed the global RNG and call ``fn(*args)``."""
    gen = torch.Generator().manual_seed(seed)
    try:
        params = inspect.signature(fn).parameters
        takes_generator = "generator" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
    except (TypeError, ValueError):
        takes_generator = False
    if takes_generator:
        return fn(*args, generator=gen)
    torch.manual_seed(seed)
    return fn(*args)


def _check_callable(fn: object) -> None:
    if not callable(fn):
        raise TypeError(f"the answer must be a function, got {fn!r}")


def _check_number(value: object) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"the answer must be a number, got {value!r}")
    return float(value)


def check_exponential_rsample(rsample: Callable, rate: float = 2.0, n: int = 100_000) -> bool:
    """Exercise: ``rsample(rate, n, generator=None)`` must return ``n`` reparameterized draws from Exp(rate).

    ``rate`` is passed as a scalar tensor with ``requires_grad=True``; the draws must follow Exp(rate)
    (Kolmogorov-Smirnov, alpha = 1e-4) and the gradient of their mean must estimate d/d rate E[z] = -1/rate^2.
    """
    _check_callable(rsample)
    rate_t = torch.tensor(float(rate), dtype=torch.float64, requires_grad=True)
    z = _call_with_generator(rsample, rate_t, n, seed=0)
    assert isinstance(z, torch.Tensor), f"rsample must return a tensor, got {type(z).__name__}"
    assert z.shape == (n,), f"rsample(rate, {n}) must return shape ({n},), got {tuple(z.shape)}"
    assert z.is_floating_point(), f"the draws must be floating point, got dtype {z.dtype}"
    assert bool(torch.isfinite(z).all()), "some draws are NaN or infinite"
    assert bool((z >= 0).all()), "Exp(rate) draws are never negative, but some of yours are"
    ks = stats.kstest(z.detach().double().numpy(), "expon", args=(0, 1 / rate))
    assert ks.pvalue > ALPHA, (
        f"the draws do not look like Exp(rate={rate}) (KS p-value {ks.pvalue:.2g}); their mean is "
        f"{float(z.detach().mean()):.4f} but should be 1/rate = {1 / rate:.4f}. "
        "Hint: if E ~ Exp(1), then E / rate ~ Exp(rate)."
    )
    assert z.requires_grad, (
        "the draws are not connected to rate, so no gradient can flow: did you call .sample()? "
        "Write z as a differentiable function of rate and of noise that does not depend on rate."
    )
    (grad,) = torch.autograd.grad(z.mean(), rate_t)
    exact = -1 / rate**2
    se = 1 / (rate**2 * math.sqrt(n))  # each per-sample gradient is -E / rate^2, with sd 1 / rate^2
    assert abs(float(grad) - exact) < Z_CRIT * se, (
        f"the gradient of the mean w.r.t. rate is {float(grad):.5f}, but d/d rate E[z] = -1/rate^2 = {exact:.5f}"
    )
    return _correct()


def check_score_variance(value: float) -> bool:
    """Exercise: the variance of the single-sample score-function estimate of d/dmu E[z^2], mu = sigma = 1."""
    v = _check_number(value)
    exact = exact_variance(1.0, 1.0)["score"]["mu"]
    if math.isclose(v, exact_variance(1.0, 1.0)["reparam"]["mu"], rel_tol=1e-3):
        raise AssertionError(f"{v:g} is the variance of the reparameterized estimator 2z, not of the score function")
    assert math.isclose(v, exact, rel_tol=0.01), (
        f"{v:g} is not right. Write the estimator as z^2 (z - mu) / sigma^2 = (1 + eps)^2 eps, expand, and use "
        "E eps^2 = 1, E eps^4 = 3, E eps^6 = 15; do not forget to subtract the squared mean."
    )
    return _correct()


def check_baseline_estimator(estimator: Callable, mu: float = 1.0, sigma: float = 1.0, n: int = 200_000) -> bool:
    """Exercise: ``estimator(mu, sigma, n, generator=None)`` returns ``n`` score-function estimates of d/dmu E[z^2]
    that use a baseline; they must be unbiased (z-test, alpha ~ 6e-5) and have at most 3/4 of the plain variance.
    """
    _check_callable(estimator)
    g = _call_with_generator(estimator, mu, sigma, n, seed=1)
    assert isinstance(g, torch.Tensor), f"the estimator must return a tensor, got {type(g).__name__}"
    assert g.shape == (n,), f"estimator(mu, sigma, {n}) must return one estimate per sample, shape ({n},)"
    g = g.detach().double()
    assert bool(torch.isfinite(g).all()), "some estimates are NaN or infinite"
    exact, mean, se = 2 * mu, float(g.mean()), float(g.std()) / math.sqrt(n)
    assert abs(mean - exact) < Z_CRIT * se + 1e-12, (
        f"the estimates average {mean:.4f} ± {se:.4f} but the gradient is 2 mu = {exact:g}: the estimator is biased. "
        "A baseline b must not depend on the sample z it multiplies."
    )
    plain = exact_variance(mu, sigma)["score"]["mu"]
    var = float(g.var())
    assert var < 0.75 * plain, (
        f"the variance is {var:.2f}, but the plain score-function estimator already has {plain:.2f}; a good "
        "baseline (for example b = E[f(z)] = mu^2 + sigma^2) should cut it by more than a quarter"
    )
    return _correct()
