"""The grading worker: runs one student notebook inside :mod:`.sandbox` and answers the grader's requests.

Workers are forked by a *zygote* (:func:`zygote`): one process per grader that imports torch, scipy and the
book's modules once, runs no student code, and on each request forks a child that enters the sandbox and serves
(:func:`serve`). A fork takes milliseconds where importing takes seconds, so a worker lost to a crash or a hang
is cheap to replace. The child is single-threaded (torch runs with one thread), as a private network namespace
and the seccomp filter require.

Requests and replies go over two pipes, as data (:mod:`.wire`). Requests:

- ``exec``: run a cell's source in the notebook's namespace; reply ``ok`` or the error's type and message;
- ``lookup``: a name of the namespace, as a value or, for a function, a handle and its parameters;
- ``call``: call a function (by handle) with arguments sent as data; tensors marked ``grad`` become leaves that
  require grad, and the reply's tensors that require grad are kept with them as a graph (by handle);
- ``backward``: gradients of a graph's inputs for given output gradients;
- ``release``: forget the graphs.

Whatever the notebook does, it only ever changes what this process replies: the checks run in the grader.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import sys
import time
import traceback

ZYGOTE_BOOT = "import sys, gumbel_book.course.worker as w; w.zygote(int(sys.argv[1]), sys.argv[2:])"
ZYGOTE_PRELOAD = ("torch", "numpy", "scipy.stats", "gumbel_book", "gumbel_book.exercises")
MAX_MESSAGE = 2000
_MAGIC = re.compile(r"^(\s*)([%!?].*)$")


def _error(err: BaseException) -> dict:
    """The error as data: its type name and message (student code may make ``str`` fail: that is caught too)."""
    try:
        message = str(err)
    except BaseException:  # noqa: BLE001 - a student's __str__ may raise anything
        message = "(the error's message could not be read)"
    name = type(err).__name__ if isinstance(type(err).__name__, str) else "Exception"
    return {"type": name[:80], "message": message[:MAX_MESSAGE]}


def strip_magics(source: str) -> str:
    """A cell without IPython syntax: ``%line`` magics and ``!shell`` lines become ``pass``; a ``%%cell`` magic's
    body is kept as plain Python."""
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        lines = lines[1:]
    return "\n".join(_MAGIC.sub(r"\1pass", line) for line in lines)


class Session:
    """The worker's state: the notebook's namespace, the functions handed out, the graphs kept for backward."""

    def __init__(self, replies: int):
        self.replies = replies
        self.namespace: dict = {"__name__": "__main__", "__builtins__": __builtins__}
        self.functions: dict[int, object] = {}
        self.graphs: dict[int, tuple[list, list]] = {}

    def reply(self, header: dict, blobs: list[bytes] = ()) -> None:
        from .wire import send

        send(self.replies, header, list(blobs))

    def register(self, fn: object) -> dict:
        handle = len(self.functions) + 1
        self.functions[handle] = fn
        try:
            params = [
                [p.name, int(p.kind), p.default is not inspect.Parameter.empty]
                for p in inspect.signature(fn).parameters.values()
            ]
        except BaseException:  # noqa: BLE001 - a student's object may raise anything from __signature__
            params = None
        return {"$fn": handle, "params": params}

    def exec_cell(self, request: dict) -> dict:
        start = time.perf_counter()
        try:
            code = compile(strip_magics(str(request["source"])), f"<cell {int(request['cell'])}>", "exec")
            exec(code, self.namespace)  # noqa: S102 - the submission, inside the sandbox
        except BaseException as err:  # noqa: BLE001 - SystemExit and KeyboardInterrupt cost this cell only
            return {"ok": False, "error": _error(err), "seconds": time.perf_counter() - start}
        return {"ok": True, "seconds": time.perf_counter() - start}

    def lookup(self, request: dict) -> tuple[dict, list[bytes]]:
        from .wire import Encoder

        name = str(request["name"])
        if name not in self.namespace:
            return {"missing": True}, []
        encoder = Encoder(function=self.register)
        try:
            value = encoder.encode(self.namespace[name])
        except BaseException as err:  # noqa: BLE001
            return {"error": _error(err)}, []
        return {"value": value}, encoder.blobs

    def call(self, request: dict, blobs: list[bytes]) -> tuple[dict, list[bytes]]:
        import torch

        from .wire import Decoder, Encoder

        fn = self.functions.get(int(request["fn"]))
        if fn is None:
            return {"error": {"type": "LookupError", "message": "no such function"}}, []
        decoder = Decoder(blobs, generator=lambda seed: torch.Generator().manual_seed(seed))
        args = decoder.decode(request["args"])
        kwargs = decoder.decode(request["kwargs"])
        leaves = [decoder.grad_inputs[i].requires_grad_(True) for i in sorted(decoder.grad_inputs)]
        if request.get("seed") is not None:
            torch.manual_seed(int(request["seed"]))
        encoder = Encoder(function=self.register, track_grad=bool(leaves))
        try:
            result = fn(*args, **kwargs)
            value = encoder.encode(result)
        except BaseException as err:  # noqa: BLE001 - whatever the function raises is the answer's failure
            return {"error": _error(err)}, []
        header = {"value": value}
        if encoder.grad_outputs:
            handle = len(self.graphs) + 1
            self.graphs[handle] = (encoder.grad_outputs, leaves)
            header["graph"] = handle
        return header, encoder.blobs

    def backward(self, request: dict, blobs: list[bytes]) -> tuple[dict, list[bytes]]:
        import torch

        from .wire import Decoder, Encoder

        outputs, leaves = self.graphs[int(request["graph"])]
        grads = Decoder(blobs).decode(request["grads"])
        pairs = [(o, g) for o, g in zip(outputs, grads, strict=True) if g is not None]
        encoder = Encoder()
        try:
            found = torch.autograd.grad(
                [o for o, _ in pairs], leaves, [g for _, g in pairs], allow_unused=True, retain_graph=True
            )
            value = encoder.encode([None if g is None else g.detach() for g in found])
        except BaseException as err:  # noqa: BLE001
            return {"error": _error(err)}, []
        return {"grads": value}, encoder.blobs


def _preload(modules: list[str]) -> list[str]:
    import importlib

    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - a module the notebook names but cannot import
            failed.append(f"{name}: {type(err).__name__}")
    return failed


def warm_up() -> None:
    """Run torch's common kernels forward and backward once: some pay a one-time cost of seconds on first use
    (softmax's backward with a dense gradient does), which the zygote pays for all its workers."""
    import torch

    for dtype in (torch.float32, torch.float64):
        x = torch.randn(64, 5, dtype=dtype, requires_grad=True)
        hot = torch.nn.functional.one_hot(x.argmax(-1), 5).to(dtype)
        outs = [
            torch.softmax(x, -1),
            torch.log_softmax(x, -1),
            torch.logsumexp(x, -1),
            torch.sigmoid(x) + torch.log1p(x.exp()) + torch.logaddexp(x, -x) + torch.expm1(x),
            hot + x - x.detach(),
            x.topk(2, -1).values.gather(1, torch.zeros(64, 1, dtype=torch.long)),
            torch.where(x > 0, x, -x).clamp(min=-1).cumsum(-1).sort(-1).values,
            x @ x.T,
        ]
        torch.autograd.grad(outs, x, [torch.ones_like(o) for o in outs])
        torch.empty(8, dtype=dtype).exponential_()
        torch.rand(8, dtype=dtype)


def zygote(control: int, preload: list[str]) -> None:
    """Import what every worker needs, then fork a worker for each request on the ``control`` socket.

    A request is a JSON config and three file descriptors (the request pipe, the reply pipe, the log file); the
    reply is the child's pid. Children are reaped by the kernel (SIGCHLD ignored), so the grader kills them by pid.
    """
    import pkgutil
    import signal
    import socket

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _preload([*ZYGOTE_PRELOAD, *preload])
    import gumbel_book.labs as labs

    _preload([f"gumbel_book.labs.{m.name}" for m in pkgutil.iter_modules(labs.__path__)])
    import torch

    torch.set_num_threads(1)
    warm_up()
    from . import sandbox, wire  # noqa: F401 - imported before the blocker, which stops later imports of the package

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    sock = socket.socket(fileno=control)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1 << 20, 3)
        except OSError:
            break
        if not message or len(fds) != 3:
            break
        pid = os.fork()
        if pid == 0:
            sock.close()
            _child(json.loads(message), fds)
        for fd in fds:
            os.close(fd)
        sock.send(json.dumps({"pid": pid}).encode())
    os._exit(0)


