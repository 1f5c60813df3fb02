"""Tests behind the Gumbel-max chapter: the Gumbel law, the from-scratch sampler against the package, the
eps-form sampler and the noise's range, the theorem and its consequences, the residual test beside a wrong
sampler, and Gumbel-top-k against sequential sampling without replacement.

Statistical tests use fixed seeds; each states its significance level.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
import pytest
import torch
from scipy import stats

from gumbel_book import gumbel_max, gumbel_softmax, gumbel_topk, sample_gumbel
from gumbel_book.exercises import gumbel_max as ex2
from gumbel_book.figures import gumbel_max as figs
from gumbel_book.labs import gumbel_max as gm

ALPHA = 1e-3
INF = float("inf")


# --- The Gumbel law ---------------------------------------------------------------------------------------


def test_pdf_is_derivative_of_cdf_and_integrates_to_one():
    x = torch.linspace(-5, 15, 20001, dtype=torch.float64)
    pdf = gm.gumbel_pdf(x, loc=0.3, scale=1.5)
    cdf = gm.gumbel_cdf(x, loc=0.3, scale=1.5)
    assert float(torch.trapezoid(pdf, x)) == pytest.approx(1.0, abs=1e-4)
    h = 1e-5
    fd = (gm.gumbel_cdf(x + h, 0.3, 1.5) - gm.gumbel_cdf(x - h, 0.3, 1.5)) / (2 * h)
    assert torch.allclose(fd, pdf, atol=1e-8)
    assert float(cdf[0]) < 1e-10 and float(cdf[-1]) > 1 - 1e-4


def test_inverse_cdf_inverts_cdf_and_shows_the_endpoints():
    u = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0], dtype=torch.float64)
    g = gm.gumbel_inverse_cdf(u)
    assert g[0] == -INF and g[-1] == INF
    assert torch.allclose(gm.gumbel_cdf(g[1:-1]), u[1:-1])


def test_exponential_route_equals_inverse_cdf_route():
    """-log(-log U) and -log(E) with E = -log U are the same numbers."""
    u = torch.rand(1000, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).clamp(1e-12, 1 - 1e-12)
    assert torch.allclose(gm.gumbel_inverse_cdf(u), -torch.log(-torch.log(u)))


@pytest.mark.parametrize(("n", "k"), [(7, 3), (200_000, 5), (3, 100_001)])
def test_from_scratch_lines_match_the_package_on_the_same_generator(n, k):
    """The chapter's lines, u = 1 - rand (float64) and g = -log(-log u), give the package's noise to the last
    bits and exactly its draws; the textbook u = rand (no 1 -) gives other numbers (the negative control)."""
    gen = torch.Generator().manual_seed(n + k)
    u = 1 - torch.rand(n, k, dtype=torch.float64, generator=gen)
    g = -torch.log(-torch.log(u))
    g_pkg = sample_gumbel((n, k), dtype=torch.float64, generator=torch.Generator().manual_seed(n + k))
    assert float((g - g_pkg).abs().max()) < 1e-13
    logits = torch.linspace(-1.0, 1.0, k, dtype=torch.float64)
    z_pkg = gumbel_max(logits.expand(n, -1), generator=torch.Generator().manual_seed(n + k))
    assert torch.equal((logits + g).argmax(-1), z_pkg)
    other = -torch.log(-torch.log(1 - u))
    assert float((other - g_pkg).abs().max()) > 1.0


def test_cpu_exponential_is_log1p_of_the_float64_uniform():
    """On the CPU, exponential_ returns -log1p(-u) (C library) of torch.rand's float64 u, even in float32: the
    chapter's claim about its resolution and range rests on this."""
    u = torch.rand(20_000, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    from_u = torch.tensor([-math.log1p(-x) for x in u.tolist()], dtype=torch.float64)
    for dtype in (torch.float64, torch.float32):
        e = torch.empty(20_000, dtype=dtype).exponential_(generator=torch.Generator().manual_seed(3))
        assert torch.equal(e, from_u.to(dtype))
    assert not torch.equal(torch.empty(20_000).exponential_(generator=torch.Generator().manual_seed(4)), from_u.float())


def test_ks_accepts_book_sampler_and_rejects_shifted_noise(gen):
    """KS at alpha = 1e-3: the book's noise passes, noise shifted by 0.02 (10^6 draws) fails."""
    g = sample_gumbel(1_000_000, dtype=torch.float64, generator=gen)
    assert gm.ks_gumbel(g)["p_value"] > ALPHA
    assert gm.ks_gumbel(g + 0.02)["p_value"] < ALPHA
    assert gm.ks_gumbel(g * 2 + 1, loc=1.0, scale=2.0)["p_value"] > ALPHA


def test_torch_rand_float32_is_on_the_2_pow_24_grid():
    """eps_form_exact relies on this: float32 torch.rand on the CPU returns k / 2**24."""
    u = torch.rand(1_000_000, generator=torch.Generator().manual_seed(0)).double() * 2**24
    assert torch.equal(u, u.round())


def test_eps_form_exact_law():
    out = gm.eps_form_exact()
    assert out["values"] == 2**24
    # the cap: U = 1 - 2**-24 gives -log(2**-24 ...) ~ 16.64, and U = 0 gives -log(log 1e20) ~ -3.83
    assert out["max"] == pytest.approx(-math.log(-math.log1p(-(2**-24))), abs=1e-3)
    assert out["min"] == pytest.approx(-math.log(-math.log(1e-20)), abs=1e-5)
    assert out["mass_above_max"] == pytest.approx(2**-24, rel=1e-3)
    # a tiny but non-zero bias, smaller than the Monte Carlo error of 10^6 draws (1.28e-3)
    assert 1e-8 < abs(out["bias"]) < 1e-5


def test_eps_form_exact_agrees_with_small_grid_by_hand():
    out = gm.eps_form_exact(bits=4)
    u = torch.arange(16, dtype=torch.float32) / 16
    g = -torch.log(-torch.log(u + 1e-20) + 1e-20)
    assert out["mean"] == pytest.approx(float(g.double().mean()), rel=1e-6)


def test_float32_facts_the_chapter_states():
    """U + 1e-20 == U for every nonzero float32 uniform; 1 - 2**-24 rounds to 1 in bfloat16."""
    grid = torch.arange(1, 2**24, dtype=torch.float32) / 2**24
    assert bool((grid + 1e-20 == grid).all())
    assert float(torch.tensor(1 - 2**-24).to(torch.bfloat16)) == 1.0


def test_grid_distance_tells_exponential_from_grid_derived_draws():
    """Small Exp(1) draws from the CPU's exponential_ are not on the 2**-24 grid (distance about 1/4); draws
    computed from float32 uniforms are (distance near 0). A `!=` test could not tell them apart: almost all
    grid-derived draws are not exact multiples of 2**-24 after rounding."""
    gen = torch.Generator().manual_seed(1)
    e = torch.empty(10_000_000).exponential_(generator=gen)
    e_grid = -torch.log(torch.rand(10_000_000, generator=gen))
    assert gm.grid_distance(e) > 0.15
    assert gm.grid_distance(e_grid) < 0.05
    small = e_grid[e_grid < 1e-5].double() * 2**24
    assert float((small != small.round()).double().mean()) > 0.9  # why the old guard could not fail
    with pytest.raises(ValueError, match="below"):
        gm.grid_distance(torch.ones(10))


def test_noise_range_numbers_the_chapter_glues():
    """-log of the CPU's smallest nonzero float32 E is 36.7; the clamp gives 87.3; 4e9 draws expect 237.4
    above 16.64 (238.4 above the cap 16.6355)."""
    e_min = torch.tensor(-math.log1p(-(2.0**-53)), dtype=torch.float32)
    assert float(-torch.log(e_min)) == pytest.approx(36.737, abs=1e-3)
    assert gm.expected_exceedances(16.64, 4 * 10**9) == pytest.approx(237.36, abs=0.01)
    assert gm.expected_exceedances(gm.eps_form_exact()["max"], 4 * 10**9) == pytest.approx(238.42, abs=0.01)
    assert float(gm.gumbel_sf(torch.tensor(40.0, dtype=torch.float64))) == pytest.approx(math.exp(-40), rel=1e-9)
    h = gm.H200_FLOAT32_NOISE
    assert h["largest"] < h["threshold"] and gm.expected_exceedances(h["threshold"], h["draws"]) > 200


def test_fused_kernels_smallest_uniform_is_two_pow_minus_65():
    """The chapter says the fused kernels' noise reaches -log(2**-65) ~ 45.05: run the kernels' own Exp(1)
    code (Triton's interpreter without a GPU) on the extreme random words."""
    pytest.importorskip("triton")
    import triton

    global tl, fused  # a @triton.jit body finds names among the module's globals
    import triton.language as tl

    from gumbel_book.kernels import fused

    @triton.jit
    def probe(hi_ptr, lo_ptr, out_ptr, n: tl.constexpr):
        i = tl.arange(0, n)
        tl.store(out_ptr + i, fused._exponential(tl.load(hi_ptr + i), tl.load(lo_ptr + i)))

    device = "cuda" if torch.cuda.is_available() else "cpu"
    words = [(0, 0), (0, 1), (2**31, 0), (2**32 - 1, 2**32 - 1)]
    hi = torch.tensor([w[0] for w in words] * 2, dtype=torch.int64).to(torch.uint32).to(device)
    lo = torch.tensor([w[1] for w in words] * 2, dtype=torch.int64).to(torch.uint32).to(device)
    out = torch.empty(8, device=device)
    probe[(1,)](hi, lo, out, n=8)
    e = out.cpu().double()
    assert float(e[0]) == pytest.approx(gm.FUSED_SMALLEST_UNIFORM, rel=1e-6)
    assert float(e.min()) == float(e[0])
    assert float(-e[0].log()) == pytest.approx(-math.log(2.0**-65), rel=1e-6)
    assert float(e[2]) == pytest.approx(math.log(2), rel=1e-6)


# --- The theorem ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(gm.EMPIRICAL_CASES))
def test_gumbel_max_frequencies_pass_chi_square(name):
    """Chi-square goodness of fit at alpha = 1e-3 on 10^6 samples, including extreme and masked logits."""
    lg = torch.tensor(gm.EMPIRICAL_CASES[name])
    samples = gumbel_max(lg.expand(1_000_000, -1), generator=torch.Generator().manual_seed(1))
    result = gm.chi_square_gof(samples, torch.softmax(lg.double(), -1))
    assert result["impossible"] == 0
    assert result["p_value"] > ALPHA


def test_chi_square_rejects_wrong_distribution_and_masked_hits():
    """The test has power: argmax(pi + g) (the forgotten log) is rejected at alpha = 1e-3 with 10^5 samples."""
    p = torch.tensor([0.4, 0.3, 0.15, 0.1, 0.05], dtype=torch.float64)
    batch = p.log().expand(100_000, -1)
    wrong = gm.probabilities_plus_noise(batch, generator=torch.Generator().manual_seed(0))
    assert gm.chi_square_gof(wrong, p)["p_value"] < ALPHA
    right = gumbel_max(batch, generator=torch.Generator().manual_seed(0))
    assert gm.chi_square_gof(right, p)["p_value"] > ALPHA
    hit_masked = torch.tensor([0, 1, 2, 0, 1, 2] * 10)
    out = gm.chi_square_gof(hit_masked, [0.5, 0.5, 0.0])
    assert out["impossible"] == 20 and out["p_value"] == 0.0


def test_chi_square_pools_rare_categories():
    p = [0.5, 0.5 - 2e-7, 1e-7, 1e-7]
    samples = torch.tensor([0, 1] * 500)
    out = gm.chi_square_gof(samples, p)
    assert out["pooled"] >= 2 and out["dof"] == 1


def test_logits_need_only_be_known_up_to_a_constant():
    """Same noise, shifted logits: identical samples (exactly, in float64)."""
    lg = torch.tensor([0.3, -1.2, 2.0, 0.0], dtype=torch.float64)
    a = gumbel_max(lg.expand(10_000, -1), generator=torch.Generator().manual_seed(4))
    b = gumbel_max((lg + 123.0).expand(10_000, -1), generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b)


def test_argmax_is_independent_of_the_max():
    """Chi-square contingency test at alpha = 1e-3 between argmax and deciles of the max (10^6 draws)."""
    lg = torch.tensor([1.5, 0.5, 1.0, -0.5, 0.0])
    idx, val = gm.max_and_argmax(lg, 1_000_000, generator=torch.Generator().manual_seed(2))
    assert gm.independence_test(idx, val, 5)["p_value"] > ALPHA
    # Power: a dependent pair (the noise of category 0 itself instead of the max) is rejected.
    g0 = val - lg[0]
    dependent = torch.where(g0 > g0.median(), torch.zeros_like(idx), idx)
    assert gm.independence_test(dependent, val, 5)["p_value"] < ALPHA


def test_max_is_gumbel_at_logsumexp():
    """KS at alpha = 1e-3: max_i(logit_i + g_i) - logsumexp(logits) is Gumbel(0, 1); the mean is lse + gamma."""
    lg = torch.tensor([1.5, 0.5, 1.0, -0.5, 0.0], dtype=torch.float64)
    idx, val = gm.max_and_argmax(lg, 1_000_000, generator=torch.Generator().manual_seed(3))
    lse = float(torch.logsumexp(lg, 0))
    assert gm.ks_gumbel(val, loc=lse)["p_value"] > ALPHA
    assert gm.ks_gumbel(val, loc=float(lg.max()))["p_value"] < ALPHA
    assert torch.equal(idx, gumbel_max(lg.expand(1_000_000, -1), generator=torch.Generator().manual_seed(3)))


def test_error_falls_as_one_over_sqrt_n():
    ns = [100, 1000, 10_000, 100_000]
    r = gm.frequency_error_vs_n(torch.tensor([1.5, 0.5, 1.0, -0.5, 0.0]), ns, repeats=20, seed=0)
    slope = gm.loglog_slope(r["n"], r["tv"])
    assert -0.6 < slope < -0.4
    assert torch.allclose(r["tv"], r["expected"], rtol=0.35)


def test_loglog_slope_recovers_power_laws():
    x = torch.tensor([1.0, 10.0, 100.0, 1000.0])
    assert gm.loglog_slope(x, 3 * x**-0.5) == pytest.approx(-0.5)
    assert gm.loglog_slope(x, x**2) == pytest.approx(2.0)


def test_argmax_of_gumbel_softmax_is_a_sample_not_the_mode():
    """The argmax of a relaxed sample is the Gumbel-max sample of the same noise: in float64 at every tau tried,
    in float32 until (logits + g) / tau runs out of digits; it follows pi (chi-square, alpha = 1e-3)."""
    lg = torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64)
    taus = [0.01, 1.0, 100.0, 1e4, 1e7, 1e8]
    agree64 = gm.relaxed_argmax_agreement(lg, taus, 50_000, seed=5)
    agree32 = gm.relaxed_argmax_agreement(lg.float(), taus, 50_000, seed=5)
    assert all(v == 1.0 for v in agree64.values())
    assert agree32[0.01] == agree32[1.0] == 1.0 and agree32[1e8] < agree32[1e7] < 0.99
    y = gumbel_softmax(lg.expand(200_000, -1), tau=0.5, generator=torch.Generator().manual_seed(5))
    assert gm.chi_square_gof(y.argmax(-1), torch.softmax(lg, -1))["p_value"] > ALPHA
    assert int(torch.softmax(lg, -1).argmax()) == 0


