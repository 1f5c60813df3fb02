"""The estimator lab: gradients of E_{z ~ Cat(softmax(logits))}[f(z)], exact and estimated.

:func:`exact_grad` enumerates the K categories; :func:`estimate_grad` averages single-sample estimates
from one of seven estimators. :func:`run_lab` measures every estimator's bias, spread and cosine
similarity to the exact gradient over a grid of temperatures and sample counts, :func:`bias_against_tau`
follows the bias down to small temperatures, :func:`zero_temperature_limit` is the exact tau -> 0 limit of the
mean ST-Gumbel-Softmax gradient, and :func:`optimization_race` minimises a toy objective with each estimator.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from .device import default_device
from .sampling import gumbel_max, gumbel_softmax
from .straight_through import gumbel_rao, reinmax, straight_through_softmax
from .validation import check_int, check_logits, check_tau, validate_args

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
    )
}
"""The one registry of estimators: name -> :class:`Estimator`, in the order the book shows them."""

ALIASES: dict[str, str] = {"gs": "gumbel_softmax", "st-gs": "st_gumbel_softmax"}
"""Other accepted spellings: the VAE's command line and its stored runs (``results/vae``) use these."""

ESTIMATORS: tuple[str, ...] = tuple(REGISTRY)
"""The valid estimator names, in the order the book shows them."""

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


# --------------------------------------------------------------------------------------------- checks


def _check_name(name: str) -> str:
    return get_estimator(name).name


def _check_vector_logits(logits: torch.Tensor) -> None:
    check_logits(logits, -1)
    if logits.dim() != 1:
        raise ValueError(f"logits must have shape [K], got shape {tuple(logits.shape)}")
    if logits.shape[0] < 2:
        raise ValueError(f"logits must have at least 2 categories, got K={logits.shape[0]}")


def _evaluate(f: Objective, z: torch.Tensor) -> torch.Tensor:
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
    _check_vector_logits(logits)
    eye = torch.eye(logits.shape[0], dtype=logits.dtype, device=logits.device)
    return (torch.softmax(logits, dim=-1) * _evaluate(f, eye)).sum()


