"""Speed of gumbel_book's samplers against PyTorch and against a plain copy of the same bytes, in one run.

Per shape and call: the median time, the effective bandwidth (the bytes the call must move: read
the logits, write the output), the speed-up over the PyTorch reference, and the bandwidth as a
fraction of a device-to-device copy of the logits measured in the same run (the practical
physical limit). Ours runs with the data checks off (``gb.validate_args(False)``, as PyTorch has
none); the last column has them on. On CUDA with Triton installed the samplers use the fused
kernels of ``gumbel_book.kernels``; elsewhere (and with ``GUMBEL_BOOK_KERNELS=0``) the plain code.

    .venv/bin/python benchmarks/sampler_speed.py [--device cuda] [--size full|small] [--repeats 20] [--save]

``--size small`` (the default on the CPU) divides the rows so that a CPU run takes about a minute.
``--save`` stores the table as JSON in benchmarks/results/, with the device, versions and commit.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib.metadata
import json
import pathlib
import platform
import statistics
import subprocess
import time

import torch
import torch.nn.functional as F

import gumbel_book as gb
from gumbel_book.sampling import use_kernels

FULL_SHAPES = [(65536, 1024), (8192, 32768), (256, 128256)]
SMALL_SHAPES = [(2048, 1024), (64, 32768), (16, 128256)]
RESULTS = pathlib.Path(__file__).resolve().parent / "results"
TOPK = 8


def median_ms(fn, repeats: int, device: torch.device) -> float:
    """Median time of ``fn()`` in milliseconds over ``repeats`` calls after 3 warm-up calls."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _torch_gumbel_max(logits: torch.Tensor) -> torch.Tensor:
    return F.gumbel_softmax(logits, tau=1.0, hard=True).argmax(-1)


def _torch_gumbel_topk(logits: torch.Tensor) -> torch.Tensor:
    return (logits - torch.empty_like(logits).exponential_().log()).topk(TOPK, dim=-1).indices


def _fwd_bwd(sampler, logits: torch.Tensor) -> None:
    x = logits.detach().requires_grad_()
    sampler(x, tau=0.5).sum().backward()


def calls(logits: torch.Tensor) -> list[tuple[str, object, object, int]]:
    """(name, torch reference, ours, bytes the call must move) for one logits tensor."""
    b, rows = logits.numel() * logits.element_size(), logits.shape[0]
    return [
        (
            "gumbel_max",
            functools.partial(_torch_gumbel_max, logits),
            functools.partial(gb.gumbel_max, logits),
            b + 8 * rows,
        ),
        (
            f"gumbel_topk k={TOPK}",
            functools.partial(_torch_gumbel_topk, logits),
            functools.partial(gb.gumbel_topk, logits, TOPK),
            b + 8 * TOPK * rows,
        ),
        (
            "gumbel_softmax fwd",
            functools.partial(F.gumbel_softmax, logits, tau=0.5),
            functools.partial(gb.gumbel_softmax, logits, tau=0.5),
            2 * b,
        ),
        (
            "gumbel_softmax fwd+bwd",
            functools.partial(_fwd_bwd, F.gumbel_softmax, logits),
            functools.partial(_fwd_bwd, gb.gumbel_softmax, logits),
            0,
        ),
    ]


def environment(device: torch.device) -> dict:
    """Where the numbers come from: device name, versions, commit."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    try:
        triton = importlib.metadata.version("triton")
    except importlib.metadata.PackageNotFoundError:
        triton = None
    root = pathlib.Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True).stdout)
    except OSError:
        commit, dirty = None, None
    return {
        "device": str(device),
        "device_name": name,
        "torch": torch.__version__,
        "triton": triton,
        "commit": commit,
        "dirty": dirty,
        "threads": torch.get_num_threads(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def measure(device: torch.device, shapes, repeats: int, seed: int = 0) -> list[dict]:
    """One row per (shape, call): times, effective bandwidths and ratios, all measured in this run."""
    torch.manual_seed(seed)
    rows = []
    for shape in shapes:
        logits = torch.randn(shape, device=device)
        dst = torch.empty_like(logits)
        nbytes = logits.numel() * logits.element_size()
        copy_ms = median_ms(functools.partial(dst.copy_, logits), repeats, device)
        copy_gbps = 2 * nbytes / copy_ms / 1e6
        for name, reference, ours, moved in calls(logits):
            torch_ms = median_ms(reference, repeats, device)
            with gb.validate_args(False):
                ours_ms = median_ms(ours, repeats, device)
            checked_ms = median_ms(ours, repeats, device)
            gbps = moved / ours_ms / 1e6 if moved else None
            rows.append(
                {
                    "shape": list(shape),
                    "call": name,
                    "fused_kernels": use_kernels(logits),
                    "torch_ms": torch_ms,
                    "ours_ms": ours_ms,
                    "ours_checked_ms": checked_ms,
                    "speedup_vs_torch": torch_ms / ours_ms,
                    "bytes": moved,
                    "ours_gbps": gbps,
                    "copy_ms": copy_ms,
                    "copy_gbps": copy_gbps,
                    "fraction_of_copy": gbps / copy_gbps if gbps else None,
                }
            )
        del logits, dst
    return rows


def print_table(env: dict, rows: list[dict]) -> None:
    print(f"{env['device_name']} ({env['device']}), torch {env['torch']}, triton {env['triton']}", end="")
    print(f", threads={env['threads']}")
    print(f"commit {env['commit']}{' (dirty)' if env['dirty'] else ''}; fused kernels: {rows[0]['fused_kernels']}")
    header = ["shape", "call", "torch ms", "ours ms", "speed-up", "ours GB/s", "copy GB/s", "of copy", "checked ms"]
    widths = [15, 24, 10, 10, 9, 10, 10, 8, 11]
    print("".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    for r in rows:
        cells = [
            "x".join(map(str, r["shape"])),
            r["call"],
            f"{r['torch_ms']:.3f}",
            f"{r['ours_ms']:.3f}",
            f"{r['speedup_vs_torch']:.2f}x",
            f"{r['ours_gbps']:.1f}" if r["ours_gbps"] else "-",
            f"{r['copy_gbps']:.1f}",
            f"{r['fraction_of_copy']:.0%}" if r["fraction_of_copy"] else "-",
            f"{r['ours_checked_ms']:.3f}",
        ]
        print("".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=str(gb.default_device()))
    parser.add_argument(
        "--size", choices=["full", "small"], default=None, help="default: full on CUDA, small elsewhere"
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--save", action="store_true", help="store the table as JSON in benchmarks/results/")
    args = parser.parse_args()
    device = torch.device(args.device)
    size = args.size or ("full" if device.type == "cuda" else "small")
    env = environment(device) | {"size": size, "repeats": args.repeats}
    rows = measure(device, FULL_SHAPES if size == "full" else SMALL_SHAPES, args.repeats)
    print_table(env, rows)
    if args.save:
        RESULTS.mkdir(exist_ok=True)
        slug = "".join(c if c.isalnum() else "-" for c in env["device_name"]).strip("-").lower()
        path = RESULTS / f"sampler_speed-{device.type}-{slug}-{size}.json"
        path.write_text(json.dumps(env | {"rows": rows}, indent=2) + "\n")
        print(f"saved {path}")


if __name__ == "__main__":
    main()
