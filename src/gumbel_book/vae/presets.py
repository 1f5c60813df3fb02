"""What the paper reports and states, and the book's run presets built from it.

Table 1 of Jang, Gu & Poole (2017) with the row each of our estimators corresponds to; :data:`REFERENCE`, the
book's reference protocol, and the defaults of ``python -m gumbel_book.vae reproduce`` that trained the committed
runs (:data:`REFERENCE_SEEDS`, :data:`REPRODUCE_JOBS`); :data:`PAPER`, the protocol the paper states, with its
learning-rate grid :data:`PAPER_LR_GRID`; and the lists of configs that ``reproduce`` trains. Needs only
:mod:`.config`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .config import VAEConfig

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

# The book's reference protocol: the paper's 20x10 latents and one of its annealing schedules (r = 1e-4,
# updated every 1000 steps), Adam, a learned prior and fresh (dynamic) binarization for every batch. The epoch
# cap, the seeds and the number of parallel jobs are those of the committed runs in results/vae (its summary.json
# records the command: `reproduce --jobs 2 --epochs 50`), so that `reproduce` with its defaults redoes them.
REFERENCE = VAEConfig(
    estimator="gs",
    latent=(20, 10),
    prior="learned",
    epochs=50,
    batch_size=100,
    lr=1e-3,
    anneal_rate=1e-4,
    anneal_every=1000,
    binarization="dynamic",
    patience=10,
)
REFERENCE_SEEDS = (0, 1, 2)
REPRODUCE_JOBS = 2  # one thread per job: the committed runs' floating-point reductions, run for run
# What the paper states (Jang et al. 2017, section 4.2 and appendix): SGD with momentum, 20x10 latents,
# tau = max(0.5, exp(-r t)) with r in {1e-5, 1e-4} updated every 500 or 1000 steps, a learning rate from
# {3e-5, 1e-5, 3e-4, 1e-4, 3e-3, 1e-3}, selection on validation. 1e-2 is not in the paper's grid.
PAPER = replace(REFERENCE, optimizer="sgd", momentum=0.9, binarization="fixed", lr=3e-3, prior="uniform")
PAPER_LR_GRID = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3)
PAPER_RATES = (1e-5, 1e-4)
PAPER_ANNEAL_EVERY = (500, 1000)  # the paper's update intervals for the temperature


def reference_configs(
    estimators: Sequence[str], seeds: Sequence[int], *, epochs: int, patience: int, fixed_control: bool
) -> list[VAEConfig]:
    """Seed-major order (every estimator's seed 0 first), then the fixed-binarization control run."""
    configs = [
        replace(REFERENCE, estimator=e, seed=s, epochs=epochs, patience=patience) for s in seeds for e in estimators
    ]
    if fixed_control:  # the overfitting control: fixed bits, no early stopping
        configs.append(
            replace(REFERENCE, estimator="gs", seed=seeds[0], epochs=epochs, binarization="fixed", patience=0)
        )
    return configs


def paper_configs(estimator: str, seed: int, *, epochs: int, patience: int) -> list[VAEConfig]:
    """The ``--preset paper`` grid for one estimator: SGD + momentum over PAPER_LR_GRID x PAPER_RATES."""
    return [
        replace(PAPER, estimator=estimator, seed=seed, lr=lr, anneal_rate=r, epochs=epochs, patience=patience)
        for lr in PAPER_LR_GRID
        for r in PAPER_RATES
    ]


def run_name(config: VAEConfig) -> str:
    """A run's directory name, e.g. ``st-gs-s1`` (``-fixed`` and ``-sgd-lr0.003`` mark non-reference settings)."""
    name = config.estimator
    if config.binarization != REFERENCE.binarization:
        name += f"-{config.binarization}"
    if config.optimizer != REFERENCE.optimizer:
        name += f"-{config.optimizer}-lr{config.lr:g}-r{config.anneal_rate:g}"
    return f"{name}-s{config.seed}"
