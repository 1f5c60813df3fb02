"""The grader's side of a grading worker: start it, talk to it under deadlines, and stand in for its functions.

A :class:`Notebook` owns one worker process (:mod:`.worker`) and the submission's cells. It runs the cells one by
one, each under a time limit; a cell that hangs or kills the worker is skipped, the worker restarted and the cells
that ran before replayed. The tests then get :class:`RemoteFunction` stand-ins for the student's functions: calling
one sends the arguments as data, the worker calls the real function, and the result comes back as plain tensors
and numbers. Gradients flow through a custom autograd function whose backward asks the worker for the gradients
of the inputs. Generator states and seeds are mapped to fresh ones by a keyed hash, so the worker never sees the
seed a test asked for (a table of answers for the public seeds is worthless) and the same request still gets the
same noise.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import hmac
import inspect
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..exercises.guard import NOT_ALLOWED, current_remote
from . import wire
from .worker import ZYGOTE_BOOT

STARTUP_TIMEOUT_S = 300
# Modules the zygote imports besides torch, scipy, the exercises and every chapter's lab.
ZYGOTE_MODULES = ("gumbel_book.estimators", "gumbel_book.straight_through")
_KIND = type(inspect.Parameter.POSITIONAL_ONLY)


class WorkerLost(Exception):
    """The worker died, ran past its time limit or broke the protocol; the current test fails with this."""


class StudentError(Exception):
    """The student's function raised something other than AssertionError or TypeError."""


@dataclass
class Limits:
    """Limits of one worker: seconds per cell and per question (wall clock), memory, output file size."""

    seconds: float = 120.0
    memory_mb: int = 6144
    file_mb: int = 64
    max_restarts: int = 10
    kernel_layers: bool = True  # a private network, Landlock and seccomp (off only to test the other layers alone)


def _minimal_env(workdir: str) -> dict:
    package_root = str(Path(__file__).resolve().parents[2])
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "PYTHONPATH": package_root,
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
    }
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = "1"
    return env


class Zygote:
    """The process that forks workers (:func:`.worker.zygote`): started once, on first use, shared by threads."""

    _shared: Zygote | None = None
    _lock = threading.Lock()

    def __init__(self):
        self.home = tempfile.mkdtemp(prefix="course-zygote-")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = ours
        with open(Path(self.home) / "zygote.log", "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", ZYGOTE_BOOT, str(theirs.fileno()), *ZYGOTE_MODULES],
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
                env=_minimal_env(self.home),
            )
        theirs.close()
        self.spawn_lock = threading.Lock()

    @classmethod
    def shared(cls) -> Zygote:
        with cls._lock:
            if cls._shared is None or cls._shared.proc.poll() is not None:
                cls._shared = cls()
                atexit.register(cls._shared.close)
            return cls._shared

    def spawn(self, config: dict, fds: list[int]) -> int:
        """Fork a worker with ``config`` and the three file descriptors; return its pid."""
        with self.spawn_lock:
            try:
                socket.send_fds(self.sock, [json.dumps(config).encode()], fds)
                self.sock.settimeout(STARTUP_TIMEOUT_S)
                reply = self.sock.recv(1 << 16)
            except OSError as err:
                raise WorkerLost(f"the zygote did not answer: {err}") from None
        if not reply:
            raise WorkerLost(f"the zygote exited:\n{_tail(Path(self.home) / 'zygote.log')}")
        return int(json.loads(reply)["pid"])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        shutil.rmtree(self.home, ignore_errors=True)


