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
        r
        for r in rows
        if r["kernel"] in ("_chunk_race_kernel", "_flat_race_kernel")
        and r["constexprs"]["K"] == 1
        and r["shape"] == [256, 128256]
    ]
    assert len(race) == 4 and all(r["per_logit"] > 0 and r["spill_bytes"] == 0 for r in race)
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


# --- the exponential race on given clocks ---------------------------------------------------------


def test_exponential_race_on_given_noise_is_the_gumbel_max_argmax():
    """On the same Exp(1) clocks the race and the Gumbel-max argmax of log p - log E pick the same index; with a
    temperature too. Negative control: argmax p * E (the clocks inverted) disagrees on most rows."""
    gen = torch.Generator().manual_seed(40)
    logits = torch.randn(2000, 30, generator=gen, dtype=torch.float64)
    e = torch.empty_like(logits).exponential_(generator=gen)
    for t in (1.0, 0.5):
        race = lm.exponential_race(logits, t, noise=e)
        assert torch.equal(race, (torch.log_softmax(logits / t, -1) - torch.log(e)).argmax(-1))
    wrong = (torch.softmax(logits, -1) * e).argmax(-1)
    assert float((lm.exponential_race(logits, noise=e) == wrong).double().mean()) < 0.5
    with pytest.raises(ValueError, match="shaped like logits"):
        lm.exponential_race(logits, noise=e[:10])
    with pytest.raises(ValueError, match="positive"):
        lm.exponential_race(logits, noise=-e)


# --- the watermark's loops and their remedy ----------------------------------------------------------


def _loop_model(vocab: str = "abcdef", context: int = 3) -> lm.CharLM:
    """A tiny untrained model with near-uniform logits: high entropy, so plain samples never repeat for long."""
    torch.manual_seed(0)
    return lm.CharLM(vocab, context=context, embed=4, hidden=8).eval()


def test_keyed_text_loops_and_the_remedy_breaks_the_loop():
    """Keyed draws are a fixed function of the model's context: a 6-letter vocabulary revisits a 3-letter context
    within 216 steps, so every keyed text ends in a loop. With skip_seen_contexts none does, and the texts have as
    many distinct (context, token) pairs as plain samples (up to a few)."""
    model = _loop_model()
    prompts = torch.randint(6, (8, 4), generator=torch.Generator().manual_seed(41))
    keyed = lm.generate(model, prompts, 300, key=5, window=3)
    remedied = lm.generate(
        model, prompts, 300, key=5, window=3, skip_seen_contexts=True, generator=torch.Generator().manual_seed(42)
    )
    plain = lm.generate(model, prompts, 300, generator=torch.Generator().manual_seed(43))
    assert all(lm.tail_period(t, 100) is not None for t in keyed)
    assert all(lm.tail_period(t, 100) is None for t in remedied) and all(lm.tail_period(t, 100) is None for t in plain)
    count = {
        name: [lm.distinct_pairs(s, 3) for s in lm.with_context(prompts, texts, 3)]
        for name, texts in (("keyed", keyed), ("remedied", remedied), ("plain", plain))
    }
    assert max(count["keyed"]) < 0.5 * min(count["plain"])
    assert min(count["remedied"]) > 0.8 * min(count["plain"])


def test_the_remedy_keys_each_context_once_and_stays_detectable():
    """Each context chooses a keyed token the first time only: those tokens are the keyed race's, the later ones
    are drawn from the generator; the watermark is still detected, and no unkeyed text is flagged."""
    model = _loop_model()
    prompts = torch.randint(6, (4, 4), generator=torch.Generator().manual_seed(44))
    texts = lm.generate(
        model, prompts, 200, key=9, window=3, skip_seen_contexts=True, generator=torch.Generator().manual_seed(45)
    )
    for seq in lm.with_context(prompts, texts, 3):
        seen = set()
        for t in range(3, len(seq)):
            ctx = tuple(seq[t - 3 : t].tolist())
            if ctx in seen:
                continue
            seen.add(ctx)
            history = torch.cat([prompts[0][:1].expand(5), seq[:t]])  # any longer history with the same tail
            with torch.no_grad():
                logits = model(history[-model.context :][None]).double()
            r = lm.keyed_uniforms(9, seq[t - 3 : t][None], 6)
            assert int((logits - torch.log(-torch.log(r))).argmax()) == int(seq[t])
    assert max(lm.watermark_pvalue(s, 9, 6, 3) for s in lm.with_context(prompts, texts, 3)) < ALPHA
    plain = lm.generate(model, prompts, 200, generator=torch.Generator().manual_seed(46))
    assert min(lm.watermark_pvalue(s, 9, 6, 3) for s in lm.with_context(prompts, plain, 3)) > ALPHA / 4


