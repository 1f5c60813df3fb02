"""A categorical VAE on binarized MNIST (Jang, Gu & Poole 2017, section 4.2): model, training, evaluation, CLI.

Encoder 784-512-256-(N*K) with *no* activation on the logits, Bernoulli decoder (N*K)-256-512-784,
analytic KL to a uniform (or learned) categorical prior, temperature annealed by global step, and
the 1000-sample importance-weighted bound of Table 1. Command line::

    python -m gumbel_book.vae train --estimator gs --epochs 100 --latent 20x10 --out runs/gs
    python -m gumbel_book.vae evaluate runs/gs --samples 1000
    python -m gumbel_book.vae reproduce --out results/vae     # the book's reference runs
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..data import binarize, load_mnist, progress_default
from ..device import default_device
from ..sampling import gumbel_max, gumbel_softmax
from ..schedule import anneal_tau
from ..validation import validate_args, validation_enabled

ESTIMATORS = ("gs", "st-gs", "reinforce", "reinmax")
PRIORS = ("uniform", "learned")
BINARIZATIONS = ("fixed", "dynamic")
OPTIMIZERS = ("adam", "sgd")
PIXELS = 28 * 28
DATA_SEED = 0  # the fixed binarization: the same bits for every run, as for the paper's binarized MNIST
EVAL_SEED = 12345  # evaluation noise has its own generator, so evaluating never shifts the training noise
CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"  # the weights of the epoch with the lowest validation -ELBO (early stopping)
METRICS = "metrics.json"
VALIDATION_FRACTION = 1 / 6  # 10,000 of the 60,000 training digits, the usual 50k/10k split

# Jang, Gu & Poole (2017), Table 1, VAE (Cat.) column, nats on binarized MNIST with 20x10 categorical latents.
# The caption calls them negative variational lower bounds; section 4.2 names a 1000-sample bound for evaluation.
# "Annealed ST" is slope-annealed straight-through (Chung et al. 2016), not temperature annealing.
PAPER_TABLE1_VAE_CAT = {
    "SF": 110.6,
    "DARN": 128.8,
    "MuProp": 107.0,
    "ST": 110.9,
    "Annealed ST": 107.8,
    "Gumbel-Softmax": 101.5,
    "ST Gumbel-Softmax": 107.8,
}
# Which row of Table 1 each of our estimators corresponds to (ReinMax is newer than the paper).
PAPER_ROW = {"gs": "Gumbel-Softmax", "st-gs": "ST Gumbel-Softmax", "reinforce": "SF", "reinmax": None}


def parse_latent(text: str | Sequence[int]) -> tuple[int, int]:
    """``"30x10"`` (or ``(30, 10)``) as ``(N, K)``: N categorical variables with K classes each."""
    if isinstance(text, str):
        parts = text.lower().split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"latent must look like '30x10' (N variables x K classes), got {text!r}")
        n, k = (int(p) for p in parts)
    else:
        try:
            n, k = (int(v) for v in text)
        except (TypeError, ValueError):
            raise ValueError(f"latent must be 'NxK' or a pair of ints, got {text!r}") from None
    if n < 1 or k < 2:
        raise ValueError(f"latent needs N >= 1 variables and K >= 2 classes, got {n}x{k}")
    return n, k


@dataclass
class VAEConfig:
    """Every setting of a training run; saved with each checkpoint so a resumed run is the same run."""

    estimator: str = "gs"
    latent: tuple[int, int] = (30, 10)
    prior: str = "uniform"
    epochs: int = 10
    batch_size: int = 100
    lr: float = 1e-3
    tau0: float = 1.0
    tau_min: float = 0.5
    anneal_rate: float = 3e-5
    anneal_every: int = 1000
    binarization: str = "fixed"
    baseline_decay: float = 0.99
    seed: int = 0
    optimizer: str = "adam"
    momentum: float = 0.9
    patience: int = 0  # stop after this many epochs without a better validation -ELBO (0: never stop early)

    def __post_init__(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {self.estimator!r}")
        if self.prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {self.prior!r}")
        if self.binarization not in BINARIZATIONS:
            raise ValueError(f"binarization must be one of {BINARIZATIONS}, got {self.binarization!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        self.latent = parse_latent(self.latent)
        for name in ("epochs", "batch_size", "anneal_every", "seed", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.seed < 0 or self.patience < 0:
            raise ValueError(
                f"epochs and batch_size must be >= 1, seed and patience >= 0, got epochs={self.epochs}, "
                f"batch_size={self.batch_size}, seed={self.seed}, patience={self.patience}"
            )
        for name in ("lr", "tau0", "tau_min"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (math.isfinite(value) and value > 0)
            ):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not (0.0 <= self.momentum < 1.0):
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not (0.0 <= self.baseline_decay < 1.0):
            raise ValueError(f"baseline_decay must be in [0, 1), got {self.baseline_decay!r}")
        if not (math.isfinite(self.anneal_rate) and self.anneal_rate >= 0):
            raise ValueError(f"anneal_rate must be finite and >= 0, got {self.anneal_rate!r}")

    def tau(self, step: int) -> float:
        """The temperature at global ``step`` (counted across epochs, never reset)."""
        return anneal_tau(step, tau0=self.tau0, rate=self.anneal_rate, tau_min=self.tau_min, every=self.anneal_every)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON-ready values (saved in checkpoints and metrics.json)."""
        d = dataclasses.asdict(self)
        d["latent"] = list(self.latent)
        return d


