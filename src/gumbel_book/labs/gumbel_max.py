"""Tools for the Gumbel-max chapter: the Gumbel law, a common wrong sampler, and the empirical checks.

The samplers themselves live in :mod:`gumbel_book.sampling`; this module only measures them:
counts against probabilities (standardized residuals with exact bands, chi-square), noise against the
Gumbel law (Kolmogorov-Smirnov), the error's 1/sqrt(N) rate, the law of the max, the noise's resolution
and range, and Gumbel-top-k against an independent sequential sampler without replacement.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from scipy import stats

from ..sampling import compute_dtype, gumbel_max, gumbel_softmax, gumbel_topk, perturbed_logits, sample_gumbel
from ..validation import (
    as_float_tensor,
    check_int,
    check_int_sequence,
    check_logits,
    check_logits_vector,
    check_real,
    check_taus,
)

EULER_GAMMA = 0.5772156649015329
RAND_BITS_FLOAT32 = 24  # torch.rand(dtype=float32) on the CPU returns k / 2**24, k = 0, ..., 2**24 - 1
RAND_BITS_FLOAT64 = 53  # torch.rand(dtype=float64) returns k / 2**53; the CPU's exponential_ starts from it
INF = float("inf")

EMPIRICAL_CASES: dict[str, tuple[float, ...]] = {
    "plain": (1.5, 0.5, 1.0, -0.5, 0.0),
    "extreme": (12.0, 0.0, -4.0, 4.0, 8.0),
    "masked": (1.0, -INF, 0.0, -INF, 2.0, 0.5),
    "shifted +1000": (1001.5, 1000.5, 1001.0, 999.5, 1000.0),
    "K = 12": tuple(0.1 * ((3 * i) % 7) for i in range(12)),
}
"""The logit vectors of the chapter's empirical proof (float32): ordinary, extreme, masked, shifted, many."""

H200_FLOAT32_NOISE = {"torch": "2.11", "draws": 4 * 10**9, "largest": 16.636, "threshold": 16.64}
"""A measurement made once on an H200 GPU, which the CPU build cannot repeat: ``draws`` float32 draws of
:func:`gumbel_book.sample_gumbel` on CUDA never exceeded ``largest``. ``tests/unit/test_cuda.py`` repeats it
on 2**30 draws wherever a GPU is present."""

FUSED_SMALLEST_UNIFORM = 2.0**-65
"""The smallest uniform the fused kernels build from two random 32-bit words ``hi, lo``:
``hi 2**-32 + (lo + 1/2) 2**-64`` at ``hi = lo = 0`` (``gumbel_book.kernels.fused``; checked in the chapter's
tests by running the kernels' own code). Its Exp(1) draw is about the same, so their noise reaches
``-log(2**-65)``, about 45."""


