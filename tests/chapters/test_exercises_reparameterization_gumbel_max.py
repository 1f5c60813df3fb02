"""Every exercise check of the reparameterization and Gumbel-max chapters accepts a right answer and rejects
plausible wrong ones with a message. The statistical checks inside use alpha = 1e-4."""

from __future__ import annotations

import math

import pytest
import torch

from gumbel_book.exercises import gumbel_max as ex2
from gumbel_book.exercises import reparameterization as ex1
from gumbel_book.labs import gumbel_max as gm
from gumbel_book.labs.reparameterization import exact_variance

# --- Chapter 1: the reparameterization trick -------------------------------------------------------------------


def rsample_right(rate, n, generator=None):
    e = torch.empty(n, dtype=rate.dtype).exponential_(generator=generator)
    return e / rate


def rsample_no_gradient(rate, n, generator=None):
    return torch.empty(n, dtype=rate.dtype).exponential_(generator=generator) / rate.detach()


def rsample_wrong_scale(rate, n, generator=None):
    e = torch.empty(n, dtype=rate.dtype).exponential_(generator=generator)
    return e * rate


def rsample_without_generator(rate, n):
    return -torch.log1p(-torch.rand(n, dtype=rate.dtype)) / rate


def test_exponential_rsample_accepts_right_answers(capsys):
    assert ex1.check_exponential_rsample(rsample_right) is None
    assert "correct" in capsys.readouterr().out
    assert ex1.check_exponential_rsample(rsample_without_generator) is None


@pytest.mark.parametrize(
    ("answer", "match"),
    [(rsample_no_gradient, "not connected"), (rsample_wrong_scale, "Exp\\(rate"), (lambda r, n: r, "shape")],
)
def test_exponential_rsample_rejects_wrong_answers(answer, match):
    with pytest.raises(AssertionError, match=match):
        ex1.check_exponential_rsample(answer)


def test_score_variance():
    assert ex1.check_score_variance(exact_variance(1.0, 1.0)["score"]["mu"]) is None
    assert ex1.check_score_variance(30) is None
    with pytest.raises(AssertionError, match="reparameterized"):
        ex1.check_score_variance(4.0)
    with pytest.raises(AssertionError, match="second moment"):
        ex1.check_score_variance(34.0)  # the second moment, mean not subtracted
    with pytest.raises(AssertionError, match="number"):  # a wrong answer, not a type error: one convention
        ex1.check_score_variance("30")


def baseline_right(mu, sigma, eps):
    z = mu + sigma * eps
    return (z**2 - (mu**2 + 3 * sigma**2)) * eps / sigma


def baseline_mean(mu, sigma, eps):
    z = mu + sigma * eps
    return (z**2 - (mu**2 + sigma**2)) * eps / sigma


def baseline_none(mu, sigma, eps):
    z = mu + sigma * eps
    return z**2 * eps / sigma


def baseline_from_sample(mu, sigma, eps):
    z = mu + sigma * eps
    return (z**2 - z) * eps / sigma  # the baseline depends on z: biased


def baseline_batch_mean(mu, sigma, eps):
    z = mu + sigma * eps
    return (z**2 - (z**2).mean()) * eps / sigma  # a statistic of this batch, not a constant


def test_baseline_variances_are_30_18_14():
    """The solution's claim: at mu = sigma = 1 the variance is 30 without a baseline, 18 with b = E f = 2 and 14
    with b* = mu^2 + 3 sigma^2 = 4 (exact), and 10^6 samples agree (relative SE of a variance ~0.8%: 3% is ~3.6 SE,
    alpha ~ 3e-4)."""
    assert [ex1.baseline_variance(1.0, 1.0, b) for b in (0.0, 2.0, 4.0)] == [30.0, 18.0, 14.0]
    assert min(range(-20, 21), key=lambda b: ex1.baseline_variance(1.0, 1.0, b / 2)) / 2 == 4.0
    eps = torch.randn(1_000_000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for answer, var in ((baseline_none, 30.0), (baseline_mean, 18.0), (baseline_right, 14.0)):
        assert float(answer(1.0, 1.0, eps).var()) == pytest.approx(var, rel=0.03)
    assert ex1.baseline_variance(1.0, 1.0, 0.0) == pytest.approx(exact_variance(1.0, 1.0)["score"]["mu"])


def test_baseline_estimator():
    ex1.check_baseline_estimator(baseline_right)
    ex1.check_baseline_estimator(baseline_mean)
    ex1.check_baseline_estimator(baseline_right, mu=-0.6, sigma=1.7, seed=3)
    with pytest.raises(AssertionError, match="variance"):
        ex1.check_baseline_estimator(baseline_none)
    with pytest.raises(AssertionError, match="one constant b"):
        ex1.check_baseline_estimator(baseline_from_sample)
    with pytest.raises(AssertionError, match="changes with the noise|one constant b"):
        ex1.check_baseline_estimator(baseline_batch_mean)
    with pytest.raises(TypeError, match="function"):
        ex1.check_baseline_estimator(3.0)


# --- Chapter 2: the Gumbel-max trick --------------------------------------------------------------------------


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
