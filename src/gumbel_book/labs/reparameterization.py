"""The score-function and reparameterization gradient estimators on a Gaussian toy problem.

The toy objective is ``L(mu, sigma) = E_{z ~ N(mu, sigma^2)} [(z - target)^2] = (mu - target)^2 + sigma^2``,
so its gradient ``(2 (mu - target), 2 sigma)`` and the variance of each single-sample estimator are
known in closed form. Both estimators are computed with autograd, exactly as one would in a model:
the score-function one through ``log_prob`` of a detached sample, the reparameterized one through
``z = mu + sigma * eps``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ..validation import check_choice, check_int, check_int_sequence, check_real

ESTIMATORS = ("score", "reparam")
"""The two gradient estimators of a *continuous* variable that this chapter compares: ``"score"`` is the
score-function estimator (REINFORCE, ``f(z) * grad log p(z)``) and ``"reparam"`` the pathwise one (the gradient
through ``z = mu + sigma * eps``). Not the discrete estimators of :data:`gumbel_book.estimators.REGISTRY`, which
estimate gradients through a categorical sample; every function here checks its ``estimator`` against this tuple."""

PARAMS = ("mu", "sigma")
"""The parameters of ``N(mu, sigma^2)`` a gradient is taken in."""

Objective = Callable[[torch.Tensor], torch.Tensor]


def _params(mu: float, sigma: float, target: float) -> tuple[float, float, float]:
    """``(mu, sigma, target)`` as floats: finite real numbers, ``sigma > 0``."""
    return check_real(mu, "mu"), check_real(sigma, "sigma", positive=True), check_real(target, "target")


def objective(mu: float, sigma: float, target: float = 0.0) -> float:
    """The exact toy objective ``E[(z - target)^2] = (mu - target)^2 + sigma^2`` for ``z ~ N(mu, sigma^2)``."""
    mu, sigma, target = _params(mu, sigma, target)
    return (mu - target) ** 2 + sigma**2


def exact_gradient(mu: float, sigma: float, target: float = 0.0) -> dict[str, float]:
    """The exact gradient of :func:`objective`: ``{"mu": 2 (mu - target), "sigma": 2 sigma}``."""
    mu, sigma, target = _params(mu, sigma, target)
    return {"mu": 2 * (mu - target), "sigma": 2 * sigma}


def exact_variance(mu: float, sigma: float, target: float = 0.0) -> dict[str, dict[str, float]]:
    """Closed-form variance of each *single-sample* estimator of :func:`exact_gradient`.

    With ``a = mu - target`` and Gaussian moments ``E eps^(2k) = (2k - 1)!!``:
    score/mu ``a^4/sigma^2 + 14 a^2 + 15 sigma^2``, score/sigma ``2 a^4/sigma^2 + 60 a^2 + 74 sigma^2``,
    reparam/mu ``4 sigma^2``, reparam/sigma ``4 a^2 + 8 sigma^2``. An n-sample average has 1/n of these.
    """
    mu, sigma, target = _params(mu, sigma, target)
    a2, s2 = (mu - target) ** 2, sigma**2
    return {
        "score": {"mu": a2**2 / s2 + 14 * a2 + 15 * s2, "sigma": 2 * a2**2 / s2 + 60 * a2 + 74 * s2},
        "reparam": {"mu": 4 * s2, "sigma": 4 * a2 + 8 * s2},
    }


def _square_loss(target: float) -> Objective:
    return lambda z: (z - target) ** 2


def gradient_samples(
    estimator: str,
    mu: float,
    sigma: float,
    n: int,
    *,
    target: float = 0.0,
    f: Objective | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """``n`` independent single-sample gradient estimates of ``E[f(z)]`` w.r.t. ``(mu, sigma)``, via autograd.

    ``estimator="score"``: ``f(z) * grad log N(z; mu, sigma)`` with ``z`` detached (REINFORCE).
    ``estimator="reparam"``: ``grad f(mu + sigma * eps)`` with ``eps ~ N(0, 1)``. ``f`` defaults to
    ``(z - target)^2``; it must act elementwise. Returns float64 tensors ``{"mu": [n], "sigma": [n]}``.
    """
    check_choice(estimator, ESTIMATORS, "estimator")
    mu, sigma, target = _params(mu, sigma, target)
    n = check_int(n, "n")
    if f is not None and not callable(f):
        raise TypeError(f"f must be a callable mapping a tensor of samples to a tensor of values, got {f!r}")
    f = _square_loss(target) if f is None else f
    if device is None and generator is not None:
        device = generator.device
    # One copy of each parameter per sample: the gradient of the sum is then the per-sample gradient.
    mu_t = torch.full((n,), mu, dtype=torch.float64, device=device, requires_grad=True)
    sigma_t = torch.full((n,), sigma, dtype=torch.float64, device=device, requires_grad=True)
    eps = torch.randn(n, dtype=torch.float64, device=device, generator=generator)
    z = mu_t + sigma_t * eps
    if estimator == "reparam":
        surrogate = f(z)
    else:
        log_p = torch.distributions.Normal(mu_t, sigma_t).log_prob(z.detach())
        surrogate = f(z.detach()) * log_p
    if not isinstance(surrogate, torch.Tensor) or surrogate.shape != z.shape:
        raise ValueError(f"f must return one value per sample (shape {tuple(z.shape)}), got {surrogate!r}")
    g_mu, g_sigma = torch.autograd.grad(surrogate.sum(), (mu_t, sigma_t))
    return {"mu": g_mu.detach(), "sigma": g_sigma.detach()}


def sample_has_gradient(mu: float = 0.0, sigma: float = 1.0) -> dict[str, bool]:
    """Whether a draw from ``Normal(mu, sigma)`` is connected to the parameters: ``.sample()`` vs ``.rsample()``."""
    mu, sigma, _ = _params(mu, sigma, 0.0)
    mu_t = torch.tensor(mu, requires_grad=True)
    sigma_t = torch.tensor(sigma, requires_grad=True)
    dist = torch.distributions.Normal(mu_t, sigma_t)
    return {"sample": dist.sample().requires_grad, "rsample": dist.rsample().requires_grad}


def bias_check(
    mu: float, sigma: float, n: int, *, target: float = 0.0, seed: int = 0
) -> dict[str, dict[str, dict[str, float]]]:
    """Mean of ``n`` estimates of each estimator, its standard error and z-score against the exact gradient.

    ``|z| < 3.29`` is what an unbiased estimator gives with probability 0.999.
    """
    exact = exact_gradient(mu, sigma, target)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for k, estimator in enumerate(ESTIMATORS):
        gen = torch.Generator().manual_seed(seed + k)
        samples = gradient_samples(estimator, mu, sigma, n, target=target, generator=gen)
        out[estimator] = {}
        for p in PARAMS:
            mean = float(samples[p].mean())
            se = float(samples[p].std()) / math.sqrt(n)
            out[estimator][p] = {"mean": mean, "se": se, "exact": exact[p], "z": (mean - exact[p]) / se}
    return out


def running_mean(
    estimator: str, mu: float, sigma: float, n: int, *, param: str = "mu", target: float = 0.0, seed: int = 0
) -> torch.Tensor:
    """The running average of ``n`` single-sample estimates: entry ``i`` is the estimate from ``i + 1`` samples."""
    check_choice(param, PARAMS, "param")
    gen = torch.Generator().manual_seed(seed)
    samples = gradient_samples(estimator, mu, sigma, n, target=target, generator=gen)[param]
    return samples.cumsum(0) / torch.arange(1, n + 1, dtype=samples.dtype)


def variance_vs_n(
    mu: float,
    sigma: float,
    ns: Sequence[int],
    *,
    repeats: int = 400,
    param: str = "mu",
    target: float = 0.0,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Empirical variance of the ``n``-sample average of each estimator, over ``repeats`` independent runs.

    Returns ``{"n": [len(ns)], "score": [len(ns)], "reparam": [len(ns)]}`` (float64); the exact values
    are ``exact_variance(...)[estimator][param] / n``.
    """
    check_choice(param, PARAMS, "param")
    repeats = check_int(repeats, "repeats", minimum=2)
    ns = check_int_sequence(ns, "ns")
    out = {"n": torch.tensor(ns, dtype=torch.float64)}
    for k, estimator in enumerate(ESTIMATORS):
        gen = torch.Generator().manual_seed(seed + k)
        variances = []
        for n in ns:
            samples = gradient_samples(estimator, mu, sigma, n * repeats, target=target, generator=gen)[param]
            variances.append(samples.view(repeats, n).mean(dim=1).var())
        out[estimator] = torch.stack(variances)
    return out


