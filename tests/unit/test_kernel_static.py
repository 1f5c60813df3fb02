"""The fused kernels compiled ahead of time for an H100/H200 (sm_90), on a machine without a GPU.

The interpreter tests (test_kernels.py) check what the kernels compute; these check that every
configuration the dispatcher launches at the benchmark's shapes also compiles for a real GPU, keeps
everything in registers, reads the logits once per sweep, writes only its outputs (no noise tensor) and
feeds two draws from each Philox call. ``src/gumbel_book/kernels/static_sm90.json``, which the
language-model chapter quotes (shipped with the package), must match a fresh compile.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

if importlib.util.find_spec("triton") is None:  # find, not import: this process keeps Triton's interpreter
    pytest.skip("Triton is not installed", allow_module_level=True)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
STORED = ROOT / "src" / "gumbel_book" / "kernels" / "static_sm90.json"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict:
    """``python -m gumbel_book.kernels.static --arch 90`` in a fresh process (the interpreter must stay off)."""
    out = tmp_path_factory.mktemp("static") / "sm90.json"
    cmd = [sys.executable, "-m", "gumbel_book.kernels.static", "--arch", "90", "--json", str(out)]
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
    """Every kernel reads the logits (x_ptr) once and its seed once; it stores its outputs and nothing else,
    except that the long-row softmax keeps the perturbed logits (v_ptr, float32) between its two sweeps."""
    for r in compiled["rows"]:
        k = r["constexprs"].get("K")
        expected = {
            "_race_kernel": ({"seed_ptr": 1, "x_ptr": 1}, {"idx_ptr": k, "val_ptr": k}),
            "_softmax_tile_kernel": ({"seed_ptr": 1, "x_ptr": 1}, {"idx_ptr": 1, "y_ptr": 1}),
            "_softmax_loop_kernel": ({"seed_ptr": 1, "v_ptr": 1, "x_ptr": 1}, {"idx_ptr": 1, "v_ptr": 1, "y_ptr": 1}),
        }[r["kernel"]]
        assert (r["loads"], r["stores"]) == expected, r


def test_memory_operations_follow_the_address_to_its_argument():
    """The tracing behind the test above, on hand-written IR: a reused value name means its latest definition."""
    from gumbel_book.kernels.static import memory_operations

    ir = """
      %a = tt.splat %x_ptr : ptr
      %2 = tt.addptr %a, %o : ptr
      %l = tt.load %2, %m : ptr
      %2 = tt.addptr %y_ptr, %o : ptr
      tt.store %2, %l : ptr
      tt.store %idx_ptr, %i : ptr
    """
    assert memory_operations(ir, "tt.load") == {"x_ptr": 1}
    assert memory_operations(ir, "tt.store") == {"idx_ptr": 1, "y_ptr": 1}


def test_each_philox_call_feeds_two_draws(compiled):
    """Philox runs on tensors half as wide as the tile: one call (four words) gives two 64-bit uniforms."""
    for r in compiled["rows"]:
        assert r["philox_columns"] == r["constexprs"]["BLOCK"] // 2, r


def test_the_stored_table_is_current(compiled):
    """The table the chapter quotes is what this Triton compiles now (rerun the module with --json to refresh)."""
    stored = json.loads(STORED.read_text())
    assert stored["triton"] == compiled["triton"], "the stored table is from another Triton version"
    assert stored["rows"] == compiled["rows"], (
        "src/gumbel_book/kernels/static_sm90.json is stale: "
        "run .venv/bin/python -m gumbel_book.kernels.static --json src/gumbel_book/kernels/static_sm90.json"
    )
