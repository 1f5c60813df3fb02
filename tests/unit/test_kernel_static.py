"""The fused kernels compiled ahead of time for an H100/H200 (sm_90), on a machine without a GPU.

The interpreter tests (test_kernels.py) check what the kernels compute; these check that every
configuration the dispatcher launches at the benchmark's shapes also compiles for a real GPU, keeps
everything in registers, reads the logits once per sweep, writes only its outputs (no noise tensor) and
feeds two draws from each Philox call, and that the hierarchical Gumbel-max stays within the instruction
budget. ``src/gumbel_book/kernels/static_sm90.json``, which the language-model chapter quotes (shipped
with the package), must match a fresh compile: its float32 rows are compiled again here (the bfloat16 ones
take as long again), and the whole table must come from the current kernel source.
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
    """``python -m gumbel_book.kernels.static --arch 90 --dtype float32`` in a fresh process (the interpreter must
    stay off there)."""
    out = tmp_path_factory.mktemp("static") / "sm90.json"
    cmd = [sys.executable, "-m", "gumbel_book.kernels.static", "--arch", "90", "--dtype", "float32", "--json", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=900)
    return json.loads(out.read_text())


def _stored() -> dict:
    return json.loads(STORED.read_text())


def test_every_launched_configuration_compiles_for_sm90(compiled):
    rows = _stored()["rows"]
    kinds = {(r["kernel"], r["dtype"]) for r in rows}
    for kernel in ("_chunk_race_kernel", "_flat_race_kernel", "_softmax_tile_kernel", "_softmax_loop_kernel"):
        assert {(kernel, "float32"), (kernel, "bfloat16")} <= kinds
    assert {tuple(r["shape"]) for r in rows} == {(65536, 1024), (8192, 32768), (256, 128256)}
    assert all(r["instructions"] > 0 for r in compiled["rows"])


def test_no_register_spills():
    spilled = [(r["kernel"], r["constexprs"]) for r in _stored()["rows"] if r["spill_bytes"]]
    assert not spilled, f"these configurations spill registers to local memory: {spilled}"


def test_one_read_of_the_logits_and_no_noise_in_memory():
    """Every kernel reads its seed once and the logits in one sweep; the hierarchical race reads again only the
    chunks it picked (K of them, CHUNK logits each: a cache hit). Each stores its outputs and nothing else,
    except that the long-row softmax keeps the perturbed logits (v_ptr, float32) between its two sweeps."""
    for r in _stored()["rows"]:
        k = r["constexprs"].get("K", 0)
        expected = {
            "_chunk_race_kernel": ({"seed_ptr": 1, "x_ptr": 1 + k}, {"idx_ptr": k, "val_ptr": k}),
            "_flat_race_kernel": ({"seed_ptr": 1, "x_ptr": 1}, {"idx_ptr": k, "val_ptr": k}),
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


def test_each_philox_call_feeds_two_draws():
    """Philox runs on tensors half as wide as what it feeds: one call (four words) gives two 64-bit uniforms; the
    hierarchical race draws one per chunk, so its first Philox tensor is half its lanes."""
    for r in _stored()["rows"]:
        c = r["constexprs"]
        half = c["WIDTH"] // 2 if r["kernel"] == "_chunk_race_kernel" else c["BLOCK"] // 2
        assert half in r["philox_columns"], r


def test_the_hierarchical_race_is_within_the_budget():
    """The issue's bound, on the stored machine code: Gumbel-max issues at most 16 instructions per float32 logit
    on long rows and 24 at N = 1024, with nothing spilled, where the flat race issues about 100."""
    rows = [r for r in _stored()["rows"] if r["dtype"] == "float32" and r["constexprs"].get("K") == 1]
    chunk = {tuple(r["shape"]): r["per_logit"] for r in rows if r["kernel"] == "_chunk_race_kernel"}
    assert chunk[(256, 128256)] <= 16 and chunk[(8192, 32768)] <= 16 and chunk[(65536, 1024)] <= 24, chunk
    flat = next(r["per_logit"] for r in rows if r["kernel"] == "_flat_race_kernel")
    assert flat > 4 * chunk[(256, 128256)], (flat, chunk)


def test_loops_are_counted_once_per_trip():
    """The long-row softmax sweeps the row twice: its per-logit count follows the trips, so it is near the two loop
    bodies' cost per logit, not the static count divided by one trip's logits (the old counter's error)."""
    from gumbel_book.kernels.static import executed_per_logit, loop_spans

    sass = [(0x10 * i, "FADD", "") for i in range(10)] + [(0xA0, "BRA", " 0x30")] + [(0xB0, "EXIT", "")]
    spans = loop_spans(sass)
    assert spans == [(0x30, 0xA0)]  # 8 instructions in the loop: 0x30 .. 0xA0
    assert executed_per_logit(sass, spans, trips=4, logits_per_thread=2) == (12 - 8 + 4 * 8) / 2
    assert loop_spans(sass + [(0xC0, "BRA", " 0xc0")]) == [(0x30, 0xA0)], "the final self-branch is not a loop"
    looped = next(r for r in _stored()["rows"] if r["kernel"] == "_softmax_loop_kernel")
    assert len(looped["loop_instructions"]) == 2 and looped["per_logit"] > 0


def test_the_stored_table_is_current(compiled):
    """The table the chapter quotes is what this Triton compiles now from this source (rerun the module with
    --json to refresh)."""
    from gumbel_book.kernels.static import source_digest

    stored = _stored()
    hint = "run .venv/bin/python -m gumbel_book.kernels.static --json src/gumbel_book/kernels/static_sm90.json"
    assert stored["triton"] == compiled["triton"], "the stored table is from another Triton version"
    assert stored["source"] == source_digest(), f"the kernels changed since the table was made: {hint}"
    assert [r for r in stored["rows"] if r["dtype"] == "float32"] == compiled["rows"], f"stale table: {hint}"
