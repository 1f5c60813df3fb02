"""The VAE chapter's reference runs: every estimator, several seeds, all 60,000 digits, early stopping on validation.

``python -m gumbel_book.vae reproduce --out results/vae`` trains each run in its own directory under
``--work`` (resumable: run the same command again after an interruption and every run continues where it
stopped, the same run), then evaluates each run's best-validation weights on the 10,000 test digits and
writes ``summary.json`` plus one small bfloat16 checkpoint per estimator (its best run) into ``--out``.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..data import binarize, load_mnist
from . import (
    DATA_SEED,
    ESTIMATORS,
    EVAL_SEED,
    METRICS,
    PAPER_ROW,
    PAPER_TABLE1_VAE_CAT,
    VAEConfig,
    best_epoch,
    evaluate,
    load_compact,
    load_run,
    negative_elbo,
    save_compact,
    split_validation,
    train_vae,
)

SUMMARY = "summary.json"
# The book's reference protocol: the paper's 20x10 latents and one of its annealing schedules (r = 1e-4,
# updated every 1000 steps), Adam, a learned prior and fresh (dynamic) binarization every epoch.
REFERENCE = VAEConfig(
    estimator="gs",
    latent=(20, 10),
    prior="learned",
    epochs=60,
    batch_size=100,
    lr=1e-3,
    anneal_rate=1e-4,
    anneal_every=1000,
    binarization="dynamic",
    patience=10,
)
# What the paper states (Jang et al. 2017, section 4.2 and appendix): SGD with momentum, 20x10 latents,
# tau = max(0.5, exp(-r t)) with r in {1e-5, 1e-4}, selection on validation. Its learning-rate values are not
# reproduced here; PAPER_LR_GRID is this book's grid.
PAPER = replace(REFERENCE, optimizer="sgd", momentum=0.9, binarization="fixed", lr=3e-3, prior="uniform")
PAPER_LR_GRID = (1e-3, 3e-3, 1e-2)
PAPER_RATES = (1e-5, 1e-4)


def run_name(config: VAEConfig) -> str:
    """A run's directory name, e.g. ``st-gs-s1`` (``-fixed`` and ``-sgd-lr0.003`` mark non-reference settings)."""
    name = config.estimator
    if config.binarization != REFERENCE.binarization:
        name += f"-{config.binarization}"
    if config.optimizer != REFERENCE.optimizer:
        name += f"-{config.optimizer}-lr{config.lr:g}-r{config.anneal_rate:g}"
    return f"{name}-s{config.seed}"