def gumbel_pdf(x: torch.Tensor | float, loc: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    """Density of Gumbel(loc, scale): ``exp(-(z + exp(-z))) / scale`` with ``z = (x - loc) / scale``."""
    scale = check_real(scale, "scale", positive=True)
    z = (as_float_tensor(x, "x") - check_real(loc, "loc")) / scale
    return torch.exp(-(z + torch.exp(-z))) / scale


def gumbel_cdf(x: torch.Tensor | float, loc: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    """Distribution function of Gumbel(loc, scale): ``exp(-exp(-(x - loc) / scale))``."""
    z = (as_float_tensor(x, "x") - check_real(loc, "loc")) / check_real(scale, "scale", positive=True)
    return torch.exp(-torch.exp(-z))


def gumbel_sf(x: torch.Tensor | float, loc: float = 0.0, scale: float = 1.0) -> torch.Tensor:
    """Tail ``P(G > x)`` of Gumbel(loc, scale), ``-expm1(-exp(-z))``: accurate where it is tiny."""
    z = (as_float_tensor(x, "x") - check_real(loc, "loc")) / check_real(scale, "scale", positive=True)
    return -torch.expm1(-torch.exp(-z))


def expected_exceedances(threshold: float, draws: int) -> float:
    """How many of ``draws`` independent Gumbel(0, 1) draws are expected above ``threshold``."""
    check_int(draws, "draws")
    return draws * float(gumbel_sf(torch.tensor(check_real(threshold, "threshold"), dtype=torch.float64)))


def grid_distance(e: torch.Tensor, bits: int = RAND_BITS_FLOAT32, below: float = 1e-5) -> float:
    """Mean distance of ``e * 2**bits`` to the nearest integer, over the entries of ``e`` below ``below``.

    About 0.25 when the small values are finer than a ``2**-bits`` grid; near 0 when they were computed
    from uniforms on that grid (``-log u`` with ``u`` near 1 is close to a multiple of ``2**-bits``).
    """
    check_int(bits, "bits")
    check_real(below, "below", positive=True)
    small = as_float_tensor(e, "e").reshape(-1).double().cpu()
    small = small[small < below] * 2.0**bits
    if small.numel() == 0:
        raise ValueError(f"e has no entries below {below}; draw more")
    return float((small - small.round()).abs().mean())


def gumbel_inverse_cdf(u: torch.Tensor | float) -> torch.Tensor:
    """The textbook inverse-CDF map ``-log(-log u)`` from [0, 1] to Gumbel(0, 1), kept raw on purpose.

    It returns -inf at ``u = 0`` and +inf at ``u = 1``: the chapter shows why the book's sampler avoids it.
    """
    u = as_float_tensor(u, "u")
    if bool(torch.isnan(u).any()) or bool(((u < 0) | (u > 1)).any()):
        raise ValueError(f"u must lie in [0, 1], got values from {float(u.min())} to {float(u.max())}")
    return -torch.log(-torch.log(u))


def gumbel_eps_form(u: torch.Tensor | float, eps: float = 1e-20) -> torch.Tensor:
    """The ``-log(-log(u + eps) + eps)`` sampler found in many tutorials, computed in ``u``'s dtype.

    The two ``eps`` keep it finite at ``u = 0`` and ``u = 1``, at the price of a capped range.
    """
    u = as_float_tensor(u, "u")
    check_real(eps, "eps", positive=True)
    if bool(torch.isnan(u).any()) or bool(((u < 0) | (u > 1)).any()):
        raise ValueError(f"u must lie in [0, 1], got values from {float(u.min())} to {float(u.max())}")
    return -torch.log(-torch.log(u + eps) + eps)


def eps_form_exact(eps: float = 1e-20, bits: int = RAND_BITS_FLOAT32, chunk: int = 1 << 22) -> dict[str, float]:
    """The exact law of :func:`gumbel_eps_form` applied to float32 ``torch.rand``, by enumerating its 2**bits values.

    Returns the exact mean and its bias against Euler's gamma (the Gumbel mean), the smallest and
    largest values it can produce, and the Gumbel probability mass beyond that range.
    """
    check_int(bits, "bits")
    if bits > RAND_BITS_FLOAT32:
        raise ValueError(f"bits must be an int in [1, {RAND_BITS_FLOAT32}], got {bits!r}")
    check_int(chunk, "chunk")
    n = 1 << bits
    total, lo, hi = 0.0, math.inf, -math.inf
    for start in range(0, n, chunk):
        k = torch.arange(start, min(start + chunk, n), dtype=torch.float64)
        g = gumbel_eps_form((k / n).to(torch.float32), eps).to(torch.float64)
        total += float(g.sum())
        lo, hi = min(lo, float(g.min())), max(hi, float(g.max()))
    mean = total / n
    return {
        "values": float(n),
        "mean": mean,
        "bias": mean - EULER_GAMMA,
        "min": lo,
        "max": hi,
        "mass_above_max": float(gumbel_sf(torch.tensor(hi, dtype=torch.float64))),
        "mass_below_min": float(gumbel_cdf(lo)),
    }


def empirical_frequencies(samples: torch.Tensor, num_categories: int) -> torch.Tensor:
    """Fraction of ``samples`` (int category indices) equal to each of ``0, ..., num_categories - 1``, float64."""
    check_int(num_categories, "num_categories")
    if not isinstance(samples, torch.Tensor) or samples.dtype not in (torch.int64, torch.int32, torch.int16):
        raise TypeError(f"samples must be an integer tensor of category indices, got {samples!r:.80}")
    if samples.numel() == 0:
        raise ValueError("samples is empty")
    flat = samples.reshape(-1).long().cpu()
    if int(flat.min()) < 0 or int(flat.max()) >= num_categories:
        raise ValueError(
            f"samples must lie in [0, {num_categories - 1}], got values from {int(flat.min())} to {int(flat.max())}"
        )
    return torch.bincount(flat, minlength=num_categories).double() / flat.numel()


def _probs(probs: torch.Tensor | Sequence[float]) -> torch.Tensor:
    p = torch.as_tensor(probs, dtype=torch.float64).cpu()
    if p.dim() != 1 or p.numel() < 2:
        raise ValueError(f"probs must be a 1-d vector of at least 2 probabilities, got shape {tuple(p.shape)}")
    if bool(~torch.isfinite(p).all()) or bool((p < 0).any()) or abs(float(p.sum()) - 1) > 1e-6:
        raise ValueError(f"probs must be non-negative and sum to 1, got {p.tolist()}")
    return p


def chi_square_gof(
    samples: torch.Tensor, probs: torch.Tensor | Sequence[float], min_expected: float = 5.0
) -> dict[str, float]:
    """Pearson chi-square goodness-of-fit test of category ``samples`` against ``probs`` (scipy).

    Categories expected fewer than ``min_expected`` times are pooled, as the chi-square approximation
    needs. A sample in a zero-probability category makes the p-value exactly 0 (``impossible`` counts them).
    """
    p = _probs(probs)
    check_real(min_expected, "min_expected", positive=True)
    freq = empirical_frequencies(samples, p.numel())
    n = samples.numel()
    counts = (freq * n).round()
    impossible = int(counts[p == 0].sum())
    support = (p > 0).nonzero().flatten()
    obs, exp = counts[support], p[support] * n
    order = torch.argsort(exp)
    obs, exp = obs[order], exp[order]
    # Pool the smallest categories, as few as needed for the pooled bin to reach ``min_expected``.
    m = 0
    if float(exp[0]) < min_expected:
        m = min(int((exp.cumsum(0) < min_expected).sum()) + 1, len(exp))
    if m > 1:
        obs = torch.cat([obs[:m].sum().reshape(1), obs[m:]])
        exp = torch.cat([exp[:m].sum().reshape(1), exp[m:]])
    pooled = max(m - 1, 0)
    if len(exp) < 2:
        raise ValueError(
            "after pooling categories with small expected counts fewer than 2 bins remain; draw more samples"
        )
    result = stats.chisquare(obs.numpy(), exp.numpy() * (obs.sum() / exp.sum()).item())
    return {
        "statistic": float(result.statistic),
        "p_value": 0.0 if impossible else float(result.pvalue),
        "dof": len(exp) - 1,
        "pooled": pooled,
        "impossible": impossible,
        "n": n,
    }


def probabilities_plus_noise(logits: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """A deliberately wrong sampler, ``argmax(softmax(logits) + g)`` along the last dim: the noise is added to
    the probabilities instead of the log-probabilities. It prefers likely categories but is far too close to
    uniform, and it draws masked categories. Its noise is :func:`gumbel_book.gumbel_max`'s for the same
    generator state (same shape, same dtype), so the two differ only in that one step."""
    check_logits(logits, -1)
    g = sample_gumbel(logits.shape, device=logits.device, dtype=compute_dtype(logits.dtype), generator=generator)
    return (torch.softmax(logits.to(g.dtype), dim=-1) + g).argmax(dim=-1)


def residual_test(
    samples: torch.Tensor, probs: torch.Tensor | Sequence[float], *, alpha: float = 1e-3, comparisons: int | None = None
) -> dict:
    """Standardized residuals ``(count - N pi) / sqrt(N pi (1 - pi))`` of each category, with exact bands.

    Each category with ``pi > 0`` gets the range of counts outside which Binomial(N, pi) falls with
    probability at most ``alpha / m``, half in each tail (``m = comparisons``, by default the number of
    categories with ``pi > 0``: a Bonferroni correction, so a right sampler leaves any band with probability
    at most ``alpha``). The range is written on the residual scale (``lower``, ``upper``); for large ``N pi``
    its ends are ``-z`` and ``+z``, ``z = Phi^-1(1 - alpha / (2 m))``. A category with ``pi = 0`` has NaN
    residual and band, and is inside only if it was never drawn. ``chi_square`` is :func:`chi_square_gof`.
    """
    p = _probs(probs)
    alpha = check_real(alpha, "alpha", positive=True)
    support = p > 0
    m = int(support.sum()) if comparisons is None else check_int(comparisons, "comparisons")
    n = samples.numel()
    counts = empirical_frequencies(samples, p.numel()) * n
    counts = counts.round()
    mean, sd = n * p, torch.sqrt(n * p * (1 - p))
    q = alpha / (2 * m)
    lo_count = torch.as_tensor(stats.binom.ppf(q, n, p.numpy()), dtype=torch.float64)
    hi_count = torch.as_tensor(stats.binom.isf(q, n, p.numpy()), dtype=torch.float64)
    nan = torch.full_like(p, math.nan)
    sd_safe = torch.where(sd > 0, sd, torch.ones_like(sd))
    residual = torch.where(sd > 0, (counts - mean) / sd_safe, nan)
    inside = torch.where(support, (counts >= lo_count) & (counts <= hi_count), counts == 0)
    return {
        "counts": counts,
        "probs": p,
        "residual": torch.where(support, residual, nan),
        "lower": torch.where(support & (sd > 0), (lo_count - mean) / sd_safe, nan),
        "upper": torch.where(support & (sd > 0), (hi_count - mean) / sd_safe, nan),
        "inside": inside,
        "all_inside": bool(inside.all()),
        "z": float(stats.norm.isf(q)),
        "alpha": alpha,
        "comparisons": m,
        "chi_square": chi_square_gof(samples, p),
    }


def residual_cases(
    cases: Mapping[str, Sequence[float]] = EMPIRICAL_CASES, n: int = 1_000_000, *, seed: int = 0, alpha: float = 1e-3
) -> dict[str, dict]:
    """For each named float32 logit vector: ``n`` draws of :func:`gumbel_book.gumbel_max` (``right``) and of
    :func:`probabilities_plus_noise` (``wrong``) on the same noise, each through :func:`residual_test`.

    The bands are Bonferroni-corrected over every category of every case, so ``alpha`` is the probability
    that a right sampler leaves any band anywhere in the figure.
    """
    check_int(n, "n")
    vectors = {name: torch.tensor(logits, dtype=torch.float32) for name, logits in cases.items()}
    m = sum(int(torch.isfinite(lg).sum()) for lg in vectors.values())
    out = {}
    for j, (name, lg) in enumerate(vectors.items()):
        p = torch.softmax(lg.double(), dim=-1)
        right = gumbel_max(lg.expand(n, -1), generator=torch.Generator().manual_seed(seed + j))
        wrong = probabilities_plus_noise(lg.expand(n, -1), generator=torch.Generator().manual_seed(seed + j))
        out[name] = {
            "logits": lg,
            "probs": p,
            "right": residual_test(right, p, alpha=alpha, comparisons=m),
            "wrong": residual_test(wrong, p, alpha=alpha, comparisons=m),
        }
    return out


def ks_gumbel(samples: torch.Tensor, loc: float = 0.0, scale: float = 1.0) -> dict[str, float]:
    """Kolmogorov-Smirnov test of real ``samples`` against Gumbel(loc, scale) (scipy's ``gumbel_r``)."""
    x = as_float_tensor(samples, "samples").reshape(-1).double().cpu()
    if x.numel() < 2:
        raise ValueError(f"samples needs at least 2 values, got {x.numel()}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("samples contains NaN or infinite values")
    args = (check_real(loc, "loc"), check_real(scale, "scale", positive=True))
    result = stats.kstest(x.numpy(), "gumbel_r", args=args)
    return {"statistic": float(result.statistic), "p_value": float(result.pvalue), "n": x.numel()}


def frequency_error_vs_n(
    logits: torch.Tensor,
    ns: Sequence[int],
    *,
    repeats: int = 20,
    seed: int = 0,
    sampler: Callable[..., torch.Tensor] = gumbel_max,
) -> dict[str, torch.Tensor]:
    """Mean total-variation distance between the frequencies of ``n`` samples and softmax(logits).

    ``sampler(logits, generator=...)`` draws one index per row, as :func:`gumbel_book.gumbel_max` (the
    default) does. For each ``n`` in ``ns`` the distance is averaged over ``repeats`` independent runs.
    ``expected`` is the large-``n`` prediction for an exact sampler, ``sum_i sqrt(p_i (1 - p_i) / (2 pi n))``,
    which falls as 1/sqrt(n).
    """
    check_logits_vector(logits)
    check_int(repeats, "repeats")
    ns = check_int_sequence(ns, "ns")
    p = torch.softmax(logits.double().cpu(), dim=-1)
    k = p.numel()
    gen = torch.Generator(device=logits.device).manual_seed(seed)
    tv = []
    for n in ns:
        idx = sampler(logits.expand(repeats, n, k), generator=gen).cpu()
        offsets = torch.arange(repeats).unsqueeze(-1) * k
        freq = torch.bincount((idx + offsets).reshape(-1), minlength=repeats * k).view(repeats, k).double() / n
        tv.append(0.5 * (freq - p).abs().sum(dim=-1).mean())
    n_t = torch.tensor(list(ns), dtype=torch.float64)
    expected = torch.sqrt(p * (1 - p)).sum() / torch.sqrt(2 * math.pi * n_t)
    return {"n": n_t, "tv": torch.stack(tv), "expected": expected}


def loglog_slope(x: torch.Tensor | Sequence[float], y: torch.Tensor | Sequence[float]) -> float:
    """Least-squares slope of ``log y`` against ``log x``: -0.5 for a 1/sqrt(x) law."""
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    if x.shape != y.shape or x.dim() != 1 or x.numel() < 2:
        raise ValueError(f"x and y must be 1-d of the same length >= 2, got shapes {tuple(x.shape)}, {tuple(y.shape)}")
    if bool((x <= 0).any()) or bool((y <= 0).any()):
        raise ValueError("x and y must be positive to take logs")
    lx, ly = x.log(), y.log()
    lx = lx - lx.mean()
    return float((lx * (ly - ly.mean())).sum() / (lx * lx).sum())


def max_and_argmax(
    logits: torch.Tensor, n: int, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` draws of the perturbed vector ``logits + g``: its argmax (int64 ``[n]``) and its max (``[n]``).

    Uses the book's noise (:func:`gumbel_book.sample_gumbel`), so ``argmax`` is what :func:`gumbel_max` returns.
    """
    check_logits_vector(logits)
    check_int(n, "n")
    values, index = perturbed_logits(logits.expand(n, -1), generator).max(dim=-1)
    return index, values


def independence_test(index: torch.Tensor, values: torch.Tensor, num_categories: int, bins: int = 10) -> dict:
    """Chi-square test of independence between a category ``index`` and a real ``values`` cut into ``bins`` quantiles.

    A large p-value is what independence of the argmax and the max predicts.
    """
    check_int(bins, "bins", 2)
    empirical_frequencies(index, num_categories)  # validates index
    v = as_float_tensor(values, "values").reshape(-1).double().cpu()
    if v.numel() != index.numel():
        raise ValueError(f"index and values must have the same length, got {index.numel()} and {v.numel()}")
    edges = torch.quantile(v[: min(v.numel(), 1 << 24)], torch.linspace(0, 1, bins + 1, dtype=torch.float64)[1:-1])
    which = torch.bucketize(v, edges)
    table = torch.zeros(num_categories, bins, dtype=torch.float64)
    table.index_put_((index.reshape(-1).long().cpu(), which), torch.ones_like(v), accumulate=True)
    table = table[table.sum(dim=1) > 0]
    if table.shape[0] < 2:
        raise ValueError("index takes a single value: independence cannot be tested")
    result = stats.chi2_contingency(table.numpy())
    return {"statistic": float(result.statistic), "p_value": float(result.pvalue), "dof": int(result.dof)}


def sequential_without_replacement(
    probs: torch.Tensor | Sequence[float], k: int, n: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Reference sampler: ``n`` ordered draws of ``k`` items without replacement, one item at a time.

    Each step inverts the CDF of the remaining probabilities, renormalized; no Gumbel noise is used,
    so it is an independent check of :func:`gumbel_book.gumbel_topk`. Returns int64 ``[n, k]``.
    """
    p = _probs(probs)
    check_int(k, "k")
    if k > int((p > 0).sum()):
        raise ValueError(f"k must be an int between 1 and the number of nonzero probabilities, got {k!r}")
    check_int(n, "n")
    remaining = p.expand(n, -1).clone()
    out = torch.empty(n, k, dtype=torch.int64)
    rows = torch.arange(n)
    for j in range(k):
        cdf = remaining.cumsum(dim=-1)
        u = torch.rand(n, 1, dtype=torch.float64, generator=generator) * cdf[:, -1:]
        pick = torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp(max=p.numel() - 1)
        # Never land on an exhausted category through rounding at the top of the CDF.
        while bool((remaining[rows, pick] == 0).any()):
            bad = remaining[rows, pick] == 0
            pick[bad] = pick[bad] - 1
        out[:, j] = pick
        remaining[rows, pick] = 0.0
    return out


def ordered_tuple_probabilities(probs: torch.Tensor | Sequence[float], k: int) -> dict[tuple[int, ...], float]:
    """Exact probability of every ordered ``k``-tuple under sequential sampling without replacement.

    ``P(i_1, ..., i_k) = prod_j p_{i_j} / (1 - p_{i_1} - ... - p_{i_{j-1}})``; tuples of probability 0 are left out.
    """
    p = _probs(probs).tolist()
    check_int(k, "k")
    if k > len(p):
        raise ValueError(f"k must be an int between 1 and {len(p)}, got {k!r}")
    out = {}
    for tup in itertools.permutations(range(len(p)), k):
        prob, used = 1.0, 0.0
        for i in tup:
            prob *= p[i] / (1 - used) if used < 1 else 0.0
            used += p[i]
        if prob > 0:
            out[tup] = prob
    return out


def _check_tuples(samples: torch.Tensor) -> None:
    if not isinstance(samples, torch.Tensor) or samples.dim() != 2 or samples.is_floating_point():
        raise TypeError(f"samples must be an integer tensor of shape [n, k], got {samples!r:.80}")


def tuple_frequencies(samples: torch.Tensor) -> dict[tuple[int, ...], float]:
    """Empirical frequency of every ordered tuple among the rows of an int ``[n, k]`` tensor."""
    _check_tuples(samples)
    rows, counts = torch.unique(samples.cpu(), dim=0, return_counts=True)
    n = samples.shape[0]
    return {tuple(r.tolist()): c / n for r, c in zip(rows, counts.tolist(), strict=True)}


def tuple_chi_square(samples: torch.Tensor, probs: torch.Tensor | Sequence[float]) -> dict[str, float]:
    """Chi-square test of the ordered tuples in ``samples`` (``[n, k]``) against sequential sampling from ``probs``."""
    _check_tuples(samples)
    exact = ordered_tuple_probabilities(probs, samples.shape[1])
    tuples = list(exact)
    code = {t: i for i, t in enumerate(tuples)}
    freq = tuple_frequencies(samples)
    outside = sum(f for t, f in freq.items() if t not in code)
    n = samples.shape[0]
    counts = torch.zeros(len(tuples) + 1, dtype=torch.int64)
    for t, f in freq.items():
        counts[code.get(t, len(tuples))] += round(f * n)
    # Encode each tuple as one category, so the same pooling rules apply.
    encoded = torch.repeat_interleave(torch.arange(len(tuples) + 1), counts)
    result = chi_square_gof(encoded, [*exact.values(), 0.0], min_expected=5.0)
    result["tuples"] = len(tuples)
    result["outside"] = outside
    return result


def two_sample_tuple_test(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    """Chi-square test that two ``[n, k]`` samples of ordered tuples come from the same law (scipy contingency)."""
    fa, fb = tuple_frequencies(a), tuple_frequencies(b)
    keys = sorted(set(fa) | set(fb))
    table = np.array([[fa.get(t, 0.0) * a.shape[0] for t in keys], [fb.get(t, 0.0) * b.shape[0] for t in keys]])
    table = np.round(table)
    # Pool rare tuples so that every expected count is at least 5.
    expected_min = table.sum(axis=0) * min(a.shape[0], b.shape[0]) / (a.shape[0] + b.shape[0])
    rare = expected_min < 5
    if rare.any():
        table = np.concatenate([table[:, ~rare], table[:, rare].sum(axis=1, keepdims=True)], axis=1)
    result = stats.chi2_contingency(table)
    return {"statistic": float(result.statistic), "p_value": float(result.pvalue), "dof": int(result.dof)}


def topk_samples(probs: Sequence[float], k: int = 2, n: int = 200_000, *, seed: int = 0) -> dict:
    """Ordered k-tuples from :func:`gumbel_book.gumbel_topk` and from :func:`sequential_without_replacement`
    (``n`` each, one generator), with the exact law of every tuple."""
    p = _probs(probs)
    gen = torch.Generator().manual_seed(seed)
    topk = gumbel_topk(p.log().expand(n, -1), k, generator=gen)
    seq = sequential_without_replacement(p, k, n, generator=gen)
    return {"exact": ordered_tuple_probabilities(p, k), "topk": topk, "sequential": seq}


def relaxed_argmax_agreement(
    logits: torch.Tensor, taus: Sequence[float], n: int, *, seed: int = 0
) -> dict[float, float]:
    """For each ``tau``: the fraction of ``n`` rows where the argmax of :func:`gumbel_book.gumbel_softmax` equals
    :func:`gumbel_book.gumbel_max` drawn from the same seed, hence the same noise, in ``logits``' dtype.

    In exact arithmetic it is 1 at every temperature; in floating point it falls once ``(logits + g) / tau``
    runs out of digits.
    """
    check_logits_vector(logits)
    check_int(n, "n")
    batch = logits.expand(n, -1)
    index = gumbel_max(batch, generator=torch.Generator().manual_seed(seed))
    out = {}
    for tau in check_taus(taus):
        y = gumbel_softmax(batch, tau=tau, generator=torch.Generator().manual_seed(seed))
        out[tau] = float((y.argmax(dim=-1) == index).double().mean())
    return out
