"""Tests behind the Gumbel-max chapter: the Gumbel law, the eps-form sampler, the theorem and its consequences,
and Gumbel-top-k against sequential sampling without replacement.

Statistical tests use fixed seeds; each states its significance level.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
import pytest
import torch

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
    """U + 1e-20 == U for every nonzero float32 uniform; 1 - 2**-24 rounds to 1 in bfloat16; small Exp(1)
    draws from exponential_ are not on the 2**-24 grid (so -log E is not capped at 16.64)."""
    grid = torch.arange(1, 2**24, dtype=torch.float32) / 2**24
    assert bool((grid + 1e-20 == grid).all())
    assert float(torch.tensor(1 - 2**-24).to(torch.bfloat16)) == 1.0
    e = torch.empty(10_000_000).exponential_(generator=torch.Generator().manual_seed(1))
    small = e[e < 1e-5].double()
    assert small.numel() > 0
    assert float((small * 2**24 != (small * 2**24).round()).double().mean()) > 0.5


def test_eps_form_is_finite_where_inverse_cdf_is_not():
    u = torch.tensor([0.0, 1.0])
    assert bool(torch.isfinite(gm.gumbel_eps_form(u)).all())
    assert not bool(torch.isfinite(gm.gumbel_inverse_cdf(u)).any())


def test_inf_noise_makes_nan_with_masked_logits():
    """The failure the book's sampler avoids: +inf noise on a -inf (masked) logit gives NaN."""
    assert math.isnan(float(torch.tensor(-INF) + gm.gumbel_inverse_cdf(torch.tensor(1.0))))


@pytest.mark.slow
def test_book_sampler_goes_past_the_eps_form_cap_at_the_right_rate():
    """P(G > 16.6355) = 5.96e-8; 2e8 float32 draws expect 11.9 exceedances. Poisson two-sided alpha ~ 1e-3:
    accept counts in [2, 26]. The eps form on float32 torch.rand can never exceed its cap."""
    cap = gm.eps_form_exact()["max"]
    gen = torch.Generator().manual_seed(7)
    count = sum(int((sample_gumbel(10_000_000, generator=gen) > cap).sum()) for _ in range(20))
    assert 2 <= count <= 26


# --- The theorem ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(figs.EMPIRICAL_CASES))
def test_gumbel_max_frequencies_pass_chi_square(name):
    """Chi-square goodness of fit at alpha = 1e-3 on 10^6 samples, including extreme and masked logits."""
    lg = torch.tensor(figs.EMPIRICAL_CASES[name])
    samples = gumbel_max(lg.expand(1_000_000, -1), generator=torch.Generator().manual_seed(1))
    result = gm.chi_square_gof(samples, torch.softmax(lg.double(), -1))
    assert result["impossible"] == 0
    assert result["p_value"] > ALPHA


def test_chi_square_rejects_wrong_distribution_and_masked_hits():
    """The test has power: argmax(pi + g) (the forgotten log) is rejected at alpha = 1e-3 with 10^5 samples."""
    p = torch.tensor([0.4, 0.3, 0.15, 0.1, 0.05], dtype=torch.float64)
    data = gm.pitfall_frequencies(p, 100_000, seed=0)
    wrong = torch.repeat_interleave(torch.arange(5), (data["probs_plus_noise"] * 100_000).round().long())
    assert gm.chi_square_gof(wrong, p)["p_value"] < ALPHA
    right = torch.repeat_interleave(torch.arange(5), (data["log_probs_plus_noise"] * 100_000).round().long())
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
    """The argmax of a relaxed sample follows pi (chi-square, alpha = 1e-3); argmax of softmax is always the mode."""
    lg = torch.tensor([1.0, 0.0, 0.5])
    y = gumbel_softmax(lg.expand(200_000, -1), tau=0.5, generator=torch.Generator().manual_seed(5))
    assert gm.chi_square_gof(y.argmax(-1), torch.softmax(lg.double(), -1))["p_value"] > ALPHA
    assert int(torch.softmax(lg, -1).argmax()) == 0


def test_pitfall_forgotten_log_is_flatter():
    p = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
    d = gm.pitfall_frequencies(p, 200_000)
    assert float(d["probs_plus_noise"][0]) < 0.5  # far from 0.7
    assert float(d["log_probs_plus_noise"][0]) == pytest.approx(0.7, abs=0.005)  # SE 0.001


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
        (lambda: gm.pitfall_frequencies([0.5, 0.5], -1), ValueError, "n"),
    ],
)
def test_bad_input_raises(call, err, match):
    with pytest.raises(err, match=match):
        call()


# --- Figures ----------------------------------------------------------------------------------------------------


def test_gumbel_histogram_matches_pdf():
    h = figs.gumbel_histogram(200_000, seed=0)
    assert torch.allclose(h["density"], h["pdf"], atol=0.01)


def test_frequency_figure_has_one_slider_step_per_case():
    cases = {"a": (0.0, 1.0), "masked": (0.0, -INF, 1.0)}
    data = figs.case_frequencies(cases, n=10_000)
    assert float(data["masked"]["freq"][1]) == 0.0
    fig = figs.frequency_figure(data)
    assert isinstance(fig, go.Figure) and fig.layout.height
    steps = fig.layout.sliders[0].steps
    assert [s.label for s in steps] == ["a", "masked"]
    assert len(steps[1].args[0]["x"][0]) == 3 and steps[0].args[0]["y"] != steps[1].args[0]["y"]


def test_other_figures_build():
    lg = torch.tensor([1.0, 0.0, -1.0])
    idx, val = gm.max_and_argmax(lg, 20_000, generator=torch.Generator().manual_seed(0))
    assert len(figs.max_law_figure(idx, val, lg).data) == 4
    r = gm.frequency_error_vs_n(lg, [100, 1000], repeats=3)
    assert len(figs.error_figure(r).data) == 2
    assert len(figs.pitfall_figure(gm.pitfall_frequencies([0.6, 0.4], 1000)).data) == 3
    data = figs.topk_data([0.5, 0.3, 0.2], k=2, n=5000)
    fig = figs.topk_figure(data)
    assert len(fig.data) == 3 and len(fig.data[0].x) == 6
    assert len(figs.gumbel_density_figure(10_000).data) == 2


# --- GPU -----------------------------------------------------------------------------------------------------------


@pytest.mark.cuda
def test_chapter_tools_on_cuda():
    """Gumbel-max on the GPU passes the chi-square test (alpha = 1e-3); the helpers accept CUDA tensors."""
    lg = torch.tensor(figs.EMPIRICAL_CASES["masked"], device="cuda")
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
    return (logits + own_gumbel((n, logits.numel()), generator=generator)).argmax(-1)


def categorical_probs_perturbed(logits, n, generator=None):
    g = own_gumbel((n, logits.numel()), generator=generator)
    return (torch.softmax(logits, -1) + g).argmax(-1)


def categorical_mode(logits, n, generator=None):
    return logits.argmax().expand(n).clone()


def test_categorical_sampler():
    assert ex2.check_categorical_sampler(categorical_right) is None
    with pytest.raises(AssertionError, match="do not match"):
        ex2.check_categorical_sampler(categorical_probs_perturbed)
    with pytest.raises(AssertionError, match="do not match"):
        ex2.check_categorical_sampler(categorical_mode)
    with pytest.raises(AssertionError, match="dtype"):
        ex2.check_categorical_sampler(lambda logits, n: torch.zeros(n))


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
