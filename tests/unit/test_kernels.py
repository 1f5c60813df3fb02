"""The fused Triton samplers (gumbel_book.kernels): in Triton's interpreter on CPU tensors, and compiled on a GPU.

Every test runs twice: on the CPU through the interpreter (where no GPU is present, conftest.py calls
gumbel_book.kernels.use_interpreter() before Triton loads) and, marked ``cuda``, compiled on a GPU. The
public samplers reach the kernels under ``sampling.backend("fused")``, which :class:`forced` wraps. The
interpreter costs milliseconds per program, so the tests use few programs with large tiles.
Statistical tests use fixed seeds and reject at significance level ALPHA; each has a negative
control (the same statistic on a wrong law, which must be rejected) so that it can fail.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
import torch

import gumbel_book as gb
from gumbel_book import kernels, sampling

kernel_code = pytest.importorskip("gumbel_book.kernels.fused", reason="Triton is not installed")
tl = pytest.importorskip("triton.language")


class forced:  # noqa: N801  (a namespace: the public samplers, forced through the kernels)
    @staticmethod
    def gumbel_max(*args, **kwargs):
        with sampling.backend("fused"):
            return gb.gumbel_max(*args, **kwargs)

    @staticmethod
    def gumbel_topk(*args, **kwargs):
        with sampling.backend("fused"):
            return gb.gumbel_topk(*args, **kwargs)

    @staticmethod
    def gumbel_softmax(*args, **kwargs):
        with sampling.backend("fused"):
            return gb.gumbel_softmax(*args, **kwargs)


ALPHA = 1e-3
INF = float("inf")


@pytest.fixture(params=[pytest.param("cpu", id="interpreter"), pytest.param("cuda", marks=pytest.mark.cuda)])
def device(request) -> str:
    if request.param == "cpu" and not kernel_code.INTERPRETED:
        pytest.skip("the kernels are compiled for the GPU in this process (set TRITON_INTERPRET=1 before Triton loads)")
    if request.param == "cuda" and kernel_code.INTERPRETED:
        pytest.skip("the kernels run in the interpreter in this process")
    return request.param


def _gen(device: str, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _counts(indices: torch.Tensor, n: int) -> np.ndarray:
    return torch.bincount(indices.flatten().cpu(), minlength=n).numpy()


def _chi2_pvalue(counts: np.ndarray, probs: np.ndarray) -> float:
    keep = probs > 0
    assert counts[~keep].sum() == 0, "a category of probability 0 was sampled"
    return scipy.stats.chisquare(counts[keep], probs[keep] / probs[keep].sum() * counts.sum()).pvalue


# --- The noise -----------------------------------------------------------------------------------


@kernel_code._jit
def _noise_kernel(hi_ptr, lo_ptr, out_ptr, BLOCK: tl.constexpr):
    offsets = tl.arange(0, BLOCK)
    hi = tl.load(hi_ptr + offsets).to(tl.uint32)
    lo = tl.load(lo_ptr + offsets).to(tl.uint32)
    tl.store(out_ptr + offsets, kernel_code._exponential(hi, lo))


def test_exponential_draws_keep_float32_relative_precision(device):
    """From the two words, -log1p(-u) to within 8 float32 ulps of the float64 value, tiny u and u near 1 included.

    The naive float32 ``-log(1 - u)`` fails the same bound by orders of magnitude (negative control)."""
    gen = torch.Generator().manual_seed(25)
    n = 1 << 14
    hi = torch.randint(0, 2**32, (n,), generator=gen)
    hi[: n // 4] = torch.randint(0, 2**12, (n // 4,), generator=gen)  # u below 2^-20: the race's winners
    hi[n // 4 : n // 4 + 64] = 0
    hi[-64:] = 2**32 - 1 - torch.arange(64)  # u next to 1
    lo = torch.randint(0, 2**32, (n,), generator=gen)
    out = torch.empty(n, device=device)
    _noise_kernel[(1,)](hi.to(device), lo.to(device), out, BLOCK=n)
    u32 = hi.float() * 2**-32 + (lo.float() + 0.5) * 2**-64  # the kernel's u, rounded as the kernel rounds it
    u32 = torch.minimum(u32, torch.tensor(1 - 2**-24))
    exact = -torch.log1p(-u32.double())
    ulps = ((out.cpu().double() / exact - 1).abs() / 2**-24).max().item()
    assert ulps <= 8, ulps
    naive = -torch.log(1 - u32)
    assert ((naive.double() / exact - 1).abs() / 2**-24).max().item() > 1000


# --- Gumbel-max ----------------------------------------------------------------------------------


def test_gumbel_max_chi_square(device):
    """20,000 draws over 5 categories (one masked) match softmax(logits) at ALPHA; a tempered law is rejected."""
    lg = torch.tensor([0.0, 1.0, 2.0, -INF, -1.0], device=device)
    counts = _counts(forced.gumbel_max(lg.expand(20_000, -1), generator=_gen(device, 0)), 5)
    probs = torch.softmax(lg.double(), -1).cpu().numpy()
    assert _chi2_pvalue(counts, probs) > ALPHA
    wrong = torch.softmax(lg.double() / 1.2, -1).cpu().numpy()  # negative control
    assert _chi2_pvalue(counts, wrong) < ALPHA


def _narrow_lanes(monkeypatch, width: int = 64) -> None:
    """Narrow lanes, so that a row of a few thousand logits spans several chunks and several column tiles."""
    monkeypatch.setattr(kernel_code, "CHUNK_WIDTH", width)


def test_gumbel_max_across_tiles_is_uniform(device, monkeypatch):
    """1,024 draws from flat logits over 4,096 categories in 4 tiles: 16 groups of 256 are hit equally often
    (ties stay uniform: every chunk has the same mass, and the noise decides)."""
    _narrow_lanes(monkeypatch)
    assert kernel_code.chunk_launch(1024, 4096)[3] == 4
    samples = forced.gumbel_max(torch.zeros(1024, 4096, device=device), generator=_gen(device, 1))
    assert samples.min() >= 0 and samples.max() < 4096
    groups = _counts(samples // 256, 16)
    assert _chi2_pvalue(groups, np.full(16, 1 / 16)) > ALPHA
    tilted = np.linspace(0.5, 1.5, 16)  # negative control: a tilt across the row
    assert _chi2_pvalue(groups, tilted) < ALPHA


#: Logits over 3,000 categories whose mass varies across the row (7 blocks) and across the lanes (5 phases), so
#: chunks differ in mass and in their largest logit: a race won by the chunks' largest logits has another law.
BLOCKS = torch.tensor([0.0, 1.0, -1.0, 0.5, 2.0, -0.5, 0.3], dtype=torch.float64)
PHASES = torch.tensor([0.0, 2.5, -0.7, 0.2, -0.2], dtype=torch.float64)
N_WIDE = 3000


def _wide_logits() -> torch.Tensor:
    c = torch.arange(N_WIDE)
    jitter = torch.randn(N_WIDE, generator=torch.Generator().manual_seed(40), dtype=torch.float64)
    return BLOCKS[c * 7 // N_WIDE] + PHASES[c % 5] + 0.3 * jitter


def _cells(index: torch.Tensor) -> torch.Tensor:
    """(block, phase) of each index: 35 cells."""
    return (index * 7 // N_WIDE) * 5 + index % 5


def _cell_law(lg: torch.Tensor) -> np.ndarray:
    p = torch.softmax(lg, -1)
    return torch.zeros(35, dtype=torch.float64).index_add_(0, _cells(torch.arange(N_WIDE)), p).numpy()


def chunk_by_max(lg: torch.Tensor, n: int, chunk: int, width: int, gen: torch.Generator) -> torch.Tensor:
    """The plausible mistake: chunks race by their largest logit plus Gumbel noise, not by their logsumexp."""
    size = chunk * width * -(-lg.shape[-1] // (chunk * width))
    tiles = torch.nn.functional.pad(lg, (0, size - lg.shape[-1]), value=-INF).view(-1, chunk, width)
    x = tiles.transpose(0, 1).reshape(chunk, -1)  # column t * width + w: chunk w of tile t
    g = -torch.log(torch.empty(n, x.shape[1], dtype=torch.float64).exponential_(generator=gen))
    c = (x.max(0).values + g).argmax(-1)
    i = gb.gumbel_max(x[:, c].t(), generator=gen)
    return (c // width) * chunk * width + i * width + c % width


def test_gumbel_max_across_chunks_and_tiles_chi_square(device, monkeypatch):
    """8,000 draws over 3,000 categories in 3 tiles of 64 chunks match softmax(logits) on 35 cells at ALPHA; the
    same test rejects a race whose chunks compete by their largest logit (negative control)."""
    _narrow_lanes(monkeypatch)
    _, chunk, width, tiles = kernel_code.chunk_launch(8_000, N_WIDE)
    assert (chunk, width, tiles) == (16, 64, 3)
    lg = _wide_logits()
    idx = forced.gumbel_max(lg.float().to(device).expand(8_000, -1), generator=_gen(device, 41))
    assert _chi2_pvalue(_counts(_cells(idx.cpu()), 35), _cell_law(lg)) > ALPHA
    wrong = chunk_by_max(lg, 8_000, chunk, width, torch.Generator().manual_seed(42))
    assert _chi2_pvalue(_counts(_cells(wrong), 35), _cell_law(lg)) < ALPHA


def test_consecutive_rows_and_consecutive_launches_are_independent(device):
    """Joint chi-square of (row 2i, row 2i + 1) and of (launch 1, launch 2) row by row, 16 cells each, against the
    product law. Rows or launches that shared noise would agree far too often; the control is that agreement."""
    lg = torch.tensor([0.5, -0.5, 1.0, 0.0], device=device)
    p = torch.softmax(lg.double(), -1).cpu().numpy()
    product = np.outer(p, p).flatten()
    gen = _gen(device, 43)
    first = forced.gumbel_max(lg.expand(20_000, -1), generator=gen).cpu()
    second = forced.gumbel_max(lg.expand(20_000, -1), generator=gen).cpu()
    rows = _counts(first[0::2] * 4 + first[1::2], 16)
    launches = _counts(first * 4 + second, 16)
    assert _chi2_pvalue(rows, product) > ALPHA and _chi2_pvalue(launches, product) > ALPHA
    shared = _counts(first * 4 + first, 16)  # negative control: the same noise twice
    assert _chi2_pvalue(shared, product) < ALPHA


@kernel_code._jit
def _half_stride_counters(rows, pid_t, n_tiles, ROWS: tl.constexpr, HALF: tl.constexpr):
    """The plausible bug: a row stride of half the row, so neighbouring rows share counters."""
    return rows[:, None] * (n_tiles * HALF // 2) + (pid_t * HALF + tl.arange(0, HALF))[None, :]


@kernel_code._jit
def _counter_kernel(out_ptr, n_tiles, COUNTERS: tl.constexpr, ROWS: tl.constexpr, HALF: tl.constexpr):
    """Store the counters that ``COUNTERS`` (the kernels' ``chunk_counters``, or a bug) gives each program."""
    pid = tl.program_id(0)
    pid_t = pid % n_tiles
    rows = ((pid // n_tiles) * ROWS + tl.arange(0, ROWS)).to(tl.int64)
    slots = rows[:, None] * (n_tiles * HALF) + pid_t * HALF + tl.arange(0, HALF)[None, :]
    tl.store(out_ptr + slots, COUNTERS(rows, pid_t, n_tiles, ROWS, HALF))


@pytest.mark.parametrize("m, n", [(5, 3001), (8, 4096), (3, 97)])
def test_the_chunk_counters_are_one_to_one_over_rows_and_tiles(device, monkeypatch, m, n):
    """White box: every (row, chunk pair) of every tile gets its own Philox counter, for odd N too; the same check
    finds the rows sharing counters under a half-row stride (negative control)."""
    _narrow_lanes(monkeypatch)
    _, _, width, n_tiles = kernel_code.chunk_launch(m, n)
    rows = 1 if m % 2 else 2  # rows per program
    for counters, one_to_one in ((kernel_code.chunk_counters, True), (_half_stride_counters, False)):
        out = torch.full((m * n_tiles * width // 2,), -1, dtype=torch.int64, device=device)
        _counter_kernel[(-(-m // rows) * n_tiles,)](out, n_tiles, COUNTERS=counters, ROWS=rows, HALF=width // 2)
        assert (out >= 0).all()
        assert (out.unique().numel() == out.numel()) is one_to_one, counters


def test_with_checks_off_a_nan_logit_wins_as_in_the_plain_code(device):
    """A NaN logit is refused when the data checks are on; off, it wins the race in the kernels (interpreted and
    compiled alike: the kernel does not rely on how min and max treat NaN) and in the plain code."""
    lg = torch.tensor([[0.0, float("nan"), 1.0, 3.0], [2.0, -1.0, 5.0, float("nan")]], device=device)
    with gb.validate_args(False):
        assert forced.gumbel_max(lg, generator=_gen(device, 44)).tolist() == [1, 3]
        assert gb.gumbel_max(lg.cpu(), generator=_gen("cpu", 44)).tolist() == [1, 3]
        wide = torch.zeros(2, 5000, device=device)
        wide[0, 4321] = float("nan")
        wide[1, 17] = INF
        assert forced.gumbel_max(wide, generator=_gen(device, 45)).tolist() == [4321, 17]


def test_the_hard_sample_is_the_argmax_of_the_soft_one(device):
    """One generator state, one noise: the hard Gumbel-Softmax is the one-hot of the soft sample's argmax. (The
    hierarchical gumbel_max draws other noise: its law is tested above, not its coupling to the soft sample.)"""
    lg = torch.randn(300, 7, device=device, generator=_gen(device, 2))
    soft = forced.gumbel_softmax(lg, 0.5, generator=_gen(device, 3))
    hard = forced.gumbel_softmax(lg, 0.5, hard=True, generator=_gen(device, 3))
    assert torch.equal(hard.argmax(-1), soft.argmax(-1))
    assert set(hard.unique().tolist()) == {0.0, 1.0} and torch.equal(hard.sum(-1), torch.ones_like(hard[:, 0]))


# --- Gumbel-top-k --------------------------------------------------------------------------------


def test_gumbel_topk_ordered_pairs_chi_square(device):
    """Ordered pairs (i, j) of 20,000 top-2 draws have the law p_i p_j / (1 - p_i) of sampling without replacement."""
    lg = torch.tensor([0.5, -0.5, 1.0, 0.0], device=device)
    pairs = forced.gumbel_topk(lg.expand(20_000, -1), 2, generator=_gen(device, 4))
    assert (pairs[:, 0] != pairs[:, 1]).all()
    counts = _counts(pairs[:, 0] * 4 + pairs[:, 1], 16)
    p = torch.softmax(lg.double(), -1).cpu().numpy()
    probs = np.array([p[i] * p[j] / (1 - p[i]) if i != j else 0.0 for i in range(4) for j in range(4)])
    assert _chi2_pvalue(counts, probs) > ALPHA
    with_replacement = np.outer(p, p).flatten() * (1 - np.eye(4).flatten())  # negative control
    assert _chi2_pvalue(counts, with_replacement) < ALPHA


def test_gumbel_topk_across_chunks_ordered_pairs_chi_square(device):
    """40 categories in 4 chunks of 10 (one lane each): the first two of 20,000 top-3 draws, by class (the lane),
    have the law of sampling without replacement, whether both come from one chunk (memorylessness) or from two;
    the law with the classes drawn independently is rejected (negative control)."""
    c = torch.arange(40)
    lg = torch.tensor([0.8, 0.0, -0.6, 0.3], dtype=torch.float64)[c % 4] + 0.25 * ((c // 4) % 3)
    assert kernel_code.chunk_launch(20_000, 40)[1:3] == (16, 4)
    top = forced.gumbel_topk(lg.float().to(device).expand(20_000, -1), 3, generator=_gen(device, 46)).cpu()
    assert all(len(set(row)) == 3 for row in top[:200].tolist())
    counts = _counts((top[:, 0] % 4) * 4 + top[:, 1] % 4, 16)
    p = torch.softmax(lg, -1).numpy()
    law = np.zeros(16)
    for i in range(40):
        for j in range(40):
            if i != j:
                law[(i % 4) * 4 + j % 4] += p[i] * p[j] / (1 - p[i])
    assert _chi2_pvalue(counts, law) > ALPHA
    independent = np.outer(law.reshape(4, 4).sum(1), law.reshape(4, 4).sum(0)).flatten()
    assert _chi2_pvalue(counts, independent) < ALPHA


def test_gumbel_topk_does_not_depend_on_the_rows_per_program(device, monkeypatch):
    """The noise is keyed by row, chunk and logit, so one row per program and many give the same top 5; its first
    is gumbel_max's draw from the same generator state."""
    lg = torch.randn(12, 3000, device=device, generator=_gen(device, 5))
    many = forced.gumbel_topk(lg, 5, generator=_gen(device, 6))
    assert kernel_code.chunk_launch(12, 3000)[0] > 1
    monkeypatch.setattr(kernel_code, "CHUNK_TILE", 1)
    assert kernel_code.chunk_launch(12, 3000)[0] == 1
    single = forced.gumbel_topk(lg, 5, generator=_gen(device, 6))
    assert torch.equal(many, single)
    assert all(len(set(row)) == 5 for row in single.tolist())
    assert torch.equal(forced.gumbel_max(lg, generator=_gen(device, 6)), many[:, 0])


@pytest.mark.cuda
def test_gpu_chi_square_on_ten_million_draws():
    """Compiled on a GPU: 10^7 draws over a 1,000-logit row match softmax(logits) on 20 groups at ALPHA."""
    lg = torch.randn(1000, device="cuda", generator=_gen("cuda", 48)).double()
    idx = forced.gumbel_max(lg.float().expand(10_000_000, -1), generator=_gen("cuda", 49))
    groups = _counts(idx // 50, 20)
    probs = torch.softmax(lg, -1).view(20, 50).sum(1).cpu().numpy()
    assert _chi2_pvalue(groups, probs) > ALPHA
    assert _chi2_pvalue(groups, np.full(20, 1 / 20)) < ALPHA


@pytest.mark.cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_a_tensor_on_the_second_gpu_is_sampled_there_whatever_the_current_device():
    """Triton launches on the current device: without the guard, cuda:1's logits were read from cuda:0."""
    x = torch.randn(64, 5000, device="cuda:1", generator=_gen("cuda:1", 50))
    with torch.cuda.device(1):
        expected = forced.gumbel_topk(x, 3, generator=_gen("cuda:1", 51))
    with torch.cuda.device(0):
        got = forced.gumbel_topk(x, 3, generator=_gen("cuda:1", 51))
        soft = forced.gumbel_softmax(x, 0.5, generator=_gen("cuda:1", 52))
    assert got.device == x.device and torch.equal(got, expected)
    assert soft.device == x.device and torch.allclose(soft.sum(-1), torch.ones(64, device=x.device))


def test_the_flat_race_has_the_same_law(device):
    """The flat race (one draw per logit) that the chapter compares with: the same chi-square as above."""
    lg = torch.tensor([0.0, 1.0, 2.0, -INF, -1.0], device=device)
    idx = kernel_code.flat_race_topk(lg.expand(20_000, -1), 1, -1, _gen(device, 47))[:, 0]
    assert _chi2_pvalue(_counts(idx, 5), torch.softmax(lg.double(), -1).cpu().numpy()) > ALPHA


# --- Gumbel-Softmax ------------------------------------------------------------------------------


@pytest.mark.parametrize("tau", [0.5, 1.0])
def test_gumbel_softmax_two_categories_is_logistic(device, tau):
    """With two categories, tau * logit(y_0) - (l_0 - l_1) is standard logistic: KS on 20,000 values at ALPHA."""
    lg = torch.tensor([0.3, -0.2], device=device)
    y = forced.gumbel_softmax(lg.expand(20_000, -1), tau, generator=_gen(device, 7)).double().cpu()
    z = (tau * (y[:, 0].log() - y[:, 1].log()) - 0.5).numpy()
    assert scipy.stats.kstest(z, scipy.stats.logistic.cdf).pvalue > ALPHA
    assert scipy.stats.kstest(z + 0.1, scipy.stats.logistic.cdf).pvalue < ALPHA  # negative control


def test_gumbel_softmax_matches_the_reference_sampler(device):
    """KS two-sample test, at ALPHA, of y_0 from the kernel against the plain PyTorch sampler; tau=0.8 is rejected."""
    lg = torch.tensor([0.5, -0.5, 1.5, -INF], device=device)
    fused = forced.gumbel_softmax(lg.expand(20_000, -1), 0.7, generator=_gen(device, 8)).cpu()
    cpu = lg.cpu().expand(20_000, -1)
    reference = gb.gumbel_softmax(cpu, 0.7, generator=_gen("cpu", 9))[:, 0].numpy()
    assert scipy.stats.ks_2samp(fused[:, 0].numpy(), reference).pvalue > ALPHA
    other = gb.gumbel_softmax(cpu, 0.8, generator=_gen("cpu", 9))[:, 0].numpy()  # negative control
    assert scipy.stats.ks_2samp(fused[:, 0].numpy(), other).pvalue < ALPHA
    assert torch.equal(fused[:, 3], torch.zeros(20_000)), "a masked category must get exactly 0"
    assert torch.allclose(fused.sum(-1), torch.ones(20_000), atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gumbel_softmax_long_rows_match_one_tile(device, monkeypatch, dtype):
    """The two-sweep kernel for long rows gives the one-tile kernel's sample (same noise) to rounding; for bfloat16
    its float32 scratch of perturbed logits keeps the precision of the one-tile kernel."""
    lg = torch.randn(6, 3000, device=device, generator=_gen(device, 10)).to(dtype)
    lg[:, ::7] = -INF
    one = forced.gumbel_softmax(lg, 0.3, generator=_gen(device, 11))
    hard_one = forced.gumbel_softmax(lg, 0.3, hard=True, generator=_gen(device, 11))
    monkeypatch.setattr(kernel_code, "SOFTMAX_ONE_TILE_MAX", 1024)
    monkeypatch.setattr(kernel_code, "SOFTMAX_LOOP_BLOCK", 512)
    loop = forced.gumbel_softmax(lg, 0.3, generator=_gen(device, 11))
    hard_loop = forced.gumbel_softmax(lg, 0.3, hard=True, generator=_gen(device, 11))
    rtol, atol = (1e-5, 1e-7) if dtype == torch.float32 else (1e-2, 1e-6)
    assert loop.dtype == dtype and torch.allclose(one.float(), loop.float(), rtol=rtol, atol=atol)
    assert torch.equal(hard_one, hard_loop) and torch.equal(loop[:, ::7], torch.zeros_like(loop[:, ::7]))


def test_tiny_tau_gives_a_finite_one_hot(device):
    y = forced.gumbel_softmax(torch.randn(100, 9, device=device), 1e-30, generator=_gen(device, 12))
    assert torch.isfinite(y).all() and torch.equal(y.sum(-1), torch.ones(100, device=device))


# --- Seeds, dtypes, layouts ----------------------------------------------------------------------


def test_same_generator_state_same_sample(device):
    lg = torch.randn(50, 20, device=device, generator=_gen(device, 13))
    gen = _gen(device, 14)
    a = forced.gumbel_topk(lg, 3, generator=gen)
    b = forced.gumbel_topk(lg, 3, generator=gen)  # the generator has advanced
    assert torch.equal(a, forced.gumbel_topk(lg, 3, generator=_gen(device, 14))) and not torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_logits(device, dtype):
    lg = torch.tensor([0.0, 1.0, -INF, 2.0], device=device, dtype=dtype)
    y = forced.gumbel_softmax(lg.expand(1000, -1), 0.5, generator=_gen(device, 15))
    h = forced.gumbel_softmax(lg.expand(1000, -1), 0.5, hard=True, generator=_gen(device, 15))
    assert y.dtype == dtype and h.dtype == dtype and torch.isfinite(y).all()
    assert torch.equal(y.argmax(-1), h.argmax(-1))
    # the race computes in float32: these logits are exact in every dtype, so the draw is the float32 one
    idx = forced.gumbel_max(lg.expand(1000, -1), generator=_gen(device, 15))
    assert torch.equal(idx, forced.gumbel_max(lg.float().expand(1000, -1), generator=_gen(device, 15)))
    assert (idx != 2).all()
    assert (h[:, 2] == 0).all() and (y[:, 2] == 0).all()


def test_non_contiguous_input_and_other_dims(device):
    """A transposed (non-contiguous) tensor sampled along dim 0 gives the contiguous tensor's sample along dim 1."""
    lg = torch.randn(40, 6, device=device, generator=_gen(device, 16))
    t = lg.t()
    assert not t.is_contiguous()
    assert torch.equal(
        forced.gumbel_max(t, dim=0, generator=_gen(device, 17)), forced.gumbel_max(lg, generator=_gen(device, 17))
    )
    top = forced.gumbel_topk(t, 2, dim=0, generator=_gen(device, 17))
    assert top.shape == (2, 40) and torch.equal(top.t(), forced.gumbel_topk(lg, 2, generator=_gen(device, 17)))
    y = forced.gumbel_softmax(t, 0.5, dim=0, generator=_gen(device, 17))
    assert y.shape == t.shape and torch.equal(y.t(), forced.gumbel_softmax(lg, 0.5, generator=_gen(device, 17)))
    batch = torch.randn(3, 5, 4, device=device)
    assert forced.gumbel_max(batch, dim=1).shape == (3, 4)
    assert forced.gumbel_max(torch.randn(0, 5, device=device)).shape == (0,)
    assert forced.gumbel_max(torch.tensor([-INF, 0.0], device=device)).item() == 1


def test_with_checks_off_a_plus_inf_logit_wins_as_in_the_plain_code(device):
    """+inf is refused when the data checks are on; off, the race must not turn inf - inf into a NaN winner."""
    lg = torch.tensor([[0.0, INF, 1.0], [2.0, -1.0, INF]], device=device)
    with gb.validate_args(False):
        assert forced.gumbel_max(lg, generator=_gen(device, 26)).tolist() == [1, 2]
        assert gb.gumbel_max(lg.cpu(), generator=_gen("cpu", 26)).tolist() == [1, 2]


BAD_CALLS = [
    ("gumbel_max", lambda lg: ((lg.new_tensor([0.0, float("nan")]),), {})),
    ("gumbel_max", lambda lg: ((lg.new_tensor([-INF, -INF]),), {})),
    ("gumbel_max", lambda lg: ((lg,), {"dim": 2})),
    ("gumbel_max", lambda lg: ((lg.long(),), {})),
    ("gumbel_topk", lambda lg: ((lg, 0), {})),
    ("gumbel_topk", lambda lg: ((lg, 2.0), {})),
    ("gumbel_topk", lambda lg: ((lg.new_tensor([[0.0, -INF, 1.0]]), 3), {})),
    ("gumbel_softmax", lambda lg: ((lg, 0.0), {})),
    ("gumbel_softmax", lambda lg: ((lg, 1.0), {"hard": 1})),
    ("gumbel_softmax", lambda lg: ((lg, -1.0), {})),
]


@pytest.mark.parametrize("name, make", BAD_CALLS)
def test_bad_input_gets_the_same_error_as_the_plain_samplers(device, name, make):
    args, kwargs = make(torch.zeros(2, 3, device=device))
    with pytest.raises(Exception) as fused:
        getattr(forced, name)(*args, **kwargs)
    cpu_args = tuple(a.cpu() if isinstance(a, torch.Tensor) else a for a in args)
    with pytest.raises(Exception) as plain:
        getattr(gb, name)(*cpu_args, **kwargs)
    assert type(fused.value) is type(plain.value) and str(fused.value) == str(plain.value)


def test_uncovered_inputs_use_the_plain_code(device):
    lg = torch.zeros(2, 3, device=device)
    with pytest.raises(ValueError, match="backend 'fused': the fused kernels cover"):
        forced.gumbel_max(lg.double())
    with pytest.raises(ValueError, match="k <= 32"):
        forced.gumbel_topk(torch.zeros(2, 40, device=device), 33)
    assert not sampling.use_kernels(lg.double()) and not sampling.use_kernels(torch.zeros(2, 3))
    assert not sampling.use_kernels(lg, k=33) and not sampling.use_kernels(lg, tau=torch.tensor(0.5, device=device))


def test_public_functions_dispatch_to_the_kernels(device, monkeypatch):
    """On a kernel device the public samplers give the kernels' sample; GUMBEL_BOOK_KERNELS=0 gives the plain code's."""
    monkeypatch.setattr(kernels, "KERNEL_DEVICES", (device,))
    lg = torch.randn(30, 8, device=device, generator=_gen(device, 18))
    fused = forced.gumbel_topk(lg, 3, generator=_gen(device, 19))
    assert torch.equal(gb.gumbel_topk(lg, 3, generator=_gen(device, 19)), fused)
    assert torch.equal(gb.gumbel_max(lg, generator=_gen(device, 19)), fused[:, 0])
    y = forced.gumbel_softmax(lg, 0.4, hard=True, generator=_gen(device, 19))
    assert torch.equal(gb.gumbel_softmax(lg, 0.4, hard=True, generator=_gen(device, 19)), y)
    monkeypatch.setenv("GUMBEL_BOOK_KERNELS", "0")
    plain = (lg + gb.sample_gumbel(lg.shape, device=device, generator=_gen(device, 19))).topk(3).indices
    assert torch.equal(gb.gumbel_topk(lg, 3, generator=_gen(device, 19)), plain)


# --- Backward ------------------------------------------------------------------------------------


@pytest.mark.parametrize("hard", [False, True])
def test_backward_matches_autograd_through_the_same_noise(device, hard):
    """The fused backward equals autograd through softmax((logits + g) / tau), g recovered from the soft sample."""
    tau = 0.6
    lg = torch.randn(64, 10, device=device, generator=_gen(device, 20)).requires_grad_()
    lg.data[:, 3] = -INF
    weights = torch.randn(64, 10, device=device, generator=_gen(device, 21))
    y = forced.gumbel_softmax(lg, tau, hard=hard, generator=_gen(device, 22))
    (y * weights).sum().backward()
    soft = forced.gumbel_softmax(lg.detach(), tau, generator=_gen(device, 22)).double()
    live = lg.detach().isfinite()
    g = torch.where(live, tau * soft.log() - lg.detach().double(), 0.0)  # the noise, up to a per-row constant
    ref = lg.detach().double().requires_grad_()
    (torch.softmax((ref + g) / tau, -1) * weights.double()).sum().backward()
    assert torch.allclose(lg.grad.double(), ref.grad, rtol=1e-4, atol=1e-5)
    assert (lg.grad[:, 3] == 0).all()


@pytest.mark.filterwarnings("ignore:Input #0 requires gradient and is not a double")
def test_gradcheck_on_a_fixed_seed(device):
    """Finite differences agree with the analytic backward (float32, so loose tolerances; the noise is fixed)."""
    lg = torch.randn(3, 5, device=device, generator=_gen(device, 23)).requires_grad_()

    def sample(x):
        return forced.gumbel_softmax(x, 0.8, generator=_gen(device, 24))

    assert torch.autograd.gradcheck(sample, (lg,), eps=1e-2, atol=5e-3, rtol=5e-2)


# --- CUDA only -----------------------------------------------------------------------------------


@pytest.mark.cuda
def test_cuda_calls_use_the_kernels(monkeypatch):
    calls = []
    real = kernels.race_topk
    monkeypatch.setattr(kernels, "race_topk", lambda *a: calls.append(a) or real(*a))
    lg = torch.randn(10, 50, device="cuda")
    gb.gumbel_max(lg)
    gb.gumbel_max(lg.double())  # float64: not covered, plain code
    assert len(calls) == 1
    monkeypatch.setenv("GUMBEL_BOOK_KERNELS", "0")
    gb.gumbel_max(lg)
    assert len(calls) == 1


@kernel_code._jit
def _philox_pair_kernel(seed_ptr, c_ptr, ours_ptr, theirs_ptr, BLOCK: tl.constexpr):
    offsets = tl.arange(0, BLOCK)
    seed = tl.load(seed_ptr)
    c0 = tl.load(c_ptr + offsets).to(tl.uint32)
    c1 = tl.load(c_ptr + BLOCK + offsets).to(tl.uint32)
    c2 = tl.load(c_ptr + 2 * BLOCK + offsets).to(tl.uint32)
    c3 = tl.load(c_ptr + 3 * BLOCK + offsets).to(tl.uint32)
    a0, a1, a2, a3 = kernel_code.philox(seed, c0, c1, c2, c3)
    b0, b1, b2, b3 = tl.philox(seed, c0, c1, c2, c3)
    tl.store(ours_ptr + offsets, a0.to(tl.int64))
    tl.store(ours_ptr + BLOCK + offsets, a1.to(tl.int64))
    tl.store(ours_ptr + 2 * BLOCK + offsets, a2.to(tl.int64))
    tl.store(ours_ptr + 3 * BLOCK + offsets, a3.to(tl.int64))
    tl.store(theirs_ptr + offsets, b0.to(tl.int64))
    tl.store(theirs_ptr + BLOCK + offsets, b1.to(tl.int64))
    tl.store(theirs_ptr + 2 * BLOCK + offsets, b2.to(tl.int64))
    tl.store(theirs_ptr + 3 * BLOCK + offsets, b3.to(tl.int64))


def test_our_philox_is_tritons_bit_for_bit(device):
    """The kernels' Philox forms each product with one wide multiply; its words are tl.philox's, for random keys and
    counters (high bits set included), so the noise is the reference Philox4x32-10's."""
    gen = torch.Generator().manual_seed(53)
    for _ in range(3):
        seed = torch.randint(0, 2**62, (1,), generator=gen).to(device)
        counters = torch.randint(0, 2**32, (4 * 1024,), generator=gen).to(device)
        ours, theirs = (torch.empty(4 * 1024, dtype=torch.int64, device=device) for _ in range(2))
        _philox_pair_kernel[(1,)](seed, counters, ours, theirs, BLOCK=1024)
        assert torch.equal(ours, theirs) and ours.unique().numel() > 4000
