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

from ..labs.gumbel_max import (
    EULER_GAMMA,
    chi_square_gof,
    tuple_chi_square,
)
from .guard import call_with_generator, check_callable, check_digest, check_number, own_work

ALPHA = 1e-4
RULE = "use only torch.rand or Tensor.exponential_, torch.log and argmax"
TOPK_RULE = "use only torch.rand or Tensor.exponential_, torch.log and topk"


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
BATCH_LOGITS = (
    (2.0, 0.0, 1.0, -1.0),
    (-math.inf, 0.5, -math.inf, 1.5),
    (1.8, 0.2, 1.1, -0.7),
    (500.0, 501.0, 499.0, 500.5),
    (-math.inf, -math.inf, 3.0, -math.inf),
)
"""A batch of five rows: plain, masked, a near twin of the first (so shared noise shows as dependence),
shifted by 500, and a single allowed category."""


def _check_draws(idx: object, shape: tuple[int, ...], logits: torch.Tensor) -> None:
    """Type, shape, dtype and range of a batch of category draws for ``logits`` (a row or a batch of rows)."""
    assert isinstance(idx, torch.Tensor), f"the sampler must return a tensor, got {type(idx).__name__}"
    assert tuple(idx.shape) == shape, (
        f"for logits of shape {tuple(logits.shape)}, sample(logits, {shape[0]}) must return shape {shape}, "
        f"got {tuple(idx.shape)}"
    )
    assert not idx.is_floating_point(), f"the draws must be integer category indices, got dtype {idx.dtype}"
    k = logits.shape[-1]
    assert int(idx.min()) >= 0 and int(idx.max()) < k, (
        f"indices must lie in [0, {k - 1}], got {int(idx.min())}..{int(idx.max())}"
    )


def _check_row(idx: torch.Tensor, row: torch.Tensor) -> None:
    """The draws ``idx`` (1-d) follow Categorical(softmax(row)): masked entries never drawn, chi-square at ALPHA."""
    probs = torch.softmax(row.double(), dim=-1)
    shown = [float(v) for v in row.tolist()]
    if int((probs > 0).sum()) == 1:
        assert bool((idx == int(probs.argmax())).all()), f"for logits {shown} you sampled a masked (-inf) category"
        return
    test = chi_square_gof(idx.long(), probs)
    assert test["impossible"] == 0, f"for logits {shown} you sampled a masked (-inf) category"
    assert test["p_value"] > ALPHA, (
        f"for logits {shown} the frequencies do not match softmax(logits) (chi-square p-value "
        f"{test['p_value']:.2g}). Perturb the logits themselves (log-probabilities), not probabilities, "
        "and take the argmax."
    )


def _independence_p_value(a: torch.Tensor, b: torch.Tensor, k: int) -> float:
    """Chi-square test of independence of two columns of category draws (scipy's contingency test)."""
    table = torch.zeros(k, k, dtype=torch.float64)
    table.index_put_((a.long().cpu(), b.long().cpu()), torch.ones(a.numel(), dtype=torch.float64), accumulate=True)
    table = table[table.sum(dim=1) > 0][:, table.sum(dim=0) > 0]
    return float(stats.chi2_contingency(table.numpy()).pvalue)


