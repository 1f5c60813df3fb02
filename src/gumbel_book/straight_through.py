"""Straight-through samplers: exactly one-hot in the forward pass, a surrogate gradient in the backward pass.

Each function here is a drop-in layer, like ``gumbel_softmax(hard=True)`` (which is ST-Gumbel-Softmax and is
not repeated here). They differ only in the backward pass:

* :func:`straight_through_softmax` -- plain ST: the softmax's gradient. It is the categorical form, as written
  out by Liu et al. (2023), of the straight-through estimator that Bengio, Léonard & Courville (2013) stated for
  binary stochastic units.
* :func:`reinmax` -- ReinMax (Liu et al., NeurIPS 2023): a second-order (Heun) correction of plain ST.
* :func:`gumbel_rao` -- Gumbel-Rao Monte Carlo (Paulus, Maddison & Krause, ICLR 2021): the ST-Gumbel-Softmax
  gradient averaged over Gumbel noise drawn *conditionally* on the sampled category.

All three write the output as ``y_hard + (s - s.detach())`` with a surrogate ``s``: the bracket is exactly
zero, so the forward value is exactly one-hot, and its gradient is the surrogate's.
"""

from __future__ import annotations

import torch

from .sampling import clamp_tau, compute_dtype, gumbel_from_exponential, gumbel_max
from .validation import check_int, check_logits, check_tau

__all__ = [
    "conditional_gumbel",
    "gumbel_rao",
    "reinmax",
    "reinmax_given",
    "straight_through_given",
    "straight_through_softmax",
]


def _one_hot(index: torch.Tensor, like: torch.Tensor, dim: int) -> torch.Tensor:
    """A one-hot tensor shaped like ``like`` with a 1 at ``index`` (``index`` has ``dim`` removed)."""
    return torch.zeros_like(like).scatter_(dim, index.unsqueeze(dim), 1.0)


def _check_index(index: torch.Tensor, logits: torch.Tensor, dim: int) -> None:
    """``index`` must be int64 with ``logits``' shape minus ``dim`` and values in ``[0, K)``."""
    if not isinstance(index, torch.Tensor) or index.dtype != torch.int64:
        raise TypeError(f"index must be an int64 tensor, got {getattr(index, 'dtype', type(index).__name__)}")
    expected = logits.shape[:dim] + logits.shape[dim + 1 :]
    if index.shape != expected:
        raise ValueError(f"index of shape {tuple(index.shape)} does not match logits without dim: {tuple(expected)}")
    k = logits.shape[dim]
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= k):
        raise ValueError(f"index values must lie in [0, {k - 1}], got min {int(index.min())}, max {int(index.max())}")


def _straight_through(y_hard: torch.Tensor, surrogate: torch.Tensor, out_dtype: torch.dtype) -> torch.Tensor:
    """``y_hard`` in the forward pass, ``surrogate``'s gradient in the backward pass (the bracket is exactly 0)."""
    return (y_hard + (surrogate - surrogate.detach())).to(out_dtype)


def _softmax_with_jacobian_at(logits: torch.Tensor, q: torch.Tensor, dim: int) -> torch.Tensor:
    """A tensor whose value is ``q`` and whose Jacobian in ``logits`` is that of a softmax at ``q``.

    It is ``softmax(logits + c)`` with the constant ``c = log q - logits`` (detached), the trick of
    Liu et al. (2023, Algorithm 2). Masked (-inf) logits have ``q = 0`` and keep ``c = 0``.
    """
    finite = torch.isfinite(logits)
    c = torch.where(finite, torch.log(q) - logits, torch.zeros_like(q)).detach()
    return torch.softmax(logits + c, dim=dim)