def _child(config: dict, fds: list[int]) -> None:
    """A forked worker: its own session, output to its log, a private network, then :func:`serve`; never returns."""
    from . import sandbox

    try:
        os.setsid()
        os.dup2(fds[2], 1)
        os.dup2(fds[2], 2)
        os.close(fds[2])
        config["requests"], config["replies"] = fds[0], fds[1]
        serve(config, sandbox.private_network() if config.get("kernel_layers", True) else "off (not asked for)")
    except BaseException:  # noqa: BLE001 - report, then leave without running the zygote's loop
        traceback.print_exc()
    finally:
        os._exit(1)


def serve(config: dict, network: str) -> None:
    """The worker's life: limits, imports, Landlock, seccomp, the blocker and the audit hook, then requests."""
    from . import sandbox

    sandbox.set_limits(config["memory_mb"], config["cpu_s"], config["file_mb"])
    os.chdir(config["workdir"])
    os.environ["HOME"] = os.environ["TMPDIR"] = config["workdir"]
    import tempfile

    import torch

    tempfile.tempdir = config["workdir"]
    torch.set_num_threads(1)
    failed = _preload(config["preload"])
    sys.stdout.flush()
    import gumbel_book
    from gumbel_book.exercises.guard import answer_origins

    origins = answer_origins()
    package_dir = os.path.dirname(os.path.abspath(gumbel_book.__file__))
    read = sandbox.readable_folders(package_dir)
    report = {"network": network, "preload_failed": failed}
    if config.get("kernel_layers", True):
        report["landlock"] = sandbox.landlock(read, [config["workdir"], "/dev/null"])
        report["seccomp"] = sandbox.no_new_tasks()
    else:  # for the tests of the in-process layers alone, as on a kernel without Landlock and seccomp
        report["landlock"] = report["seccomp"] = "off (not asked for)"
    report |= sandbox.arm(config["workdir"], config["hidden"], origins)
    session = Session(config["replies"])
    session.reply({"ready": True, "sandbox": report, "pid": os.getpid()})
    _loop(session, config["requests"])


def _loop(session: Session, requests: int) -> None:
    from .wire import WireError, receive

    handlers = {
        "exec": lambda h, b: (session.exec_cell(h), []),
        "lookup": lambda h, b: session.lookup(h),
        "call": session.call,
        "backward": session.backward,
        "release": lambda h, b: (session.graphs.clear() or {"ok": True}, []),
    }
    while True:
        try:
            header, blobs = receive(requests)
        except WireError:
            break
        op = header.get("op")
        if op == "exit" or op not in handlers:
            break
        try:
            reply, out = handlers[op](header, blobs)
        except Exception as err:  # noqa: BLE001 - a malformed request: say so, keep serving
            reply, out = {"error": _error(err), "trace": traceback.format_exc()[-MAX_MESSAGE:]}, []
        session.reply(reply, out)
    sys.stdout.flush()
    os._exit(0)
