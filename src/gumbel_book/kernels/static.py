"""The fused kernels compiled for a GPU without a GPU: registers, spills, memory operations, instructions per logit.

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
import hashlib
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
_INSTRUCTION = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)([^;]*);")
PHILOX_ROUND_B = 0xCD9E8D57  # Philox4x32's second round multiplier: a constant tensor wherever Philox runs
_BRANCH_TARGET = re.compile(r"0x([0-9a-f]+)")


@dataclass
class Compiled:
    """One kernel configuration compiled for one target, at one of the benchmark's shapes."""

    kernel: str
    dtype: str
    constexprs: dict
    shape: list  # [rows, categories]
    specialization: dict  # what the JIT assumes of the integer arguments at this shape ("D": divisible by 16)
    registers: int
    spill_bytes: int  # local memory per thread (register spills): 0 when everything stays in registers
    loads: dict  # {pointer argument: loads from it in the Triton IR}: the logits (x_ptr) are read once
    stores: dict  # {pointer argument: stores to it}: outputs only (and the long-row kernel's perturbed logits)
    philox_columns: list  # columns of the tensors Philox runs on (its round multiplier's constant, by shape)
    instructions: int  # static machine instructions (SASS), NOPs excluded
    loop_instructions: list  # static instructions inside each loop (SASS backward branches)
    per_logit: float  # instructions a thread executes per logit it owns, loops counted once per trip


#: The shape at which the table also compiles top-8 and the flat race (the chapter's comparison): a decode batch.
COMPARED = (256, 128256)


def launches(m: int, n: int) -> list[tuple[str, dict]]:
    """(kernel, constexprs) of what the dispatcher launches for an [m, n] matrix: Gumbel-max and the Gumbel-Softmax
    forward, and at :data:`COMPARED` also top-8 and the flat race that the hierarchical one replaced."""
    kernels = _compiler()[3]
    rows, chunk, width, _ = kernels.chunk_launch(m, n)
    ks = (1, 8) if (m, n) == COMPARED else (1,)
    out = [("_chunk_race_kernel", {"K": k, "ROWS": rows, "CHUNK": chunk, "WIDTH": width}) for k in ks]
    if (m, n) == COMPARED:
        rows, block, _ = kernels.race_launch(m, n)
        out.append(("_flat_race_kernel", {"K": 1, "ROWS": rows, "BLOCK": block}))
    kind, s_rows, s_block = kernels.softmax_launch(m, n)
    if kind == "tile":
        out.append(("_softmax_tile_kernel", {"ROWS": s_rows, "BLOCK": s_block}))
    else:
        out.append(("_softmax_loop_kernel", {"BLOCK": s_block}))
    return out


def specialization(ints: dict) -> dict:
    """What Triton's JIT assumes of each integer argument's value: "D" (divisible by 16), 1 (a constant) or ""."""
    from triton._C.libtriton import native_specialize_impl
    from triton.backends.compiler import BaseBackend

    spec = {}
    for name, value in ints.items():
        kind, key = native_specialize_impl(BaseBackend, value, False, True, True)
        spec[name] = value if kind == "constexpr" else key
    return spec


def _signature(kernel: str, dtype: str) -> dict:
    x = _PTR[dtype]
    if kernel in ("_chunk_race_kernel", "_flat_race_kernel"):
        names = {"x_ptr": x, "val_ptr": "*fp32", "idx_ptr": "*i64", "seed_ptr": "*i64", "M": "i32", "N": "i32"}
        consts = ("K", "ROWS", "CHUNK", "WIDTH") if kernel == "_chunk_race_kernel" else ("K", "ROWS", "BLOCK")
        return {**names, "n_tiles": "i32", **dict.fromkeys(consts, "constexpr")}
    sig = {"x_ptr": x, "y_ptr": x, "idx_ptr": "*i64", "seed_ptr": "*i64", "M": "i32", "N": "i32", "inv_tau": "fp32"}
    if kernel == "_softmax_tile_kernel":
        return {**sig, "ROWS": "constexpr", "BLOCK": "constexpr"}
    return {"x_ptr": x, "v_ptr": "*fp32", **sig, "BLOCK": "constexpr"}


def _source(kernel: str, dtype: str, constexprs: dict, spec: dict):
    """Triton's compile input with the run-time specialization: every pointer 16-byte aligned (torch allocates at
    256), integers as :func:`specialization` says. Without it, loads compile scalar where the JIT vectorizes."""
    _, ASTSource, _, kernels = _compiler()  # noqa: N806 (a class)
    fn = getattr(kernels, kernel)
    signature = _signature(kernel, dtype)
    consts = dict(constexprs)
    attrs = {}
    for i, (name, kind) in enumerate(signature.items()):
        if kind.startswith("*") or spec.get(name) == "D":
            attrs[(i,)] = [["tt.divisibility", 16]]
        elif spec.get(name) == 1:
            signature[name] = "constexpr"
            consts[name] = 1
    return ASTSource(fn=fn, signature=signature, constexprs=consts, attrs=attrs)


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


def loop_spans(sass: list[tuple[int, str, str]]) -> list[tuple[int, int]]:
    """(first, last) addresses of each loop: a branch back to an earlier address (not the final self-loop)."""
    spans = []
    for address, op, operands in sass:
        if op.startswith("BRA") and (target := _BRANCH_TARGET.search(operands)):
            start = int(target.group(1), 16)
            if start < address:
                spans.append((start, address))
    return spans


def loop_sizes(sass, spans) -> list[int]:
    """The number of instructions inside each loop span."""
    return [sum(1 for a, _, _ in sass if lo <= a <= hi) for lo, hi in spans]


