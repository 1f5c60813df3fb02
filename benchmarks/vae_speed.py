"""Benchmark the categorical VAE: training steps per second, and time and peak memory of the IW evaluation.

    .venv/bin/python benchmarks/vae_speed.py                     # the default device (CUDA when present)
    .venv/bin/python benchmarks/vae_speed.py --device cpu --iw-images 200

Prints one line per measurement. Training uses batches of 100 binarized digits; the evaluation is the
m-sample importance-weighted bound (m = 1000 by default) on the first --iw-images test images
(all 10,000 on a GPU by default).
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings

import torch

from gumbel_book import default_device
from gumbel_book.data import MnistFallbackWarning, binarize, load_mnist
from gumbel_book.vae import DATA_SEED, ESTIMATORS, CategoricalVAE, VAEConfig, evaluate, parse_latent, training_loss
from gumbel_book.validation import validate_args


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_speed(x: torch.Tensor, estimator: str, latent: tuple[int, int], steps: int, device: torch.device) -> float:
    """Steps per second of the training loop body (forward, backward, Adam) after 10 warm-up steps."""
    cfg = VAEConfig(estimator=estimator, latent=latent)
    torch.manual_seed(0)
    model = CategoricalVAE(*latent).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator(device=device).manual_seed(0)
    perm_gen = torch.Generator().manual_seed(0)

    def step(i: int) -> None:
        idx = torch.randint(0, len(x), (100,), generator=perm_gen).to(device)
        surrogate, _, _ = training_loss(model, x[idx], estimator, cfg.tau(i), baseline=0.0, generator=gen)
        opt.zero_grad(set_to_none=True)
        surrogate.backward()
        opt.step()

    with validate_args(False):
        for i in range(10):
            step(i)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(steps):
            step(i)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--latent", default="30x10,20x10")
    parser.add_argument("--estimators", default=",".join(ESTIMATORS))
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--iw-images", type=int, default=0, help="0: 10,000 on CUDA, 200 elsewhere")
    args = parser.parse_args()
    device = torch.device(args.device) if args.device else default_device()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"device: {device} ({name}), torch {torch.__version__}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MnistFallbackWarning)
        train, _ = load_mnist("train", download=False, progress=False)
    test, _ = load_mnist("test", download=False, progress=False)
    x = binarize(train, seed=DATA_SEED).view(-1, 784).to(device)
    for latent in args.latent.split(","):
        for est in args.estimators.split(","):
            sps = train_speed(x, est, parse_latent(latent), args.steps, device)
            print(f"train {est:9s} latent {latent}: {sps:8.1f} steps/s (batch 100), {sps * 100:9.0f} images/s")
    n_img = args.iw_images or (10_000 if device.type == "cuda" else 200)
    xt = binarize(test[:n_img], seed=DATA_SEED)
    torch.manual_seed(0)
    model = CategoricalVAE(*parse_latent(args.latent.split(",")[0])).to(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    rss0 = peak_rss_mib()
    t0 = time.perf_counter()
    bound = evaluate(model, xt, samples=args.samples)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    if device.type == "cuda":
        mem = f"peak CUDA memory {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB"
    else:
        mem = f"process peak RSS {peak_rss_mib():.0f} MiB (was {rss0:.0f} MiB before)"
    print(
        f"IW bound, m={args.samples}, {n_img} test images (untrained model, -bound {bound:.1f} nats): "
        f"{seconds:.2f} s = {seconds / n_img * 1000:.2f} ms/image; {mem}"
    )


if __name__ == "__main__":
    main()
