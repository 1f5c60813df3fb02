"""Gumbel noise, the Gumbel-max trick, Gumbel-top-k and the Gumbel-Softmax (Concrete) relaxation.

All noise is computed in float32 (float64 for float64 inputs) and cast to the requested dtype
at the end, so float16 and bfloat16 inputs never produce NaN (PyTorch #41663).

The fused kernels (CUDA tensors, see :func:`use_kernels`) draw the same laws from other noise: a call
advances ``generator`` by one draw (their Philox seed), where the plain code advances it by one draw per
logit, so ``GUMBEL_BOOK_KERNELS=0`` changes every random number drawn after it. Their ``gumbel_max`` draws
one noise per chunk of logits (:mod:`gumbel_book.kernels.fused`), so it is not the argmax of the hard
``gumbel_softmax`` drawn from the same generator state, as it is in the plain code.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch

from . import kernels, settings
from .validation import check_bool, check_choice, check_logits, check_tau, check_topk, validation_enabled

Shape = int | Sequence[int] | torch.Size


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the book computes in for inputs of ``dtype``: float64 stays, everything else is float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def gumbel_from_exponential(e: torch.Tensor) -> torch.Tensor:
    """Map Exp(1) draws ``e`` to Gumbel(0, 1) draws ``-log(e)``, never returning +-inf or NaN.

    ``Tensor.exponential_`` can return exactly 0 (PyTorch #22557), where ``-log`` gives +inf. On the CPU
    it computes ``-log1p(-u)`` from a float64 uniform ``u`` on a 2**-53 grid, so it returns 0 exactly when
    ``u = 0``, with probability 2**-53 (about 1.1e-16). Clamping at the smallest normal float changes only
    that event and keeps the result finite: at most 87.3 in float32 and 708.4 in float64.
    """
    return _gumbel_from_exponential_(e.clone())


def _gumbel_from_exponential_(e: torch.Tensor) -> torch.Tensor:
    """In-place :func:`gumbel_from_exponential`, for noise tensors the caller owns."""
    return e.clamp_(min=torch.finfo(e.dtype).tiny).log_().neg_()


def sample_gumbel(
    shape: Shape,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw standard Gumbel(0, 1) noise as ``-log(E)`` with ``E ~ Exp(1)``; always finite.

    The same ``generator`` state gives the same noise. ``device`` defaults to the generator's
    device, or the CPU.
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    if isinstance(shape, bool):
        raise TypeError(f"shape must be an int or a sequence of ints, got {shape!r}")
    if isinstance(shape, int):
        shape = (shape,)
    try:
        shape = torch.Size(shape)
    except TypeError:
        raise TypeError(f"shape must be an int or a sequence of ints, got {shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"shape must not contain negative sizes, got {tuple(shape)}")
    if device is None and generator is not None:
        device = generator.device
    compute = compute_dtype(dtype)
    e = torch.empty(shape, device=device, dtype=compute).exponential_(generator=generator)
    return _gumbel_from_exponential_(e).to(dtype)


def perturbed_logits(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``logits + g`` in the compute dtype, with fresh Gumbel noise ``g`` of the same shape (no argument checks).

    Its argmax is :func:`gumbel_max`'s sample and its top-k :func:`gumbel_topk`'s, on the plain-torch path."""
    compute = compute_dtype(logits.dtype)
    g = sample_gumbel(logits.shape, device=logits.device, dtype=compute, generator=generator)
    return logits.to(compute) + g


BACKENDS = ("auto", "torch", "fused")
"""Where the samplers compute: ``auto`` (the fused kernels for the CUDA tensors they cover, else plain torch),
``torch`` always, or ``fused`` always (an error for input the kernels do not cover)."""
_BACKEND = "auto"


def set_backend(name: str) -> None:
    """Choose where :func:`gumbel_max`, :func:`gumbel_topk` and :func:`gumbel_softmax` compute (:data:`BACKENDS`)."""
    global _BACKEND
    _BACKEND = check_choice(name, BACKENDS, "backend")


@contextlib.contextmanager
def backend(name: str) -> Iterator[None]:
    """Context manager that sets :func:`set_backend` for the duration of a block."""
    previous = _BACKEND
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def use_kernels(logits: torch.Tensor, k: int = 1, tau: float | torch.Tensor = 1.0) -> bool:
    """Whether this call goes to the fused Triton kernels (:mod:`gumbel_book.kernels`).

    Under ``auto``: a CUDA tensor the kernels cover, Triton installed, and ``GUMBEL_BOOK_KERNELS`` not ``0``.
    Under ``fused``: always, and input the kernels do not cover is a ``ValueError`` naming why.
    """
    if _BACKEND == "torch":
        return False
    reason = kernels.covers(logits, k, tau)
    if _BACKEND == "fused":
        if reason is not None:
            raise ValueError(f"backend 'fused': {reason}")
        return True
    if logits.device.type not in kernels.KERNEL_DEVICES or not settings.kernels_allowed():
        return False
    return reason is None and kernels.triton_installed()


def gumbel_max(logits: torch.Tensor, dim: int = -1, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample int64 indices distributed as Categorical(softmax(logits)) by ``argmax(logits + g)``.

    Logits need only be known up to an additive constant; -inf entries are never sampled.
    """
    dim = check_logits(logits, dim)
    if use_kernels(logits):
        return kernels.race_topk(logits, 1, dim, generator).squeeze(dim)
    return perturbed_logits(logits, generator).argmax(dim=dim)


def gumbel_topk(
    logits: torch.Tensor, k: int, dim: int = -1, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Sample ``k`` distinct indices without replacement, in order, as the top-k of ``logits + g``.

    The ordered tuple has the law of sequential sampling without replacement from
    softmax(logits) (Kool, van Hoof & Welling 2019). The result has ``k`` in place of ``dim``.
    """
    dim = check_topk(logits, k, dim)
    if use_kernels(logits, k=k):
        return kernels.race_topk(logits, k, dim, generator)
    return perturbed_logits(logits, generator).topk(k, dim=dim).indices


def clamp_tau(tau: float | torch.Tensor, dtype: torch.dtype, device: torch.device) -> float | torch.Tensor:
    """Clamp ``tau`` to the normal range of ``dtype`` so that dividing by it never overflows to NaN."""
    info = torch.finfo(dtype)
    if isinstance(tau, torch.Tensor):
        return tau.to(device=device, dtype=dtype).clamp(info.tiny, info.max)
    return min(max(tau, info.tiny), info.max)


def gumbel_softmax(
    logits: torch.Tensor,
    tau: float | torch.Tensor = 1.0,
    hard: bool = False,
    dim: int = -1,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw a Gumbel-Softmax sample ``softmax((logits + g) / tau)`` along ``dim``.

    Same semantics as ``torch.nn.functional.gumbel_softmax``. With ``hard=True`` the forward
    value is exactly one-hot (the argmax of the soft sample, that is, a Gumbel-max sample) and the
    backward pass carries the soft sample's gradient (straight-through). Hard and soft modes use
    the same noise for the same generator state. Masked (-inf) categories get exactly 0.
    """
    check_bool(hard, "hard")
    tau = check_tau(tau)
    dim = check_logits(logits, dim)
    if use_kernels(logits, tau=tau):
        return kernels.fused_gumbel_softmax(logits, tau, hard, dim, generator)
    x = perturbed_logits(logits, generator)
    # Shift by the (detached) max before dividing, so that a tiny tau sends non-maximal entries to
    # -inf instead of overflowing the maximal one; softmax is shift-invariant, so this is exact.
    # x is a fresh tensor whose producer (an addition) does not save it, so in-place is safe.
    x.sub_(x.detach().amax(dim=dim, keepdim=True)).div_(clamp_tau(tau, x.dtype, x.device))
    y_soft = torch.softmax(x, dim=dim)
    if hard:
        index = y_soft.argmax(dim=dim, keepdim=True)
        y_hard = torch.zeros_like(y_soft).scatter_(dim, index, 1.0)
        # y_soft - y_soft.detach() is exactly zero, so the forward value is exactly one-hot
        # (the usual y_hard - y_soft.detach() + y_soft can be off by an ulp).
        y = y_hard + (y_soft - y_soft.detach())
    else:
        y = y_soft
    return y.to(logits.dtype)


def _simplex_tolerance(dtype: torch.dtype) -> float:
    return math.sqrt(torch.finfo(dtype).eps)


def concrete_log_prob(y: torch.Tensor, logits: torch.Tensor, tau: float | torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Log density of the Concrete / Gumbel-Softmax distribution at a point ``y`` of the open simplex.

    log p(y) = log (K-1)! + (K-1) log tau + sum_i [log pi_i - (tau+1) log y_i] - K log sum_i pi_i y_i^(-tau)
    (Maddison, Mnih & Teh 2017, eq. 9), computed in log space. Agrees with
    ``torch.distributions.RelaxedOneHotCategorical(tau, logits=logits).log_prob(y)``.
    The density lives on the full simplex, so every logit must be finite.
    """
    tau = check_tau(tau)
    dim = check_logits(logits, dim)
    if not isinstance(y, torch.Tensor) or not y.is_floating_point():
        raise TypeError(f"y must be a floating-point tensor, got {getattr(y, 'dtype', type(y).__name__)}")
    if y.dim() != logits.dim() or y.shape[dim] != logits.shape[dim]:
        raise ValueError(
            f"y of shape {tuple(y.shape)} does not match logits of shape {tuple(logits.shape)} along dim={dim}"
        )
    if validation_enabled():
        if not bool(torch.isfinite(logits).all()):
            raise ValueError("concrete_log_prob needs finite logits: the Concrete density has no masked categories")
        if not bool(((y > 0) & (y <= 1)).all()):
            raise ValueError("y must lie in the open simplex: every entry in (0, 1]")
        total = y.sum(dim=dim)
        if not bool(torch.allclose(total, torch.ones_like(total), atol=_simplex_tolerance(y.dtype), rtol=0)):
            worst = float((total - 1).abs().max())
            raise ValueError(f"y must sum to 1 along dim={dim}; the largest deviation is {worst:.3g}")
    out_dtype = torch.promote_types(y.dtype, logits.dtype)
    compute = compute_dtype(out_dtype)
    log_y = torch.log(y.to(compute)).movedim(dim, -1)
    lg = logits.to(compute).movedim(dim, -1)
    k = lg.shape[-1]
    tau_t = torch.as_tensor(tau, dtype=compute, device=lg.device)
    score = lg - tau_t.unsqueeze(-1) * log_y
    score = (score - score.logsumexp(dim=-1, keepdim=True)).sum(dim=-1)
    log_prob = math.lgamma(k) + (k - 1) * torch.log(tau_t) + score - log_y.sum(dim=-1)
    return log_prob.to(out_dtype)
