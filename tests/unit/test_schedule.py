"""The paper's annealing schedule: tau = max(tau_min, tau0 * exp(-rate * t)), t a multiple of `every`."""

from __future__ import annotations

import math

import pytest

from gumbel_book import anneal_tau


def test_anneal_tau_formula_and_steps():
    assert anneal_tau(0) == 1.0
    assert anneal_tau(999) == 1.0  # t is rounded down to a multiple of every=1000
    assert anneal_tau(1000) == pytest.approx(math.exp(-3e-5 * 1000))
    assert anneal_tau(1999) == anneal_tau(1000)
    assert anneal_tau(2500, rate=1e-4, every=500) == pytest.approx(math.exp(-1e-4 * 2500))
    assert anneal_tau(4000, tau0=2.0, rate=1e-4) == pytest.approx(2 * math.exp(-0.4))


def test_anneal_tau_floors_at_tau_min_and_never_increases():
    taus = [anneal_tau(s, rate=1e-4, every=500) for s in range(0, 30_000, 250)]
    assert all(a >= b for a, b in zip(taus, taus[1:], strict=False))
    assert taus[-1] == 0.5  # exp(-1e-4 * 29500) = 0.052 < 0.5
    assert min(taus) == 0.5


def test_anneal_tau_counts_global_steps_not_epoch_steps():
    """Restarting the step count each epoch (a bug in popular repos) keeps tau at tau0."""
    steps_per_epoch = 600
    global_taus = [anneal_tau(e * steps_per_epoch + steps_per_epoch - 1, rate=1e-4) for e in range(20)]
    reset_taus = [anneal_tau(steps_per_epoch - 1, rate=1e-4) for _ in range(20)]
    assert global_taus[-1] < 0.5 + 1e-12 < reset_taus[-1] == 1.0


@pytest.mark.parametrize(
    "kwargs,exc,msg",
    [
        ({"step": -1}, ValueError, "step must be >= 0, got -1"),
        ({"step": 1.5}, TypeError, "step must be an int, got 1.5"),
        ({"step": True}, TypeError, "step must be an int"),
        ({"step": 1, "every": 0}, ValueError, "every must be >= 1, got 0"),
        ({"step": 1, "rate": -1e-4}, ValueError, "rate must be finite and >= 0"),
        ({"step": 1, "rate": float("nan")}, ValueError, "rate"),
        ({"step": 1, "tau_min": 0.0}, ValueError, "tau_min must be finite and > 0, got 0.0"),
        ({"step": 1, "tau0": float("inf")}, ValueError, "tau0"),
    ],
)
def test_anneal_tau_bad_input(kwargs, exc, msg):
    step = kwargs.pop("step")
    with pytest.raises(exc, match=msg):
        anneal_tau(step, **kwargs)
