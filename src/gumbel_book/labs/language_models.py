"""Tools for the language-models chapter: a tiny character model, temperature, top-k/top-p, and a keyed watermark.

The character model trains in seconds on the book's own chapter text (no downloads). Sampling goes
through :mod:`gumbel_book.sampling`; this module adds the exponential race, the truncations, and the
keyed Gumbel race of Aaronson's watermark with its detector. The keyed uniforms come from a small
integer hash: enough to show the idea, not a cryptographic pseudo-random function.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from scipy import stats
from torch import nn

from ..sampling import gumbel_max
from ..validation import check_int, check_logits, check_real, check_tau

__all__ = [
    "CharLM",
    "book_corpus",
    "chapter_text",
    "distinct_pairs",
    "with_context",
    "exponential_race",
    "generate",
    "UNFUSED_GUMBEL_MAX",
    "keyed_uniforms",
    "benchmark_results_dir",
    "median_ms",
    "stored_benchmarks",
    "tail_period",
    "top_k_logits",
    "top_p_logits",
    "train_char_lm",
    "watermark_pvalue",
    "watermark_score",
]

_FENCE = re.compile(r"^(```|~~~|:::)")

WATERMARK_WINDOW = 4
"""How many previous characters the watermark's key reads: the context of :func:`keyed_uniforms`."""
_MASK32 = 0xFFFFFFFF


def chapter_text(book_dir: str | Path = ".") -> str:
    """The prose of the book's chapters (``book_dir/*.md``), one string: code cells, front matter and the
    exercises' solutions (from ``{solution-start}`` to ``{solution-end}``) removed, so no answer is in it."""
    paths = sorted(Path(book_dir).glob("*.md"))
    if not paths:
        raise FileNotFoundError(f"no chapter sources (*.md) in {Path(book_dir).resolve()}; pass book_dir")
    lines = []
    for path in paths:
        source = path.read_text(encoding="utf-8")
        if source.startswith("---"):
            source = source.split("\n---", 1)[-1]  # drop the notebook's front matter
        inside = solution = False
        for line in source.splitlines():
            if _FENCE.match(line.strip()):
                inside = not inside
                solution = (solution or "{solution-start}" in line) and "{solution-end}" not in line
            elif not inside and not solution and line.strip():
                lines.append(line.strip())
    return "\n".join(lines)


CORPUS = "book_prose.txt"  # a snapshot of chapter_text() of the first pages, every solution line removed


def book_corpus() -> str:
    """The training text of the chapter's tiny model: the book's own prose, as shipped with the package.

    A fixed snapshot, so the model (and every number the chapter prints about it) does not change each
    time a chapter's wording does, and a downloaded notebook finds it without the book's sources.
    """
    from importlib.resources import files

    return files("gumbel_book.labs").joinpath(CORPUS).read_text(encoding="utf-8")


class CharLM(nn.Module):
    """A character model: embeddings of the last ``context`` characters, one hidden layer, next-character logits."""

    def __init__(self, vocab: str, context: int = 8, embed: int = 24, hidden: int = 192):
        super().__init__()
        self.vocab = vocab
        self.context = context
        self.embed = nn.Embedding(len(vocab), embed)
        self.net = nn.Sequential(nn.Linear(context * embed, hidden), nn.Tanh(), nn.Linear(hidden, len(vocab)))

    def forward(self, ctx: torch.Tensor) -> torch.Tensor:
        """Next-character logits for a batch of contexts ``[batch, context]`` of character ids."""
        return self.net(self.embed(ctx).flatten(1))

    def encode(self, text: str) -> torch.Tensor:
        index = {c: i for i, c in enumerate(self.vocab)}
        return torch.tensor([index[c] for c in text if c in index], dtype=torch.int64)

    def decode(self, ids: torch.Tensor) -> str:
        return "".join(self.vocab[i] for i in ids.tolist())


