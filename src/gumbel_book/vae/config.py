"""The settings of a categorical-VAE run (:class:`VAEConfig`) and the constants every other module shares.

This module imports nothing else from :mod:`gumbel_book.vae`: model, training, presets and the command line
all build on it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..schedule import anneal_tau
from ..validation import check_choice, check_int, check_real

# The VAE's spellings of its four estimators (results/vae stores them); gumbel_book.estimators.ALIASES maps
# "gs" and "st-gs" to the registry's gumbel_softmax and st_gumbel_softmax.
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


def _positive_number(value: float, name: str) -> None:
    """A finite number > 0; anything else (a string or a bool too) is a ``ValueError`` naming ``name``."""
    try:
        check_real(value, name, positive=True)
    except TypeError as err:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}") from err


def _fraction(value: float, name: str) -> None:
    """A number in [0, 1) (a momentum or a moving-average decay); a non-number is a ``TypeError``."""
    if not 0.0 <= check_real(value, name, finite=False) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


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
        check_choice(self.estimator, ESTIMATORS, "estimator")
        check_choice(self.prior, PRIORS, "prior")
        check_choice(self.binarization, BINARIZATIONS, "binarization")
        check_choice(self.optimizer, OPTIMIZERS, "optimizer")
        self.latent = parse_latent(self.latent)
        minimum = {"epochs": 1, "batch_size": 1, "anneal_every": 1, "seed": 0, "patience": 0}
        for name, low in minimum.items():
            setattr(self, name, check_int(getattr(self, name), name, minimum=low))
        for name in ("lr", "tau0", "tau_min"):
            _positive_number(getattr(self, name), name)
        _fraction(self.momentum, "momentum")
        _fraction(self.baseline_decay, "baseline_decay")
        check_real(self.anneal_rate, "anneal_rate", minimum=0.0)

    def tau(self, step: int) -> float:
        """The temperature at global ``step`` (counted across epochs, never reset)."""
        return anneal_tau(step, tau0=self.tau0, rate=self.anneal_rate, tau_min=self.tau_min, every=self.anneal_every)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON-ready values (saved in checkpoints and metrics.json)."""
        d = dataclasses.asdict(self)
        d["latent"] = list(self.latent)
        return d