def _tail(path: Path, n: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


class Worker:
    """One sandboxed worker process (forked by the :class:`Zygote`) and its two pipes."""

    def __init__(self, preload: list[str], hidden: list[str], limits: Limits):
        self.workdir = tempfile.mkdtemp(prefix="course-worker-")
        os.chmod(self.workdir, 0o700)
        self.pid = -1
        self.log_path = Path(self.workdir) / "output.log"
        requests_r, self.requests = os.pipe()
        self.replies, replies_w = os.pipe()
        os.set_blocking(self.requests, False)
        config = {
            "workdir": self.workdir,
            "memory_mb": limits.memory_mb,
            "cpu_s": 3600,
            "file_mb": limits.file_mb,
            "preload": preload,
            "hidden": hidden,
            "kernel_layers": limits.kernel_layers,
        }
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            self.pid = Zygote.shared().spawn(config, [requests_r, replies_w, log])
        except WorkerLost:
            self.close()
            raise
        finally:
            for fd in (requests_r, replies_w, log):
                os.close(fd)
        try:
            header, _ = wire.receive(self.replies, time.monotonic() + STARTUP_TIMEOUT_S)
        except wire.WireError as err:
            header = {"error": str(err)}
        if not header.get("ready"):
            tail = self.log_tail(1500)
            self.close()
            raise WorkerLost(f"the worker did not start ({header.get('error', header)}):\n{tail}")
        self.sandbox = header.get("sandbox", {})

    def _receive(self, deadline: float) -> tuple[dict, list[bytes]]:
        try:
            return wire.receive(self.replies, deadline)
        except wire.WireError as err:
            reason = "the worker exited" if isinstance(err, wire.WireClosed) else self.exit_reason() or str(err)
            self.close()
            raise WorkerLost(reason) from None

    def exit_reason(self) -> str:
        return "" if self.alive() else "the worker exited"

    def request(self, header: dict, blobs: list[bytes], deadline: float) -> tuple[dict, list[bytes]]:
        """Send one request and wait for its reply until ``deadline``; on any failure kill the worker."""
        if not self.alive():
            raise WorkerLost(self.exit_reason())
        try:
            _send(self.requests, header, blobs, deadline)
        except (wire.WireError, OSError) as err:
            reason = self.exit_reason() or f"the worker stopped reading requests ({err})"
            self.close()
            raise WorkerLost(reason) from None
        return self._receive(deadline)

    def alive(self) -> bool:
        if self.requests < 0 or self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def close(self) -> None:
        """Kill the worker's whole process group, close the pipes and delete its folder (every path ends here)."""
        if self.pid > 0:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            _wait_gone(self.pid)
        for fd in (self.requests, self.replies):
            with contextlib.suppress(OSError):
                os.close(fd)
        self.requests = self.replies = -1
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, n: int = 4000) -> str:
        return _tail(self.log_path, n)


