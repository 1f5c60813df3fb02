"""Checks for the exercises of the Gumbel-Softmax chapter.

Every check returns None when the answer is right and raises ``AssertionError`` with a hint (never the
expected values) when it is wrong; ``TypeError`` only for a non-callable answer. The student's function
runs inside :func:`guard.own_work`: ``gumbel_book.gumbel_softmax``, ``gumbel_book.concrete_log_prob``,
``torch.nn.functional.gumbel_softmax`` and ``torch.distributions`` are unavailable to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ..labs.gumbel_softmax import relaxed_samples
from ..sampling import concrete_log_prob
from ..schedule import anneal_tau
from .guard import check_callable, own_work

CHECK_LOGITS = (1.0, 0.0, -0.7)
Z_LIMIT = 5.0  # two-sided z-test per coordinate: alpha ≈ 6e-7 each, so a correct answer essentially never fails
SAMPLER_RULE = "use only torch.rand (with the given generator), torch.log and torch.softmax"
DENSITY_RULE = "derive the density yourself and use only torch arithmetic (log, log1p, logaddexp, ...)"


def _call(fn: Callable, rule: str, *args) -> torch.Tensor:
    with own_work(rule):
        out = fn(*args)
    assert isinstance(out, torch.Tensor), f"your function must return a torch.Tensor, it returned {type(out).__name__}"
    return out


def check_relaxed_sampler(
    sampler: Callable[[torch.Tensor, float, torch.Generator], torch.Tensor],
    *,
    seed: int = 1234,
    logits: Sequence[float] = CHECK_LOGITS,
) -> None:
    """Check ``sampler(logits, tau, generator)``: Gumbel-Softmax samples along the last dim, built from uniform noise.

    It must return points of the simplex with the law of :func:`gumbel_book.gumbel_softmax` (checked
    by z-tests at Z_LIMIT standard errors), become one-hot Gumbel-max samples as tau -> 0, and let
    gradients flow to the logits.
    """
    check_callable(sampler)
    n, k = 20_000, len(logits)
    batch = torch.tensor(logits).expand(n, -1)
    y = _call(sampler, SAMPLER_RULE, batch, 1.0, torch.Generator().manual_seed(seed))
    assert y.shape == batch.shape, f"expected shape {tuple(batch.shape)}, got {tuple(y.shape)}"
    assert bool(torch.isfinite(y).all()), "your samples contain NaN or inf (did you take log(0)? keep u away from 0)"
    assert bool((y >= 0).all()), "samples must be non-negative: softmax outputs are"
    ones = torch.ones(n, dtype=y.dtype)
    assert torch.allclose(y.sum(-1), ones, atol=1e-4), "each sample must sum to 1 along the last dim"
    for j, tau in enumerate((1.0, 0.5)):
        mine = _call(sampler, SAMPLER_RULE, batch, tau, torch.Generator().manual_seed(seed + 1 + j)).double()
        ref = relaxed_samples(list(logits), tau, n, seed=seed + 99, device="cpu").double()
        se = (mine.var(0) / n + ref.var(0) / n).sqrt()
        z = ((mine.mean(0) - ref.mean(0)) / se).abs()
        assert bool((z < Z_LIMIT).all()), (
            f"at tau={tau} the mean of your samples differs from the Gumbel-Softmax mean by up to "
            f"{float(z.max()):.1f} standard errors: check the noise is Gumbel, -log(-log(u)), and that you divide "
            "(logits + g) by tau"
        )
    cold = _call(sampler, SAMPLER_RULE, batch, 1e-3, torch.Generator().manual_seed(seed + 3)).double()
    assert float(cold.max(-1).values.mean()) > 0.99, "at tau=0.001 the samples should be (almost) one-hot"
    pi = torch.softmax(torch.tensor(logits, dtype=torch.float64), -1)
    freq = torch.nn.functional.one_hot(cold.argmax(-1), k).double().mean(0)
    z = ((freq - pi) / (pi * (1 - pi) / n).sqrt()).abs()
    assert bool((z < Z_LIMIT).all()), (
        "as tau -> 0 the argmax frequencies of your samples should match softmax(logits): is the noise added to the "
        "logits (log-probabilities)?"
    )
    leaf = torch.tensor(logits, requires_grad=True)
    out = _call(sampler, SAMPLER_RULE, leaf.expand(8, -1), 0.5, torch.Generator().manual_seed(seed))
    assert out.requires_grad, "no gradient reaches the logits: build the sample from logits with torch ops"
    (out[:, 0]).sum().backward()
    assert leaf.grad is not None and bool(torch.isfinite(leaf.grad).all()) and float(leaf.grad.abs().sum()) > 0, (
        "the gradient with respect to the logits should be finite and non-zero"
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


def check_annealing_answers(first_step_at_min: int, tau_after_30000_restarted: float) -> None:
    """Check two numbers about the schedule max(0.5, exp(-r t)) with r = 1e-4, updated every N = 1000 steps.

    ``first_step_at_min``: the first global step at which tau equals 0.5. ``tau_after_30000_restarted``:
    tau at global step 30,000 when the step counter restarts every epoch of 600 steps.
    """
    kw = {"rate": 1e-4, "every": 1000, "tau_min": 0.5}
    expected_step = next(s for s in range(0, 10**6, 1000) if anneal_tau(s, **kw) == 0.5)
    assert isinstance(first_step_at_min, int) and not isinstance(first_step_at_min, bool), (
        f"first_step_at_min must be an int, got {first_step_at_min!r}"
    )
    assert first_step_at_min == expected_step, (
        "the first step is not right: solve exp(-r t) <= 0.5 for t, then round up to a multiple of N"
    )
    expected_tau = anneal_tau(30_000 % 600, **kw)
    assert isinstance(tau_after_30000_restarted, (int, float)) and not isinstance(tau_after_30000_restarted, bool), (
        f"tau_after_30000_restarted must be a number, got {tau_after_30000_restarted!r}"
    )
    assert math.isclose(tau_after_30000_restarted, expected_tau, rel_tol=1e-6), (
        "tau after the restarts is not right: which step does the restarted counter show, and is it >= N?"
    )
    print("correct")
