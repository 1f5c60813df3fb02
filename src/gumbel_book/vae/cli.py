"""The command line ``python -m gumbel_book.vae train|evaluate|reproduce`` (:func:`main`, :func:`build_parser`).

It sits on top of the package: it imports the model, training, checkpoints, presets and the reference-run driver,
and nothing imports it but the package's ``__init__`` (for :func:`main`) and ``__main__``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ..data import binarize, load_mnist
from .checkpoints import load_run, write_metrics
from .config import BINARIZATIONS, DATA_SEED, ESTIMATORS, METRICS, OPTIMIZERS, PRIORS, VAEConfig, parse_latent
from .model import evaluate
from .presets import PAPER, PAPER_ANNEAL_EVERY, PAPER_LR_GRID, PAPER_RATES, REFERENCE, REFERENCE_SEEDS, REPRODUCE_JOBS
from .reference_runs import main as reproduce
from .training import best_epoch, split_validation, train_vae

# The first line of the package's docstring, as --help has always shown it.
DESCRIPTION = (
    "A categorical VAE on binarized MNIST (Jang, Gu & Poole 2017, section 4.2): model, training, evaluation, CLI."
)


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
        paper_grid = args.lr in PAPER_LR_GRID and args.anneal_rate in PAPER_RATES
        if not paper_grid or args.anneal_every not in PAPER_ANNEAL_EVERY:
            raise SystemExit(
                f"--paper takes --lr from {PAPER_LR_GRID}, --anneal-rate from {PAPER_RATES} and --anneal-every "
                f"from {PAPER_ANNEAL_EVERY}; got {args.lr}, {args.anneal_rate}, {args.anneal_every}"
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
    write_metrics(Path(args.dir), run.config, run.history, {"evaluation": result})
    print(
        f"{len(x)} test images: -ELBO {elbo:.2f} nats, -log p(x) <= {iw:.2f} nats "
        f"({args.samples}-sample IW bound), {seconds:.1f} s"
    )


def _add_reproduce_parser(sub) -> None:
    """The ``reproduce`` subcommand's options (the book's reference runs)."""
    r = sub.add_parser("reproduce", help="the book's reference runs: every estimator x seeds, then summary.json")
    r.add_argument("--out", default="results/vae", help="summary.json and the small checkpoints (committed)")
    r.add_argument("--work", default="runs/reference", help="full per-run checkpoints (not committed; resumable)")
    r.add_argument("--estimators", nargs="+", choices=ESTIMATORS, default=list(ESTIMATORS))
    r.add_argument("--seeds", nargs="+", type=int, default=list(REFERENCE_SEEDS))
    r.add_argument("--epochs", type=int, default=REFERENCE.epochs, help="the most epochs a run trains")
    r.add_argument(
        "--patience",
        type=int,
        default=REFERENCE.patience,
        help="epochs without a better validation -ELBO before stopping",
    )
    r.add_argument("--preset", choices=("reference", "paper"), default="reference")
    r.add_argument("--no-control", action="store_true", help="skip the fixed-binarization control run")
    r.add_argument(
        "--jobs", type=int, default=REPRODUCE_JOBS, help="runs trained at once (the committed runs used the default)"
    )
    r.add_argument("--samples", type=int, default=1000, help="m of the importance-weighted bound")
    r.add_argument("--iw-subset", type=int, default=1000, help="test images for the bound of non-best runs")
    r.add_argument("--summarize-only", action="store_true", help="skip training; evaluate what --work holds")
    r.add_argument(
        "--add",
        action="store_true",
        help="keep the runs --out/summary.json already has (not retrained or re-scored); train and add the rest",
    )
    r.add_argument("--data-root", default=None)
    r.set_defaults(func=_cmd_reproduce)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m gumbel_book.vae`` argument parser (``train``, ``evaluate`` and ``reproduce``)."""
    parser = argparse.ArgumentParser(prog="python -m gumbel_book.vae", description=DESCRIPTION)
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
    _add_reproduce_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m gumbel_book.vae``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.cmd = "python -m gumbel_book.vae " + " ".join(argv)
    args.func(args)
    return 0
