"""The grading worker holds up against a student: each test runs a notebook cell or a function in a real sandboxed
worker (``gumbel_book.course.remote``) and tries one escape, and the grader's side (this process) checks that it
failed. Issue 24 lists the attacks; the end-to-end versions, graded like a submission, are in
``tests/book/test_course.py``.

One worker serves most tests (starting one imports torch and the package: seconds); the crash tests use their own.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import math
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
import torch

from gumbel_book.course.redteam import ALIAS_CHECKS, ALIASES
from gumbel_book.course.remote import Limits, Notebook, RemoteFunction, RemoteNamespace, StudentError, WorkerLost
from gumbel_book.course.sandbox import landlock_abi
from gumbel_book.exercises import gumbel_max, straight_through
from gumbel_book.exercises.guard import PACKAGE_ANSWERS, remote_checks

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the worker's sandbox is Linux's")

SETUP = """
import math, os, sys
import numpy as np
import torch
from scipy import stats
import gumbel_book as gb
from gumbel_book.labs import gumbel_max as gm_lab, language_models as lm
"""


@pytest.fixture(scope="module")
def secrets(tmp_path_factory):
    """A folder the worker is told to keep out of (like the course folder), with a "hidden test" in it."""
    folder = tmp_path_factory.mktemp("course-secrets")
    (folder / "hidden_test.py").write_text("EXPECTED = 42\n")
    return folder


@pytest.fixture(scope="module")
def worker(secrets):
    notebook = Notebook(
        [SETUP], ["gumbel_book.labs.gumbel_max", "gumbel_book.labs.language_models"], [str(secrets)], b"test-key"
    )
    notebook.limits = Limits(seconds=60)
    results = notebook.run()
    assert results[0].status == "ok", results[0].message
    yield notebook
    notebook.close()


def run(notebook: Notebook, source: str) -> tuple[str, str]:
    """Run ``source`` as the next cell: (status, message)."""
    notebook.cells.append(source)
    notebook.ensure()
    notebook.deadline = time.monotonic() + 60
    result = notebook._exec(len(notebook.cells) - 1)
    notebook.results.append(result)
    notebook.deadline = float("inf")
    return result.status, result.message


def function(notebook: Notebook, source: str, name: str) -> RemoteFunction:
    status, message = run(notebook, source)
    assert status == "ok", message
    notebook.deadline = time.monotonic() + 60
    fn = RemoteNamespace(notebook).get(name)
    assert isinstance(fn, RemoteFunction)
    return fn


def test_the_sandbox_is_on(worker):
    sandbox = worker.worker.sandbox
    assert sandbox["audit_hook"] == "on" and sandbox["blocker"] == "on" and sandbox["numpy_random_replaced"] > 50
    if landlock_abi() >= 1:
        assert sandbox["landlock"].startswith("on")
    assert sandbox["network"].startswith("on") or "Operation not permitted" in sandbox["network"]


# --- what the worker cannot do ---------------------------------------------------------------------------------


def test_cannot_write_outside_its_folder(worker, tmp_path):
    target = tmp_path / "written_by_the_worker.txt"
    status, message = run(worker, f"open({str(target)!r}, 'w').write('6/6')")
    assert status == "error" and "PermissionError" in message
    assert not target.exists()
    status, _ = run(worker, "open('inside.txt', 'w').write('fine'); assert open('inside.txt').read() == 'fine'")
    assert status == "ok"  # its own folder is writable


def test_cannot_read_the_hidden_tests_or_the_package_sources(worker, secrets):
    for path in (secrets / "hidden_test.py", Path(gumbel_max.__file__), Path(straight_through.__file__)):
        status, message = run(worker, f"open({str(path)!r}).read()")
        assert status == "error" and "PermissionError" in message, (path, message)
    status, message = run(worker, f"os.listdir({str(secrets)!r})")
    assert status == "error" and "PermissionError" in message


def test_cannot_load_a_fresh_copy_of_a_package_module(worker):
    source = (
        "import importlib.util\n"
        "spec = importlib.util.spec_from_file_location('fresh', gb.sampling.__file__)\n"
        "fresh = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(fresh)\n"
    )
    status, message = run(worker, source)
    assert status == "error" and "PermissionError" in message


def test_cannot_kill_or_see_the_grader(worker):
    me = os.getpid()
    for source in (
        f"os.kill({me}, {int(signal.SIGTERM)})",
        f"os.killpg(os.getpgid({me}), {int(signal.SIGTERM)})",
        f"import ctypes; ctypes.CDLL(None).kill({me}, {int(signal.SIGKILL)})",
        f"open('/proc/{me}/cmdline').read()",
    ):
        status, message = run(worker, source)
        assert status == "error", source
    assert os.getpid() == me  # still here


def test_cannot_start_processes_or_threads(worker):
    for source in (
        "import subprocess; subprocess.run(['sleep', '30'])",
        "os.fork()",
        "os.system('sleep 30 &')",
        "import threading; threading.Thread(target=print).start()",
        "import multiprocessing; multiprocessing.Process(target=print).start()",
    ):
        status, message = run(worker, source)
        assert status == "error", source
        assert any(m in message for m in ("not allowed", "PermissionError", "can't start new thread")), message


def test_has_no_network(worker):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        status, message = run(worker, f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2)")
        assert status == "error", message
    finally:
        listener.close()


def test_cannot_switch_the_blocker_off(worker):
    for source in (
        "sys.setprofile(None)",
        "sys.settrace(lambda *a: None)",
        "import gc; gc.get_objects()",
        "sys.getprofile().__code__ = (lambda *a: None).__code__",
        "compile('x = 1', gb.sampling.__file__, 'exec')",
        "gb.sampling.gumbel_max.__code__.replace(co_filename='<mine>')",
    ):
        status, message = run(worker, source)
        assert status == "error", source
    with pytest.raises(AssertionError, match="not allowed"):
        with remote_checks():
            worker.deadline = time.monotonic() + 60
            function(worker, "def again(shape, generator=None):\n    return gb.sample_gumbel(shape)", "again")((3,))


def test_the_in_process_layers_hold_alone(secrets, tmp_path):
    """On a kernel without Landlock, seccomp or user namespaces, the audit hook still refuses the escapes."""
    notebook = Notebook([SETUP], [], [str(secrets)], b"k", Limits(seconds=60, kernel_layers=False))
    try:
        assert notebook.run()[0].status == "ok"
        assert notebook.worker.sandbox["landlock"].startswith("off") and notebook.worker.sandbox["audit_hook"] == "on"
        target = tmp_path / "escaped.txt"
        for source in (
            f"open({str(target)!r}, 'w').write('6/6')",
            f"open({str(secrets / 'hidden_test.py')!r}).read()",
            f"os.listdir({str(secrets)!r})",
            f"open('/proc/{os.getpid()}/cmdline').read()",
            "os.listdir('/proc')",
            f"os.kill({os.getpid()}, {int(signal.SIGTERM)})",
            "import threading; threading.Thread(target=print).start()",
            "import subprocess; subprocess.run(['true'])",
            "import socket; socket.socket()",
            "import ctypes; ctypes.CDLL(None)",
        ):
            assert run(notebook, source)[0] == "error", source
        assert not target.exists()
    finally:
        notebook.close()


# --- the package's answers are unavailable by where they come from ---------------------------------------------

EXPRESSIONS = {
    "torch.ops.aten.multinomial": "torch.ops.aten.multinomial(torch.ones(3), 2)",
    "_VariableFunctions.multinomial": "torch._C._VariableFunctions.multinomial(torch.ones(3), 2)",
    "Tensor.multinomial": "torch.ones(3).multinomial(2)",
    "np.random.gumbel": "np.random.gumbel(size=3)",
    "np.random.default_rng": "np.random.default_rng(0).gumbel(size=3)",
    "scipy gumbel_r.rvs": "stats.gumbel_r.rvs(size=3)",
    "LogitRelaxedBernoulli": "torch.distributions.relaxed_bernoulli.LogitRelaxedBernoulli("
    "torch.tensor(1.0), logits=torch.zeros(3)).rsample()",
    "ExpRelaxedCategorical": "torch.distributions.relaxed_categorical.ExpRelaxedCategorical("
    "torch.tensor(1.0), logits=torch.zeros(3)).rsample()",
    "_kl_categorical_categorical": "torch.distributions.kl._kl_categorical_categorical("
    "torch.distributions.Categorical(logits=torch.zeros(3)), torch.distributions.Categorical(logits=torch.ones(3)))",
    "Exponential.rsample saved": "SAVED(torch.distributions.Exponential(torch.ones(3)))",
    "lm.exponential_race": "lm.exponential_race(torch.zeros(2, 3), generator=torch.Generator())",
    "ordered_tuple_probabilities": "gm_lab.ordered_tuple_probabilities((0.5, 0.3, 0.2), 2)",
    "F.gumbel_softmax": "torch.nn.functional.gumbel_softmax(torch.zeros(3))",
    "a package function called by the grader": None,
}


@pytest.mark.parametrize("alias", EXPRESSIONS, ids=lambda a: a.replace(" ", "-"))
def test_aliases_of_the_answers_fail(worker, alias):
    expression = EXPRESSIONS[alias]
    if expression is None:  # the answer IS a package function: the worker's own code calls it for the grader
        fn = function(worker, "aliased = gb.sampling.sample_gumbel", "aliased")
    else:
        source = "SAVED = torch.distributions.Exponential.rsample\n"
        source += f"def answer(*args, **kwargs):\n    return {expression}"
        fn = function(worker, source, "answer")
    with remote_checks(), pytest.raises(AssertionError, match="is not allowed in this exercise"):
        worker.deadline = time.monotonic() + 60
        fn((3,))


CALL_WITH_NONES = """
import inspect
def answer(module, name):
    import importlib
    fn = getattr(importlib.import_module(module), name)
    params = inspect.signature(fn).parameters.values()
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return fn(*[None for p in params if p.default is p.empty and p.kind in positional])
"""


def test_every_known_answer_is_blocked(worker):
    """Each is called with arguments that bind (None), so it starts, and the blocker stops it; a module the
    notebook did not import cannot even be imported (its source is out of reach)."""
    fn = function(worker, CALL_WITH_NONES, "answer")
    for spec in PACKAGE_ANSWERS:
        with remote_checks(), pytest.raises(AssertionError, match="not allowed"):
            worker.deadline = time.monotonic() + 60
            fn(*spec.split(":"))


@pytest.mark.parametrize("question", ALIAS_CHECKS)
def test_the_red_team_aliases_are_correct_answers_when_nothing_blocks_them(question):
    """The negative control of the red-team notebooks: each alias of ``redteam.ALIASES`` passes its check when the
    guard is off (under ``remote_checks`` own_work blocks nothing in this process), so a 0 for it in the grader
    comes from the worker's blocker, not from a wrong answer."""
    chapter, check, name = ALIAS_CHECKS[question]
    namespace = {"torch": torch, "lab": importlib.import_module(f"gumbel_book.labs.{chapter}")}
    exec(ALIASES[chapter][question], namespace)  # noqa: S102 - the red-team's own code
    with remote_checks(), contextlib.redirect_stdout(io.StringIO()):
        assert getattr(importlib.import_module(f"gumbel_book.exercises.{chapter}"), check)(namespace[name]) is None


