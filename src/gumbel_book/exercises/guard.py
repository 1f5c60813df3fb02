"""What every exercise check shares: the argument checks, and a guard that makes ready-made answers unavailable.

While a student's function runs inside :func:`own_work`, the package's samplers, densities and estimators,
``torch.multinomial``, ``torch.nn.functional.gumbel_softmax`` and the sampling and density methods of every
``torch.distributions`` class raise ``AssertionError("... is not allowed in this exercise: use only ...")``.
Python functions are disabled by swapping their code object, so a name the student imported earlier
(``from gumbel_book import gumbel_softmax``) is caught too; everything is restored on exit.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import math
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from numbers import Real

import torch

# The package's ready-made answers, as "module:function" (every exercise forbids all of them).
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
DISTRIBUTION_METHODS = ("sample", "rsample", "sample_n", "log_prob", "cdf", "icdf", "entropy")


def check_callable(fn: object, what: str = "the answer") -> None:
    """Raise ``TypeError`` (the only TypeError a check raises) when the answer is not a function."""
    if not callable(fn):
        raise TypeError(f"{what} must be a function, got {type(fn).__name__}: {fn!r}")


def check_number(value: object, what: str = "the answer") -> float:
    """Return ``value`` as a float; a non-number is a wrong answer (``AssertionError``), not a type error."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    assert isinstance(value, Real) and not isinstance(value, bool), f"{what} must be a number, got {value!r}"
    value = float(value)
    assert math.isfinite(value), f"{what} must be a finite number, got {value!r}"
    return value


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
    torch.manual_seed(seed)
    return fn(*args)


def _raiser(name: str, rule: str) -> Callable:
    message = f"{name} is not allowed in this exercise: {rule}"

    def forbidden(*args, **kwargs):
        raise AssertionError(message)

    return forbidden


def _code_raising(name: str, rule: str, like: types.FunctionType) -> types.CodeType:
    """A code object that raises the rule, compiled under the function's own name, without free variables."""
    message = f"{name} is not allowed in this exercise: {rule}"
    source = f"def {like.__code__.co_name}(*args, **kwargs):\n    raise AssertionError({message!r})\n"
    namespace: dict = {}
    exec(compile(source, f"<forbidden {name}>", "exec"), namespace)  # noqa: S102 - a fixed, generated one-liner
    return namespace[like.__code__.co_name].__code__


def _innermost(fn: object) -> object:
    while hasattr(fn, "__wrapped__"):
        fn = fn.__wrapped__
    return fn


def _distribution_classes() -> list[type]:
    dist = torch.distributions
    classes = {dist.Distribution}
    for name in dir(dist):
        obj = getattr(dist, name)
        if isinstance(obj, type) and issubclass(obj, dist.Distribution):
            classes.add(obj)
    return sorted(classes, key=lambda c: c.__name__)


@contextlib.contextmanager
def own_work(rule: str, extra: Sequence[str] = ()) -> Iterator[None]:
    """Run the body with the ready-made answers disabled; each raises AssertionError naming ``rule``.

    ``rule`` says what the exercise allows, e.g. ``"use only torch.rand, torch.log and torch.softmax"``;
    ``extra`` names more ``"module:function"`` answers a chapter's exercise must not call.
    """
    code_swaps: list[tuple[types.FunctionType, types.CodeType]] = []
    attr_swaps: list[tuple[object, str, object, bool]] = []  # (owner, name, old value, was in __dict__)

    def swap_code(fn: object, name: str) -> bool:
        fn = _innermost(fn)
        if isinstance(fn, types.FunctionType) and fn.__closure__ is None:
            code_swaps.append((fn, fn.__code__))
            fn.__code__ = _code_raising(name, rule, fn)
            return True
        return False

    def swap_attr(owner: object, name: str, label: str) -> None:
        in_dict = name in vars(owner)
        attr_swaps.append((owner, name, getattr(owner, name), in_dict))
        setattr(owner, name, _raiser(label, rule))

    try:
        for spec in (*PACKAGE_ANSWERS, *extra):
            module_name, name = spec.split(":")
            if module_name.endswith(".fused") and module_name not in sys.modules:
                continue  # never imported, so never called; importing it would load Triton
            module = importlib.import_module(module_name)
            fn = getattr(module, name)
            label = f"gumbel_book.{name}" if module_name.startswith("gumbel_book") else f"{module_name}.{name}"
            if not swap_code(fn, label):
                swap_attr(module, name, label)
        for owner, name in ((torch, "multinomial"), (torch.Tensor, "multinomial")):
            swap_attr(owner, name, f"torch.{name}")
        for cls in _distribution_classes():
            for method in DISTRIBUTION_METHODS:
                if method in vars(cls):
                    swap_attr(cls, method, f"torch.distributions.{cls.__name__}.{method}")
        yield
    finally:
        for fn, code in reversed(code_swaps):
            fn.__code__ = code
        for owner, name, old, in_dict in reversed(attr_swaps):
            if in_dict:
                setattr(owner, name, old)
            else:
                delattr(owner, name)
