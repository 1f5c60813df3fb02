"""Argument checks shared by the samplers, with a switch for the checks that read tensor data.

Type, shape and ``tau`` checks are always on: they cost nothing. The checks that must read the
data (NaN and infinite logits, rows that are entirely masked) synchronise with the device, so,
like ``torch.distributions``' ``validate_args``, they can be switched off for hot loops with
:func:`set_validate_args` or the :func:`validate_args` context manager.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Sequence
from numbers import Integral, Real

import torch

_VALIDATE = True


def set_validate_args(enabled: bool) -> None:
    """Turn the data-reading checks on (the default) or off, globally."""
    global _VALIDATE
    if not isinstance(enabled, bool):
        raise TypeError(f"enabled must be a bool, got {enabled!r}")
    _VALIDATE = enabled


def validation_enabled() -> bool:
    """Whether the data-reading checks are on."""
    return _VALIDATE


@contextlib.contextmanager
def validate_args(enabled: bool) -> Iterator[None]:
    """Context manager that sets the data-reading checks for the duration of a block."""
    previous = _VALIDATE
    set_validate_args(enabled)
    try:
        yield
    finally:
        set_validate_args(previous)


def check_int(value: int, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int if it is an integer (not a bool) of at least ``minimum``, else raise."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_tau(tau: float | torch.Tensor, name: str = "tau") -> float | torch.Tensor:
    """Return ``tau`` if it is a finite positive number (or tensor of them), else raise ValueError."""
    if isinstance(tau, bool) or not isinstance(tau, (Real, torch.Tensor)):
        raise TypeError(f"{name} must be a positive real number, got {tau!r}")
    if isinstance(tau, torch.Tensor):
        if not (tau.is_floating_point() or tau.dtype in (torch.int32, torch.int64)):
            raise TypeError(f"{name} must be a real tensor, got dtype {tau.dtype}")
        if not bool(torch.all(torch.isfinite(tau) & (tau > 0))):
            raise ValueError(f"{name} must be finite and > 0, got {tau!r}")
        return tau
    if not (math.isfinite(tau) and tau > 0):
        raise ValueError(f"{name} must be finite and > 0, got {tau!r}")
    return float(tau)


def check_logits(logits: torch.Tensor, dim: int, name: str = "logits") -> int:
    """Check type, ``dim`` and (when enabled) values of ``logits``; return ``dim`` made non-negative.

    -inf is legal on some categories (they are masked), but NaN, +inf and rows that are -inf
    everywhere along ``dim`` are errors.
    """
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {logits.dtype}")
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"dim must be an int, got {dim!r}")
    ndim = logits.dim()
    if not -ndim <= dim < ndim or ndim == 0:
        raise IndexError(
            f"dim={dim} is out of range for {name} of shape {tuple(logits.shape)} "
            f"(expected a value in [{-ndim}, {ndim - 1}])"
        )
    dim = dim % ndim
    if logits.shape[dim] == 0:
        raise ValueError(f"{name} has no categories along dim={dim} (shape {tuple(logits.shape)})")
    if _VALIDATE and logits.numel() > 0:
        if bool(torch.isnan(logits).any()):
            raise ValueError(f"{name} contains NaN")
        if bool(torch.isposinf(logits).any()):
            raise ValueError(f"{name} contains +inf")
        all_masked = torch.isneginf(logits).all(dim=dim)
        if bool(all_masked.any()):
            where = tuple(all_masked.nonzero()[0].tolist())
            raise ValueError(
                f"{name} is -inf for every category along dim={dim} (first such row at index {where}); "
                "at least one category must have a finite logit"
            )
    return dim


def check_topk(logits: torch.Tensor, k: int, dim: int) -> int:
    """The argument checks of ``gumbel_topk``: :func:`check_logits`, and ``k`` between 1 and the number of
    (when enabled: unmasked) categories; returns ``dim`` made non-negative."""
    dim = check_logits(logits, dim)
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an int, got {k!r}")
    n = logits.shape[dim]
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must be between 1 and the number of categories {n}")
    if _VALIDATE:
        finite = torch.isfinite(logits).sum(dim=dim)
        if bool((finite < k).any()):
            raise ValueError(
                f"k={k} exceeds the number of unmasked (finite) categories, which is {int(finite.min())} "
                "in at least one row"
            )
    return dim


def check_real(
    value: float, name: str, *, minimum: float | None = None, positive: bool = False, finite: bool = True
) -> float:
    """Return ``value`` as a float if it is a real number (not a bool): finite unless ``finite=False``,
    > 0 when ``positive``, >= ``minimum`` when given; else raise ``TypeError``/``ValueError`` naming it.

    A failed bound names all of them at once, as :func:`check_tau` does: ``"tau0 must be finite and > 0,
    got 0.0"``."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.dtype == torch.bool:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    ok = (not finite or math.isfinite(value)) and (not positive or value > 0) and (minimum is None or value >= minimum)
    if not ok:
        bounds = [b for b, on in (("finite", finite), ("> 0", positive), (f">= {minimum}", minimum is not None)) if on]
        raise ValueError(f"{name} must be {' and '.join(bounds)}, got {value!r}")
    return value


