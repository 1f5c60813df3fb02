"""The categorical VAE itself: encoder and decoder, the analytic KL, the Bernoulli likelihood, the latent sample
each estimator feeds the decoder, the training loss, and the two bounds it is evaluated with."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..estimators import sample_layer
from ..validation import check_choice, check_int, validate_args, validation_enabled
from .config import ESTIMATORS, EVAL_SEED, PIXELS, PRIORS, parse_latent


class CategoricalVAE(nn.Module):
    """Encoder 784-512-256-(N*K) logits (no activation on them) and Bernoulli decoder (N*K)-256-512-784."""

    def __init__(self, n_latent: int = 30, n_classes: int = 10, prior: str = "uniform") -> None:
        super().__init__()
        n_latent, n_classes = parse_latent((n_latent, n_classes))
        check_choice(prior, PRIORS, "prior")
        self.n_latent, self.n_classes, self.prior = n_latent, n_classes, prior
        d = n_latent * n_classes
        # The logits come out of a Linear layer: a ReLU here would clip every negative logit to 0.
        self.encoder = nn.Sequential(
            nn.Linear(PIXELS, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, d)
        )
        self.decoder = nn.Sequential(
            nn.Linear(d, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, PIXELS)
        )
        zeros = torch.zeros(n_latent, n_classes)
        if prior == "learned":
            self.prior_logits = nn.Parameter(zeros)
        else:
            self.register_buffer("prior_logits", zeros)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Posterior logits ``[B, N, K]`` for images ``x`` of shape ``[B, 784]`` or ``[B, 28, 28]``."""
        return self.encoder(x.reshape(x.shape[0], PIXELS)).view(-1, self.n_latent, self.n_classes)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli pixel logits ``[..., 784]`` for latent codes ``z`` of shape ``[..., N, K]``."""
        return self.decoder(z.flatten(-2))

    def log_prior(self) -> torch.Tensor:
        """Log prior probabilities ``[N, K]``: log(1/K) everywhere for the uniform prior."""
        return torch.log_softmax(self.prior_logits, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`encode`: the posterior logits."""
        return self.encode(x)


def kl_categorical(logits: torch.Tensor, log_prior: torch.Tensor) -> torch.Tensor:
    """Analytic KL(q || p) summed over the N variables: ``sum_k q_k (log q_k - log p_k)``, shape ``[B]``.

    For the uniform prior ``log p_k = log(1/K)`` (not ``1/K``), so the KL is ``log K - H(q)`` per variable.
    """
    if logits.shape[-2:] != log_prior.shape[-2:]:
        raise ValueError(f"logits {tuple(logits.shape)} and log_prior {tuple(log_prior.shape)} disagree on [N, K]")
    log_q = torch.log_softmax(logits, dim=-1)
    return (log_q.exp() * (log_q - log_prior)).sum(dim=(-2, -1))


def _check_binary(x: torch.Tensor) -> None:
    if validation_enabled() and not bool(((x == 0) | (x == 1)).all()):
        raise ValueError(
            "x must be binarized (every pixel 0 or 1): a Bernoulli likelihood on grey levels is not a "
            "likelihood; use gumbel_book.data.binarize"
        )


