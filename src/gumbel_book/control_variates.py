"""Unbiased gradient estimators with control variates: MuProp, REBAR and RELAX (issue #22, work in progress).

Each function returns single-sample estimates of the gradient of ``E_{b ~ Cat(softmax(theta))}[f(b)]`` in
``theta`` for a batch of logits ``theta`` of shape ``[N, K]``: one estimate per row, shape ``[N, K]``. All three
are unbiased whatever their control variate, because each adds to the score-function estimator a term whose
expectation is computed exactly (MuProp) or by the reparameterization trick (REBAR, RELAX):

- :func:`muprop_grads` (Gu et al. 2016): the control variate is the first-order Taylor expansion of ``f`` around
  the mean field ``mu = softmax(theta)``; its expectation is ``f(mu)``, whose gradient flows through ``mu``.
- :func:`rebar_grads` (Tucker et al. 2017): the control variate is ``eta * f(softmax(z / lam))`` of the
  Gumbel-perturbed logits, taken once at the ``z`` that gave ``b`` and once at ``z~ ~ p(z | b)``
  (:func:`conditional_gumbel`); their difference has expectation zero under the score function's weight.
- :func:`relax_grads` (Grathwohl et al. 2018): REBAR's control variate plus a learned network ``r(z)``
  (:class:`ControlVariateNet`, an MLP ``K -> 16 -> 1`` by default); any network keeps the estimate unbiased.

:func:`tune_rebar` tunes REBAR's ``tau`` and ``eta`` by gradient descent on the estimator's variance;
:func:`relax_step` does the same for RELAX's network while it optimizes (the optimization race trains it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .sampling import gumbel_max, sample_gumbel
from .validation import check_int, check_logits_vector, check_real, check_tau

Objective = Callable[[torch.Tensor], torch.Tensor]


def conditional_gumbel(logits: torch.Tensor, b: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Perturbed logits ``z = logits + g`` drawn conditionally on ``argmax z = b``, reparameterized in ``logits``.

    The Gumbel-max theorem gives both pieces: the maximum is Gumbel at ``logsumexp(logits)`` and independent of
    the argmax, so ``z_b = lse - log(-log v_b)``; every other ``z_i`` is Gumbel at ``logits_i`` truncated to lie
    below ``z_b``, by its inverse CDF ``z_i = logits_i - logaddexp(logits_i - z_b, log(-log v_i))``, with
    ``v`` uniform on (0, 1). ``logits`` has shape ``[N, K]`` and ``b`` shape ``[N]``.
    """
    u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
    e = -torch.log(u.clamp_min(torch.finfo(logits.dtype).tiny))  # Exp(1): -log v
    top = torch.logsumexp(logits, dim=-1, keepdim=True) - torch.log(e.gather(-1, b[:, None]))
    others = logits - torch.logaddexp(logits - top, torch.log(e))
    return others.scatter(-1, b[:, None], top)


