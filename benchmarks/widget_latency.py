"""Redraw latency of the live Gumbel-Softmax app: one slider move, at the default sample count.

Each move of a slider runs the app's callback: draw new samples, recompute the Concrete density
grid and update the FigureWidget in place. This script moves the tau slider (and then the seed
slider) many times and prints the median, 90th percentile and max wall time of one redraw.
Target: median < 100 ms on 2 CPU cores. Run: .venv/bin/python benchmarks/widget_latency.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from gumbel_book import default_device
from gumbel_book.widgets import DEFAULT_SAMPLES, temperature_app


def measure(control, values, app) -> list[float]:
    """Seconds per redraw, timed around the slider assignment (the callback runs synchronously)."""
    times = []
    for v in values:
        start = time.perf_counter()
        control.value = v
        times.append(time.perf_counter() - start)
    assert app.last_redraw_s <= times[-1] + 1e-3
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=100, help="slider moves per control")
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="sample count of the app")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cpus, {default_device()}")
    app = temperature_app(n_samples=args.samples)
    taus = np.exp(np.linspace(np.log(0.06), np.log(9.0), args.moves))
    measure(app.tau, taus[:5], app)  # warm-up
    for name, control, values in [
        ("tau", app.tau, taus.tolist()),
        ("seed", app.seed, list(range(1, args.moves + 1))),
    ]:
        ms = np.array(measure(control, values, app)) * 1e3
        print(
            f"{name:>4} slider, {args.samples} samples, {len(ms)} moves: median {statistics.median(ms):.1f} ms, "
            f"p90 {np.percentile(ms, 90):.1f} ms, max {ms.max():.1f} ms"
        )


if __name__ == "__main__":
    main()