def estimator_histograms(
    mu: float, sigma: float, n: int, bins: torch.Tensor, *, param: str = "mu", target: float = 0.0, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Density histograms (over the fixed bin ``edges``) of ``n`` single-sample estimates of each estimator.

    The mass that falls outside the edges is dropped; ``{"outside": ...}`` reports its fraction per estimator.
    """
    check_choice(param, PARAMS, "param")
    if not isinstance(bins, torch.Tensor) or bins.dim() != 1 or bins.numel() < 2:
        raise ValueError(f"bins must be a 1-d tensor of at least 2 increasing edges, got {bins!r}")
    edges = bins.to(torch.float64)
    if not bool((edges[1:] > edges[:-1]).all()):
        raise ValueError("bins must be strictly increasing")
    widths = edges[1:] - edges[:-1]
    out: dict[str, torch.Tensor] = {"edges": edges}
    for k, estimator in enumerate(ESTIMATORS):
        gen = torch.Generator().manual_seed(seed + k)
        samples = gradient_samples(estimator, mu, sigma, n, target=target, generator=gen)[param]
        counts = torch.histogram(samples, bins=edges).hist
        out[estimator] = counts / (n * widths)
        out[f"{estimator}_outside"] = torch.tensor(1 - float(counts.sum()) / n, dtype=torch.float64)
    return out
