"""The grader's wire to its worker: messages as data only (JSON and raw tensor bytes), never pickles.

A message is a 4-byte length and a JSON header, then the raw bytes of every tensor or array it carries, each
with an 8-byte length. Values are encoded as JSON with tagged objects:
``{"$t": i, "dtype": ..., "shape": [...], "grad": bool}`` (a tensor, blob ``i``), ``{"$nd": ...}`` (a numpy
array), ``{"$tuple": [...]}``, ``{"$float": "nan"}``, ``{"$gen": i}`` (a torch.Generator's state),
``{"$fn": handle, "params": [...]}`` (a function that stays in the worker) and ``{"$obj": "TypeName"}`` (anything
else, by its type's name only). The grader decodes what the worker sends with :func:`decode` under limits on
size, depth and count, and builds plain tensors from the bytes; nothing the worker sends can run code in the grader.
"""

from __future__ import annotations

import json
import math
import os
import re
import select
import struct
import time
from collections.abc import Callable

import numpy as np
import torch

DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "int64": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
MAX_MESSAGE_BYTES = 128 * 2**20  # a reply larger than this is refused and costs the question
MAX_DEPTH = 16
MAX_ITEMS = 100_000
MAX_TEXT = 10_000


class WireError(Exception):
    """A message that breaks the protocol or its limits (the worker is then treated as lost)."""


class WireTimeout(WireError):
    """No complete message before the deadline."""


class WireClosed(WireError):
    """The other end closed the pipe (the worker exited)."""


# --- framing ---------------------------------------------------------------------------------------------------


