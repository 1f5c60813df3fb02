"""Training a categorical VAE: :func:`train_vae` and the steps it is made of, the validation split, early stopping.

One run is a sequence of epochs, each: shuffle, a pass of optimizer steps, evaluation on the validation and
test digits, a checkpoint. Everything that changes during the run lives in one :class:`RunState`, which is
exactly what the checkpoint saves, so an interrupted run resumes as the same run.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..data import binarize, progress_default
from ..device import default_device
from ..validation import validate_args
from .checkpoints import TrainResult, read_checkpoint, write_checkpoint
from .config import DATA_SEED, VALIDATION_FRACTION, VAEConfig
from .model import CategoricalVAE, evaluate, training_loss

EpochCallback = Callable[[int, dict[str, float]], None]


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


# ---------------------------------------------------------------- the run's state and its data


@dataclass
class RunState:
    """Everything that changes while a run trains: what ``checkpoint.pt`` saves and a resume restores.

    ``baseline`` (REINFORCE's moving average of the reconstruction loss) stays a 0-dim tensor on the device, in
    float64 where the device has it, so that no training step waits for the device to report a number.
    """

    model: CategoricalVAE
    optimizer: torch.optim.Optimizer
    shuffle_gen: torch.Generator
    noise_gen: torch.Generator
    baseline: torch.Tensor
    step: int = 0  # optimizer steps taken, across epochs (the temperature schedule's clock)
    epoch: int = 0  # epochs finished
    history: list[dict[str, float]] = field(default_factory=list)

    def to_checkpoint(self, config: VAEConfig) -> dict[str, Any]:
        """The checkpoint's contents (keys in the order the files have always had)."""
        return {
            "config": config.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "shuffle_gen": self.shuffle_gen.get_state(),
            "noise_gen": self.noise_gen.get_state(),
            "baseline": float(self.baseline),
            "history": self.history,
        }

    def restore(self, ckpt: dict[str, Any]) -> None:
        """Continue from a checkpoint written by :meth:`to_checkpoint` (the same config, checked by the reader)."""
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.shuffle_gen.set_state(ckpt["shuffle_gen"])
        self.noise_gen.set_state(ckpt["noise_gen"])
        self.baseline = torch.tensor(ckpt["baseline"], dtype=self.baseline.dtype, device=self.baseline.device)
        self.step, self.epoch, self.history = ckpt["step"], ckpt["epoch"], ckpt["history"]


def _new_run(config: VAEConfig, device: torch.device) -> RunState:
    """A fresh run: weights drawn from ``config.seed`` (the global RNG is left as it was), its optimizer and the
    two generators (shuffling on the CPU, binarization and latent noise on ``device``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = CategoricalVAE(*config.latent, config.prior)
    model.to(device)
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    shuffle_gen = torch.Generator().manual_seed(config.seed)
    noise_gen = torch.Generator(device=device).manual_seed(config.seed + 1)
    dtype = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
    return RunState(model, optimizer, shuffle_gen, noise_gen, torch.zeros((), dtype=dtype, device=device))


@dataclass
class _Images:
    """The images on the training device: ``train`` binarized once (fixed) or kept uint8 (dynamic: binarized per
    batch); validation and test binarized once, each with its own fixed seed."""

    train: torch.Tensor
    val: torch.Tensor | None
    test: torch.Tensor | None


def _device_images(
    config: VAEConfig, train: torch.Tensor, val: torch.Tensor | None, test: torch.Tensor | None, device: torch.device
) -> _Images:
    x_train = binarize(train, seed=DATA_SEED).to(device) if config.binarization == "fixed" else train.to(device)
    x_test = binarize(test, seed=DATA_SEED).to(device) if test is not None else None
    x_val = binarize(val, seed=DATA_SEED + 1).to(device) if val is not None else None
    return _Images(x_train, x_val, x_test)


# ---------------------------------------------------------------- one step, one epoch


def _train_step(run: RunState, config: VAEConfig, xb: torch.Tensor, tau: float) -> torch.Tensor:
    """One optimizer step on the binary batch ``xb``; returns its mean loss (recon + KL) as a device scalar."""
    surrogate, recon, kl = training_loss(
        run.model, xb, config.estimator, tau, baseline=run.baseline, generator=run.noise_gen
    )
    run.optimizer.zero_grad(set_to_none=True)
    surrogate.backward()
    run.optimizer.step()
    recon_mean = recon.mean().to(run.baseline.dtype)
    if config.estimator == "reinforce":  # moving-average baseline, from earlier batches only
        decay = config.baseline_decay if run.step > 0 else 0.0
        run.baseline = decay * run.baseline + (1 - decay) * recon_mean
    run.step += 1
    return recon_mean + kl.mean().to(recon_mean.dtype)


def _epoch_loss(losses: torch.Tensor, run: RunState, config: VAEConfig) -> float:
    """The epoch's mean training loss, read from the device once; a NaN or infinite step loss is an error."""
    values = losses.tolist()
    for i, value in enumerate(values):
        if not math.isfinite(value):
            step = run.step - len(values) + i
            raise FloatingPointError(
                f"the training loss became {value} at step {step} (epoch {run.epoch + 1}); lower lr (now {config.lr})"
            )
    return sum(values) / len(values)


def _train_epoch(run: RunState, config: VAEConfig, x_train: torch.Tensor, bar: tqdm) -> dict[str, float]:
    """One shuffled pass of optimizer steps over ``x_train``: the epoch's history entry, before evaluation."""
    t0 = time.perf_counter()
    n = len(x_train)
    batch = min(config.batch_size, n)
    steps = n // batch
    perm = torch.randperm(n, generator=run.shuffle_gen).to(x_train.device)
    losses = torch.empty(steps, dtype=run.baseline.dtype, device=x_train.device)
    tau = config.tau(run.step)
    for b in range(steps):
        xb = x_train[perm[b * batch : (b + 1) * batch]]
        if config.binarization == "dynamic":
            xb = binarize(xb, generator=run.noise_gen)
        tau = config.tau(run.step)
        losses[b] = _train_step(run, config, xb, tau)
        bar.update(1)
        if b % 10 == 0 and not bar.disable:  # the only per-step read of a loss, and only with a progress bar
            bar.set_postfix(loss=f"{float(losses[b]):.1f}", tau=f"{tau:.3f}")
    train_loss = _epoch_loss(losses, run, config)
    seconds = time.perf_counter() - t0
    return {"epoch": run.epoch + 1, "step": run.step, "tau": tau, "train_loss": train_loss, "seconds": seconds}


def _end_epoch(run: RunState, config: VAEConfig, entry: dict[str, float], images: _Images, out: Path | None) -> None:
    """Score the epoch on validation and test (fixed evaluation noise), record it, and checkpoint the run, keeping
    the weights as ``best.pt`` too when this is the best validation epoch so far."""
    if images.val is not None:
        entry["val_neg_elbo"] = evaluate(run.model, images.val)
    if images.test is not None:
        entry["test_neg_elbo"] = evaluate(run.model, images.test)
    run.history.append(entry)
    run.epoch += 1
    if out is not None:
        best = images.val is not None and best_epoch(run.history) == run.epoch
        write_checkpoint(out, config, run.to_checkpoint(config), best=best)


# ---------------------------------------------------------------- the whole run


def _checked_images(
    config: VAEConfig, train: torch.Tensor, test: torch.Tensor | None, val: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """The arguments of :func:`train_vae` checked: uint8 images, and validation images when patience asks."""
    if not isinstance(config, VAEConfig):
        raise TypeError(f"config must be a VAEConfig, got {type(config).__name__}")
    train = _as_uint8_images(train, "train_images")
    test = _as_uint8_images(test, "test_images") if test is not None else None
    if val is not None:
        val = _as_uint8_images(val, "val_images")
    elif config.patience:
        raise ValueError(f"patience={config.patience} needs val_images: early stopping is decided on validation")
    return train, test, val


def _resume(run: RunState, config: VAEConfig, out_dir: str | os.PathLike | None) -> Path | None:
    """Create the run directory, and continue the run saved there if it holds a checkpoint of this config."""
    if out_dir is None:
        return None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if (ckpt := read_checkpoint(out, config)) is not None:
        run.restore(ckpt)
    return out


def _progress_bar(config: VAEConfig, run: RunState, n_train: int, progress: bool | None) -> tqdm:
    steps_per_epoch = n_train // min(config.batch_size, n_train)
    return tqdm(
        total=config.epochs * steps_per_epoch,
        initial=run.epoch * steps_per_epoch,
        desc=f"{config.estimator} {config.latent[0]}x{config.latent[1]}",
        disable=not (progress_default() if progress is None else progress),
        unit="step",
    )


def train_vae(
    config: VAEConfig,
    train_images: torch.Tensor,
    test_images: torch.Tensor | None = None,
    *,
    val_images: torch.Tensor | None = None,
    out_dir: str | os.PathLike | None = None,
    device: torch.device | str | None = None,
    progress: bool | None = None,
    on_epoch_end: EpochCallback | None = None,
) -> TrainResult:
    """Train a categorical VAE on uint8 MNIST images, binarized here; checkpoint each epoch into ``out_dir``.

    If ``out_dir`` holds a checkpoint of the same config, training resumes after its last finished
    epoch, with the exact optimizer and random-number state: no epoch is lost or repeated. Deterministic
    for a given seed on the CPU. ``val_images`` and ``test_images`` (uint8, binarized once with a fixed seed)
    give the validation and test -ELBO recorded after each epoch. With validation images the weights of the
    best validation epoch are kept in ``out_dir/best.pt``, and ``config.patience`` stops training early.
    """
    train_images, test_images, val_images = _checked_images(config, train_images, test_images, val_images)
    device = default_device() if device is None else torch.device(device)
    run = _new_run(config, device)
    out = _resume(run, config, out_dir)
    images = _device_images(config, train_images, val_images, test_images, device)
    bar = _progress_bar(config, run, len(images.train), progress)
    run.model.train()
    try:
        with validate_args(False):
            while run.epoch < config.epochs and not _stopped_early(run.history, config.patience):
                entry = _train_epoch(run, config, images.train, bar)
                _end_epoch(run, config, entry, images, out)
                if on_epoch_end is not None:
                    on_epoch_end(run.epoch, entry)
    finally:
        bar.close()
    run.model.eval()
    return TrainResult(run.model, config, run.history)
