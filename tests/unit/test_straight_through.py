"""Tests for gumbel_book.straight_through: plain ST, ReinMax and Gumbel-Rao as layers.

Statistical tests use fixed seeds and z-tests at Z = 5 per coordinate (two-sided alpha ≈ 6e-7 each).
"""

from __future__ import annotations

import math

import pytest
import torch

from gumbel_book import gumbel_softmax
from gumbel_book.straight_through import (
    conditional_gumbel,
    gumbel_rao,
    reinmax,
    reinmax_given,
    straight_through_given,
    straight_through_softmax,
)

Z = 5.0
EULER = 0.5772156649015329
LOGITS = torch.tensor([1.0, -0.5, 0.3, 0.0, -1.2], dtype=torch.float64)
LAYERS = {
    "straight_through": lambda lg, gen: straight_through_softmax(lg, generator=gen),
    "reinmax": lambda lg, gen: reinmax(lg, 1.3, generator=gen),
    "gumbel_rao": lambda lg, gen: gumbel_rao(lg, 0.7, 5, generator=gen),
}


def softmax_jacobian(q: torch.Tensor) -> torch.Tensor:
    return torch.diag(q) - torch.outer(q, q)


def z_scores(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-coordinate two-sample z-scores of the means of the rows of ``a`` and ``b``."""
    se = (a.var(0) / a.shape[0] + b.var(0) / b.shape[0]).sqrt().clamp(min=1e-12)
    return (a.mean(0) - b.mean(0)).abs() / se


# ------------------------------------------------------------------------------------------ forward pass


@pytest.mark.parametrize("name", list(LAYERS))
def test_forward_is_exactly_one_hot_and_categorical(name):
    n = 20_000
    y = LAYERS[name](LOGITS.expand(n, -1), torch.Generator().manual_seed(1))
    assert bool(((y == 0) | (y == 1)).all()) and bool((y.sum(-1) == 1).all())
    p = torch.softmax(LOGITS, -1)
    z = (y.mean(0) - p).abs() / (p * (1 - p) / n).sqrt()
    assert bool((z < Z).all()), z


@pytest.mark.parametrize("name", list(LAYERS))
def test_same_generator_state_same_sample_as_gumbel_max(name):
    """All three draw the category by Gumbel-max, so they agree with ST-Gumbel-Softmax on the same seed."""
    lg = LOGITS.expand(50, -1)
    y = LAYERS[name](lg, torch.Generator().manual_seed(3))
    ref = gumbel_softmax(lg, 1.0, hard=True, generator=torch.Generator().manual_seed(3))
    assert torch.equal(y, ref)


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_dtype_kept_and_gradient_finite(name, dtype):
    lg = (3 * torch.randn(6, 5, generator=torch.Generator().manual_seed(0))).to(dtype).requires_grad_(True)
    y = LAYERS[name](lg, torch.Generator().manual_seed(0))
    assert y.dtype == dtype
    (g,) = torch.autograd.grad((y * torch.arange(5.0).to(dtype)).sum(), lg)
    assert bool(torch.isfinite(g).all())


def test_dim_argument():
    """With dim=1 each slice along dim 1 is one-hot and carries the formula's gradient for its own sample."""
    lg = torch.randn(3, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    w = torch.randn(3, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    a = lg.clone().requires_grad_(True)
    y = straight_through_softmax(a, dim=1, generator=torch.Generator().manual_seed(4))
    assert bool((y.sum(1) == 1).all())
    (g,) = torch.autograd.grad((y * w).sum(), a)
    p = torch.softmax(lg, 1)
    assert torch.allclose(g, p * (w - (p * w).sum(1, keepdim=True)))
    b = lg.clone().requires_grad_(True)
    y = reinmax(b, 2.0, dim=1, generator=torch.Generator().manual_seed(4))
    (g,) = torch.autograd.grad((y * w).sum(), b)
    moved = [reinmax_paper(lg[i, :, j], y[i, :, j].detach(), w[i, :, j], 2.0) for i in range(3) for j in range(4)]
    assert torch.allclose(g.permute(0, 2, 1).reshape(12, 5), torch.stack(moved))
    y = gumbel_rao(lg, 0.5, 3, dim=1, generator=torch.Generator().manual_seed(5))
    assert y.shape == lg.shape and bool((y.sum(1) == 1).all())


@pytest.mark.parametrize("name", list(LAYERS))
def test_masked_categories_never_sampled_and_get_zero_gradient(name):
    lg = torch.tensor([0.5, -math.inf, 0.0, -math.inf], dtype=torch.float64).expand(2000, -1).clone()
    lg.requires_grad_(True)
    y = LAYERS[name](lg, torch.Generator().manual_seed(6))
    assert float(y.detach()[:, 1].sum()) == 0 and float(y.detach()[:, 3].sum()) == 0
    (g,) = torch.autograd.grad((y * torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)).sum(), lg)
    assert bool(torch.isfinite(g).all())
    assert float(g[:, 1].abs().max()) == 0 and float(g[:, 3].abs().max()) == 0


def test_textbook_straight_through_line_matches_gumbel_softmax_hard():
    """The chapter's y_hard - y_soft.detach() + y_soft has the forward value and gradient of gumbel_softmax(hard)."""
    theta = LOGITS.clone().requires_grad_(True)
    w = torch.linspace(-1, 2, 5, dtype=torch.float64)
    y_soft = gumbel_softmax(theta, 0.5, generator=torch.Generator().manual_seed(0))
    y_hard = torch.zeros_like(y_soft).scatter_(-1, y_soft.argmax(-1, keepdim=True), 1.0)
    y = y_hard - y_soft.detach() + y_soft
    (g1,) = torch.autograd.grad((w * y).sum(), theta)
    y_lib = gumbel_softmax(theta, 0.5, hard=True, generator=torch.Generator().manual_seed(0))
    (g2,) = torch.autograd.grad((w * y_lib).sum(), theta)
    assert torch.allclose(y.detach(), y_lib.detach()) and torch.allclose(g1, g2)


# ------------------------------------------------------------------------------------------ plain ST


def test_plain_st_backward_is_softmax_jacobian():
    lg = LOGITS.clone().requires_grad_(True)
    w = torch.linspace(-1, 1, 5, dtype=torch.float64)
    y = straight_through_softmax(lg, generator=torch.Generator().manual_seed(0))
    (g,) = torch.autograd.grad((y * w).sum(), lg)
    assert torch.allclose(g, softmax_jacobian(torch.softmax(LOGITS, -1)) @ w)


# ------------------------------------------------------------------------------------------ ReinMax


def reinmax_paper(logits: torch.Tensor, one_hot: torch.Tensor, grad_at_d: torch.Tensor, tau: float) -> torch.Tensor:
    """Liu et al. (2023), Algorithm 2 written out with explicit Jacobians, independent of the package code:
    pi0 = softmax(theta), pi1 = (D + softmax(theta / tau)) / 2, grad = (2 J(pi1) - J(pi0) / 2) dL/dD."""
    pi0 = torch.softmax(logits, -1)
    pi1 = 0.5 * (one_hot + torch.softmax(logits / tau, -1))
    return (2 * softmax_jacobian(pi1) - 0.5 * softmax_jacobian(pi0)) @ grad_at_d


@pytest.mark.parametrize("tau", [0.5, 1.0, 3.0])
def test_reinmax_matches_paper_formula(tau):
    w = torch.tensor([0.3, -1.0, 2.0, 0.5, -0.2], dtype=torch.float64)
    for seed in range(5):
        lg = LOGITS.clone().requires_grad_(True)
        y = reinmax(lg, tau, generator=torch.Generator().manual_seed(seed))
        (g,) = torch.autograd.grad((y * w).sum(), lg)
        assert torch.allclose(g, reinmax_paper(LOGITS, y.detach(), w, tau), atol=1e-12)


@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
def test_reinmax_matches_pypi_reinmax_package(tau):
    pkg = pytest.importorskip("reinmax")
    torch.manual_seed(0)  # the package samples with torch.multinomial on the global generator
    lg0 = torch.randn(16, 6, dtype=torch.float64)
    w = torch.randn(16, 6, dtype=torch.float64)
    a = lg0.clone().requires_grad_(True)
    y_pkg, _ = pkg.reinmax(a, tau)
    (g_pkg,) = torch.autograd.grad((y_pkg * w).sum(), a)
    b = lg0.clone().requires_grad_(True)
    y = reinmax_given(b, y_pkg.detach().argmax(-1), tau)
    (g,) = torch.autograd.grad((y * w).sum(), b)
    assert torch.equal(y.detach(), y_pkg.detach())
    assert torch.allclose(g, g_pkg, atol=1e-12)


# ------------------------------------------------------------------------------------------ Gumbel-Rao


def test_conditional_gumbel_argmax_and_law():
    """The maximum is Gumbel(logsumexp(logits)) (mean lse + Euler's gamma), the argmax is the given index, and
    mixing over index ~ Categorical(softmax(logits)) recovers unconditional Gumbel noise (mean gamma)."""
    n = 40_000
    gen = torch.Generator().manual_seed(8)
    lg = LOGITS.expand(n, -1)
    index = torch.distributions.Categorical(logits=LOGITS).sample((n,))
    x = conditional_gumbel(lg, index, 1, generator=gen)[0]
    assert torch.equal(x.argmax(-1), index)
    mx = x.amax(-1)
    lse = float(LOGITS.logsumexp(0))
    assert abs(float(mx.mean()) - (lse + EULER)) < Z * (math.pi / math.sqrt(6)) / math.sqrt(n)
    g = x - LOGITS
    sd = math.pi / math.sqrt(6)
    assert bool(((g.mean(0) - EULER).abs() < Z * sd / math.sqrt(n)).all()), g.mean(0)


def test_gumbel_rao_backward_equals_brute_force_conditional_st_gs():
    """Given the sampled category k, the Gumbel-Rao gradient (mc_samples = 1, one draw per row) has the law of the
    ST-Gumbel-Softmax gradient with noise rejection-sampled on argmax(logits + g) = k."""
    tau, n = 0.6, 60_000
    w = torch.tensor([0.3, -1.0, 2.0, 0.5, -0.2], dtype=torch.float64)
    lg = LOGITS.expand(n, -1).clone().requires_grad_(True)
    y = gumbel_rao(lg, tau, 1, generator=torch.Generator().manual_seed(9))
    (g_gr,) = torch.autograd.grad((y * w).sum(), lg)
    lg2 = LOGITS.expand(4 * n, -1).clone().requires_grad_(True)
    y2 = gumbel_softmax(lg2, tau, hard=True, generator=torch.Generator().manual_seed(10))
    (g_st,) = torch.autograd.grad((y2 * w).sum(), lg2)
    for k in range(5):
        a, b = g_gr[y.argmax(-1) == k], g_st[y2.argmax(-1) == k]
        assert len(a) > 500 and len(b) > 500
        assert bool((z_scores(a, b) < Z).all()), (k, z_scores(a, b))


def test_gumbel_rao_many_mc_samples_is_the_conditional_mean():
    """With many conditional draws the backward pass is E[ST-GS gradient | k]: compare to rejection sampling."""
    tau = 0.8
    w = torch.tensor([1.0, 0.0, -2.0, 0.5, 0.3], dtype=torch.float64)
    lg = LOGITS.clone().requires_grad_(True)
    y = gumbel_rao(lg, tau, 200_000, generator=torch.Generator().manual_seed(12))
    (g,) = torch.autograd.grad((y * w).sum(), lg)
    k = int(y.argmax())
    lg2 = LOGITS.expand(200_000, -1).clone().requires_grad_(True)
    y2 = gumbel_softmax(lg2, tau, hard=True, generator=torch.Generator().manual_seed(13))
    (g_st,) = torch.autograd.grad((y2 * w).sum(), lg2)
    b = g_st[y2.argmax(-1) == k]
    se = (b.var(0) / len(b)).sqrt() + 1e-12
    assert bool(((g - b.mean(0)).abs() < Z * se * 1.01 + 1e-3).all()), (g, b.mean(0))


def test_gumbel_rao_with_one_category_row_and_large_logits():
    lg = torch.tensor([[80.0, -80.0, 0.0]], dtype=torch.float32, requires_grad=True)
    y = gumbel_rao(lg, 0.1, 4, generator=torch.Generator().manual_seed(0))
    (g,) = torch.autograd.grad((y * torch.tensor([1.0, 2.0, 3.0])).sum(), lg)
    assert bool(torch.isfinite(g).all()) and torch.equal(y, torch.tensor([[1.0, 0.0, 0.0]]))


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("tau", [0.0, -1.0, math.nan, math.inf])
def test_bad_tau(tau):
    with pytest.raises(ValueError, match="tau"):
        reinmax(LOGITS, tau)
    with pytest.raises(ValueError, match="tau"):
        gumbel_rao(LOGITS, tau)


def test_bad_logits():
    for fn in (straight_through_softmax, reinmax, gumbel_rao):
        with pytest.raises(ValueError, match="NaN"):
            fn(torch.tensor([0.0, math.nan]))
        with pytest.raises(TypeError, match="logits"):
            fn([0.0, 1.0])
        with pytest.raises(TypeError, match="floating-point"):
            fn(torch.tensor([0, 1]))
        with pytest.raises(ValueError, match="-inf for every category"):
            fn(torch.tensor([-math.inf, -math.inf]))
        with pytest.raises(IndexError, match="dim"):
            fn(LOGITS, dim=3)


@pytest.mark.parametrize("mc", [0, -2, 1.5, True])
def test_bad_mc_samples(mc):
    with pytest.raises((ValueError, TypeError), match="mc_samples"):
        gumbel_rao(LOGITS, 1.0, mc)


def test_bad_index():
    with pytest.raises(TypeError, match="index"):
        reinmax_given(LOGITS, torch.tensor(1.0))
    with pytest.raises(ValueError, match="index"):
        reinmax_given(LOGITS, torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="index values"):
        straight_through_given(LOGITS, torch.tensor(5))
    with pytest.raises(ValueError, match="index values"):
        conditional_gumbel(LOGITS, torch.tensor(-1), 2)


# ------------------------------------------------------------------------------------------ CUDA


@pytest.mark.cuda
@pytest.mark.parametrize("name", list(LAYERS))
def test_layers_on_cuda(name):
    gen = torch.Generator(device="cuda").manual_seed(0)
    lg = LOGITS.to("cuda").expand(10_000, -1).clone().requires_grad_(True)
    y = LAYERS[name](lg, gen)
    assert y.device.type == "cuda" and bool((y.sum(-1) == 1).all())
    (g,) = torch.autograd.grad((y * torch.arange(5.0, device="cuda")).sum(), lg)
    assert bool(torch.isfinite(g).all())
    p = torch.softmax(LOGITS, -1)
    z = (y.detach().double().mean(0).cpu() - p).abs() / (p * (1 - p) / 10_000).sqrt()
    assert bool((z < Z).all())