def executed_per_logit(sass, spans, trips: int, logits_per_thread: float) -> float:
    """Instructions a thread executes per logit: straight code once, each loop's body ``trips`` times."""
    looped = sum(loop_sizes(sass, spans))
    return (len(sass) - looped + trips * looped) / logits_per_thread


def _cuobjdump(flag: str, cubin: Path) -> str:
    """The output of the ``cuobjdump`` that ships with Triton's NVIDIA backend."""
    tool = Path(_compiler()[0].__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    return subprocess.run([str(tool), flag, str(cubin)], capture_output=True, text=True, check=True).stdout


def _machine_code(kernel: str, dtype: str, constexprs: dict, spec: dict, arch: int):
    """(resource usage, SASS as (address, opcode, operands) without NOPs, Triton IR) of one compile."""
    triton, _, GPUTarget, kernels = _compiler()  # noqa: N806 (a class)
    target = GPUTarget("cuda", arch, 32)
    compiled = triton.compile(_source(kernel, dtype, constexprs, spec), target=target,
                              options={"num_warps": kernels.NUM_WARPS})  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        cubin = Path(tmp) / "kernel.cubin"
        cubin.write_bytes(compiled.asm["cubin"])
        usage, sass = (_cuobjdump(flag, cubin) for flag in ("-res-usage", "-sass"))
    code = [(int(a, 16), op, rest) for a, op, rest in _INSTRUCTION.findall(sass) if not op.startswith("NOP")]
    return usage, code, compiled.asm["ttir"]


def compile_one(kernel: str, dtype: str, constexprs: dict, shape=(256, 128256), arch: int = 90) -> Compiled:
    """Compile one configuration for ``sm_<arch>`` as the JIT would at ``shape``, and read its machine code."""
    kernels = _compiler()[3]
    m, n = shape
    ints = {"M": m, "N": n}
    if kernel == "_chunk_race_kernel":
        ints["n_tiles"] = kernels.chunk_launch(m, n)[3]
    elif kernel == "_flat_race_kernel":
        ints["n_tiles"] = kernels.race_launch(m, n)[2]
    spec = specialization(ints)
    usage, sass, ttir = _machine_code(kernel, dtype, constexprs, spec, arch)
    threads = 32 * kernels.NUM_WARPS
    width = constexprs.get("BLOCK") or constexprs["CHUNK"] * constexprs["WIDTH"]
    spans = loop_spans(sass)
    if spans:  # the long-row softmax: each sweep loops over the row, BLOCK logits a trip
        trips, logits = -(-n // width), n / threads
    else:
        trips, logits = 1, constexprs.get("ROWS", 1) * width / threads
    philox = re.findall(rf"dense<{PHILOX_ROUND_B}> : tensor<([0-9x]+)xi64>", ttir)
    return Compiled(
        kernel=kernel,
        dtype=dtype,
        constexprs=dict(constexprs),
        shape=list(shape),
        specialization=spec,
        registers=int(re.search(r"REG:(\d+)", usage).group(1)),
        spill_bytes=sum(int(re.search(rf"{what}:(\d+)", usage).group(1)) for what in ("STACK", "LOCAL")),
        loads=memory_operations(ttir, "tt.load"),
        stores=memory_operations(ttir, "tt.store"),
        philox_columns=sorted({int(dims.split("x")[-1]) for dims in philox}),
        instructions=len(sass),
        loop_instructions=loop_sizes(sass, spans),
        per_logit=round(executed_per_logit(sass, spans, trips, logits), 1),
    )


def report(arch: int = 90, shapes=SHAPES, dtypes=("float32", "bfloat16")) -> list[Compiled]:
    """Every configuration the dispatcher launches for ``shapes`` (and the comparison's), compiled for ``sm_<arch>``."""
    return [
        compile_one(kernel, dtype, constexprs, shape, arch)
        for shape in shapes
        for dtype in dtypes
        for kernel, constexprs in launches(*shape)
    ]


def source_digest() -> str:
    """SHA-256 of the kernels' source (``fused.py``): the stored table says which source it was compiled from."""
    return hashlib.sha256((Path(__file__).parent / "fused.py").read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", type=int, default=90, help="compute capability x 10 (90: H100/H200, 80: A100)")
    parser.add_argument("--json", type=Path, help="also write the table as JSON here")
    parser.add_argument("--dtype", action="append", choices=sorted(_PTR), help="only this dtype (default: both)")
    args = parser.parse_args(argv)
    triton, _, _, kernels = _compiler()
    rows = report(args.arch, dtypes=args.dtype or ("float32", "bfloat16"))
    print(f"sm_{args.arch}, triton {triton.__version__}, {kernels.NUM_WARPS} warps")
    print(
        f"{'kernel':<20}{'dtype':<10}{'shape':<14}{'constexprs':<36}{'regs':>5}{'spill':>6}{'instr/logit':>12}"
        "  loads / stores"
    )
    for r in rows:
        const = ",".join(f"{k}={v}" for k, v in r.constexprs.items())
        shape = "x".join(map(str, r.shape))
        print(
            f"{r.kernel:<20}{r.dtype:<10}{shape:<14}{const:<36}{r.registers:>5}{r.spill_bytes:>6}"
            f"{r.per_logit:>12}  {r.loads} / {r.stores}"
        )
    if args.json:
        payload = {"arch": args.arch, "triton": triton.__version__, "source": source_digest()}
        payload["rows"] = [asdict(r) for r in rows]
        args.json.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