def test_allowed_helpers_and_plain_torch_still_work(worker):
    source = (
        "def detect_parts(tokens):\n"
        "    r = lm.keyed_uniforms(3, tokens[None, :4], 10)\n"
        "    return float(stats.gamma.sf(-torch.log1p(-r).sum().item(), 10)), torch.rand(2).shape[0]\n"
    )
    fn = function(worker, source, "detect_parts")
    with remote_checks():
        worker.deadline = time.monotonic() + 60
        p, n = fn(torch.arange(6))
    assert 0 <= p <= 1 and n == 2


# --- the checks run in the grader, on data -----------------------------------------------------------------------


def test_a_correct_answer_passes_and_gradients_flow_back(worker):
    source = (
        "def my_st(logits, generator):\n"
        "    probs = torch.softmax(logits, dim=-1)\n"
        "    g = -torch.log(torch.empty_like(logits).exponential_(generator=generator))\n"
        "    y = torch.nn.functional.one_hot((logits.detach() + g).argmax(-1), logits.shape[-1]).to(probs.dtype)\n"
        "    return y + (probs - probs.detach())\n"
    )
    fn = function(worker, source, "my_st")
    with remote_checks():
        worker.deadline = time.monotonic() + 60
        assert straight_through.check_straight_through_layer(fn) is None


