"""The language-models chapter's lab (temperature, exponential race, truncations, keyed watermark) and exercises.

Statistical tests use fixed seeds and reject at significance level ALPHA; each has a negative control.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch

import gumbel_book as gb
from gumbel_book.exercises import language_models as ex
from gumbel_book.labs import language_models as lm

ALPHA = 1e-3
ROOT = Path(__file__).resolve().parents[2]


def _chi2(counts: np.ndarray, probs: np.ndarray) -> float:
    keep = probs > 0
    assert counts[~keep].sum() == 0
    return scipy.stats.chisquare(counts[keep], probs[keep] / probs[keep].sum() * counts.sum()).pvalue


def test_exponential_race_samples_the_tempered_softmax():
    lg = torch.tensor([1.0, 0.0, -math.inf, 2.0, -1.0])
    idx = lm.exponential_race(lg.expand(50_000, -1), 0.6, generator=torch.Generator().manual_seed(0))
    counts = np.bincount(idx.numpy(), minlength=5)
    assert _chi2(counts, torch.softmax(lg.double() / 0.6, -1).numpy()) > ALPHA
    assert _chi2(counts, torch.softmax(lg.double(), -1).numpy()) < ALPHA  # negative control: no temperature


def test_top_k_and_top_p_truncate():
    lg = torch.tensor([[2.0, 0.5, 1.5, -1.0, 0.0, 1.0]])
    assert torch.isfinite(lm.top_k_logits(lg, 3)).sum() == 3
    assert torch.equal(torch.isfinite(lm.top_k_logits(lg, 3))[0], torch.tensor([1, 0, 1, 0, 0, 1]).bool())
    p = torch.softmax(lg.double(), -1)[0].sort(descending=True).values
    for target in (0.3, 0.6, 0.9, 1.0):
        kept = int(torch.isfinite(lm.top_p_logits(lg, target)).sum())
        assert float(p[:kept].sum()) >= target - 1e-12 and (kept == 1 or float(p[: kept - 1].sum()) < target)
    with pytest.raises(ValueError, match="p must lie"):
        lm.top_p_logits(lg, 0.0)


def test_keyed_uniforms_are_uniform_and_keyed():
    ctx = torch.randint(50, (4000, 4), generator=torch.Generator().manual_seed(1))
    r = lm.keyed_uniforms(7, ctx, 50)
    assert r.shape == (4000, 50) and bool(((r > 0) & (r < 1)).all())
    assert scipy.stats.kstest(r.flatten().numpy(), "uniform").pvalue > ALPHA
    assert scipy.stats.kstest(r.flatten().numpy() ** 1.02, "uniform").pvalue < ALPHA  # negative control
    assert torch.equal(r, lm.keyed_uniforms(7, ctx, 50)) and not torch.equal(r, lm.keyed_uniforms(8, ctx, 50))


def test_watermark_is_detected_and_plain_text_is_not():
    gen = torch.Generator().manual_seed(2)
    table = torch.randn(30, 30, generator=gen)
    marked, plain = torch.randint(30, (20, 4), generator=gen), torch.randint(30, (20, 4), generator=gen)
    for _ in range(250):
        r = lm.keyed_uniforms(5, marked[:, -4:], 30)
        nxt = (table[marked[:, -1]].double() - torch.log(-torch.log(r))).argmax(-1)
        marked = torch.cat([marked, nxt[:, None]], 1)
        plain = torch.cat([plain, gb.gumbel_max(table[plain[:, -1]], generator=gen)[:, None]], 1)
    assert max(lm.watermark_pvalue(t, 5, 30) for t in marked) < ALPHA
    p_plain = [lm.watermark_pvalue(t, 5, 30) for t in plain]
    assert scipy.stats.kstest(p_plain, "uniform").pvalue > ALPHA
    score, n = lm.watermark_score(torch.tensor([1, 2, 3, 4, 5, 1, 2, 3, 4, 5]), 5, 30)
    assert n == 5 and score > 0  # the repeated (context, token) pairs count once


def test_char_lm_learns_the_book():
    text = lm.chapter_text(ROOT / "book")
    assert "Gumbel" in text and "code-cell" not in text and "kernelspec" not in text
    model, losses = lm.train_char_lm(text[:20_000], steps=150, seed=0)
    assert sum(losses[-20:]) / 20 < math.log(len(model.vocab)) - 1
    out = lm.generate(model, model.encode(text[:16])[None, :8], 30, generator=torch.Generator().manual_seed(3))
    assert out.shape == (1, 30)
    with pytest.raises(FileNotFoundError):
        lm.chapter_text(ROOT / "src")


def test_shipped_corpus_is_the_books_prose():
    corpus = lm.book_corpus()
    assert len(corpus) > 50_000 and "Gumbel-Softmax" in corpus
    assert "code-cell" not in corpus and "kernelspec" not in corpus and "import torch" not in corpus
    lines = set(lm.chapter_text(ROOT / "book").splitlines())
    shared = [line for line in corpus.splitlines() if line in lines]
    assert len(shared) > 0.5 * len(corpus.splitlines())  # most of it still reads as the book does today


# --- exercise checks -----------------------------------------------------------------------------


def race_ok(logits, temperature, generator=None):
    p = torch.softmax(logits / temperature, dim=-1)
    return (p / torch.empty_like(p).exponential_(generator=generator)).argmax(dim=-1)


def race_no_temperature(logits, temperature, generator=None):
    return race_ok(logits, 1.0, generator)


def race_times(logits, temperature, generator=None):
    p = torch.softmax(logits / temperature, dim=-1)
    return (p * torch.empty_like(p).exponential_(generator=generator)).argmax(dim=-1)


def race_with_package(logits, temperature, generator=None):
    return gb.gumbel_max(logits / temperature, generator=generator)


def topk_ok(logits, k, generator=None):
    values, index = logits.topk(k, dim=-1)
    g = -torch.log(torch.empty_like(values).exponential_(generator=generator))
    return index.gather(-1, (values + g).argmax(-1, keepdim=True)).squeeze(-1)


def topk_uniform(logits, k, generator=None):
    _, index = logits.topk(k, dim=-1)
    pick = torch.randint(k, (logits.shape[0], 1), generator=generator)
    return index.gather(-1, pick).squeeze(-1)


def topk_untruncated(logits, k, generator=None):
    return race_ok(logits, 1.0, generator)


def detect_ok(tokens, key, vocab_size, window):
    pairs = {(tuple(tokens[t - window : t].tolist()), int(tokens[t])) for t in range(window, len(tokens))}
    ctx, nxt = torch.tensor([c for c, _ in pairs]), torch.tensor([x for _, x in pairs])
    r = lm.keyed_uniforms(key, ctx, vocab_size).gather(1, nxt[:, None]).squeeze(1)
    return float(scipy.stats.gamma.sf(float(-torch.log1p(-r).sum()), len(pairs)))


def detect_wrong_score(tokens, key, vocab_size, window):
    ctx = tokens.unfold(0, window, 1)[:-1]
    r = lm.keyed_uniforms(key, ctx, vocab_size).gather(1, tokens[window:, None]).squeeze(1)
    return float(scipy.stats.gamma.sf(float(-torch.log(r).sum()), len(r)))


def detect_with_package(tokens, key, vocab_size, window):
    return lm.watermark_pvalue(tokens, key, vocab_size, window)


@pytest.mark.parametrize(
    "check, right, wrongs",
    [
        (ex.check_exponential_race, race_ok, [race_no_temperature, race_times, race_with_package]),
        (ex.check_top_k_sampler, topk_ok, [topk_uniform, topk_untruncated]),
        (ex.check_watermark_detector, detect_ok, [detect_wrong_score, detect_with_package]),
    ],
)
def test_exercise_checks_accept_right_and_reject_wrong_answers(check, right, wrongs, capsys):
    assert check(right) is None and "correct" in capsys.readouterr().out
    for wrong in wrongs:
        with pytest.raises(AssertionError):
            check(wrong)
    with pytest.raises(TypeError):
        check("not a function")


HIDDEN_RACE_CASES = (
    ((0.0, 1.0, -0.5), 0.7),
    ((2.0, -math.inf, 1.0, 0.0, -1.0, 0.5), 1.5),
    ((-300.0, -301.0, -299.5), 0.25),
)


@pytest.mark.parametrize(
    "check, right, wrongs, kwargs",
    [
        (
            ex.check_exponential_race,
            race_ok,
            [race_no_temperature, race_times, race_with_package],
            {"seed": 8_191, "n": 80_000, "cases": HIDDEN_RACE_CASES},
        ),
        (
            ex.check_top_k_sampler,
            topk_ok,
            [topk_uniform, topk_untruncated],
            {"seed": 5_557, "n": 80_000, "logits": (0.3, -1.0, 2.2, 1.1, -0.4, 0.8, -2.0), "ks": (2, 4, 7)},
        ),
        (
            ex.check_watermark_detector,
            detect_ok,
            [detect_wrong_score, detect_with_package],
            {"key": 31_337, "seed": 12, "vocab_size": 50, "window": 3},
        ),
    ],
    ids=["race", "topk", "detect"],
)
def test_exercise_checks_take_other_seeds_and_inputs(check, right, wrongs, kwargs, capsys):
    """The hidden tests' inputs: the right answer still passes, every wrong one still fails."""
    assert check(right, **kwargs) is None and "correct" in capsys.readouterr().out
    for wrong in wrongs:
        with pytest.raises(AssertionError):
            check(wrong, **kwargs)