def _wait_gone(pid: int, seconds: float = 10.0) -> None:
    """Wait until ``pid`` is gone (the zygote's kernel-reaped child), so its folder can be removed."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            return
        time.sleep(0.01)


def _send(fd: int, header: dict, blobs: list[bytes], deadline: float) -> None:
    """``wire.send`` on a non-blocking pipe, waiting for room until ``deadline``."""
    head = json.dumps({**header, "blobs": len(blobs)}, allow_nan=True).encode()
    parts = [len(head).to_bytes(4, "big"), head]
    for blob in blobs:
        parts += [len(blob).to_bytes(8, "big"), blob]
    for part in parts:
        view = memoryview(part).cast("B")
        while view:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([], [fd], [], wait)[1]:
                raise wire.WireTimeout("the worker did not take the request in time")
            try:
                view = view[os.write(fd, view[: 1 << 16]) :]
            except BlockingIOError:
                continue


@dataclass
class CellResult:
    index: int
    status: str  # "ok", "error", or why the worker was lost
    message: str = ""


@dataclass
class Notebook:
    """A submission's code cells running in a worker, restarted (and replayed) when a cell or a test loses it."""

    cells: list[str]
    preload: list[str]
    hidden: list[str]
    key: bytes
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self):
        self.worker: Worker | None = None
        self.generation = 0
        self.results: list[CellResult] = []
        self.bad: set[int] = set()
        self.restarts = 0
        self.deadline = float("inf")
        self.events: list[str] = []

    # --- the worker's life ---

    def _start(self) -> None:
        if self.worker is not None:
            self.worker.close()
        if self.restarts > self.limits.max_restarts:
            raise WorkerLost(f"the worker was lost {self.restarts} times: grading stopped")
        self.worker = Worker(self.preload, self.hidden, self.limits)
        self.generation += 1

    def _exec(self, index: int) -> CellResult:
        deadline = time.monotonic() + self.limits.seconds
        try:
            reply, _ = self.worker.request({"op": "exec", "cell": index, "source": self.cells[index]}, [], deadline)
        except WorkerLost as err:
            reason = (
                str(err) if time.monotonic() < deadline else f"ran past the time limit of {self.limits.seconds:g} s"
            )
            return CellResult(index, "lost", reason)
        if reply.get("ok"):
            return CellResult(index, "ok")
        error = reply.get("error") or {}
        return CellResult(index, "error", f"{error.get('type', 'Error')}: {error.get('message', '')}"[:500])

    def run(self) -> list[CellResult]:
        """Run every cell once, in order, skipping (and reporting) the ones that lose the worker."""
        self._start()
        for index in range(len(self.cells)):
            result = self._exec(index)
            self.results.append(result)
            if result.status == "lost":
                self.bad.add(index)
                self.events.append(f"cell {index + 1}: {result.message}; the worker was restarted without it")
                self.restarts += 1
                self._start()
                self._replay(upto=index)
        return self.results

    def _replay(self, upto: int) -> None:
        """Run the cells before ``upto`` again in a fresh worker, all but those that lost a worker (a cell that
        failed half-way may still have defined an answer before its error)."""
        for result in self.results[:upto]:
            if result.index in self.bad:
                continue
            again = self._exec(result.index)
            if again.status == "lost":
                self.bad.add(result.index)
                self.restarts += 1
                self._start()
                return self._replay(upto)
        return None

    def ensure(self) -> None:
        """A live worker with every good cell run (after a test lost the previous one)."""
        if self.worker is not None and self.worker.alive():
            return
        self.restarts += 1
        self._start()
        self._replay(upto=len(self.results))

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()

    # --- requests made by the tests ---

    def request(self, header: dict, blobs: list[bytes]) -> tuple[dict, list[bytes]]:
        if self.worker is None or not self.worker.alive():
            raise WorkerLost("the worker was lost earlier in this test")
        if time.monotonic() >= self.deadline:
            self.worker.close()
            raise WorkerLost(f"the question ran past its time limit of {self.limits.seconds:g} s")
        try:
            return self.worker.request(header, blobs, min(self.deadline, time.monotonic() + self.limits.seconds))
        except WorkerLost as err:
            if time.monotonic() >= self.deadline:
                raise WorkerLost(f"your code ran past the question's time limit of {self.limits.seconds:g} s") from None
            raise WorkerLost(f"{err} while running your code") from None

    def seed(self, data: bytes) -> int:
        """A fresh seed for ``data`` (a generator state or a seed): keyed, so the worker cannot invert it."""
        return int.from_bytes(hmac.new(self.key, data, hashlib.sha256).digest()[:8], "big") >> 1

    def lookup(self, name: str) -> object:
        reply, blobs = self.request({"op": "lookup", "name": name}, [])
        if reply.get("missing"):
            return None
        if "error" in reply:
            return None
        return wire.Decoder(blobs, function=lambda entry: RemoteFunction(self, entry, name)).decode(reply["value"])


def _raise_for(error: dict) -> None:
    kind, message = str(error.get("type", "Exception")), str(error.get("message", ""))
    remote = current_remote()
    if message.endswith(NOT_ALLOWED) and remote is not None and remote.rule:
        message = f"{message}: {remote.rule}"
    if kind == "AssertionError":
        raise AssertionError(message)
    if kind == "TypeError":
        raise TypeError(message)
    if kind == "PermissionError":
        raise AssertionError(f"not allowed while grading: {message}")
    raise StudentError(f"your function raised {kind}: {message}")


