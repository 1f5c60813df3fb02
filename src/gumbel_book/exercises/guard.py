"""What every exercise check shares: the argument checks, and a guard that makes ready-made answers unavailable.

The answers are blocked by where their code comes from, not by a list of names, so every alias fails too:

- every function defined in the book's own package (``gumbel_book``), except the helpers an exercise allows
  (:data:`ALLOWED_HELPERS`) and this module;
- the sampling and density code of ``torch.distributions`` (everything but the constructors), ``kl`` included;
- ``torch.nn.functional.gumbel_softmax``;
- ``multinomial`` at the dispatcher level, so ``torch.multinomial``, ``Tensor.multinomial``,
  ``torch.ops.aten.multinomial`` and ``torch._C._VariableFunctions.multinomial`` all raise;
- the samplers of ``numpy.random`` and the ``rvs`` methods of ``scipy.stats``.

A blocked call raises ``AssertionError("<name> is not allowed in this exercise: <rule>")``. Python code is
recognised by a profile function (``sys.setprofile``) that looks at the file and first line of every function
called, and whether its caller is itself inside the same package (the package's functions may call each other).

:func:`own_work` switches this on while a check runs the student's function in the same process (a notebook at
home). The autograder of ``gumbel_book.course`` does not rely on it: there the student's notebook runs in a
separate worker process where the same blocker is switched on for good, and the checks run in the grader's own
process, which only sends inputs and receives data (:func:`remote_checks` tells ``own_work`` so).
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import importlib
import inspect
import math
import os
import re
import sys
import types
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from numbers import Real

import torch

NOT_ALLOWED = "is not allowed in this exercise"

# Package functions an exercise lets the student call ("module:function"); everything else in the package is off.
ALLOWED_HELPERS = ("gumbel_book.labs.language_models:keyed_uniforms",)

# Ready-made answers the origin rule must catch, as "module:function": not used for blocking (the rule covers the
# whole package), but the tests try each one, so a new alias of an old answer is caught by a test, not a student.
PACKAGE_ANSWERS = (
    "gumbel_book.sampling:sample_gumbel",
    "gumbel_book.sampling:gumbel_from_exponential",
    "gumbel_book.sampling:gumbel_max",
    "gumbel_book.sampling:gumbel_topk",
    "gumbel_book.sampling:gumbel_softmax",
    "gumbel_book.sampling:concrete_log_prob",
    "gumbel_book.schedule:anneal_tau",
    "gumbel_book.labs.gumbel_max:gumbel_inverse_cdf",
    "gumbel_book.labs.gumbel_max:gumbel_eps_form",
    "gumbel_book.labs.gumbel_max:sequential_without_replacement",
    "gumbel_book.labs.gumbel_max:ordered_tuple_probabilities",
    "gumbel_book.labs.gumbel_softmax:relaxed_samples",
    "gumbel_book.labs.reparameterization:gradient_samples",
    "gumbel_book.labs.reparameterization:exact_variance",
    "gumbel_book.straight_through:straight_through_softmax",
    "gumbel_book.straight_through:straight_through_given",
    "gumbel_book.straight_through:reinmax",
    "gumbel_book.straight_through:reinmax_given",
    "gumbel_book.straight_through:conditional_gumbel",
    "gumbel_book.straight_through:gumbel_rao",
    "gumbel_book.estimators:sample_grads",
    "gumbel_book.estimators:batched_sample_grads",
    "gumbel_book.estimators:estimate_grad",
    "gumbel_book.exercises.straight_through:exact_mean",
    "gumbel_book.vae.model:kl_categorical",
    "gumbel_book.vae.model:sample_latent",
    "gumbel_book.vae.model:importance_weighted_bound",
    "torch.nn.functional:gumbel_softmax",
    "torch.distributions.kl:kl_divergence",
)
SCIPY_SAMPLERS = ("rvs", "_rvs", "random_state")  # scipy.stats functions that draw samples (the rest is allowed)
ALLOWED_DISTRIBUTION_CODE = ("__init__",)  # constructing a torch.distributions object is harmless; using it is not


def check_callable(fn: object, what: str = "the answer") -> None:
    """Raise ``TypeError`` (the only TypeError a check raises) when the answer is not a function."""
    if not callable(fn):
        raise TypeError(f"{what} must be a function, got {type(fn).__name__}: {fn!r}")


def answer_digest(question: str, value: float) -> str:
    """A short SHA-256 of ``question`` and ``value`` to four significant digits.

    A numeric answer's check compares digests, so the answer is in no file a student installs (the book's solution
    states it). (A check that says "correct" can always be queried; what a digest
    keeps out of the package is the derivation, which the formula computing an expected value would give away.)
    """
    return hashlib.sha256(f"{question}:{value:.4g}".encode()).hexdigest()[:16]


def check_digest(value: float, question: str, right: str, slips: dict[str, str], wrong: str) -> None:
    """Raise the hint of the slip whose digest ``value`` has, else ``wrong`` unless its digest is ``right``."""
    found = answer_digest(question, value)
    if found in slips:
        raise AssertionError(slips[found])
    assert found == right, wrong


def check_number(value: object, what: str = "the answer") -> float:
    """Return ``value`` as a float; a non-number is a wrong answer (``AssertionError``), not a type error."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    assert isinstance(value, Real) and not isinstance(value, bool), f"{what} must be a number, got {value!r}"
    value = float(value)
    assert math.isfinite(value), f"{what} must be a finite number, got {value!r}"
    return value