def test_distinct_pairs_tail_period_and_with_context():
    seq = torch.tensor([1, 2, 3, 4, 5, 1, 2, 3, 4, 5])
    assert lm.distinct_pairs(seq, 4) == 5  # (1234, 5), (2345, 1), (3451, 2), (4512, 3), (5123, 4), then repeats
    assert lm.distinct_pairs(torch.arange(10), 4) == 6
    assert lm.tail_period(torch.tensor([9, 1, 2, 1, 2, 1, 2]), 6) == 2
    assert lm.tail_period(torch.tensor([9, 1, 2, 1, 2, 1, 3]), 6) is None
    assert lm.tail_period(torch.zeros(10, dtype=torch.int64), 4) == 1
    prompts, texts = torch.arange(12).reshape(2, 6), torch.full((2, 3), 7)
    out = lm.with_context(prompts, texts, 4)
    assert [s.tolist() for s in out] == [[2, 3, 4, 5, 7, 7, 7], [8, 9, 10, 11, 7, 7, 7]]
    with pytest.raises(ValueError, match="window"):
        lm.distinct_pairs(torch.arange(4), 4)
    with pytest.raises(ValueError, match="span"):
        lm.tail_period(torch.arange(3), 6)
    with pytest.raises(ValueError, match="one prompt"):
        lm.with_context(prompts[:1], texts, 4)


# --- where the benchmark tables live -------------------------------------------------------------------


def test_benchmark_results_dir_is_found_from_the_book_sources_not_the_working_directory(tmp_path, monkeypatch):
    """From the repository's book/ (the chapter's default) the search finds benchmarks/results beside
    benchmarks/sampler_speed.py, whatever the working directory; outside a repository it finds nothing; a stored
    CUDA table is seen (the chapter's "no GPU yet" guard can fail)."""
    monkeypatch.chdir(tmp_path)
    assert lm.benchmark_results_dir(ROOT / "book") == ROOT / "benchmarks" / "results"
    assert lm.benchmark_results_dir() == ROOT / "benchmarks" / "results"  # editable install: the repo's book/
    assert lm.benchmark_results_dir(tmp_path) is None
    fake = tmp_path / "repo"
    (fake / "book").mkdir(parents=True)
    (fake / "benchmarks" / "results").mkdir(parents=True)
    (fake / "benchmarks" / "sampler_speed.py").write_text("")
    (fake / "benchmarks" / "results" / "sampler_speed-1.json").write_text('{"device": "cuda:0", "date": "1"}')
    found = lm.benchmark_results_dir(fake / "book")
    assert found == fake / "benchmarks" / "results"
    assert [t["device"] for t in lm.stored_benchmarks(found)] == ["cuda:0"]


# --- the temperature slider ----------------------------------------------------------------------------


def test_temperature_figure_slider_steps_are_the_tempered_softmax():
    from gumbel_book.figures import language_models as fig

    logits = torch.tensor([2.0, 0.5, -1.0, 1.0, 0.0])
    temps = (0.5, 1.0, 2.0)
    figure = fig.temperature_figure(logits, "abcde", temps, active=2.0, top=4)
    (slider,) = figure.layout.sliders
    assert [s.label for s in slider.steps] == ["0.5", "1", "2"] and slider.active == 2
    order = logits.argsort(descending=True)[:4]
    for step, t in zip(slider.steps, temps, strict=True):
        expected = torch.softmax(logits.double() / t, -1)[order].tolist()
        assert list(step.args[1]) == [1] and step.args[0]["y"][0] == pytest.approx(expected, abs=1e-5)
    assert list(figure.data[1].y) == list(slider.steps[2].args[0]["y"][0])  # the page starts at the active step
    assert list(figure.data[0].y) == pytest.approx(torch.softmax(logits.double(), -1)[order].tolist(), abs=1e-5)
    assert list(figure.data[0].x) == ["a", "d", "b", "e"]
    with pytest.raises(ValueError, match="temperatures"):
        fig.temperature_figure(logits, "abcde", ())


def test_h200_constants_make_the_issue_rate():
    assert lm.H200_ISSUE_RATE == lm.H200_SMS * lm.H200_SCHEDULERS * 32 * lm.H200_CLOCK_HZ
