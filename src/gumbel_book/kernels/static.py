"""The fused kernels compiled for a GPU without a GPU: registers, spills, memory operations, instructions per element.

Triton compiles ahead of time for any target it knows (``GPUTarget``), and its wheel ships ``cuobjdump``, so a
machine without a GPU can compile every launch configuration the dispatcher would use on, say, an H200 (sm_90),
check that it builds, and read the machine code. That is not a speed measurement; it bounds one. A kernel that
issues ``I`` instructions per element on a device issuing ``R`` thread-instructions per second cannot process more
than ``R / I`` elements per second, however fast the memory is.

Run it in its own process: it needs Triton in compiled mode, not the interpreter that
:func:`gumbel_book.kernels.use_interpreter` selects::

    .venv/bin/python -m gumbel_book.kernels.static [--arch 90] [--json out.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path


def _compiler():
    """(triton, its ASTSource and GPUTarget, gumbel_book.kernels), compiled, not interpreted.

    Importing this module changes nothing; the first compile loads Triton, so it must run in a process
    whose Triton has not been started in interpreter mode (``python -m gumbel_book.kernels.static``)."""
    if "triton" not in sys.modules:
        os.environ["TRITON_INTERPRET"] = "0"
        os.environ.setdefault("TRITON_DEFAULT_FP_FUSION", "1")  # Triton 3.9 warns when unset; 1 is its default
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from . import fused as kernels

    if kernels.INTERPRETED:
        raise RuntimeError(
            "gumbel_book.kernels.static compiles for a GPU target, but this process runs Triton's interpreter; "
            "run `python -m gumbel_book.kernels.static` in a fresh process"
        )
    return triton, ASTSource, GPUTarget, kernels


#: The benchmark's shapes (benchmarks/sampler_speed.py): rows x categories.
SHAPES = ((65536, 1024), (8192, 32768), (256, 128256))
_PTR = {"float32": "*fp32", "float16": "*fp16", "bfloat16": "*bf16"}
_INSTRUCTION = re.compile(r"/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)")


@dataclass
class Compiled:
    """One kernel configuration compiled for one target."""

    kernel: str
    dtype: str
    constexprs: dict
    shapes: list  # the benchmark shapes that launch this configuration
    registers: int
    spill_bytes: int  # local memory per thread (register spills): 0 when everything stays in registers
    loads: dict  # {pointer argument: loads from it in the Triton IR}: the logits (x_ptr) are read once
    stores: dict  # {pointer argument: stores to it}: outputs only (and the long-row kernel's perturbed logits)
    philox_columns: int  # columns of the tensors Philox runs on: BLOCK // 2 means two draws per call
    instructions: int  # static machine instructions (SASS), NOPs excluded
    per_element: float  # instructions / elements per thread and sweep


def configurations(shapes=SHAPES, dtypes=("float32", "bfloat16"), ks=(1, 8)) -> dict:
    """{(kernel, dtype, constexprs as a tuple): [shapes]}: what the dispatcher launches for ``shapes``."""
    kernels = _compiler()[3]
    configs: dict = collections.defaultdict(list)
    for shape in shapes:
        m, n = shape
        rows, block, _ = kernels.race_launch(m, n)
        kind, s_rows, s_block = kernels.softmax_launch(m, n)
        for dtype in dtypes:
            for k in ks:
                configs[("_race_kernel", dtype, (("K", k), ("ROWS", rows), ("BLOCK", block)))].append(shape)
            if kind == "tile":
                configs[("_softmax_tile_kernel", dtype, (("ROWS", s_rows), ("BLOCK", s_block)))].append(shape)
            else:
                configs[("_softmax_loop_kernel", dtype, (("BLOCK", s_block),))].append(shape)
    return dict(configs)


def _signature(kernel: str, dtype: str) -> dict:
    x = _PTR[dtype]
    if kernel == "_race_kernel":
        names = {"x_ptr": x, "val_ptr": "*fp32", "idx_ptr": "*i64", "seed_ptr": "*i64", "M": "i32", "N": "i32"}
        return {**names, "n_tiles": "i32", "K": "constexpr", "ROWS": "constexpr", "BLOCK": "constexpr"}
    sig = {"x_ptr": x, "y_ptr": x, "idx_ptr": "*i64", "seed_ptr": "*i64", "M": "i32", "N": "i32", "inv_tau": "fp32"}
    if kernel == "_softmax_tile_kernel":
        return {**sig, "ROWS": "constexpr", "BLOCK": "constexpr"}
    return {"x_ptr": x, "v_ptr": "*fp32", **sig, "BLOCK": "constexpr"}


def memory_operations(ttir: str, op: str) -> dict:
    """{pointer argument: number of ``op`` (tt.load or tt.store) whose address derives from it} in Triton IR.

    Read in order, so that a value name the printer reuses in another region means its latest definition."""
    carried = re.compile(r"(%[\w.]+) = tt\.(?:splat|addptr|broadcast|expand_dims|reshape) (%[\w.]+)")
    used = re.compile(rf"{op} (%[\w.]+)")
    source: dict = {}  # SSA value -> the value its address came from
    counts: collections.Counter = collections.Counter()
    for line in ttir.splitlines():
        if match := carried.search(line):
            source[match.group(1)] = match.group(2)
        elif match := used.search(line):
            pointer, seen = match.group(1), set()
            while pointer in source and pointer not in seen:
                seen.add(pointer)
                pointer = source[pointer]
            counts[pointer.lstrip("%")] += 1
    return dict(sorted(counts.items()))


def _cuobjdump(flag: str, cubin: Path) -> str:
    """The output of the ``cuobjdump`` that ships with Triton's NVIDIA backend."""
    tool = Path(_compiler()[0].__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    return subprocess.run([str(tool), flag, str(cubin)], capture_output=True, text=True, check=True).stdout


def compile_one(kernel: str, dtype: str, constexprs: dict, arch: int = 90) -> Compiled:
    """Compile one configuration for ``sm_<arch>`` and read its resources and machine code."""
    triton, ASTSource, GPUTarget, kernels = _compiler()  # noqa: N806 (classes)
    fn = getattr(kernels, kernel)
    src = ASTSource(fn=fn, signature=_signature(kernel, dtype), constexprs=constexprs)
    compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32), options={"num_warps": kernels.NUM_WARPS})
    with tempfile.TemporaryDirectory() as tmp:
        cubin = Path(tmp) / "kernel.cubin"
        cubin.write_bytes(compiled.asm["cubin"])
        usage, sass = (_cuobjdump(flag, cubin) for flag in ("-res-usage", "-sass"))
    registers = int(re.search(r"REG:(\d+)", usage).group(1))
    spill = sum(int(re.search(rf"{what}:(\d+)", usage).group(1)) for what in ("STACK", "LOCAL"))
    instructions = [i for i in _INSTRUCTION.findall(sass) if not i.startswith("NOP")]
    ttir = compiled.asm["ttir"]
    philox = re.findall(r"tt.mulhiui .*: tensor<([0-9x]+)xi32>", ttir)
    threads = 32 * kernels.NUM_WARPS
    elements = constexprs.get("ROWS", 1) * constexprs["BLOCK"] / threads
    return Compiled(
        kernel=kernel,
        dtype=dtype,
        constexprs=dict(constexprs),
        shapes=[],
        registers=registers,
        spill_bytes=spill,
        loads=memory_operations(ttir, "tt.load"),
        stores=memory_operations(ttir, "tt.store"),
        philox_columns=int(philox[0].split("x")[-1]) if philox else 0,
        instructions=len(instructions),
        per_element=round(len(instructions) / elements, 1),
    )