def test_rewriting_the_checks_in_the_notebook_changes_nothing(worker):
    source = (
        "import gumbel_book.exercises.gumbel_max as m\n"
        "m.check_gumbel_sampler = lambda *a, **k: None\n"
        "def zeros(shape, generator=None):\n"
        "    return torch.zeros(shape)\n"
    )
    fn = function(worker, source, "zeros")
    with remote_checks(), pytest.raises(AssertionError, match="Gumbel"):
        worker.deadline = time.monotonic() + 60
        gumbel_max.check_gumbel_sampler(fn)


def test_the_worker_never_sees_the_seed_a_test_asks_for(worker):
    fn = function(worker, "def seed_of(generator):\n    return generator.initial_seed()", "seed_of")
    with remote_checks():
        worker.deadline = time.monotonic() + 60
        seen = [fn(torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    assert seen[0] == seen[1] != seen[2] and 0 not in seen and 1 not in seen


# --- one failure costs one question ------------------------------------------------------------------------------


def test_exits_hangs_and_crashes_cost_only_that_call(tmp_path):
    cells = [
        "import os, sys, torch",
        "def exits(shape, generator=None):\n    raise SystemExit(0)",
        "def interrupted(shape, generator=None):\n    raise KeyboardInterrupt",
        "def dies(shape, generator=None):\n    os._exit(3)",
        "def hangs(shape, generator=None):\n    while True:\n        pass",
        "def fine(shape, generator=None):\n    return -torch.log(torch.empty(shape).exponential_(generator=generator))",
        "print('x' * 200_000_000)",  # a huge output fails the cell (file size limit), nothing else
        "big = torch.empty(2**40)",  # over the memory limit: fails the cell, nothing else
        "def half(shape, generator=None):\n    return torch.zeros(shape)\nraise ValueError('after a definition')",
    ]
    # No cell hangs, so a generous cell limit costs nothing; it keeps a slow machine from losing the worker on the
    # 200 MB print (CI once did at a 3 s limit). Only the call of ``hangs`` waits out its (short) question deadline.
    notebook = Notebook(cells, [], [str(tmp_path)], b"k", Limits(seconds=60, file_mb=16))
    try:
        results = notebook.run()
        statuses = [(r.status, r.message[:80]) for r in results]
        assert [r.status for r in results] == ["ok"] * 6 + ["error"] * 3, statuses
        env = RemoteNamespace(notebook)
        outcomes = {}
        for name in ("exits", "interrupted", "dies", "hangs", "fine", "half"):
            notebook.ensure()
            notebook.deadline = time.monotonic() + (3 if name == "hangs" else 60)
            with remote_checks():
                try:
                    out = env.get(name)((10,))
                    outcomes[name] = "ok" if math.isfinite(float(out.sum())) else "bad"
                except (StudentError, WorkerLost) as err:
                    outcomes[name] = type(err).__name__
    finally:
        notebook.close()
    assert outcomes == {
        "exits": "StudentError",
        "interrupted": "StudentError",
        "dies": "WorkerLost",
        "hangs": "WorkerLost",
        "fine": "ok",
        "half": "ok",  # defined by a cell that failed after it: replayed after each restart
    }
    assert not Path(notebook.worker.workdir).exists()  # the worker's folder is gone on every path


# --- the wire carries data only ----------------------------------------------------------------------------------


def test_values_cross_the_wire_as_data():
    import numpy as np

    from gumbel_book.course import wire

    value = {
        "scalar": torch.tensor(2.5, dtype=torch.float64),
        "empty": torch.zeros(0, 3),
        "flags": torch.tensor([True, False]),
        "half": torch.ones(2, dtype=torch.float16),
        "ints": torch.arange(6).reshape(2, 3)[:, 1:],  # not contiguous
        "nested": [1, 2.0, None, "text", (math.nan, math.inf)],
        "array": np.arange(4.0),
        "np_scalar": np.float64(0.25),
    }
    encoder = wire.Encoder()
    header = encoder.encode(value)
    back = wire.Decoder(encoder.blobs).decode(json.loads(json.dumps(header)))
    for name in ("scalar", "empty", "flags", "half", "ints"):
        assert torch.equal(back[name], value[name]) and back[name].dtype == value[name].dtype, name
    assert back["nested"][:4] == [1, 2.0, None, "text"] and math.isnan(back["nested"][4][0])
    assert np.array_equal(back["array"], value["array"]) and back["np_scalar"] == 0.25
    assert type(wire.Decoder([]).decode(wire.Encoder().encode(object()))).__name__ == "object"


@pytest.mark.parametrize(
    "message",
    [
        {"$t": 0, "dtype": "float64", "shape": [3]},  # 8 bytes for 3 float64s
        {"$t": 0, "dtype": "object", "shape": [1]},
        {"$t": 5, "dtype": "uint8", "shape": [1]},
        {"$t": 0, "dtype": "uint8", "shape": [-8]},
        {"$unknown": 1},
    ],
)
def test_malformed_values_are_refused(message):
    from gumbel_book.course import wire

    with pytest.raises(wire.WireError):
        wire.Decoder([b"\0" * 8]).decode(message)
    deep: list = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(wire.WireError, match="deep"):
        wire.Decoder([]).decode(deep)


# --- at home, own_work blocks the same answers by the same rule ------------------------------------------------


def test_own_work_at_home_blocks_the_aliases_and_restores_everything():
    import numpy as np

    from gumbel_book.exercises.guard import own_work
    from gumbel_book.labs import gumbel_max as gm_lab

    before = (np.random.gumbel, sys.getprofile())
    aliases = (
        lambda: torch.ops.aten.multinomial(torch.ones(3), 2),
        lambda: torch._C._VariableFunctions.multinomial(torch.ones(3), 2),
        lambda: np.random.gumbel(size=3),
        lambda: np.random.default_rng(0),
        lambda: torch.distributions.kl._kl_categorical_categorical(
            torch.distributions.Categorical(logits=torch.zeros(3)),
            torch.distributions.Categorical(logits=torch.ones(3)),
        ),
        lambda: gm_lab.ordered_tuple_probabilities((0.5, 0.3, 0.2), 2),
    )
    for alias in aliases:
        with pytest.raises(AssertionError, match="is not allowed in this exercise: use only x"), own_work("use only x"):
            alias()
    assert (np.random.gumbel, sys.getprofile()) == before
    assert int(torch.ops.aten.multinomial(torch.ones(3), 1)) in (0, 1, 2) and np.random.gumbel(size=2).shape == (2,)
    assert gm_lab.ordered_tuple_probabilities((0.5, 0.5), 1)[(0,)] == pytest.approx(0.5)
