"""Gumbel-max at decode shapes on a GPU: the hierarchical race, the flat race it replaced, a copy and a read-only
``amax`` of the same bytes, each captured in a CUDA graph, in one run.

For each shape (rows x vocabulary, float32 and bfloat16) it reports the median time of each, and the race's
read bandwidth as a fraction of the copy's (a copy reads and writes every byte; the race reads them and writes one
index a row) and of ``amax`` (which reads them as the race does, and does no arithmetic). The language-model
chapter reads the saved JSON from ``benchmarks/results/``.

    .venv/bin/python benchmarks/race_bandwidth.py [--repeats 50] [--save]

Needs a CUDA GPU with Triton: the point is the bandwidth of compiled kernels (``benchmarks/gpu_session.sh``).
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import statistics

import torch

ROWS = (1, 8, 64, 256)
VOCABULARIES = (128_256, 262_144)
DTYPES = (torch.float32, torch.bfloat16)
RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def graphed_ms(fn, repeats: int) -> float:
    """Median milliseconds of ``fn`` replayed from a CUDA graph (launch overhead out of the picture)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graph.replay()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def shape_row(fused, rows: int, vocabulary: int, dtype: torch.dtype, repeats: int) -> dict:
    """Times and bandwidth fractions at one shape."""
    x = torch.randn(rows, vocabulary, device="cuda").to(dtype)
    dst = torch.empty_like(x)
    gen = torch.Generator("cuda").manual_seed(0)
    times = {
        "copy": graphed_ms(functools.partial(dst.copy_, x), repeats),
        "amax": graphed_ms(functools.partial(torch.amax, x, -1), repeats),
        "hierarchical": graphed_ms(functools.partial(fused.race_topk, x, 1, -1, gen), repeats),
        "flat": graphed_ms(functools.partial(fused.flat_race_topk, x, 1, -1, gen), repeats),
    }
    nbytes = x.numel() * x.element_size()
    row = {"rows": rows, "vocabulary": vocabulary, "dtype": str(dtype).removeprefix("torch."), **times}
    for kernel in ("hierarchical", "flat"):
        # the copy moves 2 * nbytes in times["copy"]; the race reads nbytes (and writes one index a row)
        row[f"{kernel}_of_copy"] = (nbytes / times[kernel]) / (2 * nbytes / times["copy"])
        row[f"{kernel}_of_amax"] = times["amax"] / times[kernel]
    return row


def measure(repeats: int) -> list[dict]:
    """One row per (rows, vocabulary, dtype), all measured in this run."""
    from gumbel_book.kernels import fused  # imports Triton: only once a GPU is known to be there

    out = []
    for dtype in DTYPES:
        for vocabulary in VOCABULARIES:
            for rows in ROWS:
                row = shape_row(fused, rows, vocabulary, dtype, repeats)
                out.append(row)
                print(
                    f"{row['dtype']:>8} {rows:>4} x {vocabulary:>7}: copy {row['copy']:.4f} ms, amax "
                    f"{row['amax']:.4f}, hierarchical {row['hierarchical']:.4f} "
                    f"({row['hierarchical_of_copy']:.0%} of copy bandwidth), flat {row['flat']:.4f} "
                    f"({row['flat_of_copy']:.0%})"
                )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--save", action="store_true", help="store the table as JSON in benchmarks/results/")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("race_bandwidth.py measures compiled kernels: it needs a CUDA GPU")
    rows = measure(args.repeats)
    if args.save:
        RESULTS.mkdir(exist_ok=True)
        name = torch.cuda.get_device_name()
        slug = "".join(c if c.isalnum() else "-" for c in name).strip("-").lower()
        path = RESULTS / f"race_bandwidth-cuda-{slug}.json"
        path.write_text(json.dumps({"device": "cuda", "device_name": name, "rows": rows}, indent=2) + "\n")
        print(f"saved {path}")


if __name__ == "__main__":
    main()