def send(fd: int, header: dict, blobs: list[bytes | memoryview] = ()) -> None:
    """Write one message to ``fd`` (blocking)."""
    head = json.dumps({**header, "blobs": len(blobs)}, allow_nan=True).encode()
    parts = [struct.pack(">I", len(head)), head]
    for blob in blobs:
        parts += [struct.pack(">Q", len(blob)), blob]
    for part in parts:
        view = memoryview(part).cast("B")
        while view:
            written = os.write(fd, view)
            view = view[written:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks, left = [], n
    while left:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise WireTimeout(f"no reply within the time limit ({left} of {n} bytes missing)")
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise WireClosed("the worker closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(fd: int, deadline: float | None = None, limit: int = MAX_MESSAGE_BYTES) -> tuple[dict, list[bytes]]:
    """Read one message from ``fd`` before ``deadline`` (``time.monotonic()``), refusing more than ``limit`` bytes."""
    (size,) = struct.unpack(">I", _read_exact(fd, 4, deadline))
    if size > min(limit, 64 * 2**20):
        raise WireError(f"a message header of {size} bytes is over the limit")
    try:
        header = json.loads(_read_exact(fd, size, deadline))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WireError(f"a message header is not JSON: {err}") from None
    if not isinstance(header, dict) or not isinstance(header.get("blobs"), int) or header["blobs"] < 0:
        raise WireError("a message header is not an object with a blob count")
    blobs, total = [], size
    for _ in range(header["blobs"]):
        (n,) = struct.unpack(">Q", _read_exact(fd, 8, deadline))
        total += n
        if total > limit:
            raise WireError(f"a reply of more than {limit // 2**20} MiB is over the limit")
        blobs.append(_read_exact(fd, n, deadline))
    return header, blobs


# --- values ----------------------------------------------------------------------------------------------------


def _dtype_name(dtype: torch.dtype) -> str | None:
    for name, value in DTYPES.items():
        if value == dtype:
            return name
    return None


class Encoder:
    """Encode a value for the wire. ``function`` registers a callable and returns its handle (the worker's side);
    ``generator_seed`` maps a generator to the seed sent for it (the grader's side); with ``track_grad``,
    ``grad_outputs`` collects the tensors that require grad, which get ``"grad": k`` (their index in it).

    A plain class, not a dataclass: the worker's blocker stops package code called from generated code."""

    def __init__(
        self,
        function: Callable[[object], dict] | None = None,
        generator_seed: Callable[[torch.Generator], int] | None = None,
        track_grad: bool = False,
    ):
        self.function, self.generator_seed, self.track_grad = function, generator_seed, track_grad
        self.blobs: list[bytes] = []
        self.grad_outputs: list[torch.Tensor] = []
        self.items = 0

    def encode(self, value: object, depth: int = 0) -> object:
        self.items += 1
        if depth > MAX_DEPTH or self.items > MAX_ITEMS:
            return {"$obj": "TooLarge"}
        if value is None or type(value) is bool:
            return value
        if type(value) is str:
            return value[:MAX_TEXT]
        if type(value) is int:
            return value if abs(value) < 2**63 else {"$obj": "LargeInt"}
        if type(value) is float:
            return value if math.isfinite(value) else {"$float": repr(value)}
        if isinstance(value, torch.Tensor):
            return self._tensor(value)
        if isinstance(value, torch.Generator):
            return self._generator(value)
        if isinstance(value, np.ndarray | np.generic):
            return self._numpy(value)
        if type(value) in (list, tuple):
            items = [self.encode(v, depth + 1) for v in value]
            return items if type(value) is list else {"$tuple": items}
        if type(value) is dict and all(type(k) is str for k in value):
            return {"$dict": {k: self.encode(v, depth + 1) for k, v in value.items()}}
        if callable(value) and self.function is not None:
            return self.function(value)
        return {"$obj": _type_name(value)}

    def _tensor(self, t: torch.Tensor) -> dict:
        plain = torch.Tensor.as_subclass(t, torch.Tensor).detach()
        name = _dtype_name(plain.dtype)
        if name is None or plain.layout != torch.strided or plain.is_complex():
            return {"$obj": "UnsupportedTensor"}
        data = plain.cpu().contiguous()
        self.blobs.append(data.reshape(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b"")
        entry = {"$t": len(self.blobs) - 1, "dtype": name, "shape": list(data.shape)}
        if self.track_grad and t.requires_grad:
            entry["grad"] = len(self.grad_outputs)
            self.grad_outputs.append(t)
        return entry

    def _generator(self, gen: torch.Generator) -> dict:
        if self.generator_seed is None:
            return {"$obj": "Generator"}
        return {"$gen": int(self.generator_seed(gen))}

    def _numpy(self, value: np.ndarray | np.generic) -> object:
        if isinstance(value, np.generic):
            item = value.item()
            return item if type(item) in (int, bool) else {"$np": str(value.dtype), "value": self.encode(item)}
        name = str(value.dtype)
        if name not in DTYPES:
            return {"$obj": "UnsupportedArray"}
        self.blobs.append(np.ascontiguousarray(value).tobytes())
        return {"$nd": len(self.blobs) - 1, "dtype": name, "shape": list(value.shape)}


def _type_name(value: object) -> str:
    name = type(value).__name__
    return name if isinstance(name, str) and re.fullmatch(r"[A-Za-z_]\w{0,60}", name) else "object"


class Decoder:
    """Decode a value from the wire into plain Python, numpy and torch objects.

    ``function`` builds the stand-in for a ``{"$fn": ...}`` entry; ``generator`` the generator for ``{"$gen": s}``;
    ``grad_inputs`` collects the tensors marked ``"grad": k``.
    """

    def __init__(
        self,
        blobs: list[bytes],
        function: Callable[[dict], object] | None = None,
        generator: Callable[[int], object] | None = None,
    ):
        self.blobs, self.function, self.generator = blobs, function, generator
        self.grad_inputs: dict[int, torch.Tensor] = {}
        self.items = 0

    def decode(self, value: object, depth: int = 0) -> object:
        self.items += 1
        if depth > MAX_DEPTH or self.items > MAX_ITEMS:
            raise WireError("a value nests too deep or has too many items")
        if value is None or type(value) in (bool, int, float):
            return value
        if type(value) is str:
            return value[:MAX_TEXT]
        if type(value) is list:
            return [self.decode(v, depth + 1) for v in value]
        if type(value) is not dict:
            raise WireError(f"unexpected {type(value).__name__} in a message")
        return self._tagged(value, depth)

    def _tagged(self, value: dict, depth: int) -> object:
        if "$t" in value:
            t = self._tensor(value)
            if "grad" in value:
                self.grad_inputs[int(value["grad"])] = t
            return t
        if "$tuple" in value:
            return tuple(self.decode(value["$tuple"], depth + 1))
        if "$dict" in value and type(value["$dict"]) is dict:
            return {str(k): self.decode(v, depth + 1) for k, v in value["$dict"].items()}
        if "$float" in value:
            return float(value["$float"]) if value["$float"] in ("nan", "inf", "-inf") else math.nan
        if "$nd" in value:
            return self._array(value)
        if "$np" in value:
            return np.dtype(_checked_dtype(value["$np"], numpy=True)).type(self.decode(value["value"], depth + 1))
        if "$gen" in value and self.generator is not None:
            return self.generator(int(value["$gen"]))
        if "$fn" in value and self.function is not None:
            return self.function(value)
        if "$obj" in value:
            return opaque(str(value["$obj"]))
        raise WireError("unknown tagged value in a message")

    def _blob(self, index: object) -> bytes:
        if type(index) is not int or not 0 <= index < len(self.blobs):
            raise WireError("a value refers to a missing blob")
        return self.blobs[index]

    def _tensor(self, value: dict) -> torch.Tensor:
        dtype = DTYPES[_checked_dtype(value.get("dtype"))]
        shape = _checked_shape(value.get("shape"))
        blob = self._blob(value["$t"])
        itemsize = torch.empty((), dtype=dtype).element_size()
        if len(blob) != math.prod(shape) * itemsize:
            raise WireError(f"a tensor of shape {shape} does not match its {len(blob)} bytes")
        if not blob:
            return torch.empty(shape, dtype=dtype)
        return torch.frombuffer(bytearray(blob), dtype=dtype).reshape(shape)

    def _array(self, value: dict) -> np.ndarray:
        dtype = np.dtype(_checked_dtype(value.get("dtype"), numpy=True))
        shape = _checked_shape(value.get("shape"))
        blob = self._blob(value["$nd"])
        if len(blob) != math.prod(shape) * dtype.itemsize:
            raise WireError("an array does not match its bytes")
        return np.frombuffer(blob, dtype=dtype).reshape(shape).copy()


def _checked_dtype(name: object, numpy: bool = False) -> str:
    allowed = set(DTYPES)
    if numpy:
        allowed |= {"uint16", "uint32", "uint64", "complex64", "complex128"}
    if name not in allowed:
        raise WireError(f"dtype {name!r} is not allowed on the wire")
    return name


def _checked_shape(shape: object) -> list[int]:
    if type(shape) is not list or len(shape) > 16 or not all(type(n) is int and 0 <= n < 2**40 for n in shape):
        raise WireError("a tensor shape is not a short list of non-negative ints")
    return shape


_OPAQUE_TYPES: dict[str, type] = {}


def opaque(name: str) -> object:
    """A stand-in for an object the worker could not send as data: an instance of a class named like its type, so
    a check's hint ("must return a tensor, got dict_keys") still names what came."""
    name = name if re.fullmatch(r"[A-Za-z_]\w{0,60}", name) else "object"
    cls = _OPAQUE_TYPES.get(name)
    if cls is None:
        cls = _OPAQUE_TYPES[name] = type(
            name, (), {"__repr__": lambda self: f"<{type(self).__name__} from the worker>"}
        )
    return cls()