def _run_batch(sample: Callable, logits: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """The student's sampler on a batch of rows; an exception there becomes a wrong answer with a hint."""
    try:
        with own_work(RULE):
            return call_with_generator(sample, logits.clone(), n, seed=seed)
    except AssertionError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure of the student's code on a batch is a wrong answer
        raise AssertionError(
            f"sample(logits, {n}) failed for logits of shape {tuple(logits.shape)} ({type(err).__name__}: {err}). "
            "The noise needs one entry per logit and per draw, with the draws in front."
        ) from err


def check_categorical_sampler(
    sample: Callable,
    n: int = 200_000,
    *,
    seed: int = 0,
    cases: Sequence[Sequence[float]] = CATEGORICAL_CASES,
    batch: Sequence[Sequence[float]] = BATCH_LOGITS,
) -> None:
    """Exercise: ``sample(logits, n, generator=None)`` must return ``n`` independent int64 draws from
    Categorical(softmax(row)) for every row of ``logits``: shape ``(n,)`` for logits of shape ``(K,)`` and
    ``(n, B)`` for a batch of shape ``(B, K)``. Entries of -inf are masked.

    Each 1-d logit vector of ``cases``, then each row of the ``batch``, is tested by a chi-square test at
    alpha = 1e-4; the batch's first and third rows (near twins) are also tested for independence at
    alpha = 1e-4, which catches noise shared between rows.
    """
    check_callable(sample)
    for j, case in enumerate(cases):
        logits = torch.tensor(case)
        with own_work(RULE):
            idx = call_with_generator(sample, logits.clone(), n, seed=seed + j)
        _check_draws(idx, (n,), logits)
        _check_row(idx, logits)
    logits = torch.tensor(batch)
    idx = _run_batch(sample, logits, n, seed + len(cases))
    _check_draws(idx, (n, logits.shape[0]), logits)
    for b in range(logits.shape[0]):
        _check_row(idx[:, b], logits[b])
    p_value = _independence_p_value(idx[:, 0], idx[:, 2], logits.shape[1])
    assert p_value > ALPHA, (
        f"the rows of the batch are not independent of each other (chi-square p-value {p_value:.2g}): "
        "every row needs its own noise"
    )
    _correct()


TOPK_CASES = (
    ((math.log(0.4), math.log(0.3), math.log(0.15), math.log(0.1), math.log(0.05)), 2),
    ((1.0, -math.inf, 0.0, 2.0, -math.inf, 0.5), 3),
    ((500.0, 501.0, 499.0, 500.5), 3),
)


def _check_tuples(tuples: object, n: int, k: int, logits: torch.Tensor) -> None:
    """Shape, dtype, range, distinct items and masked items of ``n`` ordered ``k``-tuples for ``logits``."""
    shown = [float(v) for v in logits.tolist()]
    assert isinstance(tuples, torch.Tensor), f"the sampler must return a tensor, got {type(tuples).__name__}"
    assert tuple(tuples.shape) == (n, k), (
        f"sample_topk(logits, {k}, {n}) must return shape ({n}, {k}), got {tuple(tuples.shape)}"
    )
    assert not tuples.is_floating_point(), f"the draws must be integer indices, got dtype {tuples.dtype}"
    assert int(tuples.min()) >= 0 and int(tuples.max()) < len(shown), (
        f"indices must lie in [0, {len(shown) - 1}], got {int(tuples.min())}..{int(tuples.max())}"
    )
    assert bool(torch.isfinite(logits[tuples]).all()), f"for logits {shown} you sampled a masked (-inf) item"
    ordered = tuples.sort(dim=1).values
    assert bool((ordered[:, 1:] != ordered[:, :-1]).all()), (
        "an item appears twice in one draw: the k items must be distinct (drawn without replacement)"
    )


def check_gumbel_topk_sampler(
    sample_topk: Callable,
    n: int = 200_000,
    *,
    seed: int = 0,
    cases: Sequence[tuple[Sequence[float], int]] = TOPK_CASES,
) -> None:
    """Exercise: ``sample_topk(logits, k, n, generator=None)`` must return ``n`` ordered draws of ``k`` distinct
    items without replacement from softmax(logits), int64 of shape ``(n, k)``, first item first.

    Each ``(logits, k)`` of ``cases`` (plain, masked with -inf, shifted by 500) is tested by a chi-square
    test of the ordered tuples against sequential sampling without replacement, at alpha = 1e-4.
    """
    check_callable(sample_topk)
    for j, (case, k) in enumerate(cases):
        logits = torch.tensor(case)
        with own_work(TOPK_RULE):
            tuples = call_with_generator(sample_topk, logits.clone(), k, n, seed=seed + j)
        _check_tuples(tuples, n, k, logits)
        test = tuple_chi_square(tuples.long(), torch.softmax(logits.double(), dim=-1))
        if test["p_value"] > ALPHA:
            continue
        shown = [float(v) for v in logits.tolist()]
        if bool((tuples[:, 1:] > tuples[:, :-1]).all()):
            raise AssertionError(
                f"for logits {shown} every draw lists its items in increasing index order: the order of a "
                "draw matters (the first item is the one drawn first)"
            )
        raise AssertionError(
            f"for logits {shown} and k = {k} the ordered draws do not follow sampling without replacement "
            f"(chi-square p-value {test['p_value']:.2g}). Perturb the logits themselves (log-probabilities), "
            "once per draw, and keep the k largest in order."
        )
    _correct()


TOP2_PROBS = (0.5, 0.3, 0.2)


def check_top2_probability(value: float) -> None:
    """Exercise: the probability that Gumbel-top-2 of ``log(0.5, 0.3, 0.2)`` returns the ordered pair (1, 0).

    Compared by digest (:func:`.guard.answer_digest`): the value is in no file of the package."""
    check_digest(
        check_number(value),
        "gm-top2",
        "3820906e91084960",
        {
            "7caffbf8e36af008": "that treats the two picks as independent; the second is drawn from what remains",
            "3887267e4b599f15": "that counts the unordered pair {0, 1}; the question asks for the order (1, 0)",
            "f99be250bef3348c": "that counts the unordered pair {0, 1}; the question asks for the order (1, 0)",
        },
        "not right: the top-2 of the perturbed logits has the law of drawing item 1 first, then item 0 "
        "from the remaining items with renormalized probabilities",
    )
    _correct()


MAX_LOGITS = (0.0, math.log(2.0), math.log(3.0))


def check_expected_max(value: float) -> None:
    """Exercise: ``E[max_i (l_i + g_i)]`` for logits ``l = (0, log 2, log 3)`` and independent Gumbel(0, 1) ``g_i``.

    Compared by digest (:func:`.guard.answer_digest`): the value is in no file of the package."""
    check_digest(
        check_number(value),
        "gm-expected-max",
        "d8739df39e395977",
        {
            "2dcf94800316362f": "that is the location of the max; the mean of a Gumbel adds Euler's gamma",
            "28eb2b7607be54f5": "that is E[max logit + g] for the largest logit alone; the max is over all three",
        },
        "not right: the max is Gumbel-distributed with a location you can compute from the logits, and scale 1",
    )
    _correct()