def test_forgotten_log_is_flatter_and_draws_masked_categories():
    p = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    freq = gm.empirical_frequencies(gm.probabilities_plus_noise(p.log().expand(200_000, -1), generator=gen), 3)
    assert float(freq[0]) < 0.5  # far from 0.7
    assert list(freq.argsort(descending=True)) == [0, 1, 2]  # still prefers the likely categories
    masked = torch.tensor([0.0, -INF, 1.0])
    draws = gm.probabilities_plus_noise(masked.expand(10_000, -1), generator=gen)
    assert int((draws == 1).sum()) > 1000
    assert int((gumbel_max(masked.expand(10_000, -1), generator=gen) == 1).sum()) == 0


def test_wrong_sampler_uses_the_noise_of_gumbel_max():
    """Same generator state, same noise: on logits whose probabilities are nearly equal both pick the same
    category in almost every row, though their laws differ."""
    lg = torch.tensor([0.0, 1e-4, -1e-4], dtype=torch.float64).expand(10_000, -1)
    a = gumbel_max(lg, generator=torch.Generator().manual_seed(9))
    b = gm.probabilities_plus_noise(lg, generator=torch.Generator().manual_seed(9))
    assert float((a == b).double().mean()) > 0.99


# --- The residual test -----------------------------------------------------------------------------------------