def exact_grad(logits: torch.Tensor, f: Objective) -> torch.Tensor:
    """The exact gradient of ``E_{z ~ Cat(softmax(logits))}[f(z)]`` in ``logits`` (shape ``[K]``), by enumeration.

    It is ``p * (f - p . f)`` with ``p = softmax(logits)`` and ``f`` the K values ``f(e_k)``.
    """
    _check_vector_logits(logits)
    eye = torch.eye(logits.shape[0], dtype=logits.dtype, device=logits.device)
    with torch.no_grad():
        values = _evaluate(f, eye).to(logits.dtype)
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
    name = _check_name(name)
    _check_vector_logits(logits)
    check_int(n_samples, "n_samples", 2 if name == "reinforce_baseline" else 1)
    check_int(repeats, "repeats")
    check_int(mc_samples, "mc_samples")
    tau = check_tau(tau)
    return _batched_grads(name, logits.detach().expand(repeats, -1), f, n_samples, tau, mc_samples, generator)


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
    if estimator.score_function:
        z = estimator.layer(theta, tau, generator, mc_samples)
        with torch.no_grad():
            values = _evaluate(f, z).to(logits.dtype).reshape(b, n_samples, 1)
        if name == "reinforce_baseline":
            values = values - (values.sum(dim=1, keepdim=True) - values) / (n_samples - 1)
        score = z - torch.softmax(theta, dim=-1)  # grad of log p(z)
        return values * score.reshape(b, n_samples, k)
    theta = theta.clone().requires_grad_(True)
    y = estimator.layer(theta, tau, generator, mc_samples)
    (grads,) = torch.autograd.grad(_evaluate(f, y).sum(), theta)
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
    (gradient of the relaxed objective), st_gumbel_softmax, straight_through, reinmax, gumbel_rao.
    """
    grads = sample_grads(name, logits, f, n_samples, tau=tau, mc_samples=mc_samples, generator=generator)
    return grads.mean(dim=(0, 1))


# --------------------------------------------------------------------------------------------- toy objectives


def linear_objective(c: torch.Tensor) -> Objective:
    """``f(z) = c . z``: the discrete objective is linear, so its value at category k is ``c_k``."""
    if not isinstance(c, torch.Tensor) or c.dim() != 1 or not c.is_floating_point():
        raise TypeError(f"c must be a 1-d floating-point tensor, got {c!r}")

    def f(z: torch.Tensor) -> torch.Tensor:
        return z @ c.to(z)

    return f


def quadratic_objective(c: torch.Tensor) -> Objective:
    """``f(z) = ||z - c||^2``: on one-hot vectors it equals ``||c||^2 + 1 - 2 c_k``, but its slope varies."""
    if not isinstance(c, torch.Tensor) or c.dim() != 1 or not c.is_floating_point():
        raise TypeError(f"c must be a 1-d floating-point tensor, got {c!r}")

    def f(z: torch.Tensor) -> torch.Tensor:
        return ((z - c.to(z)) ** 2).sum(dim=-1)

    return f


def target_objective(target: int, num_categories: int) -> Objective:
    """ "Pick the target": ``f(z) = ||z - e_target||_4^4``, 0 for the target category and 2 for any other."""
    check_int(num_categories, "num_categories", 2)
    if isinstance(target, bool) or not isinstance(target, int):
        raise TypeError(f"target must be an int, got {target!r}")
    if not 0 <= target < num_categories:
        raise ValueError(f"target={target} must be in [0, {num_categories - 1}]")

    def f(z: torch.Tensor) -> torch.Tensor:
        if z.shape[-1] != num_categories:
            raise ValueError(f"z has {z.shape[-1]} categories, the objective expects {num_categories}")
        e = torch.zeros(num_categories, dtype=z.dtype, device=z.device)
        e[target] = 1.0
        return ((z - e) ** 4).sum(dim=-1)

    return f


@dataclass(frozen=True)
class ToyProblem:
    """A toy objective ``f`` and the logits at which the lab measures gradients."""

    name: str
    title: str
    logits: torch.Tensor
    f: Objective = field(repr=False)


def toy_problems(device: torch.device | str | None = None) -> dict[str, ToyProblem]:
    """The lab's four problems: linear, quadratic and pick-the-target with K = 8, and pick-the-target with K = 100."""
    device = default_device() if device is None else torch.device(device)
    gen = torch.Generator().manual_seed(2023)
    logits8 = torch.randn(8, generator=gen, dtype=torch.float64).to(device)
    c8 = torch.linspace(-1.0, 1.0, 8, dtype=torch.float64).to(device)
    logits100 = (0.5 * torch.randn(100, generator=gen, dtype=torch.float64)).to(device)
    return {
        "linear": ToyProblem("linear", "linear, K = 8", logits8, linear_objective(c8)),
        "quadratic": ToyProblem("quadratic", "quadratic, K = 8", logits8, quadratic_objective(c8)),
        "target": ToyProblem("target", "pick the target, K = 8", logits8, target_objective(3, 8)),
        "target100": ToyProblem("target100", "pick the target, K = 100", logits100, target_objective(17, 100)),
    }


# --------------------------------------------------------------------------------------------- the lab


@dataclass
class LabResult:
    """Measurements of :func:`run_lab`, as float64 CPU tensors indexed ``[problem][estimator]``.

    ``bias[p][e]`` has shape ``[T]``: the relative bias ``||E g_hat - g|| / ||g||`` estimated from all
    ``repeats * max(ns)`` single-sample estimates, and ``bias_se`` its Monte Carlo noise level (the relative
    standard error of that mean; an unbiased estimator shows a bias of about this size). ``std`` and
    ``cosine`` have shape ``[T, N]``: relative standard deviation ``sqrt(E||g_hat - E g_hat||^2) / ||g||`` and
    mean cosine similarity to ``g`` of the n-sample estimate, for each ``tau`` in ``taus`` and ``n`` in ``ns``.
    """

    taus: list[float]
    ns: list[int]
    repeats: int
    titles: dict[str, str]
    bias: dict[str, dict[str, torch.Tensor]]
    bias_se: dict[str, dict[str, torch.Tensor]]
    std: dict[str, dict[str, torch.Tensor]]
    cosine: dict[str, dict[str, torch.Tensor]]


