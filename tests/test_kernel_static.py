"""The fused kernels compiled ahead of time for an H100/H200 (sm_90), on a machine without a GPU.

The interpreter tests (test_kernels.py) check what the kernels compute; these check that every
configuration the dispatcher launches at the benchmark's shapes also compiles for a real GPU, keeps
everything in registers, reads the logits once per sweep, writes only its outputs (no noise tensor) and
feeds two draws from each Philox call. ``src/gumbel_book/kernel_static_sm90.json``, which the
language-model chapter quotes (shipped with the package), must match a fresh compile.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton", reason="Triton is not installed")
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
STORED = ROOT / "src" / "gumbel_book" / "kernel_static_sm90.json"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict:
    """``python -m gumbel_book.kernel_static --arch 90`` in a fresh process (the interpreter must stay off)."""
    out = tmp_path_factory.mktemp("static") / "sm90.json"
    cmd = [sys.executable, "-m", "gumbel_book.kernel_static", "--arch", "90", "--json", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=900)
    return json.loads(out.read_text())


def test_every_launched_configuration_compiles_for_sm90(compiled):
    kinds = {(r["kernel"], r["dtype"]) for r in compiled["rows"]}
    for kernel in ("_race_kernel", "_softmax_tile_kernel", "_softmax_loop_kernel"):
        assert {(kernel, "float32"), (kernel, "bfloat16")} <= kinds
    shapes = {tuple(s) for r in compiled["rows"] for s in r["shapes"]}
    assert shapes == {(65536, 1024), (8192, 32768), (256, 128256)}
    assert all(r["instructions"] > 0 for r in compiled["rows"])


def test_no_register_spills(compiled):
    spilled = [(r["kernel"], r["constexprs"]) for r in compiled["rows"] if r["spill_bytes"]]
    assert not spilled, f"these configurations spill registers to local memory: {spilled}"


def test_one_read_of_the_logits_and_no_noise_in_memory(compiled):
    """The race and the one-tile softmax read the logits once; the long-row softmax twice (two sweeps).
    Stores: the race writes K values and K indices, the softmax its output and the argmax, nothing else."""
    for r in compiled["rows"]:
        if r["kernel"] == "_race_kernel":
            assert (r["logit_loads"], r["stores"]) == (1, 2 * r["constexprs"]["K"]), r
        elif r["kernel"] == "_softmax_tile_kernel":
            assert (r["logit_loads"], r["stores"]) == (1, 2), r
        else:
            assert (r["logit_loads"], r["stores"]) == (2, 2), r


def test_each_philox_call_feeds_two_draws(compiled):
    """Philox runs on tensors half as wide as the tile: one call (four words) gives two 64-bit uniforms."""
    for r in compiled["rows"]:
        assert r["philox_columns"] == r["constexprs"]["BLOCK"] // 2, r


def test_the_stored_table_is_current(compiled):
    """The table the chapter quotes is what this Triton compiles now (rerun the module with --json to refresh)."""
    stored = json.loads(STORED.read_text())
    assert stored["triton"] == compiled["triton"], "the stored table is from another Triton version"
    assert stored["rows"] == compiled["rows"], (
        "src/gumbel_book/kernel_static_sm90.json is stale: "
        "run .venv/bin/python -m gumbel_book.kernel_static --json src/gumbel_book/kernel_static_sm90.json"
    )