def test_residual_bands_accept_a_right_sampler_and_reject_the_wrong_one():
    """Exact Bonferroni bands at alpha = 1e-3: gumbel_max stays inside on every chapter case (10^5 draws); the
    wrong sampler leaves them on every case; the bands reach +-z where N pi is large."""
    data = gm.residual_cases(n=100_000, seed=3)
    m = sum(int(torch.isfinite(torch.tensor(c)).sum()) for c in gm.EMPIRICAL_CASES.values())
    for case in data.values():
        right, wrong = case["right"], case["wrong"]
        assert right["comparisons"] == m and right["all_inside"], case["logits"]
        assert not wrong["all_inside"] and wrong["chi_square"]["p_value"] < ALPHA
        assert right["z"] == pytest.approx(float(stats.norm.isf(ALPHA / (2 * m))))
    plain = data["plain"]["right"]
    assert torch.allclose(plain["upper"], torch.full((5,), plain["z"], dtype=torch.float64), atol=0.05)
    assert torch.allclose(plain["lower"], torch.full((5,), -plain["z"], dtype=torch.float64), atol=0.05)
    masked = data["masked"]
    assert bool(torch.isnan(masked["right"]["residual"][1])) and bool(masked["right"]["inside"][1])
    assert not bool(masked["wrong"]["inside"][1]) and masked["wrong"]["chi_square"]["impossible"] > 0