def _measure(
    name: str, problem: ToyProblem, tau: float, ns: Sequence[int], repeats: int, mc_samples: int, gen: torch.Generator
) -> tuple[float, float, list[float], list[float]]:
    g = exact_grad(problem.logits, problem.f)
    norm = g.norm()
    if name == "reinforce_baseline":  # the baseline depends on the group size: one batch per n
        per_n = [
            sample_grads(name, problem.logits, problem.f, n, repeats, tau=tau, mc_samples=mc_samples, generator=gen)
            for n in ns
        ]
        bias_from = per_n[-1]
    else:
        batch = sample_grads(
            name, problem.logits, problem.f, max(ns), repeats, tau=tau, mc_samples=mc_samples, generator=gen
        )
        per_n = [batch[:, :n] for n in ns]
        bias_from = batch
    flat = bias_from.reshape(-1, g.shape[0])
    bias = float((flat.mean(dim=0) - g).norm() / norm)
    bias_se = float((flat.var(dim=0).sum() / flat.shape[0]).sqrt() / norm)
    stds, cosines = [], []
    for grads in per_n:
        est = grads.mean(dim=1)  # [repeats, K]
        stds.append(float((est - est.mean(dim=0)).pow(2).sum(dim=1).mean().sqrt() / norm))
        cosines.append(float(torch.nn.functional.cosine_similarity(est, g.unsqueeze(0), dim=1).mean()))
    return bias, bias_se, stds, cosines


def run_lab(
    problems: dict[str, ToyProblem] | None = None,
    taus: Sequence[float] = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0),
    ns: Sequence[int] = (2, 4, 8, 16, 32, 64),
    repeats: int = 100,
    *,
    estimators: Sequence[str] = ESTIMATORS,
    mc_samples: int = 10,
    seed: int = 0,
) -> LabResult:
    """Measure every estimator on every problem for each ``tau`` and sample count ``n`` (``repeats`` times each).

    Temperature-free estimators are measured once and repeated along the ``tau`` axis.
    """
    problems = toy_problems() if problems is None else problems
    taus = [check_tau(t) for t in taus]
    if not taus:
        raise ValueError("taus must not be empty")
    if not ns or any(isinstance(n, bool) or not isinstance(n, int) or n < 2 for n in ns) or list(ns) != sorted(ns):
        raise ValueError(f"ns must be a non-empty increasing sequence of ints >= 2, got {ns!r}")
    check_int(repeats, "repeats", 2)
    for name in estimators:
        _check_name(name)
    bias: dict[str, dict[str, torch.Tensor]] = {}
    bias_se: dict[str, dict[str, torch.Tensor]] = {}
    std: dict[str, dict[str, torch.Tensor]] = {}
    cosine: dict[str, dict[str, torch.Tensor]] = {}
    for pname, problem in problems.items():
        gen = torch.Generator(device=problem.logits.device).manual_seed(seed)
        bias[pname], bias_se[pname], std[pname], cosine[pname] = {}, {}, {}, {}
        for name in estimators:
            rows = []
            for i, tau in enumerate(taus):
                if name in TAU_FREE and i > 0:
                    rows.append(rows[0])
                else:
                    rows.append(_measure(name, problem, tau, ns, repeats, mc_samples, gen))
            bias[pname][name] = torch.tensor([r[0] for r in rows], dtype=torch.float64)
            bias_se[pname][name] = torch.tensor([r[1] for r in rows], dtype=torch.float64)
            std[pname][name] = torch.tensor([r[2] for r in rows], dtype=torch.float64)
            cosine[pname][name] = torch.tensor([r[3] for r in rows], dtype=torch.float64)
    titles = {p: problems[p].title for p in problems}
    return LabResult(list(taus), list(ns), repeats, titles, bias, bias_se, std, cosine)


def lab_table(lab: LabResult, tau: float, n: int) -> list[dict[str, object]]:
    """One row per estimator: relative bias, relative std and cosine at temperature ``tau`` and ``n`` samples."""
    if tau not in lab.taus:
        raise ValueError(f"tau={tau!r} was not measured; measured taus are {lab.taus}")
    if n not in lab.ns:
        raise ValueError(f"n={n!r} was not measured; measured ns are {lab.ns}")
    i, j = lab.taus.index(tau), lab.ns.index(n)
    rows = []
    for name in next(iter(lab.bias.values())):
        row: dict[str, object] = {"estimator": LABELS[name]}
        for p in lab.bias:
            row[(p, "bias")] = float(lab.bias[p][name][i])
            row[(p, "bias_se")] = float(lab.bias_se[p][name][i])
            row[(p, "std")] = float(lab.std[p][name][i, j])
            row[(p, "cosine")] = float(lab.cosine[p][name][i, j])
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------- tau -> 0


