"""Helpers and checks for the exercises of the straight-through chapter.

Checks print "correct" or raise AssertionError with a message that explains the mistake.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..estimators import Objective, exact_grad
from ..straight_through import reinmax_given, straight_through_given
from ..validation import check_tau

CHECK_LOGITS = (1.0, 0.0, -0.7, 0.3)
Z_LIMIT = 5.0  # two-sided z-test per category: alpha ≈ 6e-7 each, so a correct answer essentially never fails


def exact_mean(name: str, logits: torch.Tensor, f: Objective, tau: float = 1.0) -> torch.Tensor:
    """The exact expected gradient of plain ST (``"straight_through"``) or ``"reinmax"`` for ``E[f(z)]``.

    Both are deterministic once the category is drawn, so the mean is a K-term sum, with no Monte Carlo noise.
    """
    if name not in ("straight_through", "reinmax"):
        raise ValueError(f"name must be 'straight_through' or 'reinmax', got {name!r}")
    tau = check_tau(tau)
    exact_grad(logits, f)  # validates logits ([K], K >= 2) and f
    k = logits.shape[0]
    theta = logits.detach().expand(k, k).clone().requires_grad_(True)
    index = torch.arange(k, device=logits.device)
    y = straight_through_given(theta, index) if name == "straight_through" else reinmax_given(theta, index, tau)
    (grads,) = torch.autograd.grad(f(y).sum(), theta)
    return (torch.softmax(logits.detach(), dim=-1).unsqueeze(1) * grads).sum(dim=0)


def check_straight_through_layer(layer: Callable[[torch.Tensor, torch.Generator], torch.Tensor]) -> None:
    """Check ``layer(logits, generator)``: plain straight-through along the last dim.

    The output must be exactly one-hot, distributed as Categorical(softmax(logits)) (z-tests at Z_LIMIT
    standard errors), and its gradient must be the softmax's: ``d(y . w)/d logits = J(p) w``.
    """
    if not callable(layer):
        raise TypeError(f"expected a function layer(logits, generator), got {type(layer).__name__}")
    n = 20_000
    base = torch.tensor(CHECK_LOGITS, dtype=torch.float64)
    logits = base.expand(n, -1).clone().requires_grad_(True)
    y = layer(logits, torch.Generator().manual_seed(11))
    assert isinstance(y, torch.Tensor), f"your layer must return a torch.Tensor, it returned {type(y).__name__}"
    assert y.shape == logits.shape, f"expected shape {tuple(logits.shape)}, got {tuple(y.shape)}"
    one_hot = ((y == 0) | (y == 1)).all(dim=-1) & (y.sum(dim=-1) == 1)
    assert bool(one_hot.all()), (
        "the forward value must be exactly one-hot: write it as y_hard + (y_soft - y_soft.detach()), "
        "or y_hard - y_soft.detach() + y_soft"
    )
    p = torch.softmax(base, dim=-1)
    freq = y.detach().double().mean(dim=0)
    z = ((freq - p) / (p * (1 - p) / n).sqrt()).abs()
    assert bool((z < Z_LIMIT).all()), (
        f"the category frequencies {[round(v, 4) for v in freq.tolist()]} should match softmax(logits) "
        f"{[round(v, 4) for v in p.tolist()]}: sample the category from the softmax probabilities"
    )
    assert y.requires_grad, "no gradient reaches the logits: the backward pass must go through softmax(logits)"
    w = torch.linspace(-1.0, 2.0, len(CHECK_LOGITS), dtype=torch.float64)
    (grad,) = torch.autograd.grad((y.double() * w).sum(), logits)
    expected = p * (w - (p * w).sum())
    assert torch.allclose(grad, expected.expand_as(grad), atol=1e-6), (
        "the backward pass must be the softmax's (no noise, no temperature): "
        f"expected {[round(v, 4) for v in expected.tolist()]} per row, got {[round(v, 4) for v in grad[0].tolist()]}"
    )
    print("correct")