def test_residual_bands_are_exact_binomial_ranges():
    """A count at the band's edge is inside, one step past it outside; the residual is (count - N p) / sd."""
    p = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    n = 10_000
    sd = torch.sqrt(n * p * (1 - p))
    hi = int(stats.binom.isf(1e-3 / 6, n, 0.2))
    for count, inside in ((hi, True), (hi + 1, False)):
        samples = torch.cat([torch.zeros(n - count - 3000, dtype=torch.long), torch.ones(3000, dtype=torch.long)])
        samples = torch.cat([samples, torch.full((count,), 2)])
        r = gm.residual_test(samples, p)
        assert r["comparisons"] == 3 and bool(r["inside"][2]) is inside
        assert float(r["residual"][2]) == pytest.approx((count - n * 0.2) / float(sd[2]))


def test_frequency_error_of_the_wrong_sampler_stops_falling():
    lg = torch.tensor([1.5, 0.5, 1.0, -0.5, 0.0])
    ns = [1000, 10_000, 100_000]
    wrong = gm.frequency_error_vs_n(lg, ns, repeats=5, sampler=gm.probabilities_plus_noise)
    assert abs(gm.loglog_slope(wrong["n"], wrong["tv"])) < 0.1
    assert float(wrong["tv"][-1]) > 10 * float(wrong["expected"][-1])