def test_watermark_check_uses_the_window_it_is_given():
    def detect_window_4(tokens, key, vocab_size, window):
        return detect_ok(tokens, key, vocab_size, 4)

    ex.check_watermark_detector(detect_window_4)  # right at the default window, 4
    with pytest.raises(AssertionError, match="not detected"):
        ex.check_watermark_detector(detect_window_4, key=31_337, seed=12, vocab_size=50, window=3)


def test_the_chapters_hidden_tests_accept_the_solutions_and_reject_wrong_answers(capsys):
    """Each hidden test of the chapter, run as the autograder runs it, on the solution and on wrong answers."""
    import ast

    from gumbel_book.course import discover_chapters, hidden_test_sources
    from gumbel_book.course.build import assignment_notebook

    (chapter,) = discover_chapters(ROOT, ["language_models"])
    answers = {
        "race": (race_ok, [race_no_temperature, race_times]),
        "sample": (topk_ok, [topk_uniform, topk_untruncated]),
        "detect": (detect_ok, [detect_wrong_score]),
    }
    seen = set()
    for source in hidden_test_sources(assignment_notebook(chapter)):
        tree = ast.parse(source)
        (test,) = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
        namespace: dict = {}
        exec(compile(ast.Module([test], type_ignores=[]), test.name, "exec"), namespace)
        answer = test.args.args[0].arg
        right, wrongs = answers[answer]
        namespace[test.name](right)
        assert "correct" in capsys.readouterr().out
        for wrong in wrongs:
            with pytest.raises(AssertionError):
                namespace[test.name](wrong)
        seen.add(answer)
    assert seen == set(answers)


