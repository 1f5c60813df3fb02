"""The temperature annealing schedule of Jang, Gu & Poole (2017)."""

from __future__ import annotations

import math
from numbers import Real

from .validation import check_int


def _check_positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return float(value)


def anneal_tau(step: int, *, tau0: float = 1.0, rate: float = 3e-5, tau_min: float = 0.5, every: int = 1000) -> float:
    """Temperature at global training ``step``: ``max(tau_min, tau0 * exp(-rate * t))``.

    ``t`` is ``step`` rounded down to a multiple of ``every``, so tau changes once every ``every``
    steps, as in the paper (rate in {1e-5, 1e-4}, every in {500, 1000}). ``step`` counts steps
    across epochs: restarting it each epoch means the temperature never anneals.
    """
    step = check_int(step, "step", minimum=0)
    every = check_int(every, "every")
    tau0 = _check_positive("tau0", tau0)
    tau_min = _check_positive("tau_min", tau_min)
    if isinstance(rate, bool) or not isinstance(rate, Real) or not (math.isfinite(rate) and rate >= 0):
        raise ValueError(f"rate must be finite and >= 0, got {rate!r}")
    t = (step // every) * every
    return max(tau_min, tau0 * math.exp(-float(rate) * t))