def zero_temperature_limit(logits: torch.Tensor, f: Objective) -> torch.Tensor:
    """The limit as tau -> 0 of the mean ST-Gumbel-Softmax (and Gumbel-Rao) gradient, shape ``[K]``.

    It is ``1/2 sum_{i,j} pi_i pi_j (e_i - e_j)(e_i - e_j)^T grad f(e_i)``: the trapezoid-rule surrogate, which
    is also the mean of ReinMax at tau = 1. It equals :func:`exact_grad` when ``f`` is quadratic, not in general.
    """
    _check_vector_logits(logits)
    if not callable(f):
        raise TypeError(f"f must be a callable mapping [n, K] one-hot rows to [n] values, got {type(f).__name__}")
    k = logits.shape[0]
    eye = torch.eye(k, dtype=logits.dtype, device=logits.device).requires_grad_(True)
    (slopes,) = torch.autograd.grad(_evaluate(f, eye).sum(), eye)  # row i: grad f(e_i)
    with torch.no_grad():
        pi = torch.softmax(logits.detach(), dim=-1)
        steps = slopes.diagonal().unsqueeze(1) - slopes  # [i, j]: (e_i - e_j)^T grad f(e_i)
        w = pi.unsqueeze(1) * pi.unsqueeze(0) * steps
        return 0.5 * (w.sum(dim=1) - w.sum(dim=0))


@dataclass
class TauSweep:
    """Relative bias against the temperature (:func:`bias_against_tau`), float64 CPU tensors ``[problem][estimator]``.

    ``bias[p][e]`` (shape ``[T]``) is ``||mean - g|| / ||g||`` over ``n_samples[e][t]`` single-sample estimates and
    ``noise[p][e]`` its Monte Carlo noise level ``sqrt(tr Cov / n) / ||g||``: by the triangle inequality the true
    relative bias differs from the measured one by at most the (relative) norm of the Monte Carlo error, whose
    root mean square is the noise level. ``to_limit[p][e]`` is the relative distance of the mean to
    :func:`zero_temperature_limit`, and ``limit_bias[p]`` that limit's relative bias (exact, no sampling).
    """

    taus: list[float]
    titles: dict[str, str]
    n_samples: dict[str, list[int]]
    bias: dict[str, dict[str, torch.Tensor]]
    noise: dict[str, dict[str, torch.Tensor]]
    to_limit: dict[str, dict[str, torch.Tensor]]
    limit_bias: dict[str, float]


def _sweep_samples(name: str, tau: float, budget: float, rao_budget: float, min_samples: int) -> int:
    """Samples for one point: the variance of the Gumbel estimators grows like 1/tau, so the count does too."""
    b = rao_budget if name == "gumbel_rao" else budget
    return max(min_samples, math.ceil(b / tau))


