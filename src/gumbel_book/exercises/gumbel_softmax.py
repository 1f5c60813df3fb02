"""Checks for the exercises of the Gumbel-Softmax chapter: a binary Concrete sampler, its density, and the
annealing schedule.

Every check returns None when the answer is right and raises ``AssertionError`` with a hint (never the
expected values) when it is wrong; ``TypeError`` only for a non-callable answer. The student's function
runs inside :func:`guard.own_work`: ``gumbel_book.gumbel_softmax``, ``gumbel_book.concrete_log_prob``,
``torch.nn.functional.gumbel_softmax`` and ``torch.distributions`` are unavailable to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Real

import torch
from scipy import stats

from ..sampling import concrete_log_prob
from .guard import check_callable, check_digest, own_work

CHECK_DIFFS = (1.0, -0.5)
ALPHA = 1e-4  # each Kolmogorov-Smirnov test rejects a correct sampler with this probability
SAMPLER_RULE = "use only torch.rand (with the given generator), torch.log, torch.log1p and torch.sigmoid"
DENSITY_RULE = "derive the density yourself and use only torch arithmetic (log, log1p, logaddexp, ...)"


def _call(fn: Callable, rule: str, *args) -> torch.Tensor:
    with own_work(rule):
        out = fn(*args)
    assert isinstance(out, torch.Tensor), f"your function must return a torch.Tensor, it returned {type(out).__name__}"
    return out


def binary_concrete_cdf(x: torch.Tensor, logit_diff: float, tau: float) -> torch.Tensor:
    """P(y1 <= x) for the binary Concrete variable ``y1 = sigmoid((logit_diff + xi) / tau)``, ``xi`` standard logistic.

    ``y1 <= x`` exactly when ``xi <= tau * logit(x) - logit_diff``, and the logistic CDF is the sigmoid.
    """
    return torch.sigmoid(tau * torch.logit(x) - logit_diff)


def check_relaxed_sampler(
    sampler: Callable[[torch.Tensor, float, torch.Generator], torch.Tensor],
    *,
    seed: int = 1234,
    diffs: Sequence[float] = CHECK_DIFFS,
) -> None:
    """Check ``sampler(logit_diff, tau, generator)``: binary Concrete samples ``y1`` from uniform noise.

    ``logit_diff`` is a 1-d tensor, one logit difference ``l1 - l2`` per sample; ``y1`` must have its shape,
    lie in [0, 1], follow the law of the first coordinate of :func:`gumbel_book.gumbel_softmax` on logits
    ``(l1, l2)`` (a Kolmogorov-Smirnov test against the exact CDF :func:`binary_concrete_cdf` at two temperatures,
    ``ALPHA`` each), and be a reparameterized sample: its derivative in ``logit_diff`` must be
    ``y1 (1 - y1) / tau``, the derivative of ``sigmoid((logit_diff + xi) / tau)`` for the noise ``xi`` it used.
    """
    check_callable(sampler)
    n = 20_000
    for j, (diff, tau) in enumerate(zip(diffs, (1.0, 0.5), strict=True)):
        leaf = torch.full((n,), float(diff), requires_grad=True)
        y1 = _call(sampler, SAMPLER_RULE, leaf, tau, torch.Generator().manual_seed(seed + j))
        assert y1.shape == (n,), f"expected one sample per logit difference, shape ({n},), got {tuple(y1.shape)}"
        assert bool(torch.isfinite(y1).all()), "your samples contain NaN or inf (did you take log(0)?)"
        assert bool(((y1 >= 0) & (y1 <= 1)).all()), "y1 is the first coordinate of a point of the simplex: in [0, 1]"
        values = y1.detach().double().clamp(1e-12, 1 - 1e-12)

        def cdf(x, d=diff, t=tau):
            return binary_concrete_cdf(torch.from_numpy(x), d, t).numpy()

        ks = stats.kstest(values.numpy(), cdf)
        assert ks.pvalue > ALPHA, (
            f"at tau={tau} your samples do not follow the binary Concrete law (KS p-value {ks.pvalue:.2g}). "
            "Hint: y1 = sigmoid((logit_diff + xi) / tau), where xi = g1 - g2 is the difference of two independent "
            "Gumbels, a standard logistic variable: invert its CDF to draw it from one uniform"
        )
        assert y1.requires_grad, "no gradient reaches logit_diff: build y1 from logit_diff with torch operations"
        (grad,) = torch.autograd.grad(y1.sum(), leaf)
        pathwise = (y1 * (1 - y1) / tau).detach()
        assert torch.allclose(grad, pathwise.to(grad.dtype), rtol=1e-3, atol=1e-6), (
            "the gradient of y1 in logit_diff is not the pathwise one: with the noise held fixed, y1 should be "
            "sigmoid((logit_diff + noise) / tau)"
        )
    print("correct")


def check_binary_concrete_log_density(
    log_density: Callable[[torch.Tensor, float, float], torch.Tensor],
    *,
    taus: Sequence[float] = (0.3, 1.0, 2.5),
    diffs: Sequence[float] = (-1.5, 0.0, 2.0),
) -> None:
    """Check ``log_density(y1, logit_diff, tau)``: the log density of y1 when K = 2 and logits = (logit_diff, 0).

    Compared with :func:`gumbel_book.concrete_log_prob` on a grid of y1 in (0, 1), for each tau and logit_diff.
    """
    check_callable(log_density)
    y1 = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    for tau in taus:
        for diff in diffs:
            mine = _call(log_density, DENSITY_RULE, y1.clone(), diff, tau).double()
            assert mine.shape == y1.shape, f"expected shape {tuple(y1.shape)}, got {tuple(mine.shape)}"
            y = torch.stack([y1, 1 - y1], dim=-1)
            ref = concrete_log_prob(y, torch.tensor([diff, 0.0], dtype=torch.float64).expand_as(y), tau)
            worst = float((mine - ref).abs().max())
            assert worst < 1e-6, (
                f"at tau={tau}, logit_diff={diff} your log density is off by up to {worst:.3g} "
                "(hint: y1 = sigmoid((logit_diff + L) / tau) with L ~ Logistic(0, 1); change variables, and do not "
                "forget the log of the Jacobian)"
            )
    print("correct")


ANNEAL_STEP = 30_599
"""The global step both schedule questions ask about: not a multiple of any update interval or epoch they use."""
GLOBAL_SCHEDULE = {"rate": 2e-5, "every": 700, "tau_min": 0.5}
"""(a): the temperature at global step :data:`ANNEAL_STEP` under this schedule."""
RESTARTED_SCHEDULE = {"rate": 1e-3, "every": 50, "tau_min": 0.5}
"""(b): the same step when the counter restarts every epoch of the book's VAE."""


