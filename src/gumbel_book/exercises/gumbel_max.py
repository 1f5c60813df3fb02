"""Check functions for the exercises of the Gumbel-max chapter.

Every check returns None when the answer is right and raises ``AssertionError`` with a hint (never the
expected values) when it is wrong; ``TypeError`` only for a non-callable answer. The student's sampler runs
inside :func:`guard.own_work`: the package's samplers, ``torch.multinomial`` and ``torch.distributions``
sampling are unavailable to it. Statistical checks use a fixed seed and reject a correct answer with
probability below about 1e-4 per test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from scipy import stats

from ..labs.gumbel_max import EULER_GAMMA, chi_square_gof, ordered_tuple_probabilities
from .guard import call_with_generator, check_callable, check_number, own_work

ALPHA = 1e-4
RULE = "use only torch.rand or Tensor.exponential_, torch.log and argmax"


def _correct() -> None:
    print("correct")


def check_gumbel_sampler(sampler: Callable, n: int = 200_000, *, seed: int = 0) -> None:
    """Exercise: ``sampler(shape, generator=None)`` must return standard Gumbel(0, 1) noise of that shape.

    Checked by a Kolmogorov-Smirnov test at alpha = 1e-4, after checking shape and finiteness.
    """
    check_callable(sampler)
    with own_work(RULE):
        g = call_with_generator(sampler, (n,), seed=seed)
    assert isinstance(g, torch.Tensor), f"the sampler must return a tensor, got {type(g).__name__}"
    assert g.shape == (n,), f"sampler(({n},)) must return shape ({n},), got {tuple(g.shape)}"
    assert g.is_floating_point(), f"Gumbel noise must be floating point, got dtype {g.dtype}"
    assert bool(torch.isfinite(g).all()), (
        "some draws are infinite or NaN: -log(-log U) is -inf at U = 0; sample E ~ Exp(1) and return -log(E) instead"
    )
    x = g.detach().double().cpu()
    ks = stats.kstest(x.numpy(), "gumbel_r")
    if ks.pvalue <= ALPHA:
        mean = float(x.mean())
        hint = " Compare the mean and spread of your draws with those of a standard Gumbel."
        if abs(mean + EULER_GAMMA) < 0.05:
            hint = " The sign looks flipped: your draws look like the negative of a max-Gumbel."
        elif abs(mean - 1) < 0.05 and bool((x >= 0).all()):
            hint = " The draws look exponential: apply -log once more."
        raise AssertionError(f"the draws do not follow Gumbel(0, 1) (KS p-value {ks.pvalue:.2g}).{hint}")
    _correct()


CATEGORICAL_CASES = (
    (2.0, 0.0, 1.0, -1.0),
    (1.0, -math.inf, 0.0, 3.0, -math.inf),
    (500.0, 501.0, 499.0),
)


def check_categorical_sampler(
    sample: Callable, n: int = 200_000, *, seed: int = 0, cases: Sequence[Sequence[float]] = CATEGORICAL_CASES
) -> None:
    """Exercise: ``sample(logits, n, generator=None)`` must return ``n`` int64 draws from Categorical(softmax(logits)).

    Tested by a chi-square test (alpha = 1e-4) on each logit vector of ``cases`` (by default: plain, masked with
    -inf, and shifted by 500).
    """
    check_callable(sample)
    for j, case in enumerate(cases):
        logits = torch.tensor(case)
        with own_work(RULE):
            idx = call_with_generator(sample, logits.clone(), n, seed=seed + j)
        assert isinstance(idx, torch.Tensor), f"the sampler must return a tensor, got {type(idx).__name__}"
        assert idx.shape == (n,), f"sample(logits, {n}) must return shape ({n},), got {tuple(idx.shape)}"
        assert not idx.is_floating_point(), f"the draws must be integer category indices, got dtype {idx.dtype}"
        assert int(idx.min()) >= 0 and int(idx.max()) < len(case), (
            f"indices must lie in [0, {len(case) - 1}] for logits {list(case)}, got {int(idx.min())}..{int(idx.max())}"
        )
        probs = torch.softmax(logits.double(), dim=-1)
        test = chi_square_gof(idx.long(), probs)
        assert test["impossible"] == 0, f"for logits {list(case)} you sampled a masked (-inf) category"
        assert test["p_value"] > ALPHA, (
            f"for logits {list(case)} the frequencies do not match softmax(logits) (chi-square p-value "
            f"{test['p_value']:.2g}). Perturb the logits themselves (log-probabilities), not probabilities, "
            "and take the argmax."
        )
    _correct()


TOP2_PROBS = (0.5, 0.3, 0.2)


def check_top2_probability(value: float) -> None:
    """Exercise: the probability that Gumbel-top-2 of ``log(0.5, 0.3, 0.2)`` returns the ordered pair (1, 0)."""
    v = check_number(value)
    exact = ordered_tuple_probabilities(TOP2_PROBS, 2)[(1, 0)]
    if math.isclose(v, TOP2_PROBS[0] * TOP2_PROBS[1], rel_tol=1e-3):
        raise AssertionError("that treats the two picks as independent; the second is drawn from what remains")
    if math.isclose(v, 2 * exact, rel_tol=1e-3) or math.isclose(v, exact + 0.5 * 0.3 / 0.5, rel_tol=1e-3):
        raise AssertionError("that counts the unordered pair {0, 1}; the question asks for the order (1, 0)")
    assert math.isclose(v, exact, rel_tol=1e-3), (
        "not right: the top-2 of the perturbed logits has the law of drawing item 1 first, then item 0 "
        "from the remaining items with renormalized probabilities"
    )
    _correct()


MAX_LOGITS = (0.0, math.log(2.0), math.log(3.0))


def check_expected_max(value: float) -> None:
    """Exercise: ``E[max_i (logit_i + g_i)]`` for logits ``(0, log 2, log 3)`` and independent Gumbel(0, 1) ``g_i``."""
    v = check_number(value)
    lse = math.log(sum(math.exp(x) for x in MAX_LOGITS))
    if math.isclose(v, lse, rel_tol=1e-3):
        raise AssertionError("that is the location of the max; the mean of a Gumbel adds Euler's gamma")
    if math.isclose(v, max(MAX_LOGITS) + EULER_GAMMA, rel_tol=1e-3):
        raise AssertionError("that is E[max logit + g] for the largest logit alone; the max is over all three")
    assert math.isclose(v, lse + EULER_GAMMA, rel_tol=1e-3), (
        "not right: the max is Gumbel-distributed with a location you can compute from the logits, and scale 1"
    )
    _correct()
