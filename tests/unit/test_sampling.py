"""Tests of the core samplers: distributions, gradients, dtypes, shapes and masking.

Statistical tests use fixed seeds and reject at significance level ALPHA; each has a negative
control elsewhere in this file or a stated power argument, so it can fail.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
import torch.nn.functional as F

import gumbel_book as gb
from gumbel_book.sampling import gumbel_from_exponential

ALPHA = 1e-3
LOW_PRECISION = [torch.float16, torch.bfloat16]
ALL_DTYPES = [torch.float32, torch.float64, *LOW_PRECISION]


def _frequencies(indices: torch.Tensor, k: int) -> np.ndarray:
    return torch.bincount(indices.flatten(), minlength=k).numpy()


# --- sample_gumbel -----------------------------------------------------------------------------


def test_sample_gumbel_matches_scipy_gumbel_r(gen):
    """KS test of 200,000 draws against scipy's standard Gumbel, at ALPHA."""
    g = gb.sample_gumbel(200_000, dtype=torch.float64, generator=gen).numpy()
    assert scipy.stats.kstest(g, scipy.stats.gumbel_r.cdf).pvalue > ALPHA
    # The same test rejects a shifted Gumbel: it has the power to fail.
    assert scipy.stats.kstest(g + 0.02, scipy.stats.gumbel_r.cdf).pvalue < ALPHA


def test_sample_gumbel_moments(gen):
    g = gb.sample_gumbel((400, 1000), dtype=torch.float64, generator=gen)
    # mean = Euler's gamma, variance = pi^2 / 6; 5 standard errors.
    se_mean = math.sqrt(math.pi**2 / 6 / g.numel())
    assert abs(g.mean().item() - np.euler_gamma) < 5 * se_mean
    assert abs(g.var().item() - math.pi**2 / 6) < 0.03


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_sample_gumbel_dtype_shape_and_finite(dtype, gen):
    g = gb.sample_gumbel((3, 4, 5), dtype=dtype, generator=gen)
    assert g.shape == (3, 4, 5) and g.dtype == dtype
    assert torch.isfinite(g).all()


def test_sample_gumbel_same_seed_same_noise():
    a = gb.sample_gumbel(100, generator=torch.Generator().manual_seed(7))
    b = gb.sample_gumbel(100, generator=torch.Generator().manual_seed(7))
    c = gb.sample_gumbel(100, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gumbel_from_exponential_is_finite_on_extreme_draws(dtype):
    """exponential_ may return exactly 0 (PyTorch #22557): -log(0) would be +inf."""
    info = torch.finfo(dtype)
    e = torch.tensor([0.0, info.tiny / 4, info.tiny, 1e-30, 1.0, 50.0, info.max], dtype=dtype)
    g = gumbel_from_exponential(e)
    assert torch.isfinite(g).all()
    assert g[0] == pytest.approx(-math.log(info.tiny))
    assert g[4] == 0.0 and g[5] == pytest.approx(-math.log(50.0))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_sample_gumbel_survives_exponential_returning_zero(monkeypatch, dtype):
    """Force every Exp(1) draw to 0 (and to the largest float): the noise stays finite in every dtype."""
    for fill in (0.0, None):

        def fake(self, *args, fill=fill, **kwargs):
            return self.fill_(torch.finfo(self.dtype).max if fill is None else fill)

        monkeypatch.setattr(torch.Tensor, "exponential_", fake)
        g = gb.sample_gumbel(10, dtype=dtype)
        assert torch.isfinite(g).all(), g
        y = gb.gumbel_softmax(torch.zeros(10, dtype=dtype), tau=0.1)
        assert torch.isfinite(y).all()


def test_sample_gumbel_bad_arguments():
    with pytest.raises(TypeError, match="dtype"):
        gb.sample_gumbel(3, dtype=torch.int64)
    with pytest.raises(ValueError, match="-2"):
        gb.sample_gumbel((3, -2))
    with pytest.raises(TypeError, match="shape"):
        gb.sample_gumbel("abc")


# --- gumbel_max ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "logits",
    [
        [0.0, 1.0, 2.0, -1.0, 0.5, 3.0],
        [10.0, 0.0, -5.0, 2.0],
        [0.3, float("-inf"), 1.2, float("-inf"), -0.4],
    ],
)
def test_gumbel_max_chi_square_against_softmax(logits, gen):
    """Chi-square goodness of fit of 200,000 Gumbel-max draws to softmax(logits), at ALPHA."""
    lg = torch.tensor(logits)
    n = 200_000
    idx = gb.gumbel_max(lg.expand(n, -1), generator=gen)
    assert idx.dtype == torch.int64
    counts = _frequencies(idx, len(logits))
    probs = torch.softmax(lg.double(), -1).numpy()
    support = probs > 0
    assert counts[~support].sum() == 0, "a masked category was sampled"
    keep = support & (probs * n >= 5)  # chi-square needs expected counts >= 5
    observed = np.append(counts[keep], counts[support & ~keep].sum())
    expected = np.append(probs[keep], probs[support & ~keep].sum()) * n
    if expected[-1] == 0:
        observed, expected = observed[:-1], expected[:-1]
    assert scipy.stats.chisquare(observed, expected).pvalue > ALPHA


