"""Checks for the exercises of the Gumbel-Softmax chapter. Each prints "correct" or raises AssertionError."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..gumbel_softmax_lab import relaxed_samples
from ..sampling import concrete_log_prob
from ..schedule import anneal_tau

CHECK_LOGITS = (1.0, 0.0, -0.7)
Z_LIMIT = 5.0  # two-sided z-test per coordinate: alpha ≈ 6e-7 each, so a correct answer essentially never fails


def _call(fn: Callable, *args) -> torch.Tensor:
    if not callable(fn):
        raise TypeError(f"expected a function, got {type(fn).__name__}")
    out = fn(*args)
    assert isinstance(out, torch.Tensor), f"your function must return a torch.Tensor, it returned {type(out).__name__}"
    return out


def check_relaxed_sampler(sampler: Callable[[torch.Tensor, float, torch.Generator], torch.Tensor]) -> None:
    """Check ``sampler(logits, tau, generator)``: Gumbel-Softmax samples along the last dim, built from uniform noise.

    It must return points of the simplex with the law of :func:`gumbel_book.gumbel_softmax` (checked
    by z-tests at Z_LIMIT standard errors), become one-hot Gumbel-max samples as tau -> 0, and let
    gradients flow to the logits.
    """
    n = 20_000
    logits = torch.tensor(CHECK_LOGITS).expand(n, -1)
    gen = torch.Generator().manual_seed(1234)
    y = _call(sampler, logits, 1.0, gen)
    assert y.shape == logits.shape, f"expected shape {tuple(logits.shape)}, got {tuple(y.shape)}"
    assert bool(torch.isfinite(y).all()), "your samples contain NaN or inf (did you take log(0)? clamp the uniforms)"
    assert bool((y >= 0).all()), "samples must be non-negative: softmax outputs are"
    assert torch.allclose(y.sum(-1), torch.ones(n), atol=1e-4), "each sample must sum to 1 along the last dim"
    for tau in (1.0, 0.5):
        mine = _call(sampler, logits, tau, torch.Generator().manual_seed(7)).double()
        ref = relaxed_samples(CHECK_LOGITS, tau, n, seed=99, device="cpu").double()
        se = (mine.var(0) / n + ref.var(0) / n).sqrt()
        z = ((mine.mean(0) - ref.mean(0)) / se).abs()
        assert bool((z < Z_LIMIT).all()), (
            f"at tau={tau} the mean of your samples {mine.mean(0).tolist()} differs from the Gumbel-Softmax mean "
            f"{ref.mean(0).tolist()} by up to {float(z.max()):.1f} standard errors: check the noise is Gumbel, "
            "-log(-log(u)), and that you divide (logits + g) by tau"
        )
    cold = _call(sampler, logits, 1e-3, torch.Generator().manual_seed(3)).double()
    assert float(cold.max(-1).values.mean()) > 0.99, "at tau=0.001 the samples should be (almost) one-hot"
    pi = torch.softmax(torch.tensor(CHECK_LOGITS, dtype=torch.float64), -1)
    freq = torch.nn.functional.one_hot(cold.argmax(-1), 3).double().mean(0)
    z = ((freq - pi) / (pi * (1 - pi) / n).sqrt()).abs()
    assert bool((z < Z_LIMIT).all()), (
        f"as tau -> 0 the argmax frequencies {freq.tolist()} should match pi {pi.tolist()}"
    )
    leaf = torch.tensor(CHECK_LOGITS, requires_grad=True)
    out = _call(sampler, leaf.expand(8, -1), 0.5, torch.Generator().manual_seed(0))
    assert out.requires_grad, "no gradient reaches the logits: build the sample from logits with torch ops"
    (out[:, 0]).sum().backward()
    assert leaf.grad is not None and bool(torch.isfinite(leaf.grad).all()) and float(leaf.grad.abs().sum()) > 0, (
        "the gradient with respect to the logits should be finite and non-zero"
    )
    print("correct")


def check_binary_concrete_log_density(log_density: Callable[[torch.Tensor, float, float], torch.Tensor]) -> None:
    """Check ``log_density(y1, logit_diff, tau)``: the log density of y1 when K = 2 and logits = (logit_diff, 0).

    Compared with :func:`gumbel_book.concrete_log_prob` on a grid of y1 in (0, 1), several taus and logits.
    """
    y1 = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    for tau in (0.3, 1.0, 2.5):
        for diff in (-1.5, 0.0, 2.0):
            mine = _call(log_density, y1, diff, tau).double()
            assert mine.shape == y1.shape, f"expected shape {tuple(y1.shape)}, got {tuple(mine.shape)}"
            y = torch.stack([y1, 1 - y1], dim=-1)
            logits = torch.tensor([diff, 0.0], dtype=torch.float64).expand_as(y)
            ref = concrete_log_prob(y, logits, tau)
            worst = float((mine - ref).abs().max())
            assert worst < 1e-6, (
                f"at tau={tau}, logit_diff={diff} your log density is off by up to {worst:.3g} "
                "(hint: y1 = sigmoid((logit_diff + L) / tau) with L ~ Logistic(0, 1); change variables)"
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
        f"{first_step_at_min} is not it: solve exp(-r t) <= 0.5 for t, then round up to a multiple of N"
    )
    expected_tau = anneal_tau(30_000 % 600, **kw)
    assert isinstance(tau_after_30000_restarted, (int, float)) and math.isclose(
        tau_after_30000_restarted, expected_tau, rel_tol=1e-6
    ), f"{tau_after_30000_restarted!r} is not it: which step does the restarted counter show, and is it >= N?"
    print("correct")
