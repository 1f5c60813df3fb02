"""The VAE chapter's reference runs: every estimator, several seeds, 50,000 training digits, early stopping.

The other 10,000 of the 60,000 official training digits are the validation split that early stopping reads.

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
from pathlib import Path
from typing import Any

import torch

from ..data import binarize, load_mnist
from .checkpoints import load_compact, load_run, save_compact
from .config import DATA_SEED, ESTIMATORS, EVAL_SEED, METRICS, VAEConfig
from .model import evaluate, negative_elbo
from .presets import (
    PAPER,
    PAPER_LR_GRID,
    PAPER_RATES,
    PAPER_ROW,
    PAPER_TABLE1_VAE_CAT,
    REFERENCE,
    paper_configs,
    reference_configs,
    run_name,
)
from .training import best_epoch, split_validation, train_vae

__all__ = [
    "PAPER",
    "PAPER_LR_GRID",
    "PAPER_RATES",
    "REFERENCE",
    "SUMMARY",
    "git_commit",
    "main",
    "mean_and_se",
    "paper_configs",
    "per_image_neg_elbo",
    "reference_configs",
    "run_name",
    "summarize",
    "train_all",
]

SUMMARY = "summary.json"


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


def _score_run(config: VAEConfig, work: Path, x_test: torch.Tensor) -> dict[str, Any]:
    """One run's summary entry: its best validation epoch and that epoch's test -ELBO (mean and standard error)."""
    name = run_name(config)
    run = load_run(work / name, "cpu", which="best")
    hist = run.history
    best = best_epoch(hist)
    elbo_mean, elbo_se = mean_and_se(per_image_neg_elbo(run.model, x_test))
    metrics = json.loads((work / name / METRICS).read_text())
    print(f"{name}: best epoch {best} of {len(hist)}, test -ELBO {elbo_mean:.2f} ± {elbo_se:.2f}", flush=True)
    return {
        "name": name,
        "config": config.to_dict(),
        "epochs_trained": len(hist),
        "best_epoch": best,
        "best_val_neg_elbo": next(e["val_neg_elbo"] for e in hist if e["epoch"] == best),
        "test_neg_elbo": elbo_mean,
        "test_neg_elbo_se": elbo_se,
        "train_seconds": sum(e["seconds"] for e in hist),
        "history": metrics["epochs"],
    }


def _best_runs(runs: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Each estimator's reference run (not a control run) with the lowest best validation -ELBO, by name."""
    reference = [r for r in runs if r["name"].startswith(tuple(f"{e}-s" for e in ESTIMATORS))]
    best_runs: dict[str, str] = {}
    for est in ESTIMATORS:
        mine = [r for r in reference if r["config"]["estimator"] == est]
        if mine:
            best_runs[est] = min(mine, key=lambda r: r["best_val_neg_elbo"])["name"]
    return best_runs


def _add_subset_bounds(r: dict[str, Any], model, x_sub: torch.Tensor, iw_samples: int) -> None:
    """Every run: the m-sample bound and the single-sample one on the same first test digits."""
    r["iw_samples"], r["iw_subset_images"] = iw_samples, len(x_sub)
    r["test_neg_iw_subset"] = evaluate(model, x_sub, samples=iw_samples)
    r["test_neg_elbo_subset"] = evaluate(model, x_sub)
    print(f"{r['name']}: -L_{iw_samples} {r['test_neg_iw_subset']:.2f} on {len(x_sub)} images", flush=True)


def _add_full_bound_and_checkpoint(
    r: dict[str, Any], run, x_test: torch.Tensor, out: Path, iw_samples: int, n_sub: int
) -> None:
    """An estimator's best run: the bound on every test digit, and its compact checkpoint, checked after saving."""
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


def _provenance(command: str) -> dict[str, Any]:
    return {
        "command": command,
        "commit": git_commit(),
        "device": f"cpu ({platform.processor() or platform.machine()}), torch {torch.__version__}",
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def summarize(
    configs: Sequence[VAEConfig],
    work: Path,
    out: Path,
    *,
    data_root: str | None,
    iw_samples: int,
    iw_subset: int,
    command: str,
    previous: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate every run's best-validation weights on the test split, save each estimator's best checkpoint
    under ``out``, and return the summary (:func:`main` writes it).

    With a ``previous`` summary, its runs are kept as they are (each with the provenance of the command that made
    it) and ``configs`` are added: an estimator's best run, and its checkpoint, change only if a new run is better
    on validation."""
    test_x, _ = load_mnist("test", data_root)
    x_test = binarize(test_x, seed=DATA_SEED)
    provenance = _provenance(command)
    kept = [dict(r) for r in (previous or {}).get("runs", [])]
    for r in kept:
        r.setdefault("provenance", {k: previous.get(k) for k in ("command", "commit", "device", "created")})
    new = [_score_run(c, work, x_test) | {"provenance": provenance} for c in configs]
    clash = {r["name"] for r in kept} & {r["name"] for r in new}
    if clash:
        raise ValueError(f"runs {sorted(clash)} are already in the summary: add only new runs")
    best_runs = _best_runs(kept + new)
    n_sub = min(iw_subset, len(x_test))
    for r in new:
        run = load_run(work / r["name"], "cpu", which="best")
        _add_subset_bounds(r, run.model, x_test[:n_sub], iw_samples)
        if r["name"] in best_runs.values():
            _add_full_bound_and_checkpoint(r, run, x_test, out, iw_samples, n_sub)
    return provenance | {
        "eval_seed": EVAL_SEED,
        "test_images": len(x_test),
        "best_runs": best_runs,
        "paper_table1": PAPER_TABLE1_VAE_CAT,
        "paper_row": PAPER_ROW,
        "runs": kept + new,
    }


def previous_summary(out: Path) -> dict[str, Any]:
    """The summary ``reproduce --add`` adds to (``out/summary.json``); a missing one is an error naming it."""
    path = Path(out) / SUMMARY
    if not path.is_file():
        raise FileNotFoundError(f"--add needs an existing summary, and {path} does not exist")
    return json.loads(path.read_text())


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
    previous = previous_summary(out) if args.add else None
    if previous is not None:
        have = {r["name"] for r in previous["runs"]}
        print(f"keeping the {len(have)} runs of {out / SUMMARY}", flush=True)
        configs = [c for c in configs if run_name(c) not in have]
    print(f"{len(configs)} runs into {work}, {args.jobs} at a time", flush=True)
    t0 = time.perf_counter()
    if not args.summarize_only:
        train_all(configs, work, jobs=args.jobs, data_root=args.data_root)
    summary = summarize(
        configs,
        work,
        out,
        data_root=args.data_root,
        iw_samples=args.samples,
        iw_subset=args.iw_subset,
        command=command,
        previous=previous,
    )
    summary["wall_seconds"] = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    (out / SUMMARY).write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {out / SUMMARY} in {summary['wall_seconds']:.0f} s", flush=True)
    os.sync()