# --- Gumbel-top-k ---------------------------------------------------------------------------------------------


def test_ordered_tuple_probabilities_sum_to_one():
    p = [0.4, 0.3, 0.15, 0.1, 0.05]
    for k in (1, 2, 3, 5):
        assert sum(gm.ordered_tuple_probabilities(p, k).values()) == pytest.approx(1.0)
    assert gm.ordered_tuple_probabilities([0.5, 0.3, 0.2], 2)[(1, 0)] == pytest.approx(0.3 * 0.5 / 0.7)
    assert (1, 0) not in gm.ordered_tuple_probabilities([0.5, 0.0, 0.5], 2)


@pytest.mark.parametrize("k", [2, 3])
def test_gumbel_topk_matches_sequential_sampling_without_replacement(k):
    """Ordered k-tuples of gumbel_topk and of the independent sequential sampler, 2e5 each:
    both pass a chi-square test against the exact law, and a two-sample test against each other (alpha = 1e-3)."""
    p = torch.tensor([0.4, 0.3, 0.15, 0.1, 0.05], dtype=torch.float64)
    gen = torch.Generator().manual_seed(10 + k)
    topk = gumbel_topk(p.log().expand(200_000, -1), k, generator=gen)
    seq = gm.sequential_without_replacement(p, k, 200_000, generator=gen)
    assert gm.tuple_chi_square(topk, p)["p_value"] > ALPHA
    assert gm.tuple_chi_square(seq, p)["p_value"] > ALPHA
    assert gm.two_sample_tuple_test(topk, seq)["p_value"] > ALPHA
    assert all(len(set(row)) == k for row in topk[:1000].tolist())


