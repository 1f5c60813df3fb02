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
from scipy import stats

from ..validation import check_choice, check_int, check_int_sequence, check_real

ESTIMATORS = ("score", "reparam")
"""The two gradient estimators of a *continuous* variable that this chapter compares: ``"score"`` is the
score-function estimator (REINFORCE, ``f(z) * grad log p(z)``) and ``"reparam"`` the pathwise one (the gradient
through ``z = mu + sigma * eps``). Not the discrete estimators of :data:`gumbel_book.estimators.REGISTRY`, which
estimate gradients through a categorical sample; every function here checks its ``estimator`` against this tuple."""

PARAMS = ("mu", "sigma")
"""The parameters of ``N(mu, sigma^2)`` a gradient is taken in."""

ALPHA = 1e-3
"""The chapter's significance level: a true sentence fails its statistical guard less than once in 1/ALPHA builds."""

HISTOGRAM_EDGES = torch.linspace(-25, 25, 101, dtype=torch.float64)
"""The bin edges of the histogram figure: 100 bins of width 0.5."""


def z_critical(tests: int = 1, alpha: float = ALPHA) -> float:
    """The two-sided normal quantile for ``tests`` z-tests at family-wise level ``alpha`` (Bonferroni).

    ``z_critical(1)`` is about 3.29: an unbiased estimate lands within that many standard errors of the truth
    with probability 1 - alpha; with ``tests`` tests each uses ``alpha / tests``.
    """
    tests = check_int(tests, "tests")
    alpha = check_real(alpha, "alpha", positive=True)
    if alpha >= 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return float(stats.norm.isf(alpha / (2 * tests)))


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

    Returns ``{"n": [len(ns)], "score": [len(ns)], "reparam": [len(ns)], "score_se": ..., "reparam_se": ...}``
    (float64): each variance and its standard error ``sqrt((m4 - v^2) / repeats)`` (``m4`` the fourth central
    moment of the averages), so a z-test of a variance against its exact value, ``exact_variance(...)[estimator]
    [param] / n``, has a stated error rate even for the heavy-tailed score-function estimate.
    """
    check_choice(param, PARAMS, "param")
    repeats = check_int(repeats, "repeats", minimum=2)
    ns = check_int_sequence(ns, "ns")
    out = {"n": torch.tensor(ns, dtype=torch.float64)}
    for k, estimator in enumerate(ESTIMATORS):
        gen = torch.Generator().manual_seed(seed + k)
        variances, errors = [], []
        for n in ns:
            samples = gradient_samples(estimator, mu, sigma, n * repeats, target=target, generator=gen)[param]
            means = samples.view(repeats, n).mean(dim=1)
            v = means.var()
            m4 = ((means - means.mean()) ** 4).mean()
            variances.append(v)
            errors.append(((m4 - v**2).clamp(min=0) / repeats).sqrt())
        out[estimator] = torch.stack(variances)
        out[f"{estimator}_se"] = torch.stack(errors)
    return out


def estimator_histograms(
    mu: float, sigma: float, n: int, bins: torch.Tensor, *, param: str = "mu", target: float = 0.0, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Density histograms (over the fixed bin ``edges``) of ``n`` single-sample estimates of each estimator.

    The mass that falls outside the edges is dropped; ``"<estimator>_outside"`` reports its fraction. Beside each
    histogram are summaries of all ``n`` estimates (0-d float64 tensors): ``"<estimator>_mean"`` and its standard
    error ``"<estimator>_se"``, ``"<estimator>_median"``, ``"<estimator>_var"`` and ``"<estimator>_negative"``
    (the fraction of estimates below zero), and ``"<estimator>_peak"``, the centre of the tallest bar.
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
        tallest = int(out[estimator].argmax())
        summary = {
            "mean": samples.mean(),
            "se": samples.std() / math.sqrt(n),
            "median": samples.median(),
            "var": samples.var(),
            "negative": (samples < 0).double().mean(),
            "peak": (edges[tallest] + edges[tallest + 1]) / 2,
        }
        out.update({f"{estimator}_{key}": value.detach() for key, value in summary.items()})
    return out


def histogram_sweep(
    mus: Sequence[float],
    sigma: float = 1.0,
    n: int = 20_000,
    edges: torch.Tensor | None = None,
    *,
    param: str = "mu",
    seed: int = 0,
) -> dict[str, object]:
    """:func:`estimator_histograms` at each mean in ``mus`` (the data of the histogram figure and its guards).

    Returns ``{"mus": [...], "sigma": sigma, "n": n, "edges": edges, "panels": [one histogram dict per mu]}``;
    panel ``i`` is drawn with seed ``seed + 10 i``, so the panels are independent.
    """
    if isinstance(mus, str) or not isinstance(mus, Sequence) or len(mus) == 0:
        raise ValueError(f"mus must be a non-empty sequence of means, got {mus!r}")
    mus = [check_real(m, f"mus[{i}]") for i, m in enumerate(mus)]
    n = check_int(n, "n")
    edges = HISTOGRAM_EDGES if edges is None else edges
    panels = [estimator_histograms(mu, sigma, n, edges, param=param, seed=seed + 10 * i) for i, mu in enumerate(mus)]
    return {"mus": mus, "sigma": sigma, "n": n, "edges": panels[0]["edges"], "panels": panels}
