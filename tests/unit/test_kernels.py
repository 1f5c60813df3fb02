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


def test_gumbel_max_across_tiles_is_uniform(device, monkeypatch):
    """1,024 draws from flat logits over 4,096 categories in 4 tiles: 16 groups of 256 are hit equally often."""
    monkeypatch.setattr(kernel_code, "RACE_BLOCK", 1024)
    samples = forced.gumbel_max(torch.zeros(1024, 4096, device=device), generator=_gen(device, 1))
    assert samples.min() >= 0 and samples.max() < 4096
    groups = _counts(samples // 256, 16)
    assert _chi2_pvalue(groups, np.full(16, 1 / 16)) > ALPHA
    tilted = np.linspace(0.5, 1.5, 16)  # negative control: a tilt across the row
    assert _chi2_pvalue(groups, tilted) < ALPHA


def test_gumbel_max_is_the_argmax_of_the_fused_soft_sample(device):
    """One generator state, one noise: gumbel_max equals the argmax of the soft and of the hard sample."""
    lg = torch.randn(300, 7, device=device, generator=_gen(device, 2))
    idx = forced.gumbel_max(lg, generator=_gen(device, 3))
    soft = forced.gumbel_softmax(lg, 0.5, generator=_gen(device, 3))
    hard = forced.gumbel_softmax(lg, 0.5, hard=True, generator=_gen(device, 3))
    assert torch.equal(idx, soft.argmax(-1)) and torch.equal(idx, hard.argmax(-1))
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


def test_gumbel_topk_does_not_depend_on_the_tiling(device, monkeypatch):
    """The noise is keyed by the element, so tiles of 256 and one tile of 4,096 give the same top 5."""
    lg = torch.randn(64, 3000, device=device, generator=_gen(device, 5))
    one = forced.gumbel_topk(lg, 5, generator=_gen(device, 6))
    monkeypatch.setattr(kernel_code, "RACE_BLOCK", 256)
    tiled = forced.gumbel_topk(lg, 5, generator=_gen(device, 6))
    assert torch.equal(one, tiled)
    assert all(len(set(row)) == 5 for row in tiled.tolist())
    assert torch.equal(forced.gumbel_max(lg, generator=_gen(device, 6)), one[:, 0])


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
    assert torch.equal(forced.gumbel_max(lg.expand(1000, -1), generator=_gen(device, 15)), h.argmax(-1))
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