def bernoulli_log_likelihood(pixel_logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``log p(x | z)`` summed over pixels for binary ``x`` (0/1), shape ``pixel_logits.shape[:-1]``."""
    _check_binary(x)
    pixel_logits, x = torch.broadcast_tensors(pixel_logits, x)
    return -F.binary_cross_entropy_with_logits(pixel_logits, x, reduction="none").sum(-1)


def sample_latent(
    logits: torch.Tensor, estimator: str, tau: float, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The latent code the decoder sees during training: relaxed (gs), one-hot with a surrogate gradient
    (st-gs, reinmax), or one-hot without gradient (reinforce).

    ``estimator`` is one of the VAE's spellings :data:`ESTIMATORS`; the layer is the estimator registry's
    (:func:`gumbel_book.estimators.sample_layer`), so the VAE and the estimator lab draw the same code.
    """
    check_choice(estimator, ESTIMATORS, "estimator")
    return sample_layer(estimator, logits, tau, generator=generator)


def training_loss(
    model: CategoricalVAE,
    x: torch.Tensor,
    estimator: str,
    tau: float,
    *,
    baseline: float | torch.Tensor = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(surrogate, recon, kl)``: the scalar to backpropagate, and per image (detached) the reconstruction
    loss ``-log p(x|z)`` and the KL; their sum is the training loss.

    For REINFORCE the surrogate adds ``(f - baseline) * log q(z|x)`` so that its gradient is the
    score-function estimator with a baseline (a number, or a 0-dim tensor kept on the device); the KL term is
    analytic for every estimator.
    """
    logits = model.encode(x)
    z = sample_latent(logits, estimator, tau, generator=generator)
    recon = -bernoulli_log_likelihood(model.decode(z), x.reshape(x.shape[0], PIXELS))
    kl = kl_categorical(logits, model.log_prior())
    surrogate = recon + kl
    if estimator == "reinforce":
        log_q = (z * torch.log_softmax(logits, dim=-1)).sum(dim=(-2, -1))
        surrogate = surrogate + (recon.detach() - baseline) * log_q
    return surrogate.mean(), recon.detach(), kl.detach()


@torch.no_grad()
def negative_elbo(model: CategoricalVAE, x: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Single-sample estimate of ``-ELBO`` per image, with a *discrete* (one-hot) z and the analytic KL."""
    x = x.reshape(x.shape[0], PIXELS)
    logits = model.encode(x)
    z = sample_latent(logits, "reinforce", 1.0, generator=generator)
    return -bernoulli_log_likelihood(model.decode(z), x) + kl_categorical(logits, model.log_prior())


def _check_samples(samples: int) -> int:
    try:
        return check_int(samples, "samples", minimum=1)
    except TypeError as err:  # one error type for every bad sample count, as before
        raise ValueError(str(err)) from None


@torch.no_grad()
def importance_weighted_bound(
    model: CategoricalVAE, x: torch.Tensor, samples: int = 1000, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The m-sample bound ``log (1/m) sum_i p(x, z_i) / q(z_i | x)``, ``z_i ~ q`` one-hot, per image ``[B]``.

    It is a lower bound on log p(x) that tightens as m grows; m = 1 is a single-sample ELBO.
    """
    samples = _check_samples(samples)
    x = x.reshape(x.shape[0], PIXELS)
    logits = model.encode(x)
    log_q_all = torch.log_softmax(logits, dim=-1)
    expanded = logits.unsqueeze(0).expand(samples, *logits.shape)
    z = sample_latent(expanded, "reinforce", 1.0, generator=generator)  # [m, B, N, K]
    log_lik = bernoulli_log_likelihood(model.decode(z), x)  # [m, B]
    log_p_z = (z * model.log_prior()).sum(dim=(-2, -1))
    log_q_z = (z * log_q_all).sum(dim=(-2, -1))
    log_w = log_lik + log_p_z - log_q_z
    return torch.logsumexp(log_w, dim=0) - math.log(samples)


def _batches(n: int, size: int) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def evaluate(
    model: CategoricalVAE,
    x_bin: torch.Tensor,
    *,
    samples: int = 1,
    batch_size: int | None = None,
    seed: int = EVAL_SEED,
) -> float:
    """Mean over ``x_bin`` of ``-ELBO`` (``samples=1``) or of the negative m-sample IW bound, in nats."""
    samples = _check_samples(samples)
    if not isinstance(x_bin, torch.Tensor) or len(x_bin) == 0:
        raise ValueError(f"x_bin must be a non-empty tensor of binarized images, got {type(x_bin).__name__}")
    _check_binary(x_bin)
    device = next(model.parameters()).device
    if batch_size is None:
        budget = 200_000 if device.type == "cuda" else 20_000  # images x samples per batch
        batch_size = max(1, budget // samples)
    gen = torch.Generator(device=device).manual_seed(seed)
    was_training = model.training
    model.eval()
    total = 0.0
    with validate_args(False):
        for sl in _batches(len(x_bin), batch_size):
            xb = x_bin[sl].to(device)
            if samples == 1:
                vals = negative_elbo(model, xb, generator=gen)
            else:
                vals = -importance_weighted_bound(model, xb, samples, generator=gen)
            total += float(vals.sum())
    model.train(was_training)
    return total / len(x_bin)