def test_topk_tests_have_power():
    """Sampling with replacement (two independent Gumbel-max draws) is rejected at alpha = 1e-3."""
    p = torch.tensor([0.4, 0.3, 0.15, 0.1, 0.05], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    seq = gm.sequential_without_replacement(p, 2, 100_000, generator=gen)
    # Unordered: sort each pair. Same items, wrong order law.
    shuffled = seq.sort(dim=1).values
    assert gm.two_sample_tuple_test(seq, shuffled)["p_value"] < ALPHA
    assert gm.tuple_chi_square(shuffled, p)["p_value"] < ALPHA


def test_sequential_sampler_skips_zero_probabilities():
    s = gm.sequential_without_replacement([0.5, 0.0, 0.3, 0.2], 3, 5000, generator=torch.Generator().manual_seed(0))
    assert not bool((s == 1).any())
    assert all(len(set(r)) == 3 for r in s.tolist())


# --- Bad input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "err", "match"),
    [
        (lambda: gm.gumbel_pdf(0.0, scale=0.0), ValueError, "scale"),
        (lambda: gm.gumbel_cdf(0.0, loc=INF), ValueError, "loc"),
        (lambda: gm.gumbel_inverse_cdf(torch.tensor([1.5])), ValueError, "u must lie"),
        (lambda: gm.gumbel_inverse_cdf(torch.tensor([1])), TypeError, "u"),
        (lambda: gm.gumbel_eps_form(torch.tensor([0.5]), eps=0.0), ValueError, "eps"),
        (lambda: gm.gumbel_eps_form(torch.tensor([float("nan")])), ValueError, "u must lie"),
        (lambda: gm.eps_form_exact(bits=30), ValueError, "bits"),
        (lambda: gm.empirical_frequencies(torch.tensor([0.0, 1.0]), 2), TypeError, "samples"),
        (lambda: gm.empirical_frequencies(torch.tensor([0, 3]), 2), ValueError, "samples must lie"),
        (lambda: gm.empirical_frequencies(torch.tensor([0, 1]), 0), ValueError, "num_categories"),
        (lambda: gm.chi_square_gof(torch.tensor([0, 1]), [0.5, 0.6]), ValueError, "probs"),
        (lambda: gm.chi_square_gof(torch.tensor([0, 1]), [0.5, 0.5]), ValueError, "fewer than 2 bins"),
        (lambda: gm.ks_gumbel(torch.tensor([0.0, INF])), ValueError, "samples"),
        (lambda: gm.frequency_error_vs_n(torch.tensor([0.0, 1.0]), [0]), ValueError, "ns"),
        (lambda: gm.frequency_error_vs_n(torch.tensor([0.0, float("nan")]), [10]), ValueError, "NaN"),
        (lambda: gm.loglog_slope([1.0, 2.0], [0.0, 1.0]), ValueError, "positive"),
        (lambda: gm.max_and_argmax(torch.tensor([0.0, 1.0]), 0), ValueError, "n"),
        (lambda: gm.sequential_without_replacement([0.5, 0.5, 0.0], 3, 10), ValueError, "k"),
        (lambda: gm.ordered_tuple_probabilities([0.5, 0.5], 3), ValueError, "k"),
        (lambda: gm.independence_test(torch.tensor([0, 1]), torch.tensor([0.0]), 2), ValueError, "same length"),
        (lambda: gm.probabilities_plus_noise(torch.tensor([0.0, float("nan")])), ValueError, "NaN"),
        (lambda: gm.residual_test(torch.tensor([0, 1]), [0.5, 0.5], alpha=0.0), ValueError, "alpha"),
        (lambda: gm.residual_test(torch.tensor([0.0, 1.0]), [0.5, 0.5]), TypeError, "samples"),
        (lambda: gm.residual_cases({"a": (0.0, 1.0)}, n=0), ValueError, "n"),
        (lambda: gm.relaxed_argmax_agreement(torch.tensor([0.0, 1.0]), [0.0], 10), ValueError, "taus"),
        (lambda: gm.expected_exceedances(16.0, 0), ValueError, "draws"),
        (lambda: gm.topk_samples([0.5, 0.6], k=1, n=10), ValueError, "probs"),
    ],
)
def test_bad_input_raises(call, err, match):
    with pytest.raises(err, match=match):
        call()


# --- Figures ----------------------------------------------------------------------------------------------------