def straight_through_softmax(
    logits: torch.Tensor, dim: int = -1, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Plain straight-through: a one-hot sample of Categorical(softmax(logits)), backward as ``softmax(logits)``.

    No temperature and no noise in the backward pass. Bengio et al. (2013) stated straight-through for binary
    stochastic units; this categorical (softmax) form is the one Liu et al. (2023) write out, and the book calls
    it plain ST. The sample is a Gumbel-max draw, so a ``generator`` makes it reproducible.
    """
    dim = check_logits(logits, dim)
    index = gumbel_max(logits, dim=dim, generator=generator)
    return straight_through_given(logits, index, dim)


def straight_through_given(logits: torch.Tensor, index: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Plain ST for a given sampled category ``index`` (int64, ``logits``' shape without ``dim``).

    Given the sample, plain ST is deterministic, so averaging this over ``index`` gives its exact mean.
    """
    dim = check_logits(logits, dim)
    _check_index(index, logits, dim)
    compute = compute_dtype(logits.dtype)
    probs = torch.softmax(logits.to(compute), dim=dim)
    return _straight_through(_one_hot(index, probs, dim), probs, logits.dtype)


def reinmax(
    logits: torch.Tensor, tau: float | torch.Tensor = 1.0, dim: int = -1, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """ReinMax (Liu et al. 2023): a one-hot sample of Categorical(softmax(logits)) with a second-order gradient.

    With ``pi0 = softmax(logits)``, the sample ``D`` and ``pi1 = (D + softmax(logits / tau)) / 2``, the
    backward pass is ``2 * J(pi1) - J(pi0) / 2``, where ``J(q) = diag(q) - q q^T`` is the softmax Jacobian
    at ``q``. The paper recommends ``tau >= 1``. The forward sample does not depend on ``tau``.
    """
    dim = check_logits(logits, dim)
    check_tau(tau)
    index = gumbel_max(logits, dim=dim, generator=generator)
    return reinmax_given(logits, index, tau, dim)


def reinmax_given(
    logits: torch.Tensor, index: torch.Tensor, tau: float | torch.Tensor = 1.0, dim: int = -1
) -> torch.Tensor:
    """ReinMax for a given sampled category ``index`` (int64, ``logits``' shape without ``dim``).

    Given the sample, ReinMax is deterministic, so averaging this over ``index`` gives its exact mean.
    """
    tau = check_tau(tau)
    dim = check_logits(logits, dim)
    _check_index(index, logits, dim)
    compute = compute_dtype(logits.dtype)
    lg = logits.to(compute)
    pi0 = torch.softmax(lg, dim=dim)
    y_hard = _one_hot(index, pi0, dim)
    shifted = lg - lg.amax(dim=dim, keepdim=True).detach()
    pi_tau = torch.softmax(shifted / clamp_tau(tau, compute, lg.device), dim=dim).detach()
    pi1 = 0.5 * (y_hard + pi_tau)
    surrogate = 2.0 * _softmax_with_jacobian_at(lg, pi1, dim) - 0.5 * pi0
    return _straight_through(y_hard, surrogate, logits.dtype)


def conditional_gumbel(
    logits: torch.Tensor,
    index: torch.Tensor,
    mc_samples: int,
    dim: int = -1,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw ``mc_samples`` perturbed logits ``x = logits + g`` conditioned on ``argmax(x) = index``.

    Top-down sampling (Maddison, Tarlow & Minka 2014): the maximum is Gumbel(logsumexp(logits)), and
    every other ``x_i`` is a Gumbel(logits_i) truncated below the maximum, ``-log(exp(-x_max) + E_i exp(-logits_i))``
    with ``E_i ~ Exp(1)``. Returns shape ``[mc_samples, *logits.shape]`` in the compute dtype, detached;
    masked (-inf) logits stay -inf.
    """
    dim = check_logits(logits, dim)
    mc_samples = check_int(mc_samples, "mc_samples")
    _check_index(index, logits, dim)
    compute = compute_dtype(logits.dtype)
    with torch.no_grad():
        lg = logits.to(compute)
        e = torch.empty((mc_samples, *lg.shape), dtype=compute, device=lg.device).exponential_(generator=generator)
        d = dim + 1
        log_e = -gumbel_from_exponential(e)  # log E, finite
        lse = lg.logsumexp(dim=dim, keepdim=True).unsqueeze(0)
        idx = index.unsqueeze(dim).unsqueeze(0).expand(mc_samples, *index.unsqueeze(dim).shape)
        x_max = lse - log_e.gather(d, idx)  # Gumbel(logsumexp): the maximum
        others = -torch.logaddexp(log_e - lg.unsqueeze(0), -x_max)  # truncated below x_max
        return others.scatter(d, idx, x_max)


def gumbel_rao(
    logits: torch.Tensor,
    tau: float | torch.Tensor = 1.0,
    mc_samples: int = 10,
    dim: int = -1,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Gumbel-Rao Monte Carlo (Paulus et al. 2021): a one-hot Gumbel-max sample whose backward pass averages
    the ST-Gumbel-Softmax gradient over ``mc_samples`` Gumbel draws conditioned on the sampled category.

    Rao-Blackwellisation can only lower the variance of ST-Gumbel-Softmax, never change its mean.
    """
    tau = check_tau(tau)
    dim = check_logits(logits, dim)
    compute = compute_dtype(logits.dtype)
    lg = logits.to(compute)
    index = gumbel_max(lg, dim=dim, generator=generator)
    x = conditional_gumbel(lg, index, mc_samples, dim=dim, generator=generator)
    noise = torch.where(torch.isfinite(lg), x - lg.detach(), torch.zeros_like(x))  # the conditioned g, a constant
    z = lg + noise
    z = z - z.amax(dim=dim + 1, keepdim=True).detach()
    surrogate = torch.softmax(z / clamp_tau(tau, compute, lg.device), dim=dim + 1).mean(dim=0)
    y_hard = _one_hot(index, lg, dim)
    return _straight_through(y_hard, surrogate, logits.dtype)
