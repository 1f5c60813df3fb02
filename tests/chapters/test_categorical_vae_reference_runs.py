"""Guards over the committed VAE reference runs (results/vae): each committed checkpoint is re-evaluated with
today's code on all 10,000 test digits and must reproduce summary.json within its Monte Carlo error, so a change
to the model or evaluation code fails here until the runs are redone (`python -m gumbel_book.vae reproduce`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gumbel_book import data, vae
from gumbel_book.labs.categorical_vae import reference_rows
from gumbel_book.vae import presets, reference_runs

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results" / "vae"
SUMMARY = json.loads((RESULTS / "summary.json").read_text())
BEST = [r for r in SUMMARY["runs"] if "checkpoint" in r]
Z = 3.29  # two-sided normal quantile for alpha = 1e-3


@pytest.fixture(scope="module")
def test_digits():
    try:
        images, _ = data.load_mnist("test", download=False)
    except FileNotFoundError:
        pytest.skip("the official MNIST test split is not here (../shared/data/mnist or $GUMBEL_BOOK_DATA)")
    return data.binarize(images, seed=vae.DATA_SEED)


def test_every_estimator_has_three_seeds_and_a_best_checkpoint():
    for est in vae.ESTIMATORS:
        seeds = sorted(r["config"]["seed"] for r in SUMMARY["runs"] if r["name"].startswith(f"{est}-s"))
        assert seeds == [0, 1, 2], (est, seeds)
    assert sorted(r["config"]["estimator"] for r in BEST) == sorted(vae.ESTIMATORS)


def test_checkpoints_are_small():
    total = sum((RESULTS / r["checkpoint"]).stat().st_size for r in BEST)
    assert total <= 20e6, f"committed checkpoints take {total / 1e6:.1f} MB, more than 20 MB"


def test_selection_used_validation_only():
    """The best epoch is the lowest validation -ELBO of each run; the best run the lowest of each estimator."""
    for r in SUMMARY["runs"]:
        assert r["best_epoch"] == vae.best_epoch(r["history"]), r["name"]
        assert r["epochs_trained"] == len(r["history"])
    for est, name in SUMMARY["best_runs"].items():
        mine = [r for r in SUMMARY["runs"] if r["name"].startswith(f"{est}-s")]
        assert name == min(mine, key=lambda r: r["best_val_neg_elbo"])["name"]


def test_reference_protocol_is_the_documented_one():
    ref = presets.REFERENCE.to_dict()
    for r in SUMMARY["runs"]:
        c = r["config"]
        same = {k: c[k] for k in ("latent", "prior", "lr", "anneal_rate", "anneal_every", "optimizer", "batch_size")}
        assert same == {k: ref[k] for k in same}, r["name"]


def test_bounds_are_ordered_and_bfloat16_is_harmless():
    for r in BEST:
        assert r["test_neg_iw_bound"] < r["test_neg_elbo"], r["name"]
        assert r["iw_test_images"] == SUMMARY["test_images"] == 10_000
        assert abs(r["checkpoint_test_neg_elbo"] - r["test_neg_elbo"]) < 0.1, r["name"]
        assert abs(r["checkpoint_test_neg_iw_subset"] - r["test_neg_iw_subset"]) < 0.1, r["name"]
    rows = reference_rows(SUMMARY)
    assert [row["estimator"] for row in rows] == list(vae.ESTIMATORS)


@pytest.mark.parametrize("run", BEST, ids=[r["name"] for r in BEST])
def test_committed_checkpoint_reproduces_its_test_elbo(run, test_digits):
    """Today's code, the committed weights, all 10,000 test digits: within Z standard errors of summary.json."""
    model = vae.load_compact(RESULTS / run["checkpoint"]).model
    values = reference_runs.per_image_neg_elbo(model, test_digits, seed=SUMMARY["eval_seed"])
    mean, se = reference_runs.mean_and_se(values)
    assert abs(mean - run["checkpoint_test_neg_elbo"]) <= Z * run["test_neg_elbo_se"], (mean, run["name"])
    assert abs(se - run["test_neg_elbo_se"]) < 0.1 * run["test_neg_elbo_se"]