def git_commit() -> str | None:
    """The repository's HEAD commit (None outside a git checkout)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def _train_one(config: VAEConfig, work: str, data_root: str | None, threads: int) -> dict[str, Any]:
    """Worker: train (or resume) one run; returns its name and wall time. Prints one line per epoch."""
    torch.set_num_threads(threads)
    train_x, _ = load_mnist("train", data_root)
    test_x, _ = load_mnist("test", data_root)
    train_x, val_x = split_validation(train_x)
    name = run_name(config)
    t0 = time.perf_counter()

    def report(epoch: int, e: dict[str, float]) -> None:
        print(
            f"[{name}] epoch {epoch}: train {e['train_loss']:.2f}  val {e['val_neg_elbo']:.2f}  "
            f"test {e['test_neg_elbo']:.2f}  tau {e['tau']:.3f}  {e['seconds']:.1f} s",
            flush=True,
        )

    result = train_vae(
        config,
        train_x,
        test_x,
        val_images=val_x,
        out_dir=Path(work) / name,
        device="cpu",
        progress=False,
        on_epoch_end=report,
    )
    return {"name": name, "seconds": time.perf_counter() - t0, "epochs": len(result.history)}


def train_all(configs: Sequence[VAEConfig], work: Path, *, jobs: int, data_root: str | None) -> None:
    """Train ``configs`` in ``jobs`` worker processes (one thread each when jobs > 1), resuming finished epochs."""
    threads = 1 if jobs > 1 else max(1, torch.get_num_threads())
    if jobs == 1:
        for c in configs:
            _train_one(c, str(work), data_root, threads)
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(jobs, maxtasksperchild=1) as pool:
        pending = [pool.apply_async(_train_one, (c, str(work), data_root, threads)) for c in configs]
        for p in pending:
            print(f"finished {p.get()}", flush=True)


@torch.no_grad()
def per_image_neg_elbo(model, x_bin: torch.Tensor, seed: int = EVAL_SEED, batch: int = 2000) -> torch.Tensor:
    """Per-image single-sample -ELBO (discrete z), with the evaluation generator of :func:`gumbel_book.vae.evaluate`."""
    gen = torch.Generator().manual_seed(seed)
    return torch.cat([negative_elbo(model, x_bin[i : i + batch], generator=gen) for i in range(0, len(x_bin), batch)])


def mean_and_se(values: torch.Tensor) -> tuple[float, float]:
    """Mean and standard error of the mean of per-image values."""
    v = values.double()
    return float(v.mean()), float(v.std() / math.sqrt(len(v)))


def summarize(
    configs: Sequence[VAEConfig],
    work: Path,
    out: Path,
    *,
    data_root: str | None,
    iw_samples: int,
    iw_subset: int,
    command: str,
) -> dict[str, Any]:
    """Evaluate every run's best-validation weights on the test split, save each estimator's best checkpoint
    under ``out``, and return the summary (:func:`main` writes it)."""
    test_x, _ = load_mnist("test", data_root)
    x_test = binarize(test_x, seed=DATA_SEED)
    runs = []
    for c in configs:
        name = run_name(c)
        run = load_run(work / name, "cpu", which="best")
        hist = run.history
        best = best_epoch(hist)
        elbo_mean, elbo_se = mean_and_se(per_image_neg_elbo(run.model, x_test))
        metrics = json.loads((work / name / METRICS).read_text())
        runs.append(
            {
                "name": name,
                "config": c.to_dict(),
                "epochs_trained": len(hist),
                "best_epoch": best,
                "best_val_neg_elbo": next(e["val_neg_elbo"] for e in hist if e["epoch"] == best),
                "test_neg_elbo": elbo_mean,
                "test_neg_elbo_se": elbo_se,
                "train_seconds": sum(e["seconds"] for e in hist),
                "history": metrics["epochs"],
            }
        )
        print(f"{name}: best epoch {best} of {len(hist)}, test -ELBO {elbo_mean:.2f} ± {elbo_se:.2f}", flush=True)
    reference = [r for r in runs if r["name"].startswith(tuple(f"{e}-s" for e in ESTIMATORS))]
    best_runs: dict[str, str] = {}
    for est in ESTIMATORS:
        mine = [r for r in reference if r["config"]["estimator"] == est]
        if mine:
            best_runs[est] = min(mine, key=lambda r: r["best_val_neg_elbo"])["name"]
    n_sub = min(iw_subset, len(x_test))
    for r in runs:
        run = load_run(work / r["name"], "cpu", which="best")
        # Every run: the m-sample bound and the single-sample one on the same first n_sub test digits.
        r["iw_samples"], r["iw_subset_images"] = iw_samples, n_sub
        r["test_neg_iw_subset"] = evaluate(run.model, x_test[:n_sub], samples=iw_samples)
        r["test_neg_elbo_subset"] = evaluate(run.model, x_test[:n_sub])
        print(f"{r['name']}: -L_{iw_samples} {r['test_neg_iw_subset']:.2f} on {n_sub} images", flush=True)
        full = r["name"] in best_runs.values()
        if full:  # each estimator's best-validation run: the bound on every test digit
            t0 = time.perf_counter()
            r["test_neg_iw_bound"] = evaluate(run.model, x_test, samples=iw_samples)
            r["iw_test_images"], r["iw_seconds"] = len(x_test), time.perf_counter() - t0
            print(f"{r['name']}: -L_{iw_samples} {r['test_neg_iw_bound']:.2f} on {len(x_test)} images", flush=True)
            path = out / "checkpoints" / f"{r['config']['estimator']}.pt"
            save_compact(run.model, run.config, path, run=r["name"], best_epoch=r["best_epoch"])
            compact = load_compact(path).model
            r["checkpoint"] = str(path.relative_to(out))
            r["checkpoint_bytes"] = path.stat().st_size
            r["checkpoint_test_neg_elbo"] = mean_and_se(per_image_neg_elbo(compact, x_test))[0]
            r["checkpoint_test_neg_iw_subset"] = evaluate(compact, x_test[:n_sub], samples=iw_samples)
    summary = {
        "command": command,
        "commit": git_commit(),
        "device": f"cpu ({platform.processor() or platform.machine()}), torch {torch.__version__}",
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "eval_seed": EVAL_SEED,
        "test_images": len(x_test),
        "best_runs": best_runs,
        "paper_table1": PAPER_TABLE1_VAE_CAT,
        "paper_row": PAPER_ROW,
        "runs": runs,
    }
    return summary


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


def main(args) -> None:
    """``python -m gumbel_book.vae reproduce``: train (resuming) and summarize."""
    out, work = Path(args.out), Path(args.work)
    if args.preset == "paper":
        configs = paper_configs(args.estimators[0], args.seeds[0], epochs=args.epochs, patience=args.patience)
    else:
        configs = reference_configs(
            args.estimators, args.seeds, epochs=args.epochs, patience=args.patience, fixed_control=not args.no_control
        )
    command = args.cmd
    print(f"{len(configs)} runs into {work}, {args.jobs} at a time", flush=True)
    t0 = time.perf_counter()
    if not args.summarize_only:
        train_all(configs, work, jobs=args.jobs, data_root=args.data_root)
    summary = summarize(
        configs, work, out, data_root=args.data_root, iw_samples=args.samples, iw_subset=args.iw_subset, command=command
    )
    summary["wall_seconds"] = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    (out / SUMMARY).write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {out / SUMMARY} in {summary['wall_seconds']:.0f} s", flush=True)
    os.sync()
