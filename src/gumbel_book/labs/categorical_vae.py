"""The categorical-VAE chapter's lab: the page's training budget and schedule, the ReLU-on-logits measurement,
and the committed reference runs (summary.json) turned into tables the chapter prints."""

from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data import binarize
from ..settings import full_run_asked, results_dir
from ..vae.checkpoints import load_compact
from ..vae.config import DATA_SEED, ESTIMATORS, EVAL_SEED, VAEConfig
from ..vae.model import CategoricalVAE, evaluate, importance_weighted_bound, negative_elbo, training_loss
from ..vae.presets import PAPER, PAPER_ROW, PAPER_TABLE1_VAE_CAT
from ..vae.reference_runs import per_image_neg_elbo
from ..validation import check_int, validate_args


def full_run_requested() -> bool:
    """The larger budget: a CUDA GPU is present, or ``GUMBEL_BOOK_FULL=1`` asks for it."""
    return torch.cuda.is_available() or full_run_asked()


LIVE_STEPS = 800  # optimizer steps per estimator on a CPU (8 points per curve)
LIVE_EPOCH_STEPS = 100  # on a CPU an epoch is 100 steps over a subset, so the curves get a point every 100 steps


def live_budget(full: bool, n_train: int, batch_size: int = 100) -> dict[str, int]:
    """The page's budget: :data:`LIVE_STEPS` steps on a CPU, drawn from the first ``train_digits`` training digits
    so that one epoch (one scoring, one point on the curves) is :data:`LIVE_EPOCH_STEPS` steps; 100 epochs over
    every training digit when ``full``. Also how many validation/test digits are scored each epoch, and on how
    many the 1000-sample bound is computed."""
    n_train = check_int(n_train, "n_train", minimum=1)
    batch = min(batch_size, n_train)
    train_digits = n_train if full else min(n_train, LIVE_EPOCH_STEPS * batch)
    steps_per_epoch = max(1, train_digits // batch)
    steps = 100 * steps_per_epoch if full else LIVE_STEPS
    return {
        "steps": steps,
        "steps_per_epoch": steps_per_epoch,
        "train_digits": train_digits,
        "epochs": math.ceil(steps / steps_per_epoch),
        "eval_images": 10_000 if full else 1_000,
        "iw_images": 10_000 if torch.cuda.is_available() else 1_000 if full else 100,
    }


def scaled_rate(total_steps: int, every: int, tau_min: float = 0.5, reach: float = 2 / 3) -> float:
    """The rate r for which ``max(tau_min, exp(-r t))`` (updated every ``every`` steps) first reaches ``tau_min``
    at about ``reach * total_steps``: the paper's schedule shape, scaled to a shorter budget."""
    total_steps = check_int(total_steps, "total_steps", minimum=1)
    every = check_int(every, "every", minimum=1)
    if not 0.0 < reach <= 1.0:
        raise ValueError(f"reach must be in (0, 1], got {reach!r}")
    if not 0.0 < tau_min < 1.0:
        raise ValueError(f"tau_min must be in (0, 1), got {tau_min!r}")
    target = max(every, every * math.floor(reach * total_steps / every))
    return -math.log(tau_min) / target


def live_config(estimator: str, budget: Mapping[str, int], *, every: int = 100, **overrides: Any) -> VAEConfig:
    """The page's run: 20x10 latents, learned prior, dynamic binarization, tau annealed to 0.5 within the budget."""
    settings = dict(
        estimator=estimator,
        latent=(20, 10),
        prior="learned",
        epochs=budget["epochs"],
        binarization="dynamic",
        anneal_rate=scaled_rate(budget["epochs"] * budget["steps_per_epoch"], every),
        anneal_every=every,
    )
    settings.update(overrides)
    return VAEConfig(**settings)


def live_paper_config(estimator: str, budget: Mapping[str, int]) -> VAEConfig:
    """The page's run under the paper's stated protocol (:data:`gumbel_book.vae.presets.PAPER`): SGD with
    momentum, its learning rate, fixed binarization and the uniform prior, on the page's budget and schedule."""
    return live_config(
        estimator,
        budget,
        optimizer=PAPER.optimizer,
        momentum=PAPER.momentum,
        lr=PAPER.lr,
        binarization=PAPER.binarization,
        prior=PAPER.prior,
    )


class ReluLogits(nn.Module):
    """The bug: a ReLU after the encoder's last layer, so every negative logit becomes 0 (and gets no gradient)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.inner = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.inner(x))


def relu_logits_measurement(
    train_images: torch.Tensor, test_images: torch.Tensor, steps: int = 300, seeds: Sequence[int] = (0, 1, 2)
) -> dict[str, Any]:
    """Train the same model with and without a ReLU on the encoder logits for ``steps`` steps (gs, tau = 1), once
    per seed (the same initial weights and batches for both variants of a seed).

    Returns per variant the means over seeds of: the share of logits that are exactly 0 on test digits (zero
    gradient flows back through them), the share of logit units that are 0 for every test digit (dead), and the
    test -ELBO; and ``cost``, the per-seed test -ELBO of the ReLU model minus that of the linear one, with its
    mean and standard error over seeds.
    """
    steps = check_int(steps, "steps", minimum=1)
    if len(seeds) < 2:
        raise ValueError(f"seeds must hold at least two seeds for a standard error, got {seeds!r}")
    x_test = binarize(test_images, seed=DATA_SEED)
    per_seed = {"linear": [], "relu": []}
    for seed in seeds:
        for name in per_seed:
            per_seed[name].append(_relu_run(train_images, x_test, steps, seed, relu=name == "relu"))
    out: dict[str, Any] = {
        name: {key: statistics.fmean(m[key] for m in runs) for key in runs[0]} for name, runs in per_seed.items()
    }
    cost = [
        r["test_neg_elbo"] - lin["test_neg_elbo"] for r, lin in zip(per_seed["relu"], per_seed["linear"], strict=True)
    ]
    out["cost"] = cost
    out["cost_mean"], out["cost_se"] = statistics.fmean(cost), statistics.stdev(cost) / math.sqrt(len(cost))
    out["min_zero_logit_share"] = min(m["zero_logit_share"] for m in per_seed["relu"])
    out["max_zero_logit_share_linear"] = max(m["zero_logit_share"] for m in per_seed["linear"])
    return out


def _relu_run(train_images: torch.Tensor, x_test: torch.Tensor, steps: int, seed: int, relu: bool) -> dict:
    """One run of :func:`relu_logits_measurement`: Adam at 1e-3, batches of 100 freshly binarized digits."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CategoricalVAE(20, 10, "learned")
    if relu:
        model.encoder = ReluLogits(model.encoder)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(train_images), (100,), generator=gen)
        loss, _, _ = training_loss(model, binarize(train_images[idx], generator=gen), "gs", 1.0, generator=gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        logits = model.encode(x_test).flatten(1)
    zero = logits == 0
    return {
        "zero_logit_share": float(zero.float().mean()),
        "dead_unit_share": float(zero.all(dim=0).float().mean()),
        "test_neg_elbo": evaluate(model, x_test),
    }


@torch.no_grad()
def bounds_with_se(model: CategoricalVAE, x_bin: torch.Tensor, samples: int = 1000, seed: int = EVAL_SEED) -> dict:
    """Mean and standard error over digits of -ELBO and of the negative ``samples``-sample bound, and the bound
    of every digit (``neg_iw_per_digit``, float64), for paired comparisons between models on the same digits."""
    samples = check_int(samples, "samples", minimum=1)
    gen = torch.Generator().manual_seed(seed)
    model.eval()
    batch = max(1, 20_000 // samples)
    elbo, iw = [], []
    with validate_args(False):
        for i in range(0, len(x_bin), batch):
            xb = x_bin[i : i + batch]
            elbo.append(negative_elbo(model, xb, generator=gen))
            iw.append(-importance_weighted_bound(model, xb, samples, generator=gen))
    out: dict[str, Any] = {}
    for key, values in (("neg_elbo", torch.cat(elbo)), ("neg_iw", torch.cat(iw))):
        v = values.double()
        out[key], out[key + "_se"] = float(v.mean()), float(v.std() / math.sqrt(len(v))) if len(v) > 1 else math.nan
    out["neg_iw_per_digit"] = torch.cat(iw).double()
    return out


def per_digit_neg_elbo(model: CategoricalVAE, x_bin: torch.Tensor) -> torch.Tensor:
    """The single-sample -ELBO (one-hot z) of every digit, float64, with the evaluation noise of
    :func:`gumbel_book.vae.evaluate`: their mean is what ``evaluate`` reports."""
    model.eval()
    with validate_args(False):
        return per_image_neg_elbo(model, x_bin.reshape(len(x_bin), -1), seed=EVAL_SEED).double()


def paired_z(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float, float]:
    """``(mean, se, z)`` of the per-digit differences ``a - b`` of two models scored on the same digits.

    Pairing removes what the digits share (a hard digit is hard for both models), so the standard error is
    that of the gap itself, and ``z = mean / se`` says how many standard errors the gap is."""
    if a.shape != b.shape or a.dim() != 1 or len(a) < 2:
        raise ValueError(f"a and b must be 1-D with the same length >= 2, got {tuple(a.shape)} and {tuple(b.shape)}")
    d = (a - b).double()
    mean, se = float(d.mean()), float(d.std() / math.sqrt(len(d)))
    return mean, se, mean / se if se > 0 else math.copysign(math.inf, mean)


# ---------------------------------------------------------------- the committed reference runs


def find_results(start: str | os.PathLike | None = None) -> Path | None:
    """``results/vae`` of the repository: ``$GUMBEL_BOOK_RESULTS``, else searched upwards from ``start`` (cwd)."""
    if results_dir() is not None:
        p = results_dir()
        return p if (p / "summary.json").is_file() else None
    here = Path(start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "results" / "vae" / "summary.json").is_file():
            return d / "results" / "vae"
    return None


def load_summary(results: str | os.PathLike) -> dict[str, Any]:
    """The reference runs' ``summary.json``."""
    path = Path(results) / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(f"no summary.json in {str(results)!r}: run `python -m gumbel_book.vae reproduce`")
    return json.loads(path.read_text())


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else float("nan"))


def reference_runs(summary: Mapping[str, Any], estimator: str) -> list[dict[str, Any]]:
    """The reference runs (dynamic binarization, Adam) of ``estimator``, one per seed."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    return [r for r in summary["runs"] if r["name"].startswith(f"{estimator}-s")]


def reference_rows(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per estimator: mean and sd over seeds of test -ELBO and -L_m (on the common subset), the best
    validation run's -L_m on every test digit, and the paper's Table 1 number with the gap to it."""
    rows = []
    for est in ESTIMATORS:
        runs = reference_runs(summary, est)
        if not runs:
            continue
        best = next(r for r in runs if r["name"] == summary["best_runs"][est])
        elbo = _mean_sd([r["test_neg_elbo"] for r in runs])
        iw_sub = _mean_sd([r["test_neg_iw_subset"] for r in runs])
        paper_row = PAPER_ROW[est]
        paper = PAPER_TABLE1_VAE_CAT[paper_row] if paper_row else None
        rows.append(
            {
                "estimator": est,
                "seeds": len(runs),
                "neg_elbo_mean": elbo[0],
                "neg_elbo_sd": elbo[1],
                "neg_iw_subset_mean": iw_sub[0],
                "neg_iw_subset_sd": iw_sub[1],
                "iw_subset_images": runs[0]["iw_subset_images"],
                "best_run": best["name"],
                "best_neg_elbo": best["test_neg_elbo"],
                "best_neg_iw": best["test_neg_iw_bound"],
                "best_iw_images": best["iw_test_images"],
                "epochs": [r["epochs_trained"] for r in runs],
                "best_epochs": [r["best_epoch"] for r in runs],
                "paper_row": paper_row,
                "paper": paper,
                "gap_elbo": None if paper is None else elbo[0] - paper,
                "gap_iw": None if paper is None else best["test_neg_iw_bound"] - paper,
            }
        )
    return rows


def control_runs(summary: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The fixed-binarization control and its dynamic twin (same estimator and seed), by binarization."""
    fixed = [
        r for r in summary["runs"] if r["config"]["binarization"] == "fixed" and r["config"]["optimizer"] == "adam"
    ]
    if not fixed:
        return {}
    c = fixed[0]["config"]
    twin = next(r for r in summary["runs"] if r["name"] == f"{c['estimator']}-s{c['seed']}")
    return {"fixed": fixed[0], "dynamic": twin}


def best_epoch_gap(run: Mapping[str, Any]) -> float:
    """Test -ELBO minus training loss at the run's best validation epoch: how far the scored model lies above the
    loss it was trained on (for ``gs`` the training loss is that of relaxed codes)."""
    entry = next(h for h in run["history"] if h["epoch"] == run["best_epoch"])
    return entry["test_neg_elbo"] - entry["train_loss"]


def reference_protocol(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The reference runs' shared settings, read from their configs in ``summary`` (an error if they differ):
    seeds, training digits per epoch (steps of the first epoch times the batch size), optimizer and learning
    rate, prior, binarization, latents, batch size, the epoch cap, patience and the temperature schedule."""
    runs = [r for e in ESTIMATORS for r in reference_runs(summary, e)]
    keys = ("optimizer", "lr", "prior", "binarization", "batch_size", "epochs", "patience", "anneal_rate")
    shared = {k: {json.dumps(r["config"][k]) for r in runs} for k in (*keys, "latent", "anneal_every", "tau_min")}
    if any(len(v) != 1 for v in shared.values()):
        raise ValueError(f"the reference runs do not share one protocol: {shared}")
    config, first = runs[0]["config"], runs[0]["history"][0]
    return {
        **{k: config[k] for k in keys},
        "seeds": len({r["config"]["seed"] for r in runs}),
        "train_digits": first["step"] * config["batch_size"],
        "latent": "{} × {}".format(*config["latent"]),
        "anneal_every": config["anneal_every"],
        "tau_min": config["tau_min"],
    }


OVERFIT_EPOCHS = 5  # the overfitting gap is averaged over this many last epochs


def overfitting_gap(run: Mapping[str, Any], last: int = OVERFIT_EPOCHS) -> float:
    """Mean over the last ``last`` epochs of (validation -ELBO - training loss): how far validation lags training."""
    hist = run["history"][-last:]
    return statistics.fmean(h["val_neg_elbo"] - h["train_loss"] for h in hist)


def paper_comparison(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every row of the paper's Table 1 VAE column, with ours beside it where we ran that estimator."""
    ours = {r["paper_row"]: r for r in rows if r["paper_row"]}
    out = []
    for name, value in PAPER_TABLE1_VAE_CAT.items():
        r = ours.get(name)
        out.append(
            {
                "paper_row": name,
                "paper": value,
                "estimator": r["estimator"] if r else None,
                "neg_elbo": r["neg_elbo_mean"] if r else None,
                "neg_iw": r["best_neg_iw"] if r else None,
            }
        )
    return out


def reference_model(results: str | os.PathLike, summary: Mapping[str, Any]) -> CategoricalVAE:
    """The committed checkpoint of the estimator whose best run has the lowest validation -ELBO."""
    best = min(
        (r for r in summary["runs"] if r["name"] in summary["best_runs"].values()),
        key=lambda r: r["best_val_neg_elbo"],
    )
    return load_compact(Path(results) / best["checkpoint"]).model
