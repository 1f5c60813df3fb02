"""Gradients of E_{z ~ Cat(softmax(logits))}[f(z)], exact and estimated: the estimator registry.

:data:`REGISTRY` names the seven estimators the book compares (:class:`Estimator`, :func:`get_estimator`,
:func:`sample_layer`); :func:`exact_grad` enumerates the K categories; :func:`sample_grads` and
:func:`estimate_grad` draw single-sample estimates from any of them; :func:`linear_objective`,
:func:`quadratic_objective` and :func:`target_objective` build toy objectives. The straight-through chapter's
measurements (the lab, the sweep down to small temperatures, the optimisation race) are in
:mod:`gumbel_book.labs.straight_through`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .control_variates import muprop_grads, rebar_grads, relax_grads
from .sampling import gumbel_max, gumbel_softmax
from .straight_through import gumbel_rao, reinmax, straight_through_softmax
from .validation import check_int, check_logits, check_logits_vector, check_tau

Objective = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Estimator:
    """One gradient estimator of ``E_{z ~ Cat(softmax(logits))}[f(z)]``, as the book names and uses it.

    ``layer(logits, tau, generator, mc_samples)`` is the code ``z`` a downstream function sees: relaxed
    (``gumbel_softmax``), one-hot with a surrogate gradient (the straight-through family), or one-hot with no
    gradient at all (the score-function estimators, whose gradient comes from ``log p(z)`` instead).
    """

    name: str
    label: str
    layer: Callable[[torch.Tensor, float, torch.Generator | None, int], torch.Tensor]
    score_function: bool = False
    uses_tau: bool = True
    #: For the control-variate estimators: ``grads(theta, f, tau, generator)``, single-sample estimates [N, K].
    grads: Callable | None = None


def _one_hot_sample(logits: torch.Tensor, tau: float, generator: torch.Generator | None, mc: int) -> torch.Tensor:
    """A one-hot Gumbel-max sample that carries no gradient (REINFORCE's ``z``)."""
    index = gumbel_max(logits.detach(), generator=generator)
    return torch.zeros_like(logits).scatter_(-1, index.unsqueeze(-1), 1.0)


REGISTRY: dict[str, Estimator] = {
    e.name: e
    for e in (
        Estimator("reinforce", "REINFORCE", _one_hot_sample, score_function=True, uses_tau=False),
        Estimator("reinforce_baseline", "REINFORCE + baseline", _one_hot_sample, score_function=True, uses_tau=False),
        Estimator(
            "gumbel_softmax",
            "Gumbel-Softmax (relaxed)",
            lambda t, tau, g, mc: gumbel_softmax(t, tau, hard=False, generator=g),
        ),
        Estimator(
            "st_gumbel_softmax",
            "ST-Gumbel-Softmax",
            lambda t, tau, g, mc: gumbel_softmax(t, tau, hard=True, generator=g),
        ),
        Estimator(
            "straight_through",
            "plain ST",
            lambda t, tau, g, mc: straight_through_softmax(t, generator=g),
            uses_tau=False,
        ),
        Estimator("reinmax", "ReinMax", lambda t, tau, g, mc: reinmax(t, tau, generator=g)),
        Estimator("gumbel_rao", "Gumbel-Rao", lambda t, tau, g, mc: gumbel_rao(t, tau, mc, generator=g)),
        Estimator(
            "muprop", "MuProp", _one_hot_sample, uses_tau=False, grads=lambda t, f, tau, g: muprop_grads(t, f, g)
        ),
        Estimator("rebar", "REBAR", _one_hot_sample, grads=lambda t, f, tau, g: rebar_grads(t, f, tau, generator=g)),
        Estimator("relax", "RELAX", _one_hot_sample, grads=lambda t, f, tau, g: relax_grads(t, f, tau, generator=g)),
    )
}
"""The one registry of estimators: name -> :class:`Estimator`, in the order the book shows them."""

ALIASES: dict[str, str] = {"gs": "gumbel_softmax", "st-gs": "st_gumbel_softmax"}
"""Other accepted spellings: the VAE's command line and its stored runs (``results/vae``) use these."""

ESTIMATORS: tuple[str, ...] = tuple(REGISTRY)
"""The valid estimator names, in the order the book shows them."""

CONTROL_VARIATES: tuple[str, ...] = tuple(name for name, e in REGISTRY.items() if e.grads is not None)
"""The unbiased estimators with a control variate (:mod:`gumbel_book.control_variates`)."""

STRAIGHT_THROUGH_ESTIMATORS: tuple[str, ...] = tuple(n for n in ESTIMATORS if n not in CONTROL_VARIATES)
"""The estimators the straight-through chapter compares."""

LABELS: dict[str, str] = {name: e.label for name, e in REGISTRY.items()}
"""Display names for the estimators."""

TAU_FREE: frozenset[str] = frozenset(name for name, e in REGISTRY.items() if not e.uses_tau)
"""Estimators whose gradient does not depend on the temperature."""


def get_estimator(name: str) -> Estimator:
    """The registry entry for ``name`` or one of its :data:`ALIASES`; an unknown name is a ``ValueError``."""
    canonical = ALIASES.get(name, name) if isinstance(name, str) else name
    if canonical not in REGISTRY:
        valid = ", ".join([*REGISTRY, *ALIASES])
        raise ValueError(f"unknown estimator {name!r}; valid names are {valid}")
    return REGISTRY[canonical]


def sample_layer(
    name: str, logits: torch.Tensor, tau: float = 1.0, *, generator: torch.Generator | None = None, mc_samples: int = 10
) -> torch.Tensor:
    """The code ``z`` that estimator ``name`` feeds downstream for ``logits`` (see :class:`Estimator`)."""
    return get_estimator(name).layer(logits, tau, generator, mc_samples)


# --------------------------------------------------------------------------------------------- evaluation


def evaluate_objective(f: Objective, z: torch.Tensor) -> torch.Tensor:
    """``f(z)`` for a batch ``z`` of shape ``[n, K]``, checked to be a real tensor of shape ``[n]``."""
    if not callable(f):
        raise TypeError(f"f must be a callable mapping [n, K] one-hot rows to [n] values, got {type(f).__name__}")
    out = f(z)
    if not isinstance(out, torch.Tensor) or out.shape != z.shape[:1]:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"f must map a batch of shape {tuple(z.shape)} to shape ({z.shape[0]},), got {shape}")
    return out


