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
from ..vae.presets import PAPER_ROW, PAPER_TABLE1_VAE_CAT
from ..validation import check_int, validate_args


def full_run_requested() -> bool:
    """The larger budget: a CUDA GPU is present, or ``GUMBEL_BOOK_FULL=1`` asks for it."""
    return torch.cuda.is_available() or full_run_asked()


def live_budget(full: bool, n_train: int, batch_size: int = 100) -> dict[str, int]:
    """The page's budget: 1,500 steps on a CPU (about 15 s per estimator on two cores), 100 epochs when ``full``;
    how many validation/test digits are scored each epoch, and on how many the 1000-sample bound is computed."""
    n_train = check_int(n_train, "n_train", minimum=1)
    steps_per_epoch = max(1, n_train // min(batch_size, n_train))
    steps = 100 * steps_per_epoch if full else 1500
    return {
        "steps": steps,
        "steps_per_epoch": steps_per_epoch,
        "epochs": math.ceil(steps / steps_per_epoch),
        "eval_images": 10_000 if full else 2_000,
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


class ReluLogits(nn.Module):
    """The bug: a ReLU after the encoder's last layer, so every negative logit becomes 0 (and gets no gradient)."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.inner = encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.inner(x))


def relu_logits_measurement(
    train_images: torch.Tensor, test_images: torch.Tensor, steps: int = 300, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Train the same model with and without a ReLU on the encoder logits for ``steps`` steps (gs, tau = 1).

    Returns per variant: the share of logits that are exactly 0 on test digits (zero gradient flows back
    through them), the share of logit units that are 0 for every test digit (dead), and the test -ELBO.
    """
    steps = check_int(steps, "steps", minimum=1)
    x_test = binarize(test_images, seed=DATA_SEED)
    out = {}
    for name in ("linear", "relu"):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = CategoricalVAE(20, 10, "learned")
        if name == "relu":
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
        out[name] = {
            "zero_logit_share": float(zero.float().mean()),
            "dead_unit_share": float(zero.all(dim=0).float().mean()),
            "test_neg_elbo": evaluate(model, x_test),
        }
    return out


@torch.no_grad()
def bounds_with_se(model: CategoricalVAE, x_bin: torch.Tensor, samples: int = 1000, seed: int = EVAL_SEED) -> dict:
    """Mean and standard error over digits of -ELBO and of the negative ``samples``-sample bound."""
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
    out = {}
    for key, values in (("neg_elbo", torch.cat(elbo)), ("neg_iw", torch.cat(iw))):
        v = values.double()
        out[key], out[key + "_se"] = float(v.mean()), float(v.std() / math.sqrt(len(v))) if len(v) > 1 else math.nan
    return out


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


def overfitting_gap(run: Mapping[str, Any], last: int = 5) -> float:
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
