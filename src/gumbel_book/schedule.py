"""The temperature annealing schedule of Jang, Gu & Poole (2017)."""

from __future__ import annotations

import math

from .validation import check_int, check_real


def anneal_tau(step: int, *, tau0: float = 1.0, rate: float = 3e-5, tau_min: float = 0.5, every: int = 1000) -> float:
    """Temperature at global training ``step``: ``max(tau_min, tau0 * exp(-rate * t))``.

    ``t`` is ``step`` rounded down to a multiple of ``every``, so tau changes once every ``every``
    steps, as in the paper (rate in {1e-5, 1e-4}, every in {500, 1000}). ``step`` counts steps
    across epochs: restarting it each epoch means the temperature never anneals.
    """
    step = check_int(step, "step", minimum=0)
    every = check_int(every, "every")
    tau0 = check_real(tau0, "tau0", positive=True)
    tau_min = check_real(tau_min, "tau_min", positive=True)
    rate = check_real(rate, "rate", minimum=0)
    t = (step // every) * every
    return max(tau_min, tau0 * math.exp(-rate * t))