def test_gumbel_max_chi_square_rejects_a_wrong_sampler(gen):
    """Negative control: argmax(logits + uniform noise) is not Categorical(softmax), and the test sees it."""
    lg = torch.tensor([0.0, 1.0, 2.0, -1.0])
    n = 200_000
    wrong = (lg + torch.rand(n, 4, generator=gen)).argmax(-1)
    probs = torch.softmax(lg.double(), -1).numpy()
    assert scipy.stats.chisquare(_frequencies(wrong, 4), probs * n).pvalue < ALPHA


def test_gumbel_max_shift_invariance_and_dim(gen):
    lg = torch.randn(5, 7, generator=gen)
    a = gb.gumbel_max(lg, generator=torch.Generator().manual_seed(3))
    b = gb.gumbel_max(lg + 100.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    c = gb.gumbel_max(lg.T.contiguous(), dim=0, generator=torch.Generator().manual_seed(3))
    assert c.shape == (5,)


@pytest.mark.parametrize("dtype", LOW_PRECISION + [torch.float64])
def test_gumbel_max_low_precision(dtype, gen):
    lg = torch.tensor([0.0, 1.0, -2.0, 0.5], dtype=dtype)
    n = 100_000
    counts = _frequencies(gb.gumbel_max(lg.expand(n, -1), generator=gen), 4)
    probs = torch.softmax(lg.double(), -1).numpy()
    assert scipy.stats.chisquare(counts, probs * n).pvalue > ALPHA


# --- gumbel_softmax -----------------------------------------------------------------------------


def test_gumbel_softmax_agrees_in_distribution_with_torch(gen):
    """Two-sample KS test per coordinate against torch.nn.functional.gumbel_softmax (Bonferroni, ALPHA)."""
    lg = torch.tensor([1.0, 0.0, -0.5, 2.0])
    n = 40_000
    ours = gb.gumbel_softmax(lg.expand(n, -1), tau=0.7, generator=gen)
    torch.manual_seed(99)
    ref = F.gumbel_softmax(lg.expand(n, -1), tau=0.7)
    for i in range(4):
        p = scipy.stats.ks_2samp(ours[:, i].numpy(), ref[:, i].numpy()).pvalue
        assert p > ALPHA / 4, f"coordinate {i}: p = {p}"
    # hard samples: chi-square test of homogeneity of the chosen categories
    ours_h = gb.gumbel_softmax(lg.expand(n, -1), tau=0.7, hard=True, generator=gen).argmax(-1)
    ref_h = F.gumbel_softmax(lg.expand(n, -1), tau=0.7, hard=True).argmax(-1)
    table = np.stack([_frequencies(ours_h, 4), _frequencies(ref_h, 4)])
    assert scipy.stats.chi2_contingency(table).pvalue > ALPHA


def test_gumbel_softmax_ks_rejects_a_different_temperature(gen):
    """Negative control for the KS comparison: tau=0.7 against tau=0.9 is detected."""
    lg = torch.tensor([1.0, 0.0, -0.5, 2.0])
    n = 40_000
    a = gb.gumbel_softmax(lg.expand(n, -1), tau=0.7, generator=gen)[:, 3].numpy()
    b = gb.gumbel_softmax(lg.expand(n, -1), tau=0.9, generator=gen)[:, 3].numpy()
    assert scipy.stats.ks_2samp(a, b).pvalue < ALPHA


def test_gumbel_softmax_same_noise_as_torch_for_the_same_seed():
    """With the same seed, our noise is torch's -log(Exp(1)) noise, so the samples coincide."""
    lg = torch.randn(8, 5, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(5)
    ref = F.gumbel_softmax(lg, tau=0.5)
    ours = gb.gumbel_softmax(lg, tau=0.5, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("shape,dim", [((6,), 0), ((4, 6), -1), ((4, 6), 0), ((2, 3, 5), 1), ((2, 3, 5), -3)])
def test_gumbel_softmax_on_the_simplex_for_any_dim(shape, dim, gen):
    lg = torch.randn(shape, generator=gen)
    y = gb.gumbel_softmax(lg, tau=0.5, dim=dim, generator=gen)
    assert y.shape == lg.shape
    assert (y >= 0).all()
    torch.testing.assert_close(y.sum(dim), torch.ones_like(y.sum(dim)))
    h = gb.gumbel_softmax(lg, tau=0.5, hard=True, dim=dim, generator=gen)
    assert set(h.unique().tolist()) <= {0.0, 1.0}
    assert (h.sum(dim) == 1).all()


def test_hard_forward_is_exactly_one_hot_and_equals_gumbel_max():
    lg = torch.randn(1000, 7, generator=torch.Generator().manual_seed(1))
    h = gb.gumbel_softmax(lg, tau=0.3, hard=True, generator=torch.Generator().manual_seed(2))
    expected = F.one_hot(gb.gumbel_max(lg, generator=torch.Generator().manual_seed(2)), 7).float()
    assert torch.equal(h, expected)


def test_hard_and_soft_use_the_same_noise():
    lg = torch.randn(100, 5, generator=torch.Generator().manual_seed(1))
    soft = gb.gumbel_softmax(lg, tau=0.5, generator=torch.Generator().manual_seed(4))
    hard = gb.gumbel_softmax(lg, tau=0.5, hard=True, generator=torch.Generator().manual_seed(4))
    assert torch.equal(hard.argmax(-1), soft.argmax(-1))


@pytest.mark.parametrize("tau", [0.1, 1.0, 5.0])
def test_hard_gradient_equals_soft_gradient(tau):
    """Straight-through: the one-hot sample's gradient is exactly the soft sample's gradient."""
    weights = torch.randn(16, 6, generator=torch.Generator().manual_seed(0))
    grads = []
    for hard in (False, True):
        lg = torch.randn(16, 6, generator=torch.Generator().manual_seed(1)).requires_grad_()
        y = gb.gumbel_softmax(lg, tau=tau, hard=hard, generator=torch.Generator().manual_seed(2))
        (y * weights).sum().backward()
        grads.append(lg.grad)
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)


def test_same_seed_same_samples():
    lg = torch.randn(10, 4)
    for hard in (False, True):
        a = gb.gumbel_softmax(lg, 0.5, hard, generator=torch.Generator().manual_seed(11))
        b = gb.gumbel_softmax(lg, 0.5, hard, generator=torch.Generator().manual_seed(11))
        assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_softmax_dtypes_never_nan(dtype, hard, gen):
    """float16/bfloat16 are computed in float32 internally (PyTorch #41663), returned in the input dtype."""
    big = 6e4 if dtype == torch.float16 else 1e30
    lg = torch.tensor([[0.0, 1.0, -1.0, 2.0], [big, -big, 0.0, 1.0], [-3.0, float("-inf"), 0.0, 1.0]], dtype=dtype)
    lg.requires_grad_()
    for tau in (1e-4, 0.5, 1.0, 100.0):
        y = gb.gumbel_softmax(lg, tau=tau, hard=hard, generator=gen)
        assert y.dtype == dtype
        assert torch.isfinite(y).all(), (dtype, tau, y)
        torch.testing.assert_close(y.float().sum(-1), torch.ones(3), atol=1e-2, rtol=0)
        y.float().pow(2).sum().backward()
        assert torch.isfinite(lg.grad).all()
        lg.grad = None


def test_masked_categories_get_exactly_zero_and_are_never_sampled(gen):
    lg = torch.tensor([0.0, float("-inf"), 1.0, float("-inf")]).expand(5000, -1).clone().requires_grad_()
    y = gb.gumbel_softmax(lg, tau=2.0, generator=gen)
    assert (y[:, [1, 3]] == 0).all()
    h = gb.gumbel_softmax(lg, tau=2.0, hard=True, generator=gen)
    assert (h[:, [1, 3]] == 0).all()
    (y[:, 0] + h[:, 2]).sum().backward()
    assert torch.isfinite(lg.grad).all() and (lg.grad[:, [1, 3]] == 0).all()


@pytest.mark.parametrize("tau", [1e-30, 1e-45, 1e-300])
def test_tiny_tau_gives_one_hot_without_nan(tau, gen):
    lg = torch.tensor([[0.5, 0.2, float("-inf"), 0.1]]).expand(100, -1)
    y = gb.gumbel_softmax(lg, tau=tau, generator=gen)
    assert torch.isfinite(y).all()
    assert torch.equal(y.max(-1).values, torch.ones(100))


@pytest.mark.parametrize("tau", [1e30, 1e300])
def test_huge_tau_gives_uniform_over_unmasked_without_nan(tau, gen):
    lg = torch.tensor([[5.0, -5.0, float("-inf"), 0.0]])
    y = gb.gumbel_softmax(lg, tau=tau, generator=gen)
    torch.testing.assert_close(y, torch.tensor([[1 / 3, 1 / 3, 0.0, 1 / 3]]))


def test_tensor_tau_broadcasts(gen):
    lg = torch.zeros(3, 4)
    tau = torch.tensor([[0.01], [1.0], [100.0]])
    y = gb.gumbel_softmax(lg, tau=tau, generator=gen)
    assert y[0].max() > 0.99 and (y[2] - 0.25).abs().max() < 0.05


# --- gumbel_topk --------------------------------------------------------------------------------


def test_gumbel_topk_distinct_and_first_is_gumbel_max():
    lg = torch.randn(200, 9, generator=torch.Generator().manual_seed(0))
    top = gb.gumbel_topk(lg, 4, generator=torch.Generator().manual_seed(5))
    assert top.shape == (200, 4) and top.dtype == torch.int64
    assert all(len(set(row)) == 4 for row in top.tolist())
    first = gb.gumbel_max(lg, generator=torch.Generator().manual_seed(5))
    assert torch.equal(top[:, 0], first)


def test_gumbel_topk_errors():
    lg = torch.tensor([0.0, float("-inf"), 1.0])
    with pytest.raises(ValueError, match="k=3"):
        gb.gumbel_topk(lg, 3)
    with pytest.raises(ValueError, match="k=0"):
        gb.gumbel_topk(lg, 0)
    with pytest.raises(TypeError, match="k must be an int"):
        gb.gumbel_topk(lg, 1.5)


# --- concrete_log_prob --------------------------------------------------------------------------


@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0, 3.0])
def test_concrete_log_prob_matches_torch_distributions(tau, gen):
    lg = torch.randn(50, 5, generator=gen, dtype=torch.float64)
    y = gb.gumbel_softmax(lg, tau=tau, generator=gen).clamp_min(1e-300)
    y = y / y.sum(-1, keepdim=True)
    ref = torch.distributions.RelaxedOneHotCategorical(torch.tensor(tau, dtype=torch.float64), logits=lg).log_prob(y)
    torch.testing.assert_close(gb.concrete_log_prob(y, lg, tau), ref)


