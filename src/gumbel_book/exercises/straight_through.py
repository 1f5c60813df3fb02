"""Helpers and checks for the exercises of the straight-through chapter.

Every check returns None when the answer is right and raises ``AssertionError`` with a hint (never the
expected values) when it is wrong; ``TypeError`` only for a non-callable answer. The student's function runs
inside :func:`guard.own_work`: the package's samplers, straight-through layers and estimators,
``torch.multinomial`` and ``torch.distributions`` sampling are unavailable to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from scipy import stats

from ..estimators import Objective, exact_grad
from ..straight_through import reinmax_given, straight_through_given
from ..validation import check_choice, check_tau
from .guard import check_callable, own_work

CHECK_LOGITS = (1.0, 0.0, -0.7, 0.3)
Z_LIMIT = 5.0  # two-sided z-test per category: alpha ≈ 6e-7 each, so a correct answer essentially never fails
ALPHA = 1e-4
RULE = "use only torch.rand or Tensor.exponential_, torch.log, argmax, one_hot and softmax"


def exact_mean(name: str, logits: torch.Tensor, f: Objective, tau: float = 1.0) -> torch.Tensor:
    """The exact expected gradient of plain ST (``"straight_through"``) or ``"reinmax"`` for ``E[f(z)]``.

    Both are deterministic once the category is drawn, so the mean is a K-term sum, with no Monte Carlo noise.
    """
    check_choice(name, ("straight_through", "reinmax"), "name")
    tau = check_tau(tau)
    exact_grad(logits, f)  # validates logits ([K], K >= 2) and f
    k = logits.shape[0]
    theta = logits.detach().expand(k, k).clone().requires_grad_(True)
    index = torch.arange(k, device=logits.device)
    y = straight_through_given(theta, index) if name == "straight_through" else reinmax_given(theta, index, tau)
    (grads,) = torch.autograd.grad(f(y).sum(), theta)
    return (torch.softmax(logits.detach(), dim=-1).unsqueeze(1) * grads).sum(dim=0)


def check_straight_through_layer(
    layer: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
    *,
    seed: int = 11,
    logits: Sequence[float] = CHECK_LOGITS,
) -> None:
    """Check ``layer(logits, generator)``: plain straight-through along the last dim.

    The output must be one-hot (up to rounding: ``y_hard + p - p.detach()`` is not exactly 0 and 1), distributed
    as Categorical(softmax(logits)) (z-tests at Z_LIMIT standard errors), and its gradient must be the softmax's:
    ``d(y . w)/d logits = J(p) w``.
    """
    check_callable(layer, "layer")
    n = 20_000
    base = torch.tensor(logits, dtype=torch.float64)
    batch = base.expand(n, -1).clone().requires_grad_(True)
    with own_work(RULE):
        y = layer(batch, torch.Generator().manual_seed(seed))
    assert isinstance(y, torch.Tensor), f"your layer must return a torch.Tensor, it returned {type(y).__name__}"
    assert y.shape == batch.shape, f"expected shape {tuple(batch.shape)}, got {tuple(y.shape)}"
    values = y.detach().double()
    rounded = values.round()  # ``one_hot + p - p.detach()`` is one-hot up to rounding, and correct
    one_hot = ((values - rounded).abs() <= 1e-6).all(dim=-1) & ((rounded == 0) | (rounded == 1)).all(dim=-1)
    one_hot &= rounded.sum(dim=-1) == 1
    assert bool(one_hot.all()), (
        "the forward value must be exactly one-hot: write it as y_hard + (y_soft - y_soft.detach()), "
        "or y_hard - y_soft.detach() + y_soft"
    )
    p = torch.softmax(base, dim=-1)
    freq = y.detach().double().mean(dim=0)
    z = ((freq - p) / (p * (1 - p) / n).sqrt()).abs()
    assert bool((z < Z_LIMIT).all()), (
        "the category frequencies do not match softmax(logits): add Gumbel noise to the logits and take the argmax"
    )
    assert y.requires_grad, "no gradient reaches the logits: the backward pass must go through softmax(logits)"
    w = torch.linspace(-1.0, 2.0, len(logits), dtype=torch.float64)
    (grad,) = torch.autograd.grad((y.double() * w).sum(), batch)
    expected = p * (w - (p * w).sum())
    assert torch.allclose(grad, expected.expand_as(grad), atol=1e-6), (
        "the backward pass must be the Jacobian of softmax(logits) itself: no noise and no temperature in it"
    )
    print("correct")


def check_st_gs_linear_grad(
    grad_fn: Callable[[torch.Tensor, torch.Tensor, float, torch.Tensor], torch.Tensor],
    *,
    seed: int = 5,
    logits: Sequence[float] = CHECK_LOGITS,
    c: Sequence[float] = (0.5, -1.0, 2.0, 0.0),
    tau: float = 1.0,
) -> None:
    """Check ``grad_fn(logits, c, tau, g)``: one ST-Gumbel-Softmax gradient of ``f(z) = c . z`` per noise row.

    ``g`` is fixed Gumbel noise of shape ``[n, K]``; the answer must be ``[n, K]``, row i the gradient w.r.t. the
    logits of ``c . y`` for the straight-through sample built from ``g[i]`` at temperature ``tau``. The noise is
    given, so the answer is deterministic and is compared row by row.
    """
    check_callable(grad_fn)
    base = torch.tensor(logits, dtype=torch.float64)
    cost = torch.tensor(c, dtype=torch.float64)
    e = torch.empty(256, len(logits), dtype=torch.float64).exponential_(generator=torch.Generator().manual_seed(seed))
    g = -torch.log(e)
    with own_work(RULE):
        out = grad_fn(base.clone(), cost.clone(), tau, g.clone())
    assert isinstance(out, torch.Tensor), f"return a torch.Tensor, got {type(out).__name__}"
    assert out.shape == g.shape, f"return one gradient per noise row: shape {tuple(g.shape)}, got {tuple(out.shape)}"
    out = out.detach().double()
    y = torch.softmax((base + g) / tau, dim=-1)
    expected = y * (cost - (y * cost).sum(-1, keepdim=True)) / tau
    if torch.allclose(out, expected, atol=1e-6, rtol=1e-5):
        print("correct")
        return
    p = torch.softmax(base, -1)
    if torch.allclose(out, (p * (cost - (p * cost).sum())).expand_as(out), atol=1e-6):
        raise AssertionError(
            "that is plain ST's gradient (softmax of the logits, no noise); ST-GS differentiates y_soft"
        )
    if torch.allclose(out, expected * tau, atol=1e-6, rtol=1e-5):
        raise AssertionError("y_soft = softmax((logits + g) / tau): its Jacobian carries a factor 1/tau")
    raise AssertionError(
        "not the ST-Gumbel-Softmax gradient: build y_soft from the given noise g and differentiate c . y "
        "(autograd through y_hard - y_soft.detach() + y_soft, or the softmax Jacobian by hand)"
    )


def check_conditional_gumbels(
    sampler: Callable[[torch.Tensor, torch.Tensor, torch.Generator], torch.Tensor],
    *,
    seed: int = 21,
    logits: Sequence[float] = CHECK_LOGITS,
    n: int = 40_000,
) -> None:
    """Check ``sampler(logits, index, generator)``: Gumbel noise ``g`` (shape ``[n, K]``) conditioned on
    ``argmax(logits + g) = index`` (``index`` has shape ``[n]``).

    Every row must have its argmax at ``index``. When ``index`` is itself drawn from Categorical(softmax(logits)),
    the noise must be unconditionally i.i.d. Gumbel(0, 1) (a KS test per coordinate, alpha = 1e-4 in all), and the
    maximum ``max(logits + g)`` must be Gumbel(logsumexp(logits)) whatever the index (a KS test with every index
    set to the least likely category).
    """
    check_callable(sampler)
    base = torch.tensor(logits, dtype=torch.float64)
    k = len(logits)
    gen = torch.Generator().manual_seed(seed)
    drawn = torch.multinomial(torch.softmax(base, -1), n, replacement=True, generator=gen)
    rare = torch.full((n,), int(base.argmin()), dtype=torch.long)
    lse = float(torch.logsumexp(base, -1))
    for index, what in ((drawn, "drawn from softmax(logits)"), (rare, "always the least likely category")):
        with own_work(RULE):
            g = sampler(base.clone(), index.clone(), torch.Generator().manual_seed(seed + 1))
        assert isinstance(g, torch.Tensor), f"return a torch.Tensor, got {type(g).__name__}"
        assert g.shape == (n, k), f"return one noise row per index: shape {(n, k)}, got {tuple(g.shape)}"
        g = g.detach().double()
        assert bool(torch.isfinite(g).all()), "some noise values are NaN or infinite"
        x = base + g
        assert bool((x.argmax(-1) == index).all()), (
            f"with the index {what}, argmax(logits + g) is not always the given index"
        )
        top = stats.kstest((x.max(-1).values - lse).numpy(), "gumbel_r")
        assert top.pvalue > ALPHA / (k + 1), (
            f"with the index {what}, max(logits + g) does not follow the law of the maximum of the perturbed "
            "logits, which does not depend on the argmax"
        )
        if index is drawn:
            for j in range(k):
                ks = stats.kstest(g[:, j].numpy(), "gumbel_r")
                assert ks.pvalue > ALPHA / (k + 1), (
                    "averaged over index ~ softmax(logits), your noise is not Gumbel(0, 1) in every coordinate: "
                    "the coordinates other than the argmax are Gumbels truncated below the maximum"
                )
    print("correct")
