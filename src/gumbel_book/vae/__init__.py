"""A categorical VAE on binarized MNIST (Jang, Gu & Poole 2017, section 4.2): model, training, evaluation, CLI.

Encoder 784-512-256-(N*K) with *no* activation on the logits, Bernoulli decoder (N*K)-256-512-784,
analytic KL to a uniform (or learned) categorical prior, temperature annealed by global step, and
the 1000-sample importance-weighted bound of Table 1. Command line::

    python -m gumbel_book.vae train --estimator gs --epochs 100 --latent 20x10 --out runs/gs
    python -m gumbel_book.vae evaluate runs/gs --samples 1000
    python -m gumbel_book.vae reproduce --out results/vae     # the book's reference runs

The modules, each importing only those above it:

``config``
    :class:`VAEConfig`, :func:`parse_latent` and the shared constants (estimator spellings, seeds, file names).
``model``
    :class:`CategoricalVAE`, the KL, the likelihood, the latent sample of each estimator, the training loss,
    the -ELBO and the importance-weighted bound, :func:`evaluate`.
``checkpoints``
    The files a run writes (checkpoint, best weights, metrics.json, the compact bfloat16 copy) and reading them.
``training``
    :func:`train_vae` as a sequence of named steps, the validation split, early stopping.
``presets``
    The paper's Table 1 and stated protocol, the book's reference protocol, the config lists of ``reproduce``.
``reference_runs``
    The ``reproduce`` driver: train every reference run (resumable, in parallel) and write ``summary.json``.
``cli``
    The command line; ``__main__`` only calls it.
"""

from __future__ import annotations

from .checkpoints import TrainResult, load_compact, load_run, save_compact
from .cli import build_parser, main
from .config import (
    BEST,
    BINARIZATIONS,
    CHECKPOINT,
    DATA_SEED,
    ESTIMATORS,
    EVAL_SEED,
    METRICS,
    OPTIMIZERS,
    PIXELS,
    PRIORS,
    VALIDATION_FRACTION,
    VAEConfig,
    parse_latent,
)
from .model import (
    CategoricalVAE,
    bernoulli_log_likelihood,
    evaluate,
    importance_weighted_bound,
    kl_categorical,
    negative_elbo,
    sample_latent,
    training_loss,
)
from .presets import (
    PAPER,
    PAPER_LR_GRID,
    PAPER_RATES,
    PAPER_ROW,
    PAPER_TABLE1_VAE_CAT,
    REFERENCE,
    paper_configs,
    reference_configs,
)
from .training import best_epoch, split_validation, train_vae

__all__ = [
    "BEST",
    "BINARIZATIONS",
    "CHECKPOINT",
    "DATA_SEED",
    "ESTIMATORS",
    "EVAL_SEED",
    "METRICS",
    "OPTIMIZERS",
    "PAPER",
    "PAPER_LR_GRID",
    "PAPER_RATES",
    "PAPER_ROW",
    "PAPER_TABLE1_VAE_CAT",
    "PIXELS",
    "PRIORS",
    "REFERENCE",
    "VALIDATION_FRACTION",
    "CategoricalVAE",
    "TrainResult",
    "VAEConfig",
    "bernoulli_log_likelihood",
    "best_epoch",
    "build_parser",
    "evaluate",
    "importance_weighted_bound",
    "kl_categorical",
    "load_compact",
    "load_run",
    "main",
    "negative_elbo",
    "paper_configs",
    "parse_latent",
    "reference_configs",
    "sample_latent",
    "save_compact",
    "split_validation",
    "train_vae",
    "training_loss",
]