def check_annealing_answers(tau_global: float, tau_restarted: float) -> None:
    """Check two temperatures of the schedule max(0.5, exp(-r t)), t rounded down to a multiple of N.

    ``tau_global``: at global step :data:`ANNEAL_STEP` with r = 2e-5, N = 700. ``tau_restarted``: at the same
    global step with r = 1e-3, N = 50, when the step counter restarts every epoch of the book's VAE
    (:func:`gumbel_book.labs.gumbel_softmax.vae_epoch`).
    """
    answers = {"tau_global": tau_global, "tau_restarted": tau_restarted}
    for name, value in answers.items():
        assert isinstance(value, Real) and not isinstance(value, bool), f"{name} must be a number, got {value!r}"
        assert 0 < value <= 1, f"{name} must be a temperature of this schedule, between its floor and tau0: got {value}"
    check_digest(
        tau_global,
        "gs-anneal-global",
        "d7031104b6f8ff26",
        {"dce5e2b3d71c2649": "tau_global: the schedule only changes every N steps; round t down first"},
        "tau_global is not right: round the step down to a multiple of N, then apply max(0.5, exp(-r t))",
    )
    check_digest(
        tau_restarted,
        "gs-anneal-restarted",
        "bb3210d0833fcab8",
        {"e3a4c1f4e09f88aa": "tau_restarted: that is the global schedule; which step does the restarted counter show?"},
        "tau_restarted is not right: find the step within the epoch (how many steps is an epoch of the book's "
        "VAE?), round it down to a multiple of N, then apply the schedule",
    )
    print("correct")