class CategoricalVAE(nn.Module):
    """Encoder 784-512-256-(N*K) logits (no activation on them) and Bernoulli decoder (N*K)-256-512-784."""

    def __init__(self, n_latent: int = 30, n_classes: int = 10, prior: str = "uniform") -> None:
        super().__init__()
        n_latent, n_classes = parse_latent((n_latent, n_classes))
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
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
    (st-gs, reinmax), or one-hot without gradient (reinforce)."""
    if estimator == "gs":
        return gumbel_softmax(logits, tau, hard=False, generator=generator)
    if estimator == "st-gs":
        return gumbel_softmax(logits, tau, hard=True, generator=generator)
    if estimator == "reinmax":
        from ..straight_through import reinmax

        return reinmax(logits, tau, generator=generator)
    if estimator == "reinforce":
        index = gumbel_max(logits.detach(), generator=generator)
        return F.one_hot(index, logits.shape[-1]).to(logits.dtype)
    raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")


def training_loss(
    model: CategoricalVAE,
    x: torch.Tensor,
    estimator: str,
    tau: float,
    *,
    baseline: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(surrogate, recon, kl)``: the scalar to backpropagate, and per image (detached) the reconstruction
    loss ``-log p(x|z)`` and the KL; their sum is the training loss.

    For REINFORCE the surrogate adds ``(f - baseline) * log q(z|x)`` so that its gradient is the
    score-function estimator with a baseline; the KL term is analytic for every estimator.
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


@torch.no_grad()
def importance_weighted_bound(
    model: CategoricalVAE, x: torch.Tensor, samples: int = 1000, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The m-sample bound ``log (1/m) sum_i p(x, z_i) / q(z_i | x)``, ``z_i ~ q`` one-hot, per image ``[B]``.

    It is a lower bound on log p(x) that tightens as m grows; m = 1 is a single-sample ELBO.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be an int >= 1, got {samples!r}")
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
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be an int >= 1, got {samples!r}")
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


@dataclass
class TrainResult:
    """A trained model, its config and the per-epoch history (train loss, test -ELBO, tau, ...)."""

    model: CategoricalVAE
    config: VAEConfig
    history: list[dict[str, float]]


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _write_metrics(out_dir: Path, config: VAEConfig, history: list[dict], extra: dict | None = None) -> None:
    path = out_dir / METRICS
    data: dict[str, Any] = {}
    if path.exists():
        data = json.loads(path.read_text())
    data.update({"config": config.to_dict(), "epochs": history})
    if extra:
        data.update(extra)
    _atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2)))


def _as_uint8_images(images: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.dtype != torch.uint8 or images.dim() != 3 or tuple(images.shape[1:]) != (28, 28):
        raise ValueError(
            f"{name} must be uint8 images [N, 28, 28] as load_mnist returns, got {images.dtype} {tuple(images.shape)}"
        )
    if len(images) == 0:
        raise ValueError(f"{name} is empty")
    return images


def split_validation(images: torch.Tensor, fraction: float = VALIDATION_FRACTION) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, validation)``: the last ``fraction`` of the training images held out for model selection.

    On the 60,000 official digits this is the usual 50,000 / 10,000 split (the last 10,000 are held out), so
    early stopping and every other choice is made on validation, never on the test set.
    """
    images = _as_uint8_images(images, "images")
    if not (0.0 < fraction < 1.0):
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    n_val = max(1, round(len(images) * fraction))
    if n_val >= len(images):
        raise ValueError(f"images holds {len(images)} digits: too few to hold out a validation split")
    return images[:-n_val], images[-n_val:]