# --------------------------------------------------------------------------------------------- exact


def expected_value(logits: torch.Tensor, f: Objective) -> torch.Tensor:
    """The objective ``E_{z ~ Cat(softmax(logits))}[f(z)]``, by enumerating the K one-hot vectors."""
    check_logits_vector(logits, min_categories=2)
    eye = torch.eye(logits.shape[0], dtype=logits.dtype, device=logits.device)
    return (torch.softmax(logits, dim=-1) * evaluate_objective(f, eye)).sum()


def exact_grad(logits: torch.Tensor, f: Objective) -> torch.Tensor:
    """The exact gradient of ``E_{z ~ Cat(softmax(logits))}[f(z)]`` in ``logits`` (shape ``[K]``), by enumeration.

    It is ``p * (f - p . f)`` with ``p = softmax(logits)`` and ``f`` the K values ``f(e_k)``.
    """
    check_logits_vector(logits, min_categories=2)
    eye = torch.eye(logits.shape[0], dtype=logits.dtype, device=logits.device)
    with torch.no_grad():
        values = evaluate_objective(f, eye).to(logits.dtype)
        p = torch.softmax(logits, dim=-1)
        return p * (values - (p * values).sum())


# --------------------------------------------------------------------------------------------- estimates


def sample_grads(
    name: str,
    logits: torch.Tensor,
    f: Objective,
    n_samples: int,
    repeats: int = 1,
    *,
    tau: float = 1.0,
    mc_samples: int = 10,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Single-sample gradient estimates, shape ``[repeats, n_samples, K]``; their mean over axis 1 is one
    ``n_samples``-sample estimate. ``reinforce_baseline`` uses the other ``n_samples - 1`` as its baseline.
    """
    name = get_estimator(name).name
    check_logits_vector(logits, min_categories=2)
    check_int(n_samples, "n_samples", 2 if name == "reinforce_baseline" else 1)
    check_int(repeats, "repeats")
    check_int(mc_samples, "mc_samples")
    tau = check_tau(tau)
    return _batched_grads(name, logits.detach().expand(repeats, -1), f, n_samples, tau, mc_samples, generator)


def batched_sample_grads(
    name: str,
    logits: torch.Tensor,
    f: Objective,
    n_samples: int,
    *,
    tau: float = 1.0,
    mc_samples: int = 10,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """:func:`sample_grads` for a batch of distributions: ``logits`` of shape ``[B, K]``, estimates of shape
    ``[B, n_samples, K]``, row ``b`` at ``logits[b]``; all rows draw from one ``generator``, side by side."""
    name = get_estimator(name).name
    check_logits(logits, -1)
    if logits.dim() != 2:
        raise ValueError(f"logits must have shape [B, K], got shape {tuple(logits.shape)}")
    check_int(n_samples, "n_samples", 2 if name == "reinforce_baseline" else 1)
    check_int(mc_samples, "mc_samples")
    tau = check_tau(tau)
    return _batched_grads(name, logits, f, n_samples, tau, mc_samples, generator)


def _batched_grads(
    name: str,
    logits: torch.Tensor,
    f: Objective,
    n_samples: int,
    tau: float,
    mc_samples: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Single-sample estimates ``[B, n_samples, K]`` for a batch of (checked) logits ``[B, K]``, row b at logits[b]."""
    b, k = logits.shape
    theta = logits.detach().unsqueeze(1).expand(b, n_samples, k).reshape(b * n_samples, k)
    estimator = REGISTRY[name]
    if estimator.grads is not None:
        return estimator.grads(theta, f, tau, generator).reshape(b, n_samples, k)
    if estimator.score_function:
        z = estimator.layer(theta, tau, generator, mc_samples)
        with torch.no_grad():
            values = evaluate_objective(f, z).to(logits.dtype).reshape(b, n_samples, 1)
        if name == "reinforce_baseline":
            values = values - (values.sum(dim=1, keepdim=True) - values) / (n_samples - 1)
        score = z - torch.softmax(theta, dim=-1)  # grad of log p(z)
        return values * score.reshape(b, n_samples, k)
    theta = theta.clone().requires_grad_(True)
    y = estimator.layer(theta, tau, generator, mc_samples)
    (grads,) = torch.autograd.grad(evaluate_objective(f, y).sum(), theta)
    return grads.reshape(b, n_samples, k)


def estimate_grad(
    name: str,
    logits: torch.Tensor,
    f: Objective,
    n_samples: int,
    *,
    tau: float = 1.0,
    generator: torch.Generator | None = None,
    mc_samples: int = 10,
) -> torch.Tensor:
    """The average of ``n_samples`` single-sample estimates of :func:`exact_grad` by estimator ``name``.

    Names: reinforce, reinforce_baseline (leave-one-out baseline, needs n_samples >= 2), gumbel_softmax
    (gradient of the relaxed objective), st_gumbel_softmax, straight_through, reinmax, gumbel_rao, and the unbiased
    control-variate estimators muprop, rebar (temperature ``tau``, scale 1) and relax (REBAR's control variate plus
    an untrained :class:`gumbel_book.control_variates.ControlVariateNet`).
    """
    grads = sample_grads(name, logits, f, n_samples, tau=tau, mc_samples=mc_samples, generator=generator)
    return grads.mean(dim=(0, 1))


# --------------------------------------------------------------------------------------------- objectives


def _check_coefficients(c: torch.Tensor) -> None:
    if not isinstance(c, torch.Tensor) or c.dim() != 1 or not c.is_floating_point():
        raise TypeError(f"c must be a 1-d floating-point tensor, got {c!r}")


def linear_objective(c: torch.Tensor) -> Objective:
    """``f(z) = c . z``: the discrete objective is linear, so its value at category k is ``c_k``."""
    _check_coefficients(c)

    def f(z: torch.Tensor) -> torch.Tensor:
        return z @ c.to(z)

    return f


def quadratic_objective(c: torch.Tensor) -> Objective:
    """``f(z) = ||z - c||^2``: on one-hot vectors it equals ``||c||^2 + 1 - 2 c_k``, but its slope varies."""
    _check_coefficients(c)

    def f(z: torch.Tensor) -> torch.Tensor:
        return ((z - c.to(z)) ** 2).sum(dim=-1)

    return f


def target_objective(target: int, num_categories: int) -> Objective:
    """ "Pick the target": ``f(z) = ||z - e_target||_4^4``, 0 for the target category and 2 for any other."""
    check_int(num_categories, "num_categories", 2)
    check_int(target, "target", 0)
    if target >= num_categories:
        raise ValueError(f"target={target} must be in [0, {num_categories - 1}]")

    def f(z: torch.Tensor) -> torch.Tensor:
        if z.shape[-1] != num_categories:
            raise ValueError(f"z has {z.shape[-1]} categories, the objective expects {num_categories}")
        e = torch.zeros(num_categories, dtype=z.dtype, device=z.device)
        e[target] = 1.0
        return ((z - e) ** 4).sum(dim=-1)

    return f
