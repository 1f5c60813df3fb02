"""Fused Triton samplers: Gumbel-max, Gumbel-top-k and the Gumbel-Softmax forward in one pass over the logits.

The noise never touches memory: each program draws its Exp(1) variates in registers from Philox
(:func:`philox`, ``tl.philox``'s numbers bit for bit in fewer instructions: four 32-bit words per call,
two draws), keyed by one 64-bit seed drawn from the torch generator and countered by position, so a given
generator state gives the same sample whatever the number of rows a program takes.

**Gumbel-max and Gumbel-top-k are hierarchical** (:func:`race_topk`). The maximum of Gumbel-perturbed logits
over a set is Gumbel at the set's logsumexp, and which element attains it is independent of that maximum
(the Gumbel-max chapter proves both). So a row is cut into chunks of ``CHUNK`` logits, each chunk held by one
thread: a pass with no random numbers keeps each chunk's max ``m`` and ``s = sum exp(x - m)``; one Exp(1) per
chunk races the chunks (arrival ``E / (s e^m)``); only inside the winning chunk does each logit get its own
noise. For top-k, the k earliest chunks hold the k earliest logits; inside each, the first logit arrives with
the chunk and, by memorylessness, the others after it at fresh Exp(1) / weight gaps. One draw per chunk of 16
or 32 logits instead of one per logit is what brings the kernel near the memory bound. The chunk layout
(:func:`chunk_launch`) depends on the row length only, so a sample does not depend on the device or on how
many rows a program takes; it does differ from the flat race's (:func:`flat_race_topk`, kept for the
benchmarks and the chapter's comparison), and ``gumbel_max`` no longer equals the argmax of the hard
Gumbel-Softmax drawn from the same generator state. Their laws are the same.

The Gumbel-Softmax forward needs every logit's noise, so it keeps one draw per logit.

A call advances the torch generator by one draw (the kernel's seed), where the plain samplers advance it by
one draw per logit: switching ``GUMBEL_BOOK_KERNELS=0`` changes every later random number.

The public samplers in :mod:`gumbel_book.sampling` call these kernels for CUDA tensors when Triton
is installed (``GUMBEL_BOOK_KERNELS=0`` switches them off), through :mod:`gumbel_book.kernels`. Each launch runs
on the tensor's own GPU (Triton launches on the current device). On a machine without a CUDA GPU,
:func:`gumbel_book.kernels.use_interpreter` (called before Triton loads) makes the same kernels run, slowly, on
CPU tensors: that is how CI tests them.
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl
from triton.runtime.interpreter import InterpretedFunction
from triton.runtime.jit import JITFunction

from .coverage import KERNEL_DTYPES

#: Whether the kernels run in Triton's interpreter (CPU tensors) rather than compiled for a GPU.
INTERPRETED: bool = isinstance(tl.randint4x, InterpretedFunction)
_jit = InterpretedFunction if INTERPRETED else JITFunction

# Tile sizes. On a GPU a program holds one tile in registers; in the interpreter every program
# costs milliseconds of Python, so programs there take large tiles. A race tile is at most
# RACE_BLOCK categories wide and RACE_TILE elements in all (several short rows per program).
RACE_TILE = 65536 if INTERPRETED else 8192
RACE_BLOCK = 65536 if INTERPRETED else 4096
# The hierarchical race: a tile is CHUNK x ROWS x WIDTH logits; CHUNK and WIDTH follow the row length only.
CHUNK_TILE = 262144 if INTERPRETED else 16384  # logits per program for short rows (ROWS rows at a time)
CHUNK_WIDTH = 1024  # lanes: 256 threads x 4 logits in a 16-byte load
LONG_ROW = 32 * CHUNK_WIDTH  # rows at least this long take chunks of 32, shorter ones chunks of 16
SOFTMAX_ONE_TILE_MAX = 65536 if INTERPRETED else 8192
SOFTMAX_TILE = 65536 if INTERPRETED else 4096  # logits per program for short rows: 16 a thread, none spilled
SOFTMAX_LOOP_BLOCK = 16384 if INTERPRETED else 4096
NUM_WARPS = 8

# Compiled kernels may read module globals only if they are constexpr.
_TWO_POW_M32 = tl.constexpr(2.3283064365386963e-10)  # 2**-32
_TWO_POW_M64 = tl.constexpr(5.421010862427522e-20)  # 2**-64
_BELOW_ONE = tl.constexpr(0.99999994039535522)  # the largest float32 below 1
_FLOAT32_MAX = tl.constexpr(3.4028234663852886e38)
_LOG2E = tl.constexpr(1.4426950408889634)
_CHUNK_STREAM = tl.constexpr(0)  # Philox's third counter word: the chunks' draws ...
_ELEMENT_STREAM = tl.constexpr(1)  # ... and the logits' draws never share a counter


_PHILOX_ROUND_A = tl.constexpr(0xD2511F53)
_PHILOX_ROUND_B = tl.constexpr(0xCD9E8D57)
_PHILOX_KEY_A = tl.constexpr(0x9E3779B9)
_PHILOX_KEY_B = tl.constexpr(0xBB67AE85)


@_jit
def philox(seed, c0, c1, c2, c3):
    """Philox4x32-10 (``tl.philox``'s numbers, bit for bit), each round's two products formed by one 32 x 32 -> 64
    bit multiply each (``IMAD.WIDE``) where ``tl.philox`` issues a high and a low multiply."""
    seed = seed.to(tl.uint64)
    k0 = (seed & 0xFFFFFFFF).to(tl.uint32)
    k1 = ((seed >> 32) & 0xFFFFFFFF).to(tl.uint32)
    for _ in tl.static_range(10):
        pb = c2.to(tl.uint64) * _PHILOX_ROUND_B
        pa = c0.to(tl.uint64) * _PHILOX_ROUND_A
        c0 = (pb >> 32).to(tl.uint32) ^ c1 ^ k0
        c2 = (pa >> 32).to(tl.uint32) ^ c3 ^ k1
        c1 = pb.to(tl.uint32)
        c3 = pa.to(tl.uint32)
        k0 = k0 + _PHILOX_KEY_A
        k1 = k1 + _PHILOX_KEY_B
    return c0, c1, c2, c3


@_jit
def _exponential(hi, lo):
    """Exp(1) draws ``-log1p(-u)`` from two random 32-bit words each: u in (0, 1) from 64 random bits.

    Small draws (the ones that win a race) keep float32's relative precision: u is built from two
    32-bit words, and with ``w = fl(1 - u)``, ``-log1p(-u) = -log(w) + d / w + O(d^2)`` where
    ``d = u - (1 - w)`` is computed exactly (``1 - w`` is exact for w in [1/2, 1]) and ``|d| <= 2^-25``;
    ``d / w`` and ``d`` differ by ``d u / w``, below float32's resolution of the result, so no division.
    """
    u = hi.to(tl.float32) * _TWO_POW_M32 + (lo.to(tl.float32) + 0.5) * _TWO_POW_M64
    u = tl.minimum(u, _BELOW_ONE)
    w = 1.0 - u
    return (u - (1.0 - w)) - tl.log(w)


@_jit
def _noisy_tile(x_ptr, seed, rows, start, M, N, ROWS: tl.constexpr, BLOCK: tl.constexpr):
    """Columns ``start .. start + BLOCK`` of ``rows``: logits in float32 (-inf outside), their Exp(1) noise, the mask.

    Philox gives four words per call, two draws: element (r, c) takes counter ``r * ceil(N / 2) + c // 2``,
    words 0-1 for an even c, 2-3 for an odd one. The noise depends on the element only, not on the tiling.
    """
    cols = start + tl.arange(0, BLOCK)
    mask = (rows < M)[:, None] & (cols < N)[None, :]
    x = tl.load(x_ptr + rows[:, None] * N + cols[None, :], mask=mask, other=-float("inf")).to(tl.float32)
    counters = (rows * ((N + 1) // 2))[:, None] + (start // 2 + tl.arange(0, BLOCK // 2))[None, :]
    lo = counters.to(tl.uint32)
    r0, r1, r2, r3 = philox(seed, lo, (counters >> 32).to(tl.uint32), lo * 0, lo * 0)
    e = tl.reshape(tl.join(_exponential(r0, r1), _exponential(r2, r3)), (ROWS, BLOCK))
    return x, e, mask


@_jit
def _flat_race_kernel(
    x_ptr, val_ptr, idx_ptr, seed_ptr, M, N, n_tiles, K: tl.constexpr, ROWS: tl.constexpr, BLOCK: tl.constexpr
):
    """The flat race, one draw per logit (what :func:`_chunk_race_kernel` replaced; kept for the comparison).
    Per (row block, column tile): the top ``K`` of ``logit - log E`` in the tile, best first."""
    pid = tl.program_id(0)
    pid_t = pid % n_tiles
    rows = ((pid // n_tiles) * ROWS + tl.arange(0, ROWS)).to(tl.int64)
    row_ok = rows < M
    x, e, mask = _noisy_tile(x_ptr, tl.load(seed_ptr), rows, pid_t * BLOCK, M, N, ROWS, BLOCK)
    out = (rows * n_tiles + pid_t) * K
    if K == 1:
        # The exponential race, argmax exp(x - m) / E with m the row's max in the tile: an exp instead of a log.
        # Exact: E lies in [2.7e-20, 16.7], so only x > m - 48 can win, and exp(-48) is far from underflow.
        # With the data checks off a +inf logit must still win, as in the plain code: as the largest float it
        # does, where inf - inf would make a NaN.
        x = tl.minimum(x, _FLOAT32_MAX)
        m = tl.max(x, axis=1)
        m = tl.where(m > -float("inf"), m, 0.0)
        best, arg = tl.max(tl.exp(x - m[:, None]) / e, axis=1, return_indices=True)
        won = best > 0.0  # only rows past the end (or all -inf in this tile) have no positive score
        tl.store(val_ptr + out, tl.where(won, m + tl.log(tl.where(won, best, 1.0)), -float("inf")), mask=row_ok)
        tl.store(idx_ptr + out, pid_t * BLOCK + arg, mask=row_ok)
    else:
        # k > 1 stays in the log domain: the k-th best may be far below the max, where exp underflows.
        v = tl.where(mask, x - tl.log(e), -float("inf"))
        for j in tl.static_range(K):
            best, arg = tl.max(v, axis=1, return_indices=True)
            tl.store(val_ptr + out + j, best, mask=row_ok)
            tl.store(idx_ptr + out + j, pid_t * BLOCK + arg, mask=row_ok)
            if j + 1 < K:
                v = tl.where(tl.arange(0, BLOCK)[None, :] == arg[:, None], -float("inf"), v)


@_jit
def _philox_exponentials(seed, counters, stream: tl.constexpr):
    """Two Exp(1) draws per counter (one Philox call): the draws for counter words 0-1 and 2-3."""
    lo = counters.to(tl.uint32)
    zero = lo * 0
    r0, r1, r2, r3 = philox(seed, lo, (counters >> 32).to(tl.uint32), zero + stream, zero)
    return _exponential(r0, r1), _exponential(r2, r3)


@_jit
def chunk_counters(rows, pid_t, n_tiles, ROWS: tl.constexpr, HALF: tl.constexpr):
    """The Philox counters of a tile's chunk draws, [ROWS, HALF]: chunks 2h and 2h + 1 of a row share one.

    A row has ``n_tiles * HALF`` counters, so row r owns ``[r * n_tiles * HALF, (r + 1) * n_tiles * HALF)``:
    no two (row, chunk pair) share a counter (tests/unit/test_kernels.py checks it over rows, tiles and odd N)."""
    return rows[:, None] * (n_tiles * HALF) + (pid_t * HALF + tl.arange(0, HALF))[None, :]


@_jit
def element_counters(rows, cols, N):
    """The Philox counters of the logits' own draws: one per logit, ``row * N + column``."""
    return rows[:, None] * N + cols


@_jit
def _chunk_noise(seed, rows, pid_t, n_tiles, ROWS: tl.constexpr, WIDTH: tl.constexpr):
    """One Exp(1) per chunk of the tile, [ROWS, WIDTH], two per Philox call."""
    a, b = _philox_exponentials(seed, chunk_counters(rows, pid_t, n_tiles, ROWS, WIDTH // 2), _CHUNK_STREAM)
    return tl.reshape(tl.join(a, b), (ROWS, WIDTH))


@_jit
def _element_arrivals(x_ptr, seed, rows, row_ok, ecols, m_c, N):
    """Inside the chosen chunks: each logit's own race time ``E / exp(x - m_c)`` (NaN and +inf first, in the
    interpreter and compiled alike), and whether the column is in the row."""
    emask = row_ok[:, None] & (ecols < N)
    xe = tl.load(x_ptr + rows[:, None] * N + ecols, mask=emask, other=-float("inf")).to(tl.float32)
    ee, _ = _philox_exponentials(seed, element_counters(rows, ecols, N), _ELEMENT_STREAM)
    r = ee * tl.exp2((m_c[:, None] - xe) * _LOG2E)
    r = tl.where((xe != xe) | (xe == float("inf")), 0.0, r)
    return tl.where(r == r, r, float("inf")), emask


@_jit
def _chunk_race_kernel(
    x_ptr, val_ptr, idx_ptr, seed_ptr, M, N, n_tiles,
    K: tl.constexpr, ROWS: tl.constexpr, CHUNK: tl.constexpr, WIDTH: tl.constexpr,
):  # fmt: skip
    """The hierarchical race on a tile of CHUNK x ROWS x WIDTH logits: row r's columns ``start + i * WIDTH + w``.

    Chunk (r, w) is lane w's CHUNK logits, so the chunk axis lies in one thread's registers and its max and sum
    need no other thread. Subtract, then scale: ``(x - m) * log2(e)`` stays finite where ``x * log2(e)`` would
    overflow. A chunk holding a NaN or +inf gets s = NaN and wins, as such a logit wins the plain code's argmax;
    an all -inf chunk has s = 0 and never wins. K = 1 stores the winner and its Gumbel value; K > 1 stores every
    logit of the K earliest chunks with its key, and the host keeps the K best."""
    BLOCK: tl.constexpr = CHUNK * WIDTH
    pid = tl.program_id(0)
    pid_t = pid % n_tiles
    rows = ((pid // n_tiles) * ROWS + tl.arange(0, ROWS)).to(tl.int64)
    row_ok = rows < M
    seed = tl.load(seed_ptr)
    start = pid_t * BLOCK
    cols = start + tl.arange(0, CHUNK)[:, None, None] * WIDTH + tl.arange(0, WIDTH)[None, None, :]
    mask = row_ok[None, :, None] & (cols < N)
    x = tl.load(x_ptr + rows[None, :, None] * N + cols, mask=mask, other=-float("inf")).to(tl.float32)
    m = tl.max(x, axis=0)
    m = tl.where(m > -float("inf"), m, 0.0)
    s = tl.sum(tl.exp2((x - m[None, :, :]) * _LOG2E), axis=0)
    e = _chunk_noise(seed, rows, pid_t, n_tiles, ROWS, WIDTH)
    bad = s != s
    if K == 1:  # the exponential race: argmax s e^(m - top) / E, an exp per chunk and one log per row
        top = tl.max(m, axis=1)
        score = tl.where(bad, float("inf"), s * tl.exp2((m - top[:, None]) * _LOG2E) / e)
        hit, c = tl.max(score, axis=1, return_indices=True)
        best = tl.where(hit > 0.0, top + tl.log(tl.where(hit > 0.0, hit, 1.0)), -float("inf"))
    else:
        key = tl.where(s > 0.0, m + tl.log(tl.where(s > 0.0, s, 1.0) / e), -float("inf"))
        key = tl.where(bad, float("inf"), key)
    lanes = tl.arange(0, CHUNK)
    out = (rows * n_tiles + pid_t) * (K if K == 1 else K * CHUNK)
    for j in tl.static_range(K):
        if K > 1:
            best, c = tl.max(key, axis=1, return_indices=True)
        picked = tl.arange(0, WIDTH)[None, :] == c[:, None]
        if K > 1:
            key = tl.where(picked, -float("inf"), key)
        m_c = tl.sum(tl.where(picked, m, 0.0), axis=1)
        ecols = start + lanes[None, :] * WIDTH + c[:, None]
        r, emask = _element_arrivals(x_ptr, seed, rows, row_ok, ecols, m_c, N)
        if K == 1:
            tl.store(val_ptr + out, best, mask=row_ok)
            tl.store(idx_ptr + out, start + tl.argmin(r, axis=1) * WIDTH + c, mask=row_ok)
        else:  # the chunk's first logit arrives with it; the others later by their gap to that first one
            gap = r - tl.min(r, axis=1)[:, None]
            ekey = m_c[:, None] - tl.log(tl.exp2((m_c - best) * _LOG2E)[:, None] + gap)
            ekey = tl.where(emask & (best > -float("inf"))[:, None], ekey, -float("inf"))
            slots = out[:, None] + j * CHUNK + lanes[None, :]
            tl.store(val_ptr + slots, ekey, mask=row_ok[:, None])
            tl.store(idx_ptr + slots, ecols, mask=row_ok[:, None])


@_jit
def _softmax_tile_kernel(x_ptr, y_ptr, idx_ptr, seed_ptr, M, N, inv_tau, ROWS: tl.constexpr, BLOCK: tl.constexpr):
    """``softmax((logit - log E) / tau)`` for rows that fit one tile, and each row's argmax."""
    rows = (tl.program_id(0) * ROWS + tl.arange(0, ROWS)).to(tl.int64)
    row_ok = rows < M
    x, e, mask = _noisy_tile(x_ptr, tl.load(seed_ptr), rows, 0, M, N, ROWS, BLOCK)
    v = tl.where(mask, x - tl.log(e), -float("inf"))
    m, arg = tl.max(v, axis=1, return_indices=True)
    m = tl.where(row_ok, m, 0.0)  # rows past the end are all -inf; keep them free of NaN
    # Shift by the max before scaling, as sampling.gumbel_softmax does: a tiny tau sends the others to -inf.
    p = tl.exp((v - m[:, None]) * inv_tau)
    y = p * (1.0 / tl.where(row_ok, tl.sum(p, axis=1), 1.0))[:, None]
    flat = rows[:, None] * N + tl.arange(0, BLOCK)[None, :]
    tl.store(y_ptr + flat, y.to(y_ptr.dtype.element_ty), mask=mask)
    tl.store(idx_ptr + rows, arg.to(tl.int64), mask=row_ok)


@_jit
def _softmax_loop_kernel(x_ptr, v_ptr, y_ptr, idx_ptr, seed_ptr, M, N, inv_tau, BLOCK: tl.constexpr):
    """Long rows, the logits read once: a first sweep stores the perturbed logits ``v = logit - log E``
    (float32, at ``v_ptr``: the output itself when it is float32) and keeps an online max and sum; a second
    sweep turns ``v`` into the output. Noise is drawn once per element, and only ``v`` ever reaches memory."""
    rows = tl.program_id(0).to(tl.int64) + tl.zeros([1], tl.int64)
    seed = tl.load(seed_ptr)
    lanes = tl.arange(0, BLOCK)[None, :]
    m_lane = tl.full([1, BLOCK], -float("inf"), tl.float32)
    s_lane = tl.zeros([1, BLOCK], tl.float32)
    i_lane = tl.zeros([1, BLOCK], tl.int64)
    for start in range(0, N, BLOCK):
        x, e, mask = _noisy_tile(x_ptr, seed, rows, start, M, N, 1, BLOCK)
        v = tl.where(mask, x - tl.log(e), -float("inf"))
        tl.store(v_ptr + rows[:, None] * N + (start + lanes), v, mask=mask)
        new_m = tl.maximum(m_lane, v)
        i_lane = tl.where(v > m_lane, (start + lanes).to(tl.int64), i_lane)
        shift = tl.where(new_m > -float("inf"), new_m, 0.0)  # a lane that has seen only -inf keeps s = 0
        s_lane = s_lane * tl.exp((m_lane - shift) * inv_tau) + tl.exp((v - shift) * inv_tau)
        m_lane = new_m
    m = tl.max(m_lane, axis=1)
    arg = tl.min(tl.where(m_lane == m[:, None], i_lane, N), axis=1)
    inv_s = 1.0 / tl.sum(s_lane * tl.exp((m_lane - m[:, None]) * inv_tau), axis=1)
    tl.debug_barrier()  # every thread's v is in memory before any thread reads it back
    for start in range(0, N, BLOCK):
        offsets = rows[:, None] * N + (start + lanes)
        mask = (start + lanes) < N
        v = tl.load(v_ptr + offsets, mask=mask, other=-float("inf"))
        y = tl.exp((v - m[:, None]) * inv_tau) * inv_s[:, None]
        tl.store(y_ptr + offsets, y.to(y_ptr.dtype.element_ty), mask=mask)
    tl.store(idx_ptr + rows, arg)


def _pow2(n: int, at_least: int = 1) -> int:
    return triton.next_power_of_2(max(int(n), at_least))


def _rows(logits: torch.Tensor, dim: int) -> torch.Tensor:
    """``logits`` with ``dim`` moved last, as a contiguous [rows, categories] matrix (a copy only if needed)."""
    return logits.movedim(dim, -1).reshape(-1, logits.shape[dim]).contiguous()


def _seed(generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """One 63-bit Philox key drawn from ``generator`` (or the device's default), kept on the device: no sync."""
    return torch.empty(1, dtype=torch.int64, device=device).random_(generator=generator)


def check_runnable(logits: torch.Tensor) -> None:
    """Raise when this process cannot run the kernels on ``logits``: a dtype they do not cover, or a
    non-CUDA tensor while the kernels are compiled (not interpreted)."""
    if logits.dtype not in KERNEL_DTYPES:
        raise TypeError(f"the fused kernels cover {KERNEL_DTYPES}, got logits of dtype {logits.dtype}")
    if not INTERPRETED and logits.device.type != "cuda":
        raise ValueError(
            f"the compiled kernels need a CUDA tensor, got one on {logits.device}; to run them on the CPU, "
            "call gumbel_book.kernels.use_interpreter() before anything imports Triton (torch.optim does)"
        )


def race_launch(m: int, n: int) -> tuple[int, int, int]:
    """(rows, block, column tiles) of the flat race kernel for an [m, n] matrix; the block is even (Philox pairs)."""
    block = min(_pow2(n, at_least=2), RACE_BLOCK, RACE_TILE)
    return min(_pow2(m), max(RACE_TILE // block, 1)), block, triton.cdiv(n, block)


def chunk_launch(m: int, n: int) -> tuple[int, int, int, int]:
    """(rows, chunk, width, column tiles) of the hierarchical race for an [m, n] matrix.

    The chunk layout (chunk, width) is a function of ``n`` alone: 32 logits a chunk for rows of at least
    :data:`LONG_ROW`, else 16, and as many lanes as the row fills, up to :data:`CHUNK_WIDTH`. Only the rows per
    program depend on the machine (more in the interpreter), and they do not change the sample."""
    chunk = 32 if n >= LONG_ROW else 16
    width = min(CHUNK_WIDTH, _pow2(triton.cdiv(n, chunk), at_least=2))
    rows = min(_pow2(m), max(CHUNK_TILE // (chunk * width), 1))
    return rows, chunk, width, triton.cdiv(n, chunk * width)


def _on_device(x: torch.Tensor):
    """Launch on ``x``'s GPU: Triton launches on the current CUDA device, not the tensor's (triton-lang/triton#2441)."""
    return torch.cuda.device(x.device) if x.device.type == "cuda" else contextlib.nullcontext()


def softmax_launch(m: int, n: int) -> tuple[str, int, int]:
    """(kernel, rows, block) of the Gumbel-Softmax forward for an [m, n] matrix: one tile per row block, or a loop."""
    if n <= SOFTMAX_ONE_TILE_MAX:
        block = _pow2(n, at_least=2)
        return "tile", min(_pow2(m), max(SOFTMAX_TILE // block, 1)), block
    return "loop", 1, SOFTMAX_LOOP_BLOCK


def _merged(idx: torch.Tensor, vals: torch.Tensor, k: int, n: int, logits: torch.Tensor, dim: int) -> torch.Tensor:
    """The ``k`` best candidates of each row, best first, in ``logits``' shape with ``dim`` holding them."""
    if vals.shape[1] > k:  # merge the tiles' candidates, a small fraction of the row
        idx = idx.gather(1, vals.topk(k, dim=1).indices)
    idx = idx.clamp_(max=n - 1)  # only rows with fewer than k finite logits (rejected when checks are on) could exceed
    shape = logits.movedim(dim, -1).shape[:-1]
    return idx.view(*shape, k).movedim(-1, dim)


def _race(logits: torch.Tensor, k: int, dim: int, generator: torch.Generator | None, kernel, launch) -> torch.Tensor:
    """Run a race ``kernel`` over ``logits`` (``launch(m, n)`` gives its rows per program, column tiles, candidates
    per tile and constexprs) and keep each row's ``k`` best candidates."""
    check_runnable(logits)
    x = _rows(logits, dim)
    m, n = x.shape
    rows, n_tiles, per_tile, constexprs = launch(m, n)
    vals = torch.empty(m, n_tiles * per_tile, dtype=torch.float32, device=x.device)
    idx = torch.empty(m, n_tiles * per_tile, dtype=torch.int64, device=x.device)
    seed = _seed(generator, x.device)
    if m > 0:
        grid = (triton.cdiv(m, rows) * n_tiles,)
        with _on_device(x):
            kernel[grid](x, vals, idx, seed, m, n, n_tiles, K=k, ROWS=rows, **constexprs, num_warps=NUM_WARPS)
    return _merged(idx, vals, k, n, logits, dim)


def race_topk(logits: torch.Tensor, k: int, dim: int, generator: torch.Generator | None) -> torch.Tensor:
    """Indices of the top ``k`` of ``logits + Gumbel`` along ``dim`` (best first), by the hierarchical race, for
    already-checked input."""

    def launch(m: int, n: int):
        rows, chunk, width, n_tiles = chunk_launch(m, n)
        return rows, n_tiles, 1 if k == 1 else k * chunk, {"CHUNK": chunk, "WIDTH": width}

    return _race(logits, k, dim, generator, _chunk_race_kernel, launch)


def flat_race_topk(logits: torch.Tensor, k: int, dim: int, generator: torch.Generator | None) -> torch.Tensor:
    """The flat race (one draw per logit) that :func:`race_topk` replaced: same law, for the comparison."""

    def launch(m: int, n: int):
        rows, block, n_tiles = race_launch(m, n)
        return rows, n_tiles, k, {"BLOCK": block}

    return _race(logits, k, dim, generator, _flat_race_kernel, launch)


def _softmax_forward(x: torch.Tensor, tau: float, seed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    m, n = x.shape
    info = torch.finfo(torch.float32)
    inv_tau = min(max(1.0 / tau, info.tiny), info.max)  # a normal float32: -inf * inv_tau stays -inf, never NaN
    y = torch.empty_like(x)
    idx = torch.empty(m, dtype=torch.int64, device=x.device)
    if m == 0:
        return y, idx
    kind, rows, block = softmax_launch(m, n)
    with _on_device(x):
        if kind == "tile":
            grid = (triton.cdiv(m, rows),)
            _softmax_tile_kernel[grid](x, y, idx, seed, m, n, inv_tau, ROWS=rows, BLOCK=block, num_warps=NUM_WARPS)
        else:
            v = y if y.dtype == torch.float32 else torch.empty(m, n, dtype=torch.float32, device=x.device)
            _softmax_loop_kernel[(m,)](x, v, y, idx, seed, m, n, inv_tau, BLOCK=block, num_warps=NUM_WARPS)
    return y, idx


class _FusedGumbelSoftmax(torch.autograd.Function):
    """The fused soft sample with the softmax backward: dL/dlogit = y * (g - <g, y>) / tau (noise is constant)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, tau: float, seed: torch.Tensor):
        y, idx = _softmax_forward(x, tau, seed)
        ctx.save_for_backward(y)
        ctx.tau = tau
        ctx.mark_non_differentiable(idx)
        return y, idx

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor, grad_idx: torch.Tensor | None):
        (y,) = ctx.saved_tensors
        yf, gf = y.float(), grad_y.float()
        grad = yf * (gf - (gf * yf).sum(dim=-1, keepdim=True)) / ctx.tau
        return grad.to(y.dtype), None, None


def fused_gumbel_softmax(
    logits: torch.Tensor, tau: float, hard: bool, dim: int, generator: torch.Generator | None
) -> torch.Tensor:
    """The Gumbel-Softmax sample of :func:`gumbel_book.gumbel_softmax` for already-checked input and a float ``tau``."""
    check_runnable(logits)
    info = torch.finfo(torch.float32)
    tau = min(max(float(tau), info.tiny), info.max)
    x = _rows(logits, dim)
    y, idx = _FusedGumbelSoftmax.apply(x, tau, _seed(generator, x.device))
    if hard:
        # The one-hot of the perturbed argmax (computed in float32, so low-precision outputs never tie),
        # carrying the soft sample's gradient: y - y.detach() is exactly zero.
        y = torch.zeros_like(y).scatter_(1, idx[:, None], 1.0) + (y - y.detach())
    return y.view(logits.movedim(dim, -1).shape).movedim(-1, dim)