def test_the_package_answers_are_restored_after_a_check():
    with pytest.raises(AssertionError, match="not allowed"):
        ex.check_exponential_race(race_with_package)
    assert gb.gumbel_max(torch.zeros(3)).shape == () and lm.exponential_race(torch.zeros(2, 3)).shape == (2,)
    assert torch.multinomial(torch.ones(3), 1).shape == (1,)


def test_the_top_k_check_refuses_stochastic_beam_search():
    """One step of the package's stochastic beam search with k=1 would be a ready-made sampler: it is switched off."""

    def sample(logits, k, generator=None):
        row = logits[:1]
        cut = row.masked_fill(row < row.topk(k).values[:, -1:], -math.inf)
        step = lm.stochastic_beam_search(lambda s: torch.log_softmax(cut, -1), torch.tensor([0]), 1, 1)
        return step[0].flatten().expand(logits.shape[0])

    with pytest.raises(AssertionError, match="not allowed"):
        ex.check_top_k_sampler(sample)


def test_kernel_static_table_ships_and_the_budget_follows_the_bytes():
    """The chapter's instruction count comes from the table shipped with the package; the budget is issue / stream."""
    rows = lm.kernel_static_table()["rows"]
    race = [
        r for r in rows if r["kernel"] == "_race_kernel" and r["constexprs"]["K"] == 1 and [256, 128256] in r["shapes"]
    ]
    assert race and all(r["per_element"] > 0 and r["spill_bytes"] == 0 for r in race)
    budget = lm.instruction_budget(4)
    assert budget == pytest.approx(132 * 4 * 32 * 1.98e9 / 1.2e12) and 20 < budget < 40
    assert lm.instruction_budget(2) == pytest.approx(budget / 2)


BIGRAM = torch.log_softmax(torch.tensor([[0.5, -0.3, 1.0], [1.2, 0.0, -0.8], [-0.4, 0.9, 0.2]], dtype=torch.float64), 1)


def _bigram(seqs: torch.Tensor) -> torch.Tensor:
    return BIGRAM[seqs[:, -1]]


def _sequence_law() -> np.ndarray:
    """P(a, b) of the 9 two-token continuations of token 0 under BIGRAM, indexed 3a + b."""
    return np.array([math.exp(BIGRAM[0, a] + BIGRAM[a, b]) for a in range(3) for b in range(3)])


def test_stochastic_beam_search_samples_sequences_without_replacement():
    """4,000 searches with k=2 over the 9 sequences of 2 tokens: the first is drawn from P (chi-square at 1e-3),
    the second from sampling without replacement, sum_i P_i P_j / (1 - P_i); the with-replacement law is rejected."""
    gen = torch.Generator().manual_seed(27)
    n, p = 4000, _sequence_law()
    first, second = np.zeros(9), np.zeros(9)
    for _ in range(n):
        seqs, log_p, keys = lm.stochastic_beam_search(_bigram, torch.tensor([0]), 2, 2, generator=gen)
        ids = (seqs[:, 0] * 3 + seqs[:, 1]).tolist()
        assert ids[0] != ids[1] and keys[0] >= keys[1]
        assert torch.allclose(log_p, torch.tensor(np.log(p[ids])))
        first[ids[0]] += 1
        second[ids[1]] += 1
    without = np.array([sum(p[i] * p[j] / (1 - p[i]) for i in range(9) if i != j) for j in range(9)])
    assert scipy.stats.chisquare(first, p * n).pvalue > 1e-3
    assert scipy.stats.chisquare(second, without * n).pvalue > 1e-3
    assert scipy.stats.chisquare(second, p * n).pvalue < 1e-3  # negative control: with replacement


def test_stochastic_beam_search_returns_every_sequence_when_k_covers_them():
    seqs, log_p, keys = lm.stochastic_beam_search(_bigram, torch.tensor([0]), 20, 2)
    assert len({tuple(s) for s in seqs.tolist()}) == 9 and bool((keys[:-1] >= keys[1:]).all())
    assert math.isclose(float(log_p.exp().sum()), 1.0)
    with pytest.raises(ValueError, match="k"):
        lm.stochastic_beam_search(_bigram, torch.tensor([0]), 0, 2)