def best_epoch(history: Sequence[dict[str, float]]) -> int | None:
    """The epoch (1-based) with the lowest validation -ELBO in ``history``, or None without validation."""
    scored = [e for e in history if "val_neg_elbo" in e]
    if not scored:
        return None
    return int(min(scored, key=lambda e: (e["val_neg_elbo"], e["epoch"]))["epoch"])


def _stopped_early(history: Sequence[dict[str, float]], patience: int) -> bool:
    best = best_epoch(history)
    return bool(patience and best is not None and history[-1]["epoch"] - best >= patience)


def _make_optimizer(config: VAEConfig, params) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum)
    return torch.optim.Adam(params, lr=config.lr)


def train_vae(
    config: VAEConfig,
    train_images: torch.Tensor,
    test_images: torch.Tensor | None = None,
    *,
    val_images: torch.Tensor | None = None,
    out_dir: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
    progress: bool | None = None,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train a categorical VAE on uint8 MNIST images, binarized here; checkpoint each epoch into ``out_dir``.

    If ``out_dir`` holds a checkpoint of the same config, training resumes after its last finished
    epoch, with the exact optimizer and random-number state: no epoch is lost or repeated. Deterministic
    for a given seed on the CPU. ``val_images`` and ``test_images`` (uint8, binarized once with a fixed seed)
    give the validation and test -ELBO recorded after each epoch. With validation images the weights of the
    best validation epoch are kept in ``out_dir/best.pt``, and ``config.patience`` stops training early.
    """
    if not isinstance(config, VAEConfig):
        raise TypeError(f"config must be a VAEConfig, got {type(config).__name__}")
    train_images = _as_uint8_images(train_images, "train_images")
    if test_images is not None:
        test_images = _as_uint8_images(test_images, "test_images")
    if val_images is not None:
        val_images = _as_uint8_images(val_images, "val_images")
    elif config.patience:
        raise ValueError(f"patience={config.patience} needs val_images: early stopping is decided on validation")
    device = default_device() if device is None else torch.device(device)
    progress = progress_default() if progress is None else progress
    n_latent, n_classes = config.latent

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = CategoricalVAE(n_latent, n_classes, config.prior)
    model.to(device)
    optimizer = _make_optimizer(config, model.parameters())
    shuffle_gen = torch.Generator().manual_seed(config.seed)
    noise_gen = torch.Generator(device=device).manual_seed(config.seed + 1)
    baseline, step, start_epoch, history = 0.0, 0, 0, []

    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        ckpt_path = out / CHECKPOINT
        if ckpt_path.exists():
            # On the CPU: generator states must stay CPU ByteTensors; the model and Adam copy to their device.
            ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
            saved = dict(ckpt["config"])
            mine = config.to_dict()
            diff = sorted(k for k in mine if k != "epochs" and saved.get(k) != mine[k])
            if diff:
                raise ValueError(
                    f"{ckpt_path} was written by a different config (fields {diff} differ); "
                    "use another out_dir or the same settings"
                )
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            shuffle_gen.set_state(ckpt["shuffle_gen"])
            noise_gen.set_state(ckpt["noise_gen"])
            baseline, step, start_epoch, history = ckpt["baseline"], ckpt["step"], ckpt["epoch"], ckpt["history"]

    x_train = train_images.to(device)
    if config.binarization == "fixed":
        x_train = binarize(train_images, seed=DATA_SEED).to(device)
    x_test = binarize(test_images, seed=DATA_SEED).to(device) if test_images is not None else None
    x_val = binarize(val_images, seed=DATA_SEED + 1).to(device) if val_images is not None else None
    n = len(x_train)
    batch = min(config.batch_size, n)
    steps_per_epoch = n // batch
    bar = tqdm(
        total=config.epochs * steps_per_epoch,
        initial=start_epoch * steps_per_epoch,
        desc=f"{config.estimator} {n_latent}x{n_classes}",
        disable=not progress,
        unit="step",
    )
    model.train()
    try:
        with validate_args(False):
            for epoch in range(start_epoch, config.epochs):
                if _stopped_early(history, config.patience):
                    break
                t0 = time.perf_counter()
                perm = torch.randperm(n, generator=shuffle_gen).to(device)
                total, tau = 0.0, config.tau(step)
                for b in range(steps_per_epoch):
                    idx = perm[b * batch : (b + 1) * batch]
                    xb = x_train[idx] if config.binarization == "fixed" else binarize(x_train[idx], generator=noise_gen)
                    tau = config.tau(step)
                    surrogate, recon, kl = training_loss(
                        model, xb, config.estimator, tau, baseline=baseline, generator=noise_gen
                    )
                    optimizer.zero_grad(set_to_none=True)
                    surrogate.backward()
                    optimizer.step()
                    recon_mean = float(recon.mean())
                    mean_loss = recon_mean + float(kl.mean())
                    if not math.isfinite(mean_loss):
                        raise FloatingPointError(
                            f"the training loss became {mean_loss} at step {step} (epoch {epoch + 1}); "
                            f"lower lr (now {config.lr})"
                        )
                    if config.estimator == "reinforce":  # moving-average baseline, from earlier batches only
                        decay = config.baseline_decay if step > 0 else 0.0
                        baseline = decay * baseline + (1 - decay) * recon_mean
                    total += mean_loss
                    step += 1
                    bar.update(1)
                    if b % 10 == 0:
                        bar.set_postfix(loss=f"{mean_loss:.1f}", tau=f"{tau:.3f}")
                entry = {
                    "epoch": epoch + 1,
                    "step": step,
                    "tau": tau,
                    "train_loss": total / steps_per_epoch,
                    "seconds": time.perf_counter() - t0,
                }
                if x_val is not None:
                    entry["val_neg_elbo"] = evaluate(model, x_val)
                if x_test is not None:
                    entry["test_neg_elbo"] = evaluate(model, x_test)
                history.append(entry)
                if out is not None:
                    if x_val is not None and best_epoch(history) == epoch + 1:
                        best = {"config": config.to_dict(), "epoch": epoch + 1, "model": model.state_dict()}
                        _atomic_write(out / BEST, lambda p, s=best: torch.save(s, p))
                    state = {
                        "config": config.to_dict(),
                        "epoch": epoch + 1,
                        "step": step,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "shuffle_gen": shuffle_gen.get_state(),
                        "noise_gen": noise_gen.get_state(),
                        "baseline": baseline,
                        "history": history,
                    }
                    _atomic_write(out / CHECKPOINT, lambda p, s=state: torch.save(s, p))
                    _write_metrics(out, config, history)
                if on_epoch_end is not None:
                    on_epoch_end(epoch + 1, entry)
    finally:
        bar.close()
    model.eval()
    return TrainResult(model, config, history)


def load_run(
    out_dir: str | os.PathLike, device: torch.device | str | None = None, *, which: str = "last"
) -> TrainResult:
    """The model, config and history saved by :func:`train_vae` in ``out_dir``: the last epoch's weights
    (``which="last"``) or the best validation epoch's (``which="best"``)."""
    if which not in ("last", "best"):
        raise ValueError(f"which must be 'last' or 'best', got {which!r}")
    path = Path(out_dir) / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}: train first with `python -m gumbel_book.vae train`")
    device = default_device() if device is None else torch.device(device)
    ckpt = torch.load(path, map_location=device, weights_only=False)
    config = VAEConfig(**dict(ckpt["config"]))
    model = CategoricalVAE(*config.latent, config.prior).to(device)
    weights = ckpt["model"]
    if which == "best":
        best_path = Path(out_dir) / BEST
        if not best_path.exists():
            raise FileNotFoundError(f"no {BEST} in {str(out_dir)!r}: the run was trained without validation images")
        weights = torch.load(best_path, map_location=device, weights_only=False)["model"]
    model.load_state_dict(weights)
    model.eval()
    return TrainResult(model, config, ckpt["history"])


