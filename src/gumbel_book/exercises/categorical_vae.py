"""Check functions for the exercises of the categorical-VAE chapter.

Every check returns None when the answer is right and raises ``AssertionError`` with a hint (never the
expected values) when it is wrong; ``TypeError`` only for a non-callable answer. The checks are exact (no
sampling: the Gumbel noise is an argument where a loss needs it). The student's function runs inside
:func:`guard.own_work`, so ``gumbel_book.vae``'s own KL, likelihood, losses and bound, the package's samplers
and ``torch.distributions`` are unavailable to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..vae.model import bernoulli_log_likelihood, kl_categorical
from .guard import check_callable, own_work

KL_RULE = "use only torch.log_softmax (or softmax and log) and sums"
IW_RULE = "use only torch arithmetic and torch.logsumexp"
LOSS_RULE = "use only torch (softmax, log_softmax, binary_cross_entropy_with_logits, a matrix product, sums)"
# The package's VAE losses, forbidden in the loss exercise on top of guard.PACKAGE_ANSWERS.
VAE_LOSSES = (
    "gumbel_book.vae.model:training_loss",
    "gumbel_book.vae.model:negative_elbo",
    "gumbel_book.vae.model:bernoulli_log_likelihood",
)
PIXELS = 28 * 28
PEAK = 120.0  # a logit gap above log(1 / smallest float32) ~ 104: softmax underflows to 0 in float32


def _as_tensor(out: object, what: str, shape: tuple[int, ...]) -> torch.Tensor:
    assert isinstance(out, torch.Tensor), f"{what} must return a torch.Tensor, got {type(out).__name__}"
    assert tuple(out.shape) == shape, f"{what} must return shape {shape}, got {tuple(out.shape)}"
    return out.detach().double()


def check_kl_uniform(kl: Callable[[torch.Tensor], torch.Tensor], *, seed: int = 0, shape=(6, 5, 10)) -> None:
    """Exercise: ``kl(logits)`` for logits ``[B, N, K]`` must return KL(q || uniform) summed over N, shape ``[B]``.

    The logits are float32, as an encoder computes them, and the last image has one logit ``PEAK`` above the
    others: there ``softmax`` underflows to exactly 0 in float32, so ``log(softmax(...))`` gives ``0 * -inf``.
    """
    check_callable(kl)
    b, n, k = shape
    logits = torch.randn(b, n, k, generator=torch.Generator().manual_seed(seed)) * 2
    logits[0] = 0.0  # q uniform: KL must be 0
    logits[-1, :, 0] = PEAK  # a peaked posterior: log(softmax) is NaN in float32, log_softmax is not
    with own_work(KL_RULE):
        out = _as_tensor(kl(logits.clone()), "kl(logits)", (b,))
    x = logits.double()
    expected = kl_categorical(x, torch.full((n, k), -math.log(k), dtype=torch.float64))
    if bool(torch.isfinite(out).all()) and torch.allclose(out, expected, atol=1e-4, rtol=1e-5):
        print("correct")
        return
    _explain_kl(out[:-1], x[:-1], expected[:-1], n, k)  # the specific bugs, on the images without the peak
    if not bool(torch.isfinite(out).all()):
        raise AssertionError(
            "the result is not finite for a peaked posterior: in float32 softmax underflows to 0 there and "
            "log(0) = -inf; use log_softmax, not log(softmax(...))"
        )
    assert abs(float(out[0])) < 1e-4, "for uniform logits q is the prior itself, so the KL must be 0"
    raise AssertionError("kl(logits) is wrong: KL(q || uniform) = sum_n (log K - H(q_n)) for each image")


def _explain_kl(out: torch.Tensor, logits: torch.Tensor, expected: torch.Tensor, n: int, k: int) -> None:
    """Raise the hint for a known wrong KL (compared on float64 logits with no underflow)."""
    q = torch.softmax(logits, -1)
    one_over_k = (q * (torch.log(q) - 1.0 / k)).sum((-2, -1))
    if torch.allclose(out, one_over_k, atol=1e-4):
        raise AssertionError(
            "you subtracted 1/K where the formula has log(1/K): log p_k = log(1/K) = -log K for the uniform prior"
        )
    if torch.allclose(out, -expected, atol=1e-4) and not torch.allclose(expected, 0 * expected, atol=1e-4):
        raise AssertionError("the sign is flipped: KL(q || p) = sum_k q_k (log q_k - log p_k) is never negative")
    if torch.allclose(out * n, expected, atol=1e-4) or torch.allclose(out * n * k, expected, atol=1e-4):
        raise AssertionError("sum the KL over the N latent variables (and the K classes), do not average it")


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


# ---------------------------------------------------------------- the Gumbel-Softmax VAE loss


class LossModel(nn.Module):
    """The exercise's VAE at a small width: an ``encoder`` (784 pixels to N*K logits), a one-layer linear
    ``decoder`` (N*K to 784 pixel logits) and a learned prior's ``prior_logits`` ``[N, K]``. The student's function
    gets tensors only (the encoder's logits, the decoder's weight and bias, the prior's logits): the grading
    worker takes data, never a module."""

    def __init__(self, n_latent: int, n_classes: int, hidden: int = 32) -> None:
        super().__init__()
        d = n_latent * n_classes
        self.encoder = nn.Sequential(nn.Linear(PIXELS, hidden), nn.ReLU(), nn.Linear(hidden, d))
        self.decoder = nn.Linear(d, PIXELS)
        self.prior_logits = nn.Parameter(torch.zeros(n_latent, n_classes))


def loss_problem(seed: int, shape: tuple[int, int, int]) -> tuple[LossModel, torch.Tensor, torch.Tensor]:
    """A model with weights and a (non-uniform) prior drawn from ``seed``, binary images ``x`` ``[B, 784]`` and
    Gumbel noise ``g`` ``[B, N, K]``; the global random state is left as it was."""
    b, n, k = shape
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LossModel(n, k)
        with torch.no_grad():
            model.encoder[-1].weight.mul_(8.0)  # logits of a few nats, as after some training
            model.decoder.weight.mul_(8.0)  # pixels that depend on the code, as after some training
            model.prior_logits.normal_()
    gen = torch.Generator().manual_seed(seed + 1)
    x = (torch.rand(b, PIXELS, generator=gen) < 0.3).float()
    g = -torch.empty(b, n, k).exponential_(generator=gen).log()
    return model, x, g


def loss_variants(model: LossModel, x: torch.Tensor, g: torch.Tensor, tau: float) -> dict[str, torch.Tensor]:
    """The right loss and the usual wrong ones, per image ``[B]``, each named by its mistake."""
    n, k = model.prior_logits.shape
    logits = model.encoder(x).view(-1, n, k)
    log_q, log_p = torch.log_softmax(logits, -1), torch.log_softmax(model.prior_logits, -1)

    def recon(z: torch.Tensor, mean: bool = False) -> torch.Tensor:
        nll = F.binary_cross_entropy_with_logits(model.decoder(z.flatten(1)), x, reduction="none")
        return nll.mean(-1) if mean else nll.sum(-1)

    y = torch.softmax((logits + g) / tau, -1)
    kl = kl_categorical(logits, log_p)
    r = -bernoulli_log_likelihood(model.decoder(y.flatten(1)), x)
    hard = F.one_hot((logits + g).argmax(-1), k).to(y)
    return {
        "right": r + kl,
        "sign": r - kl,
        "elbo": -(r + kl),
        "no_kl": r,
        "uniform": r + kl_categorical(logits, torch.full_like(log_p, -math.log(k))),
        "reversed": r + (log_p.exp() * (log_p - log_q)).sum((-2, -1)),
        "kl_mean": r + kl / n,
        "pixel_mean": recon(y, mean=True) + kl,
        "no_tau": recon(torch.softmax(logits + g, -1)) + kl,
        "no_noise": recon(torch.softmax(logits / tau, -1)) + kl,
        "hard": recon(hard) + kl,
    }


LOSS_HINTS = {
    "sign": "the KL is added, not subtracted: -ELBO = -log p(x | z) + KL(q(z | x) || p(z))",
    "elbo": "that is the ELBO itself: return its negative, the loss to minimize (positive nats)",
    "no_kl": "the KL term to the prior is missing: -ELBO = reconstruction loss + KL(q(z | x) || p(z))",
    "uniform": "the prior is learned: its log-probabilities are log_softmax(prior_logits), not log(1/K)",
    "reversed": "the KL goes from q to p: weight log q - log p by the posterior q, not by the prior",
    "kl_mean": "sum the KL over the N latent variables, do not average it",
    "pixel_mean": "sum the Bernoulli log-likelihood over the 784 pixels, do not average it",
    "no_tau": "divide the perturbed logits (logits + g) by tau before the softmax",
    "no_noise": "add the Gumbel noise g to the logits before dividing by tau",
    "hard": "the Gumbel-Softmax VAE feeds the decoder the relaxed sample softmax((logits + g) / tau), not its argmax",
}


def check_vae_loss(vae_loss: Callable[..., torch.Tensor], *, seed: int = 0, shape=(8, 4, 5), tau: float = 0.7) -> None:
    """Exercise: ``vae_loss(x, logits, g, tau, weight, bias, prior_logits)`` must return the Gumbel-Softmax VAE's
    -ELBO per image, shape ``[B]``.

    ``x`` is ``[B, 784]`` binary, ``logits`` ``[B, N, K]`` the encoder's output for it, ``g`` ``[B, N, K]`` Gumbel
    noise; the decoder is one linear layer, ``y.flatten(1) @ weight.T + bias``; ``prior_logits`` ``[N, K]`` are the
    learned prior's. The value must be the reconstruction loss of the relaxed sample ``softmax((logits + g) / tau)``
    plus the analytic KL to the prior, and its gradient must reach the encoder through the sample as well as
    through the KL.
    """
    check_callable(vae_loss)
    model, x, g = loss_problem(seed, shape)
    n, k = model.prior_logits.shape
    logits = model.encoder(x).view(-1, n, k)
    decoder, prior = model.decoder, model.prior_logits
    with own_work(LOSS_RULE, extra=VAE_LOSSES):
        raw = vae_loss(x.clone(), logits, g.clone(), tau, decoder.weight, decoder.bias, prior)
    out = _as_tensor(raw, "vae_loss(x, logits, g, tau, weight, bias, prior_logits)", shape[:1])
    pieces = loss_variants(model, x, g, tau)
    if not torch.allclose(out, pieces["right"].detach().double(), rtol=2e-5, atol=1e-3):
        assert bool(torch.isfinite(out).all()), "the loss is not finite: compute log-probabilities in log space"
        for name, hint in LOSS_HINTS.items():
            if torch.allclose(out, pieces[name].detach().double(), rtol=2e-5, atol=1e-3):
                raise AssertionError(hint)
        raise AssertionError(
            "vae_loss is wrong: per image, the Bernoulli reconstruction loss of decoder(softmax((logits + g) / tau)) "
            "summed over pixels, plus KL(q || p) summed over the N variables"
        )
    assert raw.requires_grad, "the loss must stay differentiable: do not detach it or compute it under no_grad"
    _check_loss_gradient(raw, pieces["right"], model)
    print("correct")


def _check_loss_gradient(raw: torch.Tensor, right: torch.Tensor, model: LossModel) -> None:
    """The answer's gradients in the prior's and the encoder's parameters against the right loss's."""
    params = [model.prior_logits, *model.encoder.parameters()]
    got = torch.autograd.grad(raw.sum(), params, allow_unused=True, retain_graph=True)
    want = torch.autograd.grad(right.sum(), params)

    def same(a: torch.Tensor | None, b: torch.Tensor) -> bool:
        return a is not None and torch.allclose(a.double(), b.double(), rtol=1e-3, atol=1e-4)

    assert same(got[0], want[0]), "the gradient in the prior's logits is wrong: keep the KL's log p differentiable"
    assert all(same(a, b) for a, b in zip(got[1:], want[1:], strict=True)), (
        "the encoder's gradient is wrong: it must flow through the relaxed sample y (do not detach it) as well as "
        "through the KL"
    )
