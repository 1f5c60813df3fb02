"""Speed of gumbel_book's samplers against torch.nn.functional.gumbel_softmax, measured in one run.

Prints the median time of each call and its ratio to the PyTorch reference, with the data checks
on (the default) and off (``gb.validate_args(False)``, for hot loops).

    .venv/bin/python benchmarks/sampler_speed.py [--device cuda] [--repeats 50]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import torch
import torch.nn.functional as F

import gumbel_book as gb


def median_seconds(fn, repeats: int, device: torch.device) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs after 3 warm-up calls."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=str(gb.default_device()))
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device={device}, torch {torch.__version__}, threads={torch.get_num_threads()}")
    header = ["shape", "hard", "torch (ms)", "ours (ms)", "ratio", "no-check (ms)", "ratio"]
    print("".join(f"{h:>15}" for h in header))
    for shape in [(128, 10), (1024, 200), (4096, 1000)]:
        logits = torch.randn(shape, device=device)
        for hard in (False, True):
            reference = functools.partial(F.gumbel_softmax, logits, tau=0.5, hard=hard)
            ours = functools.partial(gb.gumbel_softmax, logits, tau=0.5, hard=hard)
            t_ref = median_seconds(reference, args.repeats, device)
            t_ours = median_seconds(ours, args.repeats, device)
            with gb.validate_args(False):
                t_fast = median_seconds(ours, args.repeats, device)
            row = [str(shape), str(hard), f"{t_ref * 1e3:.3f}", f"{t_ours * 1e3:.3f}", f"{t_ours / t_ref:.2f}"]
            row += [f"{t_fast * 1e3:.3f}", f"{t_fast / t_ref:.2f}"]
            print("".join(f"{c:>15}" for c in row))


if __name__ == "__main__":
    main()
