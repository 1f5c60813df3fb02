"""Every exercise check of the reparameterization and Gumbel-max chapters accepts a right answer and rejects
plausible wrong ones with a message. The statistical checks inside use alpha = 1e-4."""

from __future__ import annotations

import math

import pytest
import torch

from gumbel_book import gumbel_max, sample_gumbel
from gumbel_book import gumbel_max_lab as gm
from gumbel_book.exercises import gumbel_max as ex2
from gumbel_book.exercises import reparameterization as ex1
from gumbel_book.reparameterization_lab import exact_variance

# --- Chapter 1: the reparameterization trick -------------------------------------------------------------------


def rsample_right(rate, n, generator=None):
    e = torch.empty(n, dtype=rate.dtype).exponential_(generator=generator)
    return e / rate


def rsample_no_gradient(rate, n, generator=None):
    return torch.distributions.Exponential(rate).sample((n,))


def rsample_wrong_scale(rate, n, generator=None):
    e = torch.empty(n, dtype=rate.dtype).exponential_(generator=generator)
    return e * rate


def rsample_without_generator(rate, n):
    return -torch.log1p(-torch.rand(n, dtype=rate.dtype)) / rate


def test_exponential_rsample_accepts_right_answers(capsys):
    assert ex1.check_exponential_rsample(rsample_right) is True
    assert "correct" in capsys.readouterr().out
    assert ex1.check_exponential_rsample(rsample_without_generator) is True


@pytest.mark.parametrize(
    ("answer", "match"),
    [(rsample_no_gradient, "not connected"), (rsample_wrong_scale, "Exp\\(rate"), (lambda r, n: r, "shape")],
)
def test_exponential_rsample_rejects_wrong_answers(answer, match):
    with pytest.raises(AssertionError, match=match):
        ex1.check_exponential_rsample(answer)


def test_score_variance():
    assert ex1.check_score_variance(exact_variance(1.0, 1.0)["score"]["mu"]) is True
    assert ex1.check_score_variance(30) is True
    with pytest.raises(AssertionError, match="reparameterized"):
        ex1.check_score_variance(4.0)
    with pytest.raises(AssertionError, match="not right"):
        ex1.check_score_variance(34.0)  # the second moment, mean not subtracted
    with pytest.raises(TypeError, match="number"):
        ex1.check_score_variance("30")


def baseline_right(mu, sigma, n, generator=None):
    z = mu + sigma * torch.randn(n, dtype=torch.float64, generator=generator)
    b = mu**2 + sigma**2
    return (z**2 - b) * (z - mu) / sigma**2


def baseline_none(mu, sigma, n, generator=None):
    z = mu + sigma * torch.randn(n, dtype=torch.float64, generator=generator)
    return z**2 * (z - mu) / sigma**2


def baseline_biased(mu, sigma, n, generator=None):
    z = mu + sigma * torch.randn(n, dtype=torch.float64, generator=generator)
    return (z**2 - z) * (z - mu) / sigma**2  # the baseline depends on z


def test_mean_baseline_variance_is_18():
    """The chapter's claim: b = mu^2 + sigma^2 lowers the variance from 30 to 18 at mu = sigma = 1,
    since E[(eps^3 + 2 eps^2 - eps)^2] - 4 = 15 + 12 + 1 - 6 - 4. With 10^6 samples the relative SE of a
    variance is about 0.8%, so a 3% tolerance is ~3.6 SE (alpha ~ 3e-4)."""
    g = baseline_right(1.0, 1.0, 1_000_000, generator=torch.Generator().manual_seed(0))
    assert float(g.var()) == pytest.approx(18.0, rel=0.03)
    g0 = baseline_none(1.0, 1.0, 1_000_000, generator=torch.Generator().manual_seed(0))
    assert float(g0.var()) == pytest.approx(30.0, rel=0.03)


def test_baseline_estimator():
    assert ex1.check_baseline_estimator(baseline_right) is True
    with pytest.raises(AssertionError, match="variance"):
        ex1.check_baseline_estimator(baseline_none)
    with pytest.raises(AssertionError, match="biased"):
        ex1.check_baseline_estimator(baseline_biased)
    with pytest.raises(TypeError, match="function"):
        ex1.check_baseline_estimator(3.0)


# --- Chapter 2: the Gumbel-max trick --------------------------------------------------------------------------


def gumbel_right(shape, generator=None):
    return sample_gumbel(shape, generator=generator)


def gumbel_inverse_cdf(shape, generator=None):
    u = torch.rand(shape, dtype=torch.float64, generator=generator)
    return -torch.log(-torch.log(u))


def gumbel_exponential(shape, generator=None):
    return -torch.log(torch.rand(shape, generator=generator))


def gumbel_flipped(shape, generator=None):
    return -sample_gumbel(shape, generator=generator)


def gumbel_with_inf(shape, generator=None):
    g = sample_gumbel(shape, generator=generator)
    g[0] = -math.inf
    return g


def test_gumbel_sampler_accepts_right_answers(capsys):
    assert ex2.check_gumbel_sampler(gumbel_right) is True
    assert capsys.readouterr().out.strip() == "correct"
    assert ex2.check_gumbel_sampler(gumbel_inverse_cdf) is True  # right in law (U = 0 has probability 2**-53)


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
    return gumbel_max(logits.expand(n, -1), generator=generator)


def categorical_probs_perturbed(logits, n, generator=None):
    g = sample_gumbel((n, logits.numel()), generator=generator)
    return (torch.softmax(logits, -1) + g).argmax(-1)


def categorical_mode(logits, n, generator=None):
    return logits.argmax().expand(n).clone()


def test_categorical_sampler():
    assert ex2.check_categorical_sampler(categorical_right) is True
    with pytest.raises(AssertionError, match="do not match"):
        ex2.check_categorical_sampler(categorical_probs_perturbed)
    with pytest.raises(AssertionError, match="do not match"):
        ex2.check_categorical_sampler(categorical_mode)
    with pytest.raises(AssertionError, match="dtype"):
        ex2.check_categorical_sampler(lambda logits, n: torch.zeros(n))


def test_top2_probability():
    assert ex2.check_top2_probability(0.3 * 0.5 / 0.7) is True
    assert ex2.check_top2_probability(gm.ordered_tuple_probabilities([0.5, 0.3, 0.2], 2)[(1, 0)]) is True
    with pytest.raises(AssertionError, match="independent"):
        ex2.check_top2_probability(0.15)
    with pytest.raises(AssertionError, match="not right"):
        ex2.check_top2_probability(0.5 * 0.3 / 0.5)  # divided by the wrong remainder


def test_expected_max():
    assert ex2.check_expected_max(math.log(6) + gm.EULER_GAMMA) is True
    with pytest.raises(AssertionError, match="Euler"):
        ex2.check_expected_max(math.log(6))
    with pytest.raises(AssertionError, match="largest logit"):
        ex2.check_expected_max(math.log(3) + gm.EULER_GAMMA)
    with pytest.raises(AssertionError, match="not right"):
        ex2.check_expected_max(1.0)