def _one_hot(b: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.nn.functional.one_hot(b, k).to(dtype)


def muprop_grads(theta: torch.Tensor, f: Objective, generator: torch.Generator | None = None) -> torch.Tensor:
    """MuProp's single-sample estimates for logits ``theta`` ``[N, K]`` (``f`` must accept soft vectors)."""
    theta = theta.detach().requires_grad_(True)
    b = gumbel_max(theta.detach(), generator=generator)
    z = _one_hot(b, theta.shape[-1], theta.dtype)
    mu = torch.softmax(theta, -1)
    point = mu.detach().requires_grad_(True)
    f_mu = f(point)
    (slope,) = torch.autograd.grad(f_mu.sum(), point)
    with torch.no_grad():
        taylor = f_mu + (slope * (z - point)).sum(-1)
        weight = f(z) - taylor
    log_p = torch.log_softmax(theta, -1).gather(-1, b[:, None]).squeeze(-1)
    surrogate = weight * log_p + (slope * mu).sum(-1)
    (grads,) = torch.autograd.grad(surrogate.sum(), theta)
    return grads


def _cv_grads(
    theta: torch.Tensor,
    f: Objective,
    control: Callable[[torch.Tensor], torch.Tensor],
    generator: torch.Generator | None,
    sampler: Callable = conditional_gumbel,
    create_graph: bool = False,
) -> torch.Tensor:
    """REBAR's estimator with control variate ``control(z)`` of the perturbed logits (REBAR and RELAX):
    ``(f(b) - c(z~)) * d log p(b) / d theta + d c(z) / d theta - d c(z~) / d theta``.

    With ``create_graph`` the estimates stay differentiable in whatever ``control`` depends on besides ``theta``
    (REBAR's ``eta`` and ``tau``, RELAX's network), which is how :func:`tune_rebar` descends their variance."""
    theta = theta.detach().requires_grad_(True)
    z = theta + sample_gumbel(theta.shape, dtype=theta.dtype, device=theta.device, generator=generator)
    b = z.detach().argmax(-1)
    z_tilde = sampler(theta, b, generator)
    one_hot = _one_hot(b, theta.shape[-1], theta.dtype)
    with torch.no_grad():
        f_b = f(one_hot)
    c_z, c_tilde = control(z), control(z_tilde)
    (reparam,) = torch.autograd.grad((c_z - c_tilde).sum(), theta, create_graph=create_graph)
    score = one_hot - torch.softmax(theta.detach(), -1)  # d log p(b) / d theta, per row
    grads = (f_b - c_tilde)[:, None] * score + reparam
    return grads if create_graph else grads.detach()


def rebar_grads(
    theta: torch.Tensor,
    f: Objective,
    tau: float | torch.Tensor = 1.0,
    eta: float | torch.Tensor = 1.0,
    generator: torch.Generator | None = None,
    sampler: Callable = conditional_gumbel,
    create_graph: bool = False,
) -> torch.Tensor:
    """REBAR's single-sample estimates: control variate ``eta * f(softmax(z / tau))``. ``tau`` and ``eta`` may be
    tensors that require grad, with ``create_graph=True``: see :func:`tune_rebar`."""
    check_tau(tau)
    if not isinstance(eta, torch.Tensor):
        check_real(eta, "eta")
    return _cv_grads(theta, f, lambda z: eta * f(torch.softmax(z / tau, -1)), generator, sampler, create_graph)


@dataclass
class RebarTuning:
    """What :func:`tune_rebar` found: the last ``tau`` and ``eta``, and the mean square of the estimates (summed
    over the logits) at every step, measured on that step's fresh batch."""

    tau: float
    eta: float
    mean_squares: list[float]


def tune_rebar(
    theta: torch.Tensor,
    f: Objective,
    *,
    tau: float = 1.0,
    eta: float = 1.0,
    steps: int = 200,
    batch: int = 256,
    lr: float = 0.05,
    generator: torch.Generator | None = None,
) -> RebarTuning:
    """Tune REBAR's ``tau`` and ``eta`` for logits ``theta`` ``[K]`` as Tucker et al. (2017) do: by gradient descent
    on the variance of the estimator. Every ``(tau, eta)`` gives the same mean (the estimator is unbiased), so the
    variance moves exactly as the mean square ``E ||g||^2`` does, and a batch of ``batch`` estimates gives an
    unbiased gradient of it. Adam with step ``lr``, on ``log tau`` (so that ``tau`` stays positive) and ``eta``."""
    check_logits_vector(theta, "theta", min_categories=2)
    check_int(steps, "steps")
    check_int(batch, "batch", 2)
    check_real(lr, "lr", positive=True)
    log_tau = torch.tensor(math.log(check_tau(tau)), dtype=theta.dtype, requires_grad=True)
    scale = torch.tensor(check_real(eta, "eta"), dtype=theta.dtype, requires_grad=True)
    optimizer = torch.optim.Adam([log_tau, scale], lr=lr)
    rows = theta.detach().expand(batch, -1)
    history = []
    for _ in range(steps):
        grads = rebar_grads(rows, f, log_tau.exp(), scale, generator=generator, create_graph=True)
        mean_square = grads.pow(2).sum(-1).mean()
        optimizer.zero_grad()
        mean_square.backward()
        optimizer.step()
        history.append(float(mean_square.detach()))
    return RebarTuning(float(log_tau.detach().exp()), float(scale.detach()), history)


class ControlVariateNet(torch.nn.Module):
    """RELAX's default learned part of the control variate: ``r(z) = w2 . tanh(W1 z + b1) + b2``, ``K -> 16 -> 1``,
    initialized from a fixed seed so that an untrained network gives reproducible (and still unbiased) estimates."""

    def __init__(self, num_categories: int, hidden: int = 16, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.hidden = torch.nn.Parameter(torch.randn(num_categories, hidden, generator=gen) / num_categories**0.5)
        self.bias = torch.nn.Parameter(torch.zeros(hidden))
        self.out = torch.nn.Parameter(torch.randn(hidden, generator=gen) / hidden**0.5)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(z @ self.hidden.to(z) + self.bias.to(z))
        return h @ self.out.to(z)


def relax_grads(
    theta: torch.Tensor,
    f: Objective,
    tau: float = 1.0,
    net: torch.nn.Module | None = None,
    generator: torch.Generator | None = None,
    create_graph: bool = False,
) -> torch.Tensor:
    """RELAX's single-sample estimates: control variate ``f(softmax(z / tau)) + net(z)``. With
    ``create_graph=True`` they are differentiable in the network's parameters, to train it on their variance."""
    check_tau(tau)
    net = net if net is not None else ControlVariateNet(theta.shape[-1])
    control = lambda z: f(torch.softmax(z / tau, -1)) + net(z)  # noqa: E731
    return _cv_grads(theta, f, control, generator, create_graph=create_graph)


def relax_step(
    theta: torch.Tensor,
    f: Objective,
    n_samples: int,
    tau: float,
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One step of RELAX as Grathwohl et al. (2018) run it: ``n_samples`` estimates per row of ``theta`` ``[B, K]``
    with the network as it is, then one ``optimizer`` step of the network on their mean square (their variance up
    to a constant, the mean being the same for every network). Returns the ``[B, K]`` averaged estimates, which
    are unbiased: the network that made them had not seen their noise."""
    rows = theta.detach().repeat_interleave(n_samples, dim=0)
    grads = relax_grads(rows, f, tau, net, generator, create_graph=True)
    optimizer.zero_grad()
    grads.pow(2).sum(-1).mean().backward()
    optimizer.step()
    return grads.detach().view(theta.shape[0], n_samples, -1).mean(1)