# --- checks that run the student's function in another process --------------------------------------------------


@dataclass
class RemoteCalls:
    """What the autograder's stand-ins for the student's functions read: the exercise's rule and the global seed.

    The checks run in the grader's process and the student's functions in a worker; a check's ``own_work(rule)``
    and ``seed_global(seed)`` are recorded here instead of acting on the grader's own process.
    """

    rule: str = ""
    global_seed: int | None = None
    history: list[str] = field(default_factory=list)


_REMOTE: contextvars.ContextVar[RemoteCalls | None] = contextvars.ContextVar("gumbel_book_remote", default=None)


@contextlib.contextmanager
def remote_checks() -> Iterator[RemoteCalls]:
    """Run checks whose answers are stand-ins for functions in a worker process (the autograder's mode)."""
    calls = RemoteCalls()
    token = _REMOTE.set(calls)
    try:
        yield calls
    finally:
        _REMOTE.reset(token)


def current_remote() -> RemoteCalls | None:
    """The calls recorder of :func:`remote_checks`, or None outside it."""
    return _REMOTE.get()


def seed_global(seed: int) -> None:
    """Seed torch's global generator for a student function that takes no generator (or the worker's, remotely)."""
    remote = _REMOTE.get()
    if remote is not None:
        remote.global_seed = int(seed)
        return
    torch.manual_seed(seed)


def call_with_generator(fn: Callable, *args, seed: int):
    """Call ``fn(*args, generator=...)`` if it accepts a generator, else seed the global RNG and call ``fn(*args)``."""
    gen = torch.Generator().manual_seed(seed)
    try:
        params = inspect.signature(fn).parameters
        takes_generator = "generator" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())
    except (TypeError, ValueError):
        takes_generator = False
    if takes_generator:
        return fn(*args, generator=gen)
    seed_global(seed)
    return fn(*args)


# --- where the answers come from --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Origins:
    """Where blocked code lives: folders, single functions ``(file, first line)``, and named functions in folders.

    A function in a folder may be called from the same folder (the innermost one that holds both: the course tools
    are a folder of their own, so they cannot call the package's answers for a student). ``roots`` are the folders
    modules are imported from (for readable names).
    """

    folders: tuple[str, ...]
    roots: tuple[str, ...]
    functions: tuple[tuple[str, int], ...]
    named: tuple[tuple[str, tuple[str, ...]], ...]
    allowed_functions: tuple[tuple[str, int], ...]
    allowed_names: tuple[tuple[str, tuple[str, ...]], ...]


def _folder(module: types.ModuleType) -> str:
    """The folder of a package, as its functions' code names their files."""
    return os.path.dirname(os.path.abspath(module.__file__)) + os.sep


def _root(module: types.ModuleType) -> str:
    """The folder a package is imported from (``site-packages`` for ``torch.distributions``)."""
    folder = _folder(module).rstrip(os.sep)
    for _ in module.__name__.split("."):
        folder = os.path.dirname(folder)
    return folder + os.sep


def _code_of(spec: str) -> types.CodeType:
    module_name, name = spec.split(":")
    fn = getattr(importlib.import_module(module_name), name)
    while hasattr(fn, "__wrapped__"):
        fn = fn.__wrapped__
    return fn.__code__


def _location(code: types.CodeType) -> tuple[str, int]:
    return (code.co_filename, code.co_firstlineno)