def report(arch: int = 90, shapes=SHAPES, dtypes=("float32", "bfloat16"), ks=(1, 8)) -> list[Compiled]:
    """Every configuration the dispatcher launches for ``shapes``, compiled for ``sm_<arch>``."""
    out = []
    for (kernel, dtype, constexprs), used_by in configurations(shapes, dtypes, ks).items():
        result = compile_one(kernel, dtype, dict(constexprs), arch)
        result.shapes = [list(s) for s in used_by]
        out.append(result)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", type=int, default=90, help="compute capability x 10 (90: H100/H200, 80: A100)")
    parser.add_argument("--json", type=Path, help="also write the table as JSON here")
    args = parser.parse_args(argv)
    triton, _, _, kernels = _compiler()
    rows = report(args.arch)
    print(f"sm_{args.arch}, triton {triton.__version__}, {kernels.NUM_WARPS} warps")
    print(
        f"{'kernel':<22}{'dtype':<10}{'constexprs':<30}{'regs':>5}{'spill':>6}{'philox cols':>12}{'instr/elem':>11}"
        "  loads / stores"
    )
    for r in rows:
        const = ",".join(f"{k}={v}" for k, v in r.constexprs.items())
        print(
            f"{r.kernel:<22}{r.dtype:<10}{const:<30}{r.registers:>5}{r.spill_bytes:>6}"
            f"{r.philox_columns:>12}{r.per_element:>11}  {r.loads} / {r.stores}"
        )
    if args.json:
        payload = {"arch": args.arch, "triton": triton.__version__, "rows": [asdict(r) for r in rows]}
        args.json.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