def save_compact(model: CategoricalVAE, config: VAEConfig, path: str | os.PathLike, **info: Any) -> None:
    """Save only the weights, in bfloat16, with the config: a small file for committing a trained model."""
    state = {k: v.detach().to("cpu", torch.bfloat16) for k, v in model.state_dict().items()}
    payload = {"config": config.to_dict(), "model": state, "info": info}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(Path(path), lambda p: torch.save(payload, p))


def load_compact(path: str | os.PathLike, device: torch.device | str | None = None) -> TrainResult:
    """A model saved by :func:`save_compact`, in float32 on ``device`` (its history is empty)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no compact checkpoint at {str(path)!r}")
    device = torch.device("cpu") if device is None else torch.device(device)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    config = VAEConfig(**dict(payload["config"]))
    model = CategoricalVAE(*config.latent, config.prior)
    model.load_state_dict({k: v.to(torch.float32) for k, v in payload["model"].items()})
    model.to(device).eval()
    return TrainResult(model, config, [])


# ---------------------------------------------------------------- command line


def _cmd_train(args: argparse.Namespace) -> None:
    train_x, _ = load_mnist("train", args.data_root)
    test_x, _ = load_mnist("test", args.data_root)
    if args.train_size:
        train_x = train_x[: args.train_size]
    val_x = None
    if args.validation:
        train_x, val_x = split_validation(train_x)
    settings = {
        "estimator": args.estimator,
        "latent": parse_latent(args.latent),
        "prior": args.prior,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "anneal_rate": args.anneal_rate,
        "anneal_every": args.anneal_every,
        "tau_min": args.tau_min,
        "binarization": args.binarization,
        "optimizer": args.optimizer,
        "patience": args.patience,
        "seed": args.seed,
    }
    if args.paper:
        from .reference_runs import PAPER, PAPER_LR_GRID, PAPER_RATES

        if args.lr not in PAPER_LR_GRID or args.anneal_rate not in PAPER_RATES or args.anneal_every not in (500, 1000):
            raise SystemExit(
                f"--paper takes --lr from {PAPER_LR_GRID}, --anneal-rate from {PAPER_RATES} and --anneal-every "
                f"from (500, 1000); got {args.lr}, {args.anneal_rate}, {args.anneal_every}"
            )
        settings.update(latent=PAPER.latent, optimizer="sgd", momentum=PAPER.momentum, binarization="fixed")
    config = VAEConfig(**settings)
    result = train_vae(config, train_x, test_x, val_images=val_x, out_dir=args.out, progress=not args.quiet)
    last = result.history[-1]
    best = best_epoch(result.history)
    print(
        f"trained {config.estimator} {config.latent[0]}x{config.latent[1]} for {last['epoch']} epochs on "
        f"{len(train_x)} images: train loss {last['train_loss']:.2f}, test -ELBO {last['test_neg_elbo']:.2f} nats, "
        f"tau {last['tau']:.3f}"
        + (f", best validation epoch {best}" if best else "")
        + f"; wrote {Path(args.out) / METRICS}"
    )


def _cmd_reproduce(args: argparse.Namespace) -> None:
    from .reference_runs import main as reproduce

    reproduce(args)


def _cmd_evaluate(args: argparse.Namespace) -> None:
    run = load_run(args.dir)
    test_x, _ = load_mnist("test", args.data_root)
    if args.subset:
        test_x = test_x[: args.subset]
    x = binarize(test_x, seed=DATA_SEED)
    t0 = time.perf_counter()
    elbo = evaluate(run.model, x)
    iw = evaluate(run.model, x, samples=args.samples)
    seconds = time.perf_counter() - t0
    result = {
        "test_neg_elbo": elbo,
        "test_neg_iw_bound": iw,
        "iw_samples": args.samples,
        "test_images": len(x),
        "eval_seconds": seconds,
    }
    _write_metrics(Path(args.dir), run.config, run.history, {"evaluation": result})
    print(
        f"{len(x)} test images: -ELBO {elbo:.2f} nats, -log p(x) <= {iw:.2f} nats "
        f"({args.samples}-sample IW bound), {seconds:.1f} s"
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m gumbel_book.vae`` argument parser (``train`` and ``evaluate``)."""
    parser = argparse.ArgumentParser(prog="python -m gumbel_book.vae", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a categorical VAE and checkpoint every epoch (resumes if interrupted)")
    t.add_argument("--estimator", choices=ESTIMATORS, default="gs")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--latent", default="30x10", help="N x K categorical latents, e.g. 30x10 or 20x10 (the paper)")
    t.add_argument("--prior", choices=PRIORS, default="uniform")
    t.add_argument("--out", required=True, help="run directory: checkpoint.pt and metrics.json")
    t.add_argument("--batch-size", type=int, default=100)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--anneal-rate", type=float, default=3e-5)
    t.add_argument("--anneal-every", type=int, default=1000, help="steps between temperature updates")
    t.add_argument("--tau-min", type=float, default=0.5)
    t.add_argument("--binarization", choices=BINARIZATIONS, default="fixed")
    t.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    t.add_argument("--validation", action="store_true", help="hold out the last 1/6 of the training digits")
    t.add_argument("--patience", type=int, default=0, help="early stopping on validation (needs --validation)")
    t.add_argument(
        "--paper",
        action="store_true",
        help="the paper's stated protocol: 20x10, SGD with momentum 0.9, fixed binarization, --lr and "
        "--anneal-rate from its grids",
    )
    t.add_argument("--train-size", type=int, default=0, help="use only the first N training images (0: all)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--data-root", default=None, help="directory with the MNIST IDX files")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_train)
    e = sub.add_parser("evaluate", help="test -ELBO and the m-sample importance-weighted bound of a run")
    e.add_argument("dir")
    e.add_argument("--samples", type=int, default=1000)
    e.add_argument("--subset", type=int, default=0, help="evaluate on the first N test images (0: all 10,000)")
    e.add_argument("--data-root", default=None)
    e.set_defaults(func=_cmd_evaluate)
    r = sub.add_parser("reproduce", help="the book's reference runs: every estimator x seeds, then summary.json")
    r.add_argument("--out", default="results/vae", help="summary.json and the small checkpoints (committed)")
    r.add_argument("--work", default="runs/reference", help="full per-run checkpoints (not committed; resumable)")
    r.add_argument("--estimators", nargs="+", choices=ESTIMATORS, default=list(ESTIMATORS))
    r.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    r.add_argument("--epochs", type=int, default=60, help="the most epochs a run trains")
    r.add_argument("--patience", type=int, default=10, help="epochs without a better validation -ELBO before stopping")
    r.add_argument("--preset", choices=("reference", "paper"), default="reference")
    r.add_argument("--no-control", action="store_true", help="skip the fixed-binarization control run")
    r.add_argument("--jobs", type=int, default=max(1, min(4, os.cpu_count() or 1)), help="runs trained at once")
    r.add_argument("--samples", type=int, default=1000, help="m of the importance-weighted bound")
    r.add_argument("--iw-subset", type=int, default=1000, help="test images for the bound of non-best runs")
    r.add_argument("--summarize-only", action="store_true", help="skip training; evaluate what --work holds")
    r.add_argument("--data-root", default=None)
    r.set_defaults(func=_cmd_reproduce)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m gumbel_book.vae``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.cmd = "python -m gumbel_book.vae " + " ".join(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