def check_choice(value: str, choices: Sequence[str], name: str) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError`` listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_bool(value: bool, name: str) -> bool:
    """Return ``value`` if it is a bool, else raise ``TypeError`` naming it."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return value


def _as_list(values: Iterable, name: str, what: str) -> list:
    """``values`` as a non-empty list; a string, a non-iterable or an empty iterable is a ``ValueError``."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"{name} must be a non-empty sequence of {what}, got {values!r}")
    out = list(values)
    if not out:
        raise ValueError(f"{name} must be a non-empty sequence of {what}, got {values!r}")
    return out


def check_taus(taus: Iterable[float], name: str = "taus") -> list[float]:
    """Return ``taus`` as a list of floats if it is a non-empty sequence of temperatures, each a finite number
    > 0 (checked by :func:`check_real` under the name ``taus[i]``)."""
    values = _as_list(taus, name, "positive numbers")
    return [check_real(t, f"{name}[{i}]", positive=True) for i, t in enumerate(values)]


def check_int_sequence(values: Iterable[int], name: str, minimum: int = 1, *, increasing: bool = False) -> list[int]:
    """Return ``values`` as a list of ints if it is a non-empty sequence of ints >= ``minimum`` (and strictly
    increasing when ``increasing``); every entry is checked by :func:`check_int` under the name ``name[i]``."""
    items = _as_list(values, name, f"ints >= {minimum}")
    out = [check_int(v, f"{name}[{i}]", minimum) for i, v in enumerate(items)]
    if increasing and any(b <= a for a, b in zip(out, out[1:], strict=False)):
        raise ValueError(f"{name} must be increasing, got {values!r}")
    return out


def check_logits_vector(logits: torch.Tensor, name: str = "logits", min_categories: int = 1) -> None:
    """:func:`check_logits` for a single distribution: shape ``[K]`` with at least ``min_categories`` entries."""
    check_logits(logits, -1, name)
    if logits.dim() != 1:
        raise ValueError(f"{name} must have shape [K] (1-d), got shape {tuple(logits.shape)}")
    if logits.shape[0] < min_categories:
        raise ValueError(f"{name} must have at least {min_categories} categories, got K={logits.shape[0]}")


def as_float_tensor(x: torch.Tensor | float | Sequence[float], name: str) -> torch.Tensor:
    """``x`` as a floating-point tensor: a floating-point tensor is returned as is, a number or a (nested)
    sequence of numbers becomes float64; anything else (an integer tensor, a bool, a string) is a ``TypeError``."""
    if isinstance(x, bool):
        raise TypeError(f"{name} must be a real number or a floating-point tensor, got {x!r}")
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
        return x
    try:
        return torch.as_tensor(x, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a real number or a floating-point tensor, got {x!r}") from None


def as_logits(logits: Sequence[float] | torch.Tensor, name: str = "logits", k: int | None = None) -> torch.Tensor:
    """``logits`` typed by a reader (a list, a tuple, a tensor) as a finite 1-d float32 CPU tensor of at least
    2 (or exactly ``k``) entries; a value that is not numbers is a ``TypeError``, a wrong size or a non-finite
    entry a ``ValueError``."""
    try:
        lg = torch.as_tensor(logits, dtype=torch.float32).detach().cpu()
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a 1-d sequence of numbers, got {logits!r}") from None
    if lg.dim() != 1 or lg.numel() < 2:
        raise ValueError(f"{name} must be a 1-d sequence of at least 2 numbers, got {logits!r}")
    if k is not None and lg.numel() != k:
        raise ValueError(f"{name} must have exactly {k} entries, got {lg.numel()}: {logits!r}")
    if not bool(torch.isfinite(lg).all()):
        raise ValueError(f"{name} must be finite, got {logits!r}")
    return lg