class RemoteFunction:
    """A stand-in for a student's function in the worker: same parameters; calls go over the wire."""

    def __init__(self, notebook: Notebook, entry: dict, name: str):
        self.notebook, self.handle, self.name = notebook, int(entry["$fn"]), name
        self.generation = notebook.generation
        params = entry.get("params")
        if isinstance(params, list):
            with contextlib.suppress(ValueError, TypeError):
                self.__signature__ = inspect.Signature(
                    [
                        inspect.Parameter(str(n), _KIND(int(k)), default=None if d else inspect.Parameter.empty)
                        for n, k, d in params
                    ]
                )
        self.__name__ = self.__qualname__ = name

    def __repr__(self) -> str:
        return f"<the submission's {self.name}>"

    def _current_handle(self) -> int:
        if self.generation != self.notebook.generation:  # the worker was restarted: find the function again
            fresh = self.notebook.lookup(self.name)
            if not isinstance(fresh, RemoteFunction):
                raise WorkerLost(f"{self.name} is no longer defined after the worker was restarted")
            self.handle, self.generation = fresh.handle, fresh.generation
        return self.handle

    def __call__(self, *args, **kwargs):
        notebook = self.notebook
        generators: list[torch.Generator] = []

        def generator_seed(gen: torch.Generator) -> int:
            generators.append(gen)
            return notebook.seed(gen.get_state().numpy().tobytes())

        encoder = wire.Encoder(generator_seed=generator_seed, track_grad=True)
        header = {"op": "call", "fn": self._current_handle()}
        header["args"], header["kwargs"] = encoder.encode(list(args)), encoder.encode(dict(kwargs))
        remote = current_remote()
        if remote is not None and remote.global_seed is not None:
            header["seed"] = notebook.seed(f"global {remote.global_seed}".encode())
        reply, blobs = notebook.request(header, encoder.blobs)
        for gen in generators:  # the worker used up its copy: move this one on too, so a second call differs
            gen.manual_seed(notebook.seed(gen.get_state().numpy().tobytes() + b" used"))
        if "error" in reply:
            _raise_for(reply["error"])
        decoder = wire.Decoder(blobs, function=lambda entry: RemoteFunction(notebook, entry, self.name))
        try:
            value = decoder.decode(reply.get("value"))
        except wire.WireError as err:
            raise StudentError(f"the result could not be read: {err}") from None
        if "graph" not in reply or not encoder.grad_outputs:
            return value
        outputs = [decoder.grad_inputs[k] for k in sorted(decoder.grad_inputs)]
        link = _Link(notebook, int(reply["graph"]), outputs, [t.shape for t in encoder.grad_outputs])
        attached = _RemoteGraph.apply(link, *encoder.grad_outputs)
        swap = {id(old): new for old, new in zip(outputs, attached, strict=True)}
        return _substitute(value, swap)


def _substitute(value: object, swap: dict) -> object:
    if isinstance(value, torch.Tensor):
        return swap.get(id(value), value)
    if type(value) in (list, tuple):
        return type(value)(_substitute(v, swap) for v in value)
    if type(value) is dict:
        return {k: _substitute(v, swap) for k, v in value.items()}
    return value


@dataclass
class _Link:
    notebook: Notebook
    graph: int
    outputs: list[torch.Tensor]
    input_shapes: list[torch.Size]

    def backward(self, grads: tuple) -> list[torch.Tensor | None]:
        encoder = wire.Encoder()
        header = {"op": "backward", "graph": self.graph, "grads": encoder.encode([g.detach() for g in grads])}
        reply, blobs = self.notebook.request(header, encoder.blobs)
        if "error" in reply:
            _raise_for(reply["error"])
        found = wire.Decoder(blobs).decode(reply.get("grads"))
        if not isinstance(found, list) or len(found) != len(self.input_shapes):
            raise StudentError("the worker sent the wrong number of gradients")
        for g, shape in zip(found, self.input_shapes, strict=True):
            if g is not None and (not isinstance(g, torch.Tensor) or g.shape != shape):
                raise StudentError("the worker sent a gradient of the wrong shape")
        return found


class _RemoteGraph(torch.autograd.Function):
    """Outputs computed in the worker, attached to the grader's inputs; backward asks the worker."""

    @staticmethod
    def forward(ctx, link: _Link, *inputs):
        ctx.link = link
        return tuple(t.clone() for t in link.outputs)

    @staticmethod
    def backward(ctx, *grads):
        found = ctx.link.backward(grads)
        return (None, *found)


class RemoteNamespace(dict):
    """The ``global_environment`` otter's test files read (with ``get``): names looked up in the worker."""

    def __init__(self, notebook: Notebook):
        super().__init__()
        self.notebook = notebook

    def get(self, name, default=None):
        value = self.notebook.lookup(str(name))
        return default if value is None else value