def answer_origins(allowed: Sequence[str] = ALLOWED_HELPERS) -> Origins:
    """The origins blocked in every exercise (see the module docstring); ``allowed`` are "module:function"
    exceptions."""
    import scipy.stats
    import torch.distributions
    import torch.nn.functional

    import gumbel_book

    folders = (_folder(gumbel_book), _folder(gumbel_book) + "course" + os.sep, _folder(torch.distributions))
    return Origins(
        folders=folders,
        roots=tuple(dict.fromkeys(_root(m) for m in (gumbel_book, torch.distributions, scipy.stats))),
        functions=(_location(torch.nn.functional.gumbel_softmax.__code__),),
        named=((_folder(scipy.stats), SCIPY_SAMPLERS),),
        allowed_functions=tuple(_location(_code_of(spec)) for spec in allowed),
        allowed_names=((folders[2], ALLOWED_DISTRIBUTION_CODE),),
    )


_PROFILER_SOURCE = '''
def answers_blocked(frame, event, arg, _pending=None):
    """Raise when the function starting now is a ready-made answer called from outside its own package."""
    if event != "call":
        return None
    code = frame.f_code
    path = code.co_filename
    if not path.startswith(FIRST):
        return None
    where = (path, code.co_firstlineno)
    home = None
    for folder in HOMES:  # the innermost blocked folder that holds the function
        if path.startswith(folder) and (home is None or len(folder) > len(home)):
            home = folder
    if home is not None and home not in FOLDERS:
        for folder, names in NAMED:
            if folder == home and code.co_name not in names:
                home = None
    if home is None and where not in FUNCTIONS:
        return None
    if where in ALLOWED_FUNCTIONS:
        return None
    for folder, names in ALLOWED_NAMES:
        if path.startswith(folder) and code.co_name in names:
            return None
    back = frame.f_back
    if home is not None and back is not None:
        caller = back.f_code.co_filename
        caller_home = None
        for folder in HOMES:
            if caller.startswith(folder) and (caller_home is None or len(folder) > len(caller_home)):
                caller_home = folder
        if caller_home == home:
            return None
    name = path
    for root in ROOTS:
        if path.startswith(root):
            name = path[len(root):]
    name = name.removesuffix(".py").replace(SEP, ".").removesuffix(".__init__") + "." + code.co_qualname
    message = name + " " + MESSAGE
    _pending.append(message)
    raise AssertionError(message)
'''


def make_answer_blocker(origins: Origins, pending: list[str], rule: str = "") -> Callable:
    """A profile function (for ``sys.setprofile``) that raises when a blocked function starts.

    Its data are constants of its own code (nothing a student can reach and change); ``pending`` receives each
    message before it is raised, for an audit hook that keeps the blocker installed (see ``gumbel_book.course``).
    """
    paths = [*origins.folders, *(f for f, _ in origins.named), *(f for f, _ in origins.functions)]
    constants = {
        "FIRST": tuple(sorted({_common_start(p) for p in paths})),
        "FOLDERS": origins.folders,
        "HOMES": (*origins.folders, *(f for f, _ in origins.named)),
        "ROOTS": origins.roots,
        "FUNCTIONS": frozenset(origins.functions),
        "NAMED": origins.named,
        "ALLOWED_FUNCTIONS": frozenset(origins.allowed_functions),
        "ALLOWED_NAMES": origins.allowed_names,
        "SEP": os.sep,
        "MESSAGE": f"{NOT_ALLOWED}: {rule}" if rule else NOT_ALLOWED,
    }
    source = re.sub(
        r"\b[A-Z_]{3,}\b",
        lambda m: repr(constants[m.group()]) if m.group() in constants else m.group(),
        _PROFILER_SOURCE,
    )
    namespace: dict = {"__builtins__": __builtins__}
    exec(compile(source, "<gumbel_book answer blocker>", "exec"), namespace)  # noqa: S102 - constants only
    blocker = namespace["answers_blocked"]
    blocker.__defaults__ = (pending,)
    return blocker


def _common_start(path: str) -> str:
    """The first two levels of ``path`` (a cheap first test: most code called is elsewhere)."""
    parts = path.split(os.sep)
    return os.sep.join(parts[:3])


def block_multinomial(message: str) -> torch.library.Library:
    """Override ``aten::multinomial`` at the dispatcher (CPU), so every alias raises ``AssertionError(message)``.

    The override lasts while the returned library object lives (``_destroy()`` ends it).
    """

    multinomial = raiser("multinomial", message)
    library = torch.library.Library("aten", "IMPL")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Overriding a previously registered kernel": that is the point
        for overload in ("multinomial", "multinomial.out"):
            library.impl(overload, multinomial, "CPU")
    return library


