"""Time one n-sample gradient estimate for every estimator of gumbel_book.estimators, and the lab and race
(gumbel_book.labs.straight_through) as the straight-through chapter runs them. Prints a table; run with
``python benchmarks/estimators.py``.

Set ``--threads 1`` (the chapter's setting) or leave PyTorch's default to compare.
"""

from __future__ import annotations

import argparse
import time

import torch

from gumbel_book import default_device, estimators
from gumbel_book.labs import straight_through as lab


def per_call_ms(name: str, problem: lab.ToyProblem, n: int, repeats: int, device: torch.device) -> float:
    gen = torch.Generator(device=device).manual_seed(0)
    estimators.estimate_grad(name, problem.logits, problem.f, n, generator=gen)  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        estimators.estimate_grad(name, problem.logits, problem.f, n, generator=gen)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave the default)")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = default_device()
    problems = lab.toy_problems(device)
    print(f"device {device}, torch threads {torch.get_num_threads()}")
    print(f"{'estimator':22s} {'K=8, n=64 (ms)':>16s} {'K=100, n=64 (ms)':>18s}")
    for name in estimators.ESTIMATORS:
        a = per_call_ms(name, problems["target"], 64, args.repeats, device)
        b = per_call_ms(name, problems["target100"], 64, args.repeats, device)
        print(f"{name:22s} {a:16.3f} {b:18.3f}")
    start = time.perf_counter()
    taus = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0)
    lab.run_lab(problems, taus=taus, ns=(2, 4, 8, 16, 32, 64), repeats=100)
    print(f"chapter's lab: {time.perf_counter() - start:.2f} s")
    start = time.perf_counter()
    lab.optimization_race(problems["target"], steps=200, n_samples=4, tau=1.0, lr=0.1, seeds=16)
    print(f"chapter's race: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