def test_gumbel_histogram_matches_pdf():
    g = sample_gumbel(200_000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    h = figs.gumbel_histogram(g)
    assert torch.allclose(h["density"], h["pdf"], atol=0.01)
    assert not torch.allclose(figs.gumbel_histogram(g + 0.3)["density"], h["pdf"], atol=0.01)


def test_residual_figure_has_one_slider_step_per_case():
    cases = {"a": (0.0, 1.0), "masked": (0.0, -INF, 1.0)}
    data = gm.residual_cases(cases, n=10_000)
    fig = figs.residual_figure(data)
    assert isinstance(fig, go.Figure) and fig.layout.height
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["a", "masked"]
    assert len(fig.data) == 2 * 2 * 3  # cases x panels x (band, residuals, masked draws)
    first, second = steps[0].args[0]["visible"], steps[1].args[0]["visible"]
    assert sum(first) == sum(second) == 6 and not any(a and b for a, b in zip(first, second, strict=True))
    assert "p" in steps[1].args[1]["annotations[1].text"]
    # the wrong sampler's masked draws are marked in the masked case, with their count
    masked_marks = [t for t in fig.data[6:] if t.type == "scatter" and t.text and any(t.text)]
    assert masked_marks and "drawn" in masked_marks[0].text[0]
    with pytest.raises(ValueError, match="at least one case"):
        figs.residual_figure({})


def test_other_figures_build():
    lg = torch.tensor([1.0, 0.0, -1.0])
    idx, val = gm.max_and_argmax(lg, 20_000, generator=torch.Generator().manual_seed(0))
    assert len(figs.max_law_figure(idx, val, lg).data) == 4
    r = gm.frequency_error_vs_n(lg, [100, 1000], repeats=3)
    assert len(figs.error_figure(r).data) == 2
    assert len(figs.error_figure(r, r).data) == 3
    data = gm.topk_samples([0.5, 0.3, 0.2], k=2, n=5000)
    fig = figs.topk_figure(data)
    assert len(fig.data) == 3 and len(fig.data[0].x) == 6
    density = figs.gumbel_density_figure(sample_gumbel(10_000))
    assert len(density.data) == 2 and "10,000" in density.data[0].name


# --- GPU -----------------------------------------------------------------------------------------------------------


@pytest.mark.cuda
def test_chapter_tools_on_cuda():
    """Gumbel-max on the GPU passes the chi-square test (alpha = 1e-3); the helpers accept CUDA tensors."""
    lg = torch.tensor(gm.EMPIRICAL_CASES["masked"], device="cuda")
    gen = torch.Generator(device="cuda").manual_seed(0)
    samples = gumbel_max(lg.expand(1_000_000, -1), generator=gen)
    assert samples.device.type == "cuda"
    result = gm.chi_square_gof(samples, torch.softmax(lg.double(), -1).cpu())
    assert result["impossible"] == 0 and result["p_value"] > ALPHA
    idx, val = gm.max_and_argmax(lg, 100_000, generator=gen)
    assert idx.device.type == "cuda"
    assert gm.ks_gumbel(val, loc=float(torch.logsumexp(lg, 0)))["p_value"] > ALPHA
    r = gm.frequency_error_vs_n(lg, [1000, 10_000], repeats=5)
    assert bool((r["tv"] > 0).all())


# --- The exercise checks: right answers pass, plausible wrong ones fail with a message (alpha = 1e-4 inside) ---


def own_gumbel(shape, generator=None):
    return -torch.log(torch.empty(shape).exponential_(generator=generator).clamp(min=1e-38))


def gumbel_right(shape, generator=None):
    return own_gumbel(shape, generator=generator)


def gumbel_inverse_cdf(shape, generator=None):
    u = torch.rand(shape, dtype=torch.float64, generator=generator)
    return -torch.log(-torch.log(u))


def gumbel_exponential(shape, generator=None):
    return -torch.log(torch.rand(shape, generator=generator))


def gumbel_flipped(shape, generator=None):
    return -own_gumbel(shape, generator=generator)


def gumbel_with_inf(shape, generator=None):
    g = own_gumbel(shape, generator=generator)
    g[0] = -math.inf
    return g


def test_gumbel_sampler_accepts_right_answers(capsys):
    assert ex2.check_gumbel_sampler(gumbel_right) is None
    assert capsys.readouterr().out.strip() == "correct"
    assert ex2.check_gumbel_sampler(gumbel_inverse_cdf) is None  # right in law (U = 0 has probability 2**-53)


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (gumbel_exponential, "exponential"),
        (gumbel_flipped, "sign"),
        (gumbel_with_inf, "infinite"),
        (lambda shape: torch.zeros(3), "shape"),
    ],
)
def test_gumbel_sampler_rejects_wrong_answers(answer, match):
    with pytest.raises(AssertionError, match=match):
        ex2.check_gumbel_sampler(answer)


def categorical_right(logits, n, generator=None):
    return (logits + own_gumbel((n, *logits.shape), generator=generator)).argmax(-1)


def categorical_one_row_only(logits, n, generator=None):
    """The page's sampler, unchanged: right for one row, and an error for a batch."""
    return (logits + own_gumbel((n, logits.numel()), generator=generator)).argmax(-1)


def categorical_shared_noise(logits, n, generator=None):
    """One noise vector per draw, shared by every row of the batch: right marginals, dependent rows."""
    g = own_gumbel((n, logits.shape[-1]), generator=generator)
    return (logits + (g if logits.dim() == 1 else g.unsqueeze(1))).argmax(-1)