def numpy_random_modules() -> list[types.ModuleType]:
    """``numpy.random`` and its submodules (imported first: numpy 2 imports it lazily)."""
    importlib.import_module("numpy.random")
    return [m for name, m in sorted(sys.modules.items()) if name.startswith("numpy.random") and m is not None]


def is_numpy_random(value: object) -> bool:
    """Whether ``value`` is a sampler, generator or generator type of ``numpy.random``.

    Only the value's type, or for classes, methods and functions one attribute of theirs, is read: never an
    arbitrary ``getattr`` on an arbitrary object (some of torch's objects have side effects on attribute access).
    """
    try:
        if isinstance(value, type):
            module = value.__module__
        elif isinstance(value, types.MethodType | types.BuiltinMethodType):
            owner = value.__self__
            module = owner.__name__ if isinstance(owner, types.ModuleType) else type(owner).__module__
        elif type(value).__name__ == "cython_function_or_method":
            module = value.__module__
        else:
            module = type(value).__module__
    except Exception:  # noqa: BLE001 - an object that cannot say where it comes from is not numpy's
        return False
    return isinstance(module, str) and module.startswith("numpy.random")


def raiser_type(name: str, message: str) -> type:
    """A class named ``name`` that cannot be instantiated (``AssertionError(message)``); unlike a function, it
    still works in ``isinstance`` checks and type unions, so libraries that name numpy's generator types import."""
    namespace: dict = {}
    source = f"class Forbidden:\n    def __new__(cls, *args, **kwargs):\n        raise AssertionError({message!r})\n"
    exec(compile(source, "<gumbel_book blocked answer>", "exec"), namespace)  # noqa: S102 - a fixed class
    forbidden = namespace["Forbidden"]
    forbidden.__name__ = forbidden.__qualname__ = name
    return forbidden


def raiser(name: str, message: str) -> Callable:
    """A function named ``name`` that raises ``AssertionError(message)``, compiled outside the package's files (so
    the blocker, which stops the package's functions, lets it run and raise its own message)."""
    namespace: dict = {}
    source = f"def forbidden(*args, **kwargs):\n    raise AssertionError({message!r})\n"
    exec(compile(source, "<gumbel_book blocked answer>", "exec"), namespace)  # noqa: S102 - a fixed one-liner
    forbidden = namespace["forbidden"]
    forbidden.__name__ = forbidden.__qualname__ = name.rsplit(".", 1)[-1]
    return forbidden


@contextlib.contextmanager
def numpy_random_off(message: str) -> Iterator[None]:
    """Replace the samplers and generator types in ``numpy.random``'s modules by raisers; restore them on exit."""
    swaps = []
    try:
        for module in numpy_random_modules():
            for name, value in list(vars(module).items()):
                if not name.startswith("__") and callable(value) and is_numpy_random(value):
                    swaps.append((module, name, value))
                    stand_in = raiser_type if isinstance(value, type) else raiser
                    setattr(module, name, stand_in(name, f"{module.__name__}.{name} {message}"))
        yield
    finally:
        for module, name, value in reversed(swaps):
            setattr(module, name, value)


# The guard's own generator frames, resumed by contextlib while the blocker is on (at home only).
_GUARD_FRAMES = ("gumbel_book.exercises.guard:own_work", "gumbel_book.exercises.guard:numpy_random_off")


@contextlib.contextmanager
def own_work(rule: str, extra: Sequence[str] = ()) -> Iterator[None]:
    """Run the body with the ready-made answers unavailable; each raises AssertionError naming ``rule``.

    ``rule`` says what the exercise allows, e.g. ``"use only torch.rand, torch.log and torch.softmax"``.
    ``extra`` is accepted for older callers: their answers are in the package, which is blocked as a whole.
    Under :func:`remote_checks` nothing is switched off here (the worker process blocks the answers); the rule is
    recorded for the worker's messages.
    """
    del extra
    remote = _REMOTE.get()
    if remote is not None:
        previous, remote.rule = remote.rule, rule
        remote.history.append(rule)
        try:
            yield
        finally:
            remote.rule = previous
        return
    message = f"{NOT_ALLOWED}: {rule}"
    origins = answer_origins((*ALLOWED_HELPERS, *_GUARD_FRAMES))
    blocker = make_answer_blocker(origins, [], rule)
    previous_profile = sys.getprofile()
    library = block_multinomial(f"torch.multinomial {message}")
    try:
        with numpy_random_off(message):
            sys.setprofile(blocker)
            try:
                yield
            finally:
                sys.setprofile(previous_profile)
    finally:
        library._destroy()
