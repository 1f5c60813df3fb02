"""Check functions for the exercises of the categorical-VAE chapter.

Every check returns None when the answer is right and raises ``AssertionError`` with a hint (never the
expected values) when it is wrong; ``TypeError`` only for a non-callable answer. The checks are exact (no
sampling). The student's function runs inside :func:`guard.own_work`, so ``gumbel_book.vae``'s own KL and
bound and ``torch.distributions`` are unavailable to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..vae.model import kl_categorical
from .guard import check_callable, own_work

KL_RULE = "use only torch.log_softmax (or softmax and log) and sums"
IW_RULE = "use only torch arithmetic and torch.logsumexp"


def _as_tensor(out: object, what: str, shape: tuple[int, ...]) -> torch.Tensor:
    assert isinstance(out, torch.Tensor), f"{what} must return a torch.Tensor, got {type(out).__name__}"
    assert tuple(out.shape) == shape, f"{what} must return shape {shape}, got {tuple(out.shape)}"
    return out.detach().double()


def check_kl_uniform(kl: Callable[[torch.Tensor], torch.Tensor], *, seed: int = 0, shape=(6, 5, 10)) -> None:
    """Exercise: ``kl(logits)`` for logits ``[B, N, K]`` must return KL(q || uniform) summed over N, shape ``[B]``."""
    check_callable(kl)
    b, n, k = shape
    logits = torch.randn(b, n, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2
    logits[0] = 0.0  # q uniform: KL must be 0
    logits[-1, :, 0] = 60.0  # a peaked posterior: log(softmax) underflows in float32 but not log_softmax
    with own_work(KL_RULE):
        out = _as_tensor(kl(logits.clone()), "kl(logits)", (b,))
    expected = kl_categorical(logits, torch.full((n, k), -math.log(k), dtype=torch.float64))
    if torch.allclose(out, expected, atol=1e-6, rtol=1e-6):
        print("correct")
        return
    q = torch.softmax(logits, -1)
    one_over_k = (q * (torch.log(q) - 1.0 / k)).sum((-2, -1))
    if torch.allclose(out, one_over_k, atol=1e-6):
        raise AssertionError(
            "you subtracted 1/K where the formula has log(1/K): log p_k = log(1/K) = -log K for the uniform prior"
        )
    if torch.allclose(out, -expected, atol=1e-6):
        raise AssertionError("the sign is flipped: KL(q || p) = sum_k q_k (log q_k - log p_k) is never negative")
    if torch.allclose(out * n, expected, atol=1e-5) or torch.allclose(out * n * k, expected, atol=1e-5):
        raise AssertionError("sum the KL over the N latent variables (and the K classes), do not average it")
    if not bool(torch.isfinite(out).all()):
        raise AssertionError("the result is not finite for a peaked posterior: use log_softmax, not log(softmax(...))")
    assert abs(float(out[0])) < 1e-6, "for uniform logits q is the prior itself, so the KL must be 0"
    raise AssertionError("kl(logits) is wrong: KL(q || uniform) = sum_n (log K - H(q_n)) for each image")


def check_iw_bound(iw: Callable[[torch.Tensor], torch.Tensor], *, seed: int = 1, m: int = 50, b: int = 4) -> None:
    """Exercise: ``iw(log_w)`` for log-weights ``[m, B]`` must return ``log (1/m) sum_i exp(log_w[i])``, shape ``[B]``.

    The log-weights of an MNIST model are around -100 to -500, so exponentiating them first underflows.
    """
    check_callable(iw)
    gen = torch.Generator().manual_seed(seed)
    log_w = torch.randn(m, b, generator=gen) * 3 - 400.0  # float32, as a model computes them
    with own_work(IW_RULE):
        out = _as_tensor(iw(log_w.clone()), "iw(log_w)", (b,))
    log_w = log_w.double()
    expected = torch.logsumexp(log_w, 0) - math.log(m)
    if torch.allclose(out, expected, atol=1e-3, rtol=0):
        print("correct")
        return
    if not bool(torch.isfinite(out).all()):
        raise AssertionError(
            "the result is not finite: exp(-400) underflows to 0 in float32. Use torch.logsumexp, which subtracts "
            "the max first"
        )
    if torch.allclose(out, log_w.mean(0), atol=1e-3):
        raise AssertionError("that is the average of the log-weights: the ELBO, not the importance-weighted bound")
    if torch.allclose(out, torch.logsumexp(log_w, 0), atol=1e-3):
        raise AssertionError("subtract log m: the bound is the log of the *mean* of the weights, not of their sum")
    raise AssertionError("iw(log_w) is wrong: compute log((1/m) sum_i w_i) in log space, one value per image")