def test_concrete_log_prob_dim_and_shift_invariance(gen):
    lg = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    y = gb.gumbel_softmax(lg, tau=0.8, generator=gen)
    a = gb.concrete_log_prob(y, lg, 0.8)
    b = gb.concrete_log_prob(y.T, lg.T + 3.0, 0.8, dim=0)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("tau", [0.3, 1.0, 2.5])
def test_concrete_density_integrates_to_one_for_two_categories(tau):
    """For K=2 the density of y_1 on (0, 1) must integrate to 1 (numerical quadrature)."""
    lg = torch.tensor([0.7, -0.4], dtype=torch.float64)

    def density(t: float) -> float:
        y = torch.tensor([t, 1 - t], dtype=torch.float64)
        return math.exp(gb.concrete_log_prob(y, lg, tau).item())

    total, _ = scipy.integrate.quad(density, 0, 1, points=[0.5], limit=200)
    assert total == pytest.approx(1.0, abs=1e-6)


def test_concrete_log_prob_errors():
    lg = torch.zeros(3)
    with pytest.raises(ValueError, match="sum to 1"):
        gb.concrete_log_prob(torch.tensor([0.5, 0.4, 0.3]), lg, 1.0)
    with pytest.raises(ValueError, match="open simplex"):
        gb.concrete_log_prob(torch.tensor([1.0, 0.0, 0.0]), lg, 1.0)
    with pytest.raises(ValueError, match="does not match"):
        gb.concrete_log_prob(torch.tensor([0.5, 0.5]), lg, 1.0)
    with pytest.raises(ValueError, match="finite logits"):
        gb.concrete_log_prob(torch.tensor([0.5, 0.25, 0.25]), torch.tensor([0.0, float("-inf"), 0.0]), 1.0)
    with pytest.raises(TypeError, match="y must be"):
        gb.concrete_log_prob([0.5, 0.5, 0.0], lg, 1.0)
