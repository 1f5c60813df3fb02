"""Check functions for the exercises of the language-models chapter.

Each check takes the student's function, returns None (printing "correct") when it is right, and raises
``AssertionError`` with a hint, never the expected values, when it is wrong; ``TypeError`` only when the
answer is not a function. While the student's function runs, the package's samplers, this chapter's
lab answers, ``torch.multinomial`` and ``torch.nn.functional.gumbel_softmax`` raise ``AssertionError``,
so the check tests the student's own work. Statistical checks use fixed seeds and alpha = 1e-4; their
keyword arguments (seeds, sample sizes, inputs) let the hidden tests ask the same question with other inputs,
and the defaults are the public checks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy import stats

from .guard import own_work, seed_global

ALPHA = 1e-4
N = 100_000

# This chapter's ready-made answers, disabled (besides the package's samplers) while the student's function runs.
FORBIDDEN = (
    "gumbel_book.labs.language_models:exponential_race",
    "gumbel_book.labs.language_models:top_k_logits",
    "gumbel_book.labs.language_models:top_p_logits",
    "gumbel_book.labs.language_models:generate",
    "gumbel_book.labs.language_models:stochastic_beam_search",
    "gumbel_book.labs.language_models:watermark_score",
    "gumbel_book.labs.language_models:watermark_pvalue",
    "gumbel_book.kernels:race_topk",
    "gumbel_book.kernels:fused_gumbel_softmax",
    "gumbel_book.kernels.fused:race_topk",
    "gumbel_book.kernels.fused:fused_gumbel_softmax",
)


def _correct() -> None:
    print("correct")


def _check_callable(fn: object) -> None:
    if not callable(fn):
        raise TypeError(f"the answer must be a function, got {type(fn).__name__}: {fn!r}")


def _call(fn: Callable, *args, seed: int, rule: str):
    gen = torch.Generator().manual_seed(seed)
    seed_global(seed)  # for a function that takes no generator (the grader's worker is seeded the same way)
    with own_work(rule, extra=FORBIDDEN):
        try:
            return fn(*args, generator=gen)
        except TypeError as err:
            if "generator" not in str(err):
                raise
            return fn(*args)


def _indices(out: object, n: int, k: int, what: str) -> torch.Tensor:
    assert isinstance(out, torch.Tensor), f"{what} must return a tensor of indices, got {type(out).__name__}"
    assert out.shape == (n,), f"{what} must return one index per row, shape ({n},), got {tuple(out.shape)}"
    assert not out.is_floating_point(), f"{what} must return integer indices, got dtype {out.dtype}"
    assert int(out.min()) >= 0 and int(out.max()) < k, f"{what} returned indices outside [0, {k - 1}]"
    return out.long().cpu()


def _pvalue(counts: np.ndarray, probs: np.ndarray) -> float:
    keep = probs > 0
    return float(stats.chisquare(counts[keep], probs[keep] / probs[keep].sum() * counts.sum()).pvalue)


RACE_CASES = (((1.0, 0.0, -1.0, 2.0), 1.0), ((1.0, 0.0, -1.0, 2.0), 0.5), ((0.5, -math.inf, 0.0, 1.5, -1.0), 2.0))


def check_exponential_race(
    race: Callable,
    *,
    seed: int = 0,
    n: int = N,
    cases: Sequence[tuple[Sequence[float], float]] = RACE_CASES,
) -> None:
    """Exercise: ``race(logits, temperature, generator=None)`` samples softmax(logits / T) per row as argmax p / E.

    Each ``(logits, temperature)`` of ``cases`` is repeated over ``n`` rows and drawn with seed ``seed + j``
    (``j`` its position); a chi-square test at alpha = 1e-4 compares the frequencies with softmax(logits / T).
    """
    _check_callable(race)
    rule = "use torch.softmax, Tensor.exponential_ (or torch.rand) and argmax"
    for j, (case, t) in enumerate(cases):
        logits = torch.tensor(case).expand(n, -1).clone()
        idx = _indices(_call(race, logits, t, seed=seed + j, rule=rule), n, len(case), "race(logits, temperature)")
        counts = np.bincount(idx.numpy(), minlength=len(case))
        target = torch.softmax(torch.tensor(case, dtype=torch.float64) / t, -1).numpy()
        assert counts[target == 0].sum() == 0, "a masked (-inf) category was sampled: its probability is 0"
        if _pvalue(counts, target) > ALPHA:
            continue
        hint = "the frequencies do not follow softmax(logits / temperature)"
        if t != 1 and _pvalue(counts, torch.softmax(torch.tensor(case, dtype=torch.float64), -1).numpy()) > ALPHA:
            hint += "; they follow softmax(logits): divide the logits by the temperature"
        elif int(np.argmax(counts)) != int(np.argmax(target)):
            hint += "; the least likely category wins most often: take the argmax of p / E, not of p * E"
        raise AssertionError(f"for logits {list(case)} at temperature {t}: {hint}")
    _correct()


TOPK_CASE = (2.0, 0.5, 1.5, -1.0, 0.0, 1.0)


def check_top_k_sampler(
    sample: Callable,
    *,
    seed: int = 10,
    n: int = N,
    logits: Sequence[float] = TOPK_CASE,
    ks: Sequence[int] = (1, 3),
) -> None:
    """Exercise: ``sample(logits, k, generator=None)`` draws one index per row from softmax(logits) cut to the top k.

    ``logits`` (no ties, so the top k are well defined) is repeated over ``n`` rows; the ``j``-th ``k`` of ``ks`` is
    drawn with seed ``seed + j`` and tested by a chi-square test at alpha = 1e-4.
    """
    _check_callable(sample)
    rule = "use torch.topk (or sort), Tensor.exponential_ or torch.rand, and argmax"
    case = tuple(logits)
    for j, k in enumerate(ks):
        rows = torch.tensor(case).expand(n, -1).clone()
        idx = _indices(_call(sample, rows, k, seed=seed + j, rule=rule), n, len(case), "sample(logits, k)")
        counts = np.bincount(idx.numpy(), minlength=len(case))
        lg = torch.tensor(case, dtype=torch.float64)
        keep = torch.zeros_like(lg, dtype=torch.bool).scatter(0, lg.topk(k).indices, True)
        assert counts[~keep.numpy()].sum() == 0, f"with k={k} you sampled a category outside the k most likely"
        target = torch.softmax(lg.masked_fill(~keep, -math.inf), -1).numpy()
        if _pvalue(counts, target) <= ALPHA:
            uniform = keep.double().numpy() / k
            hint = (
                "they are uniform over the top k: keep their relative probabilities"
                if (_pvalue(counts, uniform) > ALPHA)
                else "perturb the kept logits with Gumbel noise and take the argmax"
            )
            raise AssertionError(f"with k={k} the frequencies do not follow the truncated softmax: {hint}")
    _correct()


def _watermark_texts(key: int, n_texts: int, length: int, vocab: int, window: int, seed: int) -> dict:
    """Texts from a random bigram model: keyed (watermarked) with ``key``, and plain Gumbel-max samples."""
    from ..labs.language_models import keyed_uniforms
    from ..sampling import gumbel_max

    gen = torch.Generator().manual_seed(seed)
    table = torch.randn(vocab, vocab, generator=gen)
    out = {}
    for kind in ("watermarked", "plain"):
        ids = torch.randint(vocab, (n_texts, window), generator=gen)
        for _ in range(length):
            logits = table[ids[:, -1]]
            if kind == "plain":
                nxt = gumbel_max(logits, generator=gen)
            else:
                nxt = (logits.double() - torch.log(-torch.log(keyed_uniforms(key, ids[:, -window:], vocab)))).argmax(-1)
            ids = torch.cat([ids, nxt[:, None]], 1)
        out[kind] = ids
    return out


def check_watermark_detector(
    detect: Callable, *, key: int = 2718, seed: int = 7, vocab_size: int = 40, window: int = 4
) -> None:
    """Exercise: ``detect(tokens, key, vocab_size, window)`` returns the p-value of the keyed-Gumbel watermark test.

    ``tokens`` is a 1-D tensor whose first ``window`` ids are the prompt. Watermarked texts must get
    p-values below 1e-3, texts sampled without the key p-values that look uniform, and watermarked texts
    checked with another key must not be flagged.
    The texts come from a random bigram model over ``vocab_size`` tokens drawn with ``seed``, watermarked with ``key``.
    """
    _check_callable(detect)
    texts = _watermark_texts(key, n_texts=40, length=200, vocab=vocab_size, window=window, seed=seed)
    rule = "use keyed_uniforms, torch.log1p and scipy.stats.gamma"
    with own_work(rule, extra=FORBIDDEN):
        p_marked = [detect(t.clone(), key, vocab_size, window) for t in texts["watermarked"]]
        p_plain = [detect(t.clone(), key, vocab_size, window) for t in texts["plain"]]
        p_other = [detect(t.clone(), key + 1, vocab_size, window) for t in texts["watermarked"]]
    for p in p_marked + p_plain + p_other:
        assert isinstance(p, float | np.floating) or (isinstance(p, torch.Tensor) and p.numel() == 1), (
            f"detect must return one p-value (a float), got {type(p).__name__}"
        )
        assert 0 <= float(p) <= 1, f"a p-value lies in [0, 1], got {float(p)}"
    p_marked, p_plain, p_other = (np.array([float(p) for p in ps]) for ps in (p_marked, p_plain, p_other))
    assert (p_marked < 1e-3).all(), (
        "some watermarked texts are not detected: score each token by -log(1 - r) with r its keyed uniform "
        "(the uniform of the token that was chosen, from the window of tokens before it), and sum"
    )
    ks = stats.kstest(p_plain, "uniform").pvalue
    assert ks > ALPHA, (
        f"the p-values of texts sampled without the key are not uniform (KS p-value {ks:.2g}): without the key "
        "each term is Exp(1), so the sum of n terms is Gamma(n, 1); score each (context, token) pair only once"
    )
    # Texts marked with one key and scored with another: none may be flagged (Bonferroni over the texts). Not a
    # uniformity test: keyed texts of one bigram model fall into shared deterministic runs, so their p-values
    # are not independent, and a test of uniformity would reject correct detectors for some seeds.
    assert (p_other > 1e-3 / len(p_other)).all(), (
        "watermarked texts checked with another key are flagged: the uniforms r must come from the key you are given"
    )
    _correct()