def train_char_lm(
    text: str, context: int = 8, steps: int = 600, batch: int = 256, seed: int = 0
) -> tuple[CharLM, list[float]]:
    """Train a :class:`CharLM` on ``text`` with Adam; return it and the training loss (nats per character) per step."""
    context, steps, batch = check_int(context, "context"), check_int(steps, "steps"), check_int(batch, "batch")
    if len(text) <= context + 1:
        raise ValueError(f"text must be longer than context + 1 = {context + 1} characters, got {len(text)}")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = CharLM("".join(sorted(set(text))), context=context)
    data = model.encode(text)
    windows = data.unfold(0, context + 1, 1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        rows = windows[torch.randint(len(windows), (batch,), generator=gen)]
        loss = nn.functional.cross_entropy(model(rows[:, :-1]), rows[:, -1])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model.eval(), losses


def exponential_race(
    logits: torch.Tensor,
    temperature: float = 1.0,
    *,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sample from softmax(logits / temperature) along the last dim as ``argmax_i p_i / E_i``, E_i ~ Exp(1).

    The ``E_i`` are drawn from ``generator``, or given as ``noise`` (positive, shaped like ``logits``) to run
    the race on chosen clocks, for instance the same ones as a Gumbel-max draw.
    """
    check_logits(logits, -1)
    temperature = check_tau(temperature, "temperature")
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    if noise is None:
        e = torch.empty_like(probs).exponential_(generator=generator)
    else:
        if not isinstance(noise, torch.Tensor) or noise.shape != logits.shape:
            shape = tuple(noise.shape) if isinstance(noise, torch.Tensor) else type(noise).__name__
            raise ValueError(f"noise must be a tensor shaped like logits {tuple(logits.shape)}, got {shape}")
        if not bool((noise > 0).all()):
            raise ValueError("noise must hold positive Exp(1) draws; some are <= 0 or NaN")
        e = noise.double()
    return (probs / e).argmax(dim=-1)


def top_k_logits(logits: torch.Tensor, k: int) -> torch.Tensor:
    """``logits`` with all but the ``k`` largest of each row set to -inf (ties at the k-th value are kept)."""
    check_logits(logits, -1)
    k = check_int(k, "k")
    if k >= logits.shape[-1]:
        return logits.clone()
    kth = logits.topk(k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, -math.inf)


def top_p_logits(logits: torch.Tensor, p: float) -> torch.Tensor:
    """``logits`` truncated to the nucleus: the fewest most likely entries whose probability reaches ``p``."""
    check_logits(logits, -1)
    if not 0 < check_real(p, "p") <= 1:
        raise ValueError(f"p must lie in (0, 1], got {p!r}")
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    mass_before = torch.softmax(sorted_logits.double(), dim=-1).cumsum(dim=-1) - torch.softmax(
        sorted_logits.double(), dim=-1
    )
    drop_sorted = mass_before >= p  # entries whose predecessors already reach p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, -math.inf)


def _mix(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (two multiply-xorshift rounds) on int64 tensors holding values below 2**32."""
    x = (((x >> 16) ^ x) * 0x45D9F3B) & _MASK32
    x = (((x >> 16) ^ x) * 0x45D9F3B) & _MASK32
    return (x >> 16) ^ x


def keyed_uniforms(key: int | torch.Tensor, context: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Pseudo-random uniforms in (0, 1), ``[batch, vocab_size]``, a fixed function of the key and the context.

    ``context`` is ``[batch, window]`` of token ids (the previous tokens); ``key`` an int or one int per row.
    """
    if context.dim() != 2:
        raise ValueError(f"context must be [batch, window], got shape {tuple(context.shape)}")
    vocab_size = check_int(vocab_size, "vocab_size")
    state = _mix(torch.as_tensor(key, dtype=torch.int64).expand(context.shape[0]) & _MASK32)
    for j in range(context.shape[1]):
        state = _mix(state ^ (context[:, j].long() + 0x9E3779B9 * (j + 1)) & _MASK32)
    ids = _mix(torch.arange(vocab_size, dtype=torch.int64) + 0x7F4A7C15)
    bits = _mix(state[:, None] ^ ids[None, :])
    return (bits.double() + 0.5) / 2.0**32


def generate(
    model: CharLM,
    prompts: torch.Tensor,
    steps: int,
    temperature: float = 1.0,
    *,
    key: int | None = None,
    window: int = WATERMARK_WINDOW,
    skip_seen_contexts: bool = False,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Continue each prompt (``[batch, >= model.context]`` ids) by ``steps`` characters; returns the new ids.

    Each step is a Gumbel-max draw from softmax(logits / temperature), optionally truncated to the top
    ``top_k``. With a ``key`` the Gumbel noise is keyed, ``-log(-log r)`` with ``r`` the keyed uniforms of
    the last ``window`` characters: Aaronson's watermark, the exponential race ``argmax p_i / (-log r_i)``.

    The keyed draw is a fixed function of the model's context and the last ``window`` characters, so a text
    that comes back to a context it has seen repeats itself from there on, forever. With
    ``skip_seen_contexts`` a row whose last ``window`` characters already chose a keyed token earlier in the
    same text draws this token with ordinary noise from ``generator`` instead (Hu et al. 2023's context code
    history): every watermarked context is scored once, and no loop can lock in.
    """
    steps = check_int(steps, "steps")
    temperature = check_tau(temperature, "temperature")
    window = check_int(window, "window")
    ids = prompts.clone()
    seen: list[set[tuple[int, ...]]] = [set() for _ in range(ids.shape[0])]
    with torch.no_grad():
        for _ in range(steps):
            logits = model(ids[:, -model.context :]).double() / temperature
            if top_k is not None:
                logits = top_k_logits(logits, top_k)
            if key is None:
                nxt = gumbel_max(logits, generator=generator)
            else:
                r = keyed_uniforms(key, ids[:, -window:], logits.shape[-1])
                nxt = (logits - torch.log(-torch.log(r))).argmax(dim=-1)
                if skip_seen_contexts:
                    nxt = _skip_seen(nxt, logits, ids[:, -window:], seen, generator)
            ids = torch.cat([ids, nxt[:, None]], dim=1)
    return ids[:, prompts.shape[1] :]


def _skip_seen(
    keyed: torch.Tensor,
    logits: torch.Tensor,
    contexts: torch.Tensor,
    seen: list[set[tuple[int, ...]]],
    generator: torch.Generator | None,
) -> torch.Tensor:
    """``keyed``, except in the rows whose context is in ``seen`` (one set per row), which get an unkeyed draw;
    every row's context is then added to its set."""
    rows = [tuple(c) for c in contexts.tolist()]
    repeat = torch.tensor([c in s for c, s in zip(rows, seen, strict=True)])
    for c, s in zip(rows, seen, strict=True):
        s.add(c)
    free = gumbel_max(logits, generator=generator)  # drawn every step, so the stream does not depend on repeats
    return torch.where(repeat, free, keyed)


def with_context(prompts: torch.Tensor, texts: torch.Tensor, window: int = WATERMARK_WINDOW) -> list[torch.Tensor]:
    """Each generated text (rows of ``texts``) behind the last ``window`` ids of its prompt: the sequences the
    watermark detector and :func:`distinct_pairs` read, whose first ``window`` ids are context only."""
    window = check_int(window, "window")
    if prompts.shape[0] != texts.shape[0] or prompts.shape[1] < window:
        raise ValueError(
            f"need one prompt of at least window={window} ids per text, got prompts {tuple(prompts.shape)} "
            f"and texts {tuple(texts.shape)}"
        )
    return [torch.cat([p[-window:], t]) for p, t in zip(prompts, texts, strict=True)]


def distinct_pairs(tokens: torch.Tensor, window: int = WATERMARK_WINDOW) -> int:
    """The number of distinct (context, token) pairs of a sequence, the context being the ``window`` tokens
    before each token (the first ``window`` tokens only serve as context). A sampled text of n tokens has close
    to n; a text that loops has as many as its loop and the way into it."""
    window = check_int(window, "window")
    tokens = torch.as_tensor(tokens, dtype=torch.int64).flatten()
    if tokens.numel() <= window:
        raise ValueError(f"need more than window={window} tokens, got {tokens.numel()}")
    rows = tokens.unfold(0, window + 1, 1).tolist()
    return len({tuple(r) for r in rows})


def tail_period(tokens: torch.Tensor, span: int) -> int | None:
    """The smallest period p <= span // 2 of the last ``span`` tokens (``t[i] == t[i - p]`` throughout them),
    or None: a text whose keyed draws have locked into a loop has one."""
    span = check_int(span, "span", 2)
    tokens = torch.as_tensor(tokens, dtype=torch.int64).flatten()
    if tokens.numel() < span:
        raise ValueError(f"need at least span={span} tokens, got {tokens.numel()}")
    tail = tokens[-span:]
    for p in range(1, span // 2 + 1):
        if torch.equal(tail[p:], tail[:-p]):
            return p
    return None


def _log1mexp(a: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(a))`` for ``a <= 0``, accurate at both ends (Maechler's two branches)."""
    return torch.where(a > -math.log(2), torch.log(-torch.expm1(a)), torch.log1p(-torch.exp(a)))


def stochastic_beam_search(
    next_log_probs: Callable[[torch.Tensor], torch.Tensor],
    prefix: torch.Tensor,
    k: int,
    steps: int,
    *,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``k`` distinct sequences of ``steps`` tokens after ``prefix``, sampled without replacement (Kool et al. 2019).

    ``next_log_probs(seqs)`` maps ``[beams, length]`` token ids to ``[beams, vocab]`` next-token log-probabilities.
    Every partial sequence carries a Gumbel key, its log-probability plus Gumbel noise; a child's key is drawn
    conditioned on the largest key among its siblings being the parent's, so the keys of the finished
    sequences are those of sampling every full sequence independently, and the top ``k`` are a sample
    without replacement. Returns the sequences ``[k, steps]``, their log-probabilities and keys, largest key first.
    """
    k, steps = check_int(k, "k"), check_int(steps, "steps")
    seqs = torch.as_tensor(prefix, dtype=torch.int64).reshape(1, -1)
    log_p = torch.zeros(1, dtype=torch.float64)
    keys = torch.zeros(1, dtype=torch.float64)  # the root's key: any value works, the law of the rest is the same
    for _ in range(steps):
        child_log_p = log_p[:, None] + next_log_probs(seqs).double()
        free = child_log_p - torch.log(torch.empty_like(child_log_p).exponential_(generator=generator))
        top = free.max(dim=1, keepdim=True).values
        # Condition the siblings' maximum on the parent's key: -log(exp(-G) - exp(-Z) + exp(-free)), stably.
        v = keys[:, None] - free + _log1mexp(torch.clamp(free - top, max=0.0))
        child_keys = keys[:, None] - torch.relu(v) - torch.log1p(torch.exp(-v.abs()))
        child_keys = torch.where(torch.isfinite(child_log_p), child_keys, -math.inf)
        flat = child_keys.flatten()
        n_keep = min(k, int(torch.isfinite(flat).sum()))
        best = flat.topk(n_keep).indices
        parent, token = best // child_keys.shape[1], best % child_keys.shape[1]
        seqs = torch.cat([seqs[parent], token[:, None]], dim=1)
        log_p, keys = child_log_p.flatten()[best], flat[best]
    return seqs[:, -steps:], log_p, keys


def watermark_score(
    tokens: torch.Tensor, key: int, vocab_size: int, window: int = WATERMARK_WINDOW
) -> tuple[float, int]:
    """Aaronson's score ``sum_t -log(1 - r_t(x_t))`` of a token sequence, and the number of terms it sums.

    ``tokens`` includes at least ``window`` tokens of prompt before the scored ones; a (context, token)
    pair that repeats is scored once, so that without the key each term is an independent Exp(1).
    """
    window = check_int(window, "window")
    tokens = torch.as_tensor(tokens, dtype=torch.int64).flatten()
    if tokens.numel() <= window:
        raise ValueError(f"need more than window={window} tokens, got {tokens.numel()}")
    ctx = tokens.unfold(0, window, 1)[:-1]
    nxt = tokens[window:]
    seen, keep = set(), []
    for t, pair in enumerate(zip(map(tuple, ctx.tolist()), nxt.tolist(), strict=True)):
        if pair not in seen:
            seen.add(pair)
            keep.append(t)
    keep = torch.tensor(keep, dtype=torch.int64)
    r = keyed_uniforms(key, ctx[keep], vocab_size).gather(1, nxt[keep, None]).squeeze(1)
    return float(-torch.log1p(-r).sum()), len(keep)


def watermark_pvalue(tokens: torch.Tensor, key: int, vocab_size: int, window: int = WATERMARK_WINDOW) -> float:
    """P-value of the watermark test: the chance that unkeyed text scores this high (the score is Gamma(n, 1))."""
    score, n = watermark_score(tokens, key, vocab_size, window)
    return float(stats.gamma.sf(score, n))


#: The tensor passes of the unfused ``gumbel_max`` (``sampling.perturbed_logits`` then ``argmax``), as
#: (operation, full-size tensors read, full-size tensors written), read off the code in float32.
UNFUSED_GUMBEL_MAX = (
    ("empty(...).exponential_()", 0, 1),
    ("clamp_(min=tiny)", 1, 1),
    ("log_()", 1, 1),
    ("neg_()", 1, 1),
    ("logits + g", 2, 1),
    ("argmax", 1, 0),
)


#: How many timed calls :func:`median_ms` takes the median of.
TIMING_REPEATS = 7


def median_ms(fn: Callable[[], object], repeats: int = TIMING_REPEATS) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` calls, after one warm-up call (CPU)."""
    fn()
    times = []
    for _ in range(check_int(repeats, "repeats")):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def stored_benchmarks(results_dir: str | Path) -> list[dict]:
    """The tables ``benchmarks/sampler_speed.py --save`` stored in ``results_dir``, oldest first."""
    tables = [json.loads(p.read_text()) for p in sorted(Path(results_dir).glob("sampler_speed-*.json"))]
    return sorted(tables, key=lambda t: t.get("date", ""))


#: The benchmark script whose ``--save`` writes the tables :func:`stored_benchmarks` reads, relative to the root of
#: the repository; the tables go to the ``results`` folder beside it.
BENCHMARK_SCRIPT = Path("benchmarks") / "sampler_speed.py"


def benchmark_results_dir(start: str | Path | None = None) -> Path | None:
    """``benchmarks/results`` of the repository that holds the book's sources, or None outside one.

    The search goes upward from ``start`` (by default the chapter sources, :func:`gumbel_book.notebook.book_sources`)
    to the first folder holding :data:`BENCHMARK_SCRIPT`, so it does not depend on the working directory. The
    results folder itself may not exist yet: the script creates it when it first saves a table.
    """
    from ..notebook import book_sources

    here = (book_sources() if start is None else Path(start)).resolve()
    for folder in (here, *here.parents):
        if (folder / BENCHMARK_SCRIPT).is_file():
            return folder / BENCHMARK_SCRIPT.parent / "results"
    return None


#: The static analysis of the fused kernels compiled for sm_90, shipped with the package (tests keep it current).
KERNEL_STATIC = "static_sm90.json"

#: An H100/H200 has 132 SMs, each issuing one warp instruction (32 lanes) per clock from each of its 4 schedulers,
#: at a boost clock of 1.98 GHz (NVIDIA's H100 whitepaper: 67 TFLOPS FP32 from 16,896 lanes); an H200 streams
#: 4.8 TB/s (its datasheet).
H200_SMS = 132
H200_SCHEDULERS = 4
H200_CLOCK_HZ = 1.98e9
H200_ISSUE_RATE = H200_SMS * H200_SCHEDULERS * 32 * H200_CLOCK_HZ
H200_BANDWIDTH = 4.8e12


def kernel_static_table() -> dict:
    """``python -m gumbel_book.kernels.static --arch 90`` as stored with the package: one row per launched kernel."""
    from importlib.resources import files

    return json.loads(files("gumbel_book.kernels").joinpath(KERNEL_STATIC).read_text())


def instruction_budget(bytes_per_element: int = 4) -> float:
    """Instructions per element an H200 can issue while streaming its full bandwidth, ``bytes_per_element`` each."""
    return H200_ISSUE_RATE / (H200_BANDWIDTH / bytes_per_element)