def categorical_noise_per_row_only(logits, n, generator=None):
    """Fresh noise per row but the same for every draw: all n draws of a row are equal."""
    return (logits + own_gumbel(logits.shape, generator=generator)).argmax(-1).expand(n, *logits.shape[:-1])


def categorical_probs_perturbed(logits, n, generator=None):
    g = own_gumbel((n, *logits.shape), generator=generator)
    return (torch.softmax(logits, -1) + g).argmax(-1)


def categorical_mode(logits, n, generator=None):
    return logits.argmax(-1).expand(n, *logits.shape[:-1]).clone()


def test_categorical_sampler():
    assert ex2.check_categorical_sampler(categorical_right) is None
    for answer, match in (
        (categorical_one_row_only, "failed for logits of shape"),
        (categorical_shared_noise, "not independent"),
        (categorical_noise_per_row_only, "do not match"),
        (categorical_probs_perturbed, "do not match"),
        (categorical_mode, "do not match"),
        (lambda logits, n: torch.zeros(n), "dtype"),
    ):
        with pytest.raises(AssertionError, match=match):
            ex2.check_categorical_sampler(answer)


def test_categorical_sampler_batch_masks_are_respected():
    """A batch answer that ignores the masks of rows after the first is caught by the masked-draw check."""

    def ignores_later_masks(logits, n, generator=None):
        if logits.dim() == 1:
            return categorical_right(logits, n, generator)
        return categorical_right(torch.nan_to_num(logits, neginf=0.0), n, generator)

    with pytest.raises(AssertionError, match="masked"):
        ex2.check_categorical_sampler(ignores_later_masks)


def topk_right(logits, k, n, generator=None):
    return (logits + own_gumbel((n, logits.numel()), generator=generator)).topk(k, -1).indices


def topk_sorted(logits, k, n, generator=None):
    return topk_right(logits, k, n, generator).sort(-1).values


def topk_with_replacement(logits, k, n, generator=None):
    return torch.stack([categorical_right(logits, n, generator) for _ in range(k)], dim=-1)


def topk_probs_perturbed(logits, k, n, generator=None):
    g = own_gumbel((n, logits.numel()), generator=generator)
    return (torch.softmax(logits, -1) + g).topk(k, -1).indices


def topk_reversed(logits, k, n, generator=None):
    return topk_right(logits, k, n, generator).flip(-1)


def test_gumbel_topk_sampler():
    assert ex2.check_gumbel_topk_sampler(topk_right) is None
    for answer, match in (
        (topk_sorted, "increasing index order"),
        (topk_with_replacement, "twice"),
        (topk_probs_perturbed, "without replacement"),
        (topk_reversed, "without replacement"),
        (lambda logits, k, n: torch.zeros(n, k), "dtype"),
        (lambda logits, k, n: torch.zeros(n, dtype=torch.long), "shape"),
        (lambda logits, k, n, generator=None: gumbel_topk(logits.expand(n, -1), k, generator=generator), "allowed"),
    ):
        with pytest.raises(AssertionError, match=match):
            ex2.check_gumbel_topk_sampler(answer)
    with pytest.raises(TypeError, match="must be a function"):
        ex2.check_gumbel_topk_sampler(3)


def test_exercise_hints_do_not_give_values_away():
    """No hint contains the answer's probabilities: the messages name the logits and the p-value only."""
    try:
        ex2.check_gumbel_topk_sampler(topk_probs_perturbed)
    except AssertionError as err:
        text = str(err)
    for p in gm.ordered_tuple_probabilities([0.4, 0.3, 0.15, 0.1, 0.05], 2).values():
        assert f"{p:.3f}" not in text


def test_top2_probability():
    assert ex2.check_top2_probability(0.3 * 0.5 / 0.7) is None
    assert ex2.check_top2_probability(gm.ordered_tuple_probabilities([0.5, 0.3, 0.2], 2)[(1, 0)]) is None
    with pytest.raises(AssertionError, match="independent"):
        ex2.check_top2_probability(0.15)
    with pytest.raises(AssertionError, match="not right"):
        ex2.check_top2_probability(0.5 * 0.3 / 0.5)  # divided by the wrong remainder


def test_expected_max():
    assert ex2.check_expected_max(math.log(6) + gm.EULER_GAMMA) is None
    with pytest.raises(AssertionError, match="Euler"):
        ex2.check_expected_max(math.log(6))
    with pytest.raises(AssertionError, match="largest logit"):
        ex2.check_expected_max(math.log(3) + gm.EULER_GAMMA)
    with pytest.raises(AssertionError, match="not right"):
        ex2.check_expected_max(1.0)