def bias_against_tau(
    problems: dict[str, ToyProblem] | None = None,
    taus: Sequence[float] = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
    *,
    budget: float = 500.0,
    rao_budget: float = 100.0,
    min_samples: int = 2000,
    estimators: Sequence[str] = ESTIMATORS,
    mc_samples: int = 10,
    seed: int = 0,
) -> TauSweep:
    """Each estimator's relative bias against tau, down to small tau, with its noise level.

    A point at temperature ``tau`` averages ``max(min_samples, budget / tau)`` single-sample estimates
    (``rao_budget`` for Gumbel-Rao, whose samples cost ``mc_samples`` softmaxes each), so the noise level stays
    roughly flat although the variance grows like 1/tau. Temperature-free estimators are measured once, with
    the count of the smallest tau. REINFORCE with a baseline uses leave-one-out groups of 8.
    """
    problems = toy_problems() if problems is None else problems
    taus = [check_tau(t) for t in taus]
    if not taus:
        raise ValueError("taus must not be empty")
    for name, value in (("budget", budget), ("rao_budget", rao_budget)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    check_int(min_samples, "min_samples", 8)
    check_int(mc_samples, "mc_samples")
    names = [_check_name(e) for e in estimators]
    t_min = min(taus)
    counts = {
        e: [_sweep_samples(e, t_min if e in TAU_FREE else t, budget, rao_budget, min_samples) for t in taus]
        for e in names
    }
    bias: dict[str, dict[str, torch.Tensor]] = {}
    noise: dict[str, dict[str, torch.Tensor]] = {}
    to_limit: dict[str, dict[str, torch.Tensor]] = {}
    limit_bias: dict[str, float] = {}
    for pname, problem in problems.items():
        gen = torch.Generator(device=problem.logits.device).manual_seed(seed)
        g = exact_grad(problem.logits, problem.f)
        norm = g.norm()
        limit = zero_temperature_limit(problem.logits, problem.f)
        limit_bias[pname] = float((limit - g).norm() / norm)
        bias[pname], noise[pname], to_limit[pname] = {}, {}, {}
        for name in names:
            rows: list[tuple[float, float, float]] = []
            for i, tau in enumerate(taus):
                if name in TAU_FREE and i > 0:
                    rows.append(rows[0])
                    continue
                n = counts[name][i]
                group = 8 if name == "reinforce_baseline" else 1
                grads = sample_grads(
                    name, problem.logits, problem.f, group, math.ceil(n / group),
                    tau=tau, mc_samples=mc_samples, generator=gen,
                ).reshape(-1, g.shape[0])  # fmt: skip
                mean = grads.mean(dim=0)
                se = (grads.var(dim=0).sum() / grads.shape[0]).sqrt() / norm
                rows.append((float((mean - g).norm() / norm), float(se), float((mean - limit).norm() / norm)))
            bias[pname][name] = torch.tensor([r[0] for r in rows], dtype=torch.float64)
            noise[pname][name] = torch.tensor([r[1] for r in rows], dtype=torch.float64)
            to_limit[pname][name] = torch.tensor([r[2] for r in rows], dtype=torch.float64)
    titles = {p: problems[p].title for p in problems}
    return TauSweep(taus, titles, counts, bias, noise, to_limit, limit_bias)


# --------------------------------------------------------------------------------------------- the race


def optimization_race(
    problem: ToyProblem,
    estimators: Sequence[str] = ESTIMATORS,
    *,
    steps: int = 200,
    n_samples: int = 4,
    tau: float = 1.0,
    lr: float = 0.1,
    seeds: int = 4,
    mc_samples: int = 10,
    include_exact: bool = True,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Minimise ``E[f(z)]`` with Adam from ``logits = 0`` using each estimator's gradient.

    The ``seeds`` runs go side by side as one batch, with one generator seeded from ``seed``. Returns, per
    estimator (and ``"exact"``), the exact objective after each step, shape ``[seeds, steps + 1]``.
    """
    check_int(steps, "steps")
    check_int(seeds, "seeds")
    check_tau(tau)
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite positive number, got {lr!r}")
    names = [_check_name(e) for e in estimators] + (["exact"] if include_exact else [])
    check_int(n_samples, "n_samples", 2 if "reinforce_baseline" in names else 1)
    check_int(mc_samples, "mc_samples")
    k = problem.logits.shape[0]

    def objective(theta: torch.Tensor) -> torch.Tensor:
        return torch.stack([expected_value(row, problem.f) for row in theta])

    curves = {}
    for name in names:  # all seeds run side by side: row s of theta is seed s
        gen = torch.Generator(device=problem.logits.device).manual_seed(1000 + seed)
        theta = torch.zeros(seeds, k, dtype=problem.logits.dtype, device=problem.logits.device, requires_grad=True)
        opt = torch.optim.Adam([theta], lr=lr)
        runs = [objective(theta.detach())]
        for _ in range(steps):
            with validate_args(False):
                if name == "exact":
                    grad = torch.stack([exact_grad(row, problem.f) for row in theta.detach()])
                else:
                    grad = _batched_grads(name, theta.detach(), problem.f, n_samples, tau, mc_samples, gen).mean(1)
            theta.grad = grad
            opt.step()
            runs.append(objective(theta.detach()))
        curves[name] = torch.stack(runs, dim=1).to(device="cpu", dtype=torch.float64)
    return curves
