"""The straight-through chapter's estimator lab: every estimator of :mod:`gumbel_book.estimators` measured
against the exact gradient on four toy problems.

:func:`run_lab` measures each estimator's bias, spread and cosine similarity to the exact gradient over a grid
of temperatures and sample counts, :func:`bias_against_tau` follows the bias down to small temperatures,
:func:`zero_temperature_limit` is the exact tau -> 0 limit of the mean ST-Gumbel-Softmax gradient, and
:func:`optimization_race` minimises a toy objective with each estimator. The figures in
:mod:`gumbel_book.figures.straight_through` draw the results.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from ..control_variates import ControlVariateNet, relax_step
from ..device import default_device
from ..estimators import (
    LABELS,
    STRAIGHT_THROUGH_ESTIMATORS,
    TAU_FREE,
    Objective,
    batched_sample_grads,
    evaluate_objective,
    exact_grad,
    expected_value,
    get_estimator,
    linear_objective,
    quadratic_objective,
    sample_grads,
    target_objective,
)
from ..validation import (
    check_int,
    check_int_sequence,
    check_logits_vector,
    check_real,
    check_tau,
    check_taus,
    validate_args,
)

Table = dict[str, dict[str, torch.Tensor]]
"""Measurements indexed ``[problem][estimator]``."""

MC_SAMPLES = 10
#: Adam's step for RELAX's control-variate network in :func:`optimization_race` (the network trains as it races).
RELAX_NET_LR = 0.01
"""Gumbel-Rao's conditional draws per sample (``mc_samples``) wherever the lab does not say otherwise."""


# --------------------------------------------------------------------------------------------- toy problems


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


def _estimator_names(estimators: Sequence[str]) -> list[str]:
    """The registry names of ``estimators`` (aliases resolved); an unknown name is a ``ValueError``."""
    return [get_estimator(e).name for e in estimators]


def _per_tau(name: str, taus: Sequence[float], measure: Callable[[int, float], tuple]) -> list[tuple]:
    """``measure(i, tau)`` for each temperature; a temperature-free estimator is measured once and repeated."""
    rows: list[tuple] = []
    for i, tau in enumerate(taus):
        rows.append(rows[0] if name in TAU_FREE and i > 0 else measure(i, tau))
    return rows


def _columns(rows: list[tuple]) -> list[torch.Tensor]:
    """Field ``k`` of every row, as one float64 tensor per field (a field may itself be a list)."""
    return [torch.tensor([r[k] for r in rows], dtype=torch.float64) for k in range(len(rows[0]))]


# --------------------------------------------------------------------------------------------- the lab


@dataclass
class LabResult:
    """Measurements of :func:`run_lab`, as float64 CPU tensors indexed ``[problem][estimator]``.

    ``bias[p][e]`` has shape ``[T]``: the relative bias ``||E g_hat - g|| / ||g||`` estimated from all
    ``repeats * max(ns)`` single-sample estimates, and ``bias_se`` its Monte Carlo noise level (the relative
    standard error of that mean; an unbiased estimator shows a bias of about this size). ``variance`` (shape
    ``[T]``) is the total variance ``E||g_hat - E g_hat||^2 / ||g||^2`` of one single-sample estimate, from the
    same samples, and ``variance_se`` its standard error (delta method on the squared deviations). ``std``,
    ``cosine`` and ``cosine_se`` have shape ``[T, N]``: relative standard deviation
    ``sqrt(E||g_hat - E g_hat||^2) / ||g||``, mean cosine similarity to ``g`` of the n-sample estimate and the
    standard error of that mean over the repeats, for each ``tau`` in ``taus`` and ``n`` in ``ns``.
    """

    taus: list[float]
    ns: list[int]
    repeats: int
    titles: dict[str, str]
    bias: Table
    bias_se: Table
    variance: Table
    variance_se: Table
    std: Table
    cosine: Table
    cosine_se: Table

    @property
    def samples(self) -> int:
        """The single-sample estimates behind each bias and variance: ``repeats * max(ns)``."""
        return self.repeats * max(self.ns)


def _measure(
    name: str, problem: ToyProblem, tau: float, ns: Sequence[int], repeats: int, mc_samples: int, gen: torch.Generator
) -> tuple[float, float, float, float, list[float], list[float], list[float]]:
    """One estimator at one temperature: relative bias, its noise level, the single-sample variance and its
    standard error, and the std, cosine and cosine standard error for each n."""
    g = exact_grad(problem.logits, problem.f)
    norm = g.norm()
    kw = {"tau": tau, "mc_samples": mc_samples, "generator": gen}
    if name == "reinforce_baseline":  # the baseline depends on the group size: one batch per n
        per_n = [sample_grads(name, problem.logits, problem.f, n, repeats, **kw) for n in ns]
        bias_from = per_n[-1]
    else:
        bias_from = sample_grads(name, problem.logits, problem.f, max(ns), repeats, **kw)
        per_n = [bias_from[:, :n] for n in ns]
    flat = bias_from.reshape(-1, g.shape[0])
    bias = float((flat.mean(dim=0) - g).norm() / norm)
    bias_se = float((flat.var(dim=0).sum() / flat.shape[0]).sqrt() / norm)
    squared = (flat - flat.mean(dim=0)).pow(2).sum(dim=1) / norm**2  # [samples]: squared deviations
    variance, variance_se = float(squared.mean()), float(squared.std() / math.sqrt(squared.shape[0]))
    stds, cosines, cosine_ses = [], [], []
    for grads in per_n:
        est = grads.mean(dim=1)  # [repeats, K]
        stds.append(float((est - est.mean(dim=0)).pow(2).sum(dim=1).mean().sqrt() / norm))
        cos = torch.nn.functional.cosine_similarity(est, g.unsqueeze(0), dim=1)
        cosines.append(float(cos.mean()))
        cosine_ses.append(float(cos.std() / math.sqrt(cos.shape[0])))
    return bias, bias_se, variance, variance_se, stds, cosines, cosine_ses


def _lab_problem(
    problem: ToyProblem, names: list[str], taus: list[float], ns: list[int], repeats: int, mc_samples: int, seed: int
) -> tuple[dict[str, torch.Tensor], ...]:
    """:func:`run_lab` on one problem: the seven :class:`LabResult` tables, each ``{estimator: tensor}``."""
    gen = torch.Generator(device=problem.logits.device).manual_seed(seed)
    out: tuple[dict[str, torch.Tensor], ...] = ({}, {}, {}, {}, {}, {}, {})
    for name in names:

        def measure(i: int, tau: float, name: str = name) -> tuple:
            return _measure(name, problem, tau, ns, repeats, mc_samples, gen)

        for table, column in zip(out, _columns(_per_tau(name, taus, measure)), strict=True):
            table[name] = column
    return out


def run_lab(
    problems: dict[str, ToyProblem] | None = None,
    taus: Sequence[float] = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0),
    ns: Sequence[int] = (2, 4, 8, 16, 32, 64),
    repeats: int = 100,
    *,
    estimators: Sequence[str] = STRAIGHT_THROUGH_ESTIMATORS,
    mc_samples: int = MC_SAMPLES,
    seed: int = 0,
) -> LabResult:
    """Measure every estimator on every problem for each ``tau`` and sample count ``n`` (``repeats`` times each).

    Temperature-free estimators are measured once and repeated along the ``tau`` axis.
    """
    problems = toy_problems() if problems is None else problems
    taus = check_taus(taus)
    ns = check_int_sequence(ns, "ns", 2, increasing=True)
    check_int(repeats, "repeats", 2)
    names = _estimator_names(estimators)
    per_problem = {
        p: _lab_problem(problem, names, taus, ns, repeats, mc_samples, seed) for p, problem in problems.items()
    }
    tables = [{p: t[k] for p, t in per_problem.items()} for k in range(7)]
    titles = {p: problems[p].title for p in problems}
    return LabResult(taus, ns, repeats, titles, *tables)


def lab_table(result: LabResult, tau: float, n: int) -> list[dict[str, object]]:
    """One row per estimator: relative bias, relative std and cosine at temperature ``tau`` and ``n`` samples."""
    if tau not in result.taus:
        raise ValueError(f"tau={tau!r} was not measured; measured taus are {result.taus}")
    if n not in result.ns:
        raise ValueError(f"n={n!r} was not measured; measured ns are {result.ns}")
    i, j = result.taus.index(tau), result.ns.index(n)
    rows = []
    for name in next(iter(result.bias.values())):
        row: dict[str, object] = {"estimator": LABELS[name]}
        for p in result.bias:
            row[(p, "bias")] = float(result.bias[p][name][i])
            row[(p, "bias_se")] = float(result.bias_se[p][name][i])
            row[(p, "std")] = float(result.std[p][name][i, j])
            row[(p, "cosine")] = float(result.cosine[p][name][i, j])
        rows.append(row)
    return rows


def variance_ratio(
    result: LabResult, problem: str, a: str = "gumbel_rao", b: str = "st_gumbel_softmax"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``Var[a] / Var[b]`` of single-sample estimates at each measured tau, and its standard error (delta method,
    the two variances measured on independent samples), both shape ``[T]``."""
    va, vb = result.variance[problem][a], result.variance[problem][b]
    sa, sb = result.variance_se[problem][a], result.variance_se[problem][b]
    ratio = va / vb
    return ratio, ratio * ((sa / va) ** 2 + (sb / vb) ** 2).sqrt()


# --------------------------------------------------------------------------------------------- tau -> 0


def zero_temperature_limit(logits: torch.Tensor, f: Objective) -> torch.Tensor:
    """The limit as tau -> 0 of the mean ST-Gumbel-Softmax (and Gumbel-Rao) gradient, shape ``[K]``.

    It is ``1/2 sum_{i,j} pi_i pi_j (e_i - e_j)(e_i - e_j)^T grad f(e_i)``: the trapezoid-rule surrogate, which
    is also the mean of ReinMax at tau = 1. It equals :func:`exact_grad` when ``f`` is quadratic, not in general.
    """
    check_logits_vector(logits, min_categories=2)
    if not callable(f):
        raise TypeError(f"f must be a callable mapping [n, K] one-hot rows to [n] values, got {type(f).__name__}")
    k = logits.shape[0]
    eye = torch.eye(k, dtype=logits.dtype, device=logits.device).requires_grad_(True)
    (slopes,) = torch.autograd.grad(evaluate_objective(f, eye).sum(), eye)  # row i: grad f(e_i)
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
    root mean square is the noise level. ``mean[p][e]`` (shape ``[T, K]``) is the mean itself, divided by
    ``||g||``, so that two estimators' means can be compared. ``to_limit[p][e]`` is the relative distance of the
    mean to :func:`zero_temperature_limit`, and ``limit_bias[p]`` that limit's relative bias (exact, no sampling).
    ``budget``, ``rao_budget``, ``min_samples`` and ``mc_samples`` are the settings the counts came from.
    """

    taus: list[float]
    titles: dict[str, str]
    n_samples: dict[str, list[int]]
    bias: Table
    noise: Table
    mean: Table
    to_limit: Table
    limit_bias: dict[str, float]
    budget: float
    rao_budget: float
    min_samples: int
    mc_samples: int


#: The estimators whose variance grows like 1/tau as tau falls: the sweep gives them samples in proportion.
NOISY_AT_LOW_TAU = ("gumbel_softmax", "st_gumbel_softmax", "gumbel_rao")

#: :func:`bias_against_tau`'s sample counts: ``max(SWEEP_MIN_SAMPLES, SWEEP_BUDGET / tau)`` for the relaxed and the
#: straight-through Gumbel-Softmax, ``SWEEP_RAO_BUDGET / tau`` for Gumbel-Rao (each of its samples costs
#: ``MC_SAMPLES`` softmaxes), and ``SWEEP_MIN_SAMPLES`` for the estimators whose variance does not grow.
SWEEP_BUDGET = 5000.0
SWEEP_RAO_BUDGET = 200.0
SWEEP_MIN_SAMPLES = 5000
SWEEP_TAUS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


def _sweep_samples(name: str, tau: float, budget: float, rao_budget: float, min_samples: int) -> int:
    """Samples for one point: the variance of the Gumbel estimators grows like 1/tau, so their count does too."""
    if name not in NOISY_AT_LOW_TAU:
        return min_samples
    b = rao_budget if name == "gumbel_rao" else budget
    return max(min_samples, math.ceil(b / tau))


def _sweep_point(
    name: str, problem: ToyProblem, tau: float, n: int, limit: torch.Tensor, mc_samples: int, gen: torch.Generator
) -> tuple[float, float, list[float], float]:
    """Relative bias, noise level, relative mean and distance to ``limit`` of the mean of about ``n`` single-sample
    estimates. REINFORCE with a baseline draws leave-one-out groups of 8."""
    g = exact_grad(problem.logits, problem.f)
    norm = g.norm()
    group = 8 if name == "reinforce_baseline" else 1
    grads = sample_grads(
        name, problem.logits, problem.f, group, math.ceil(n / group), tau=tau, mc_samples=mc_samples, generator=gen
    ).reshape(-1, g.shape[0])
    mean = grads.mean(dim=0)
    se = (grads.var(dim=0).sum() / grads.shape[0]).sqrt() / norm
    relative = (mean / norm).cpu().tolist()
    return float((mean - g).norm() / norm), float(se), relative, float((mean - limit).norm() / norm)


def _sweep_problem(
    problem: ToyProblem, taus: list[float], counts: dict[str, list[int]], mc_samples: int, seed: int
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor], float]:
    """:func:`bias_against_tau` on one problem: bias, noise, mean and distance to the limit per estimator, and the
    limit's own relative bias."""
    gen = torch.Generator(device=problem.logits.device).manual_seed(seed)
    g = exact_grad(problem.logits, problem.f)
    limit = zero_temperature_limit(problem.logits, problem.f)
    bias, noise, mean, to_limit = {}, {}, {}, {}
    for name in counts:

        def measure(i: int, tau: float, name: str = name) -> tuple[float, float, list[float], float]:
            return _sweep_point(name, problem, tau, counts[name][i], limit, mc_samples, gen)

        bias[name], noise[name], mean[name], to_limit[name] = _columns(_per_tau(name, taus, measure))
    return bias, noise, mean, to_limit, float((limit - g).norm() / g.norm())


def bias_against_tau(
    problems: dict[str, ToyProblem] | None = None,
    taus: Sequence[float] = SWEEP_TAUS,
    *,
    budget: float = SWEEP_BUDGET,
    rao_budget: float = SWEEP_RAO_BUDGET,
    min_samples: int = SWEEP_MIN_SAMPLES,
    estimators: Sequence[str] = STRAIGHT_THROUGH_ESTIMATORS,
    mc_samples: int = MC_SAMPLES,
    seed: int = 0,
) -> TauSweep:
    """Each estimator's relative bias against tau, down to small tau, with its noise level.

    A point at temperature ``tau`` of the relaxed or straight-through Gumbel-Softmax averages
    ``max(min_samples, budget / tau)`` single-sample estimates (``rao_budget / tau`` for Gumbel-Rao, whose
    samples cost ``mc_samples`` softmaxes each), so their noise level stays roughly flat although their variance
    grows like 1/tau; every other estimator averages ``min_samples``, and the temperature-free ones are measured
    once. REINFORCE with a baseline uses leave-one-out groups of 8.
    """
    problems = toy_problems() if problems is None else problems
    taus = check_taus(taus)
    budget = check_real(budget, "budget", positive=True)
    rao_budget = check_real(rao_budget, "rao_budget", positive=True)
    check_int(min_samples, "min_samples", 8)
    check_int(mc_samples, "mc_samples")
    counts = {
        e: [_sweep_samples(e, t, budget, rao_budget, min_samples) for t in taus] for e in _estimator_names(estimators)
    }
    tables: tuple[dict, ...] = ({}, {}, {}, {}, {})
    for pname, problem in problems.items():
        for table, value in zip(tables, _sweep_problem(problem, taus, counts, mc_samples, seed), strict=True):
            table[pname] = value
    titles = {p: problems[p].title for p in problems}
    return TauSweep(taus, titles, counts, *tables, budget, rao_budget, min_samples, mc_samples)


# --------------------------------------------------------------------------------------------- the race


def _race(
    name: str, problem: ToyProblem, steps: int, n_samples: int, tau: float, lr: float, seeds: int, mc: int, seed: int
) -> torch.Tensor:
    """One estimator's runs of :func:`optimization_race`: the exact objective ``[seeds, steps + 1]``."""
    gen = torch.Generator(device=problem.logits.device).manual_seed(1000 + seed)
    k = problem.logits.shape[0]
    theta = torch.zeros(seeds, k, dtype=problem.logits.dtype, device=problem.logits.device, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=lr)

    def objective() -> torch.Tensor:
        return torch.stack([expected_value(row, problem.f) for row in theta.detach()])

    runs = [objective()]
    if name == "relax":  # one control-variate network for the side-by-side runs, trained as they go
        net = ControlVariateNet(k).to(device=theta.device, dtype=theta.dtype)
        net_opt = torch.optim.Adam(net.parameters(), lr=RELAX_NET_LR)
    for _ in range(steps):
        with validate_args(False):
            if name == "exact":
                grad = torch.stack([exact_grad(row, problem.f) for row in theta.detach()])
            elif name == "relax":
                grad = relax_step(theta.detach(), problem.f, n_samples, tau, net, net_opt, gen)
            else:
                kw = {"tau": tau, "mc_samples": mc, "generator": gen}
                grad = batched_sample_grads(name, theta.detach(), problem.f, n_samples, **kw).mean(1)
        theta.grad = grad
        opt.step()
        runs.append(objective())
    return torch.stack(runs, dim=1).to(device="cpu", dtype=torch.float64)


def race_summary(curves: dict[str, torch.Tensor]) -> dict[str, tuple[float, float]]:
    """Each run's final objective of :func:`optimization_race`: ``name -> (mean over seeds, standard error)``,
    best (lowest) first."""
    out = {}
    for name, runs in curves.items():
        final = runs[:, -1]
        out[name] = (float(final.mean()), float(final.std() / math.sqrt(final.shape[0])))
    return dict(sorted(out.items(), key=lambda item: item[1][0]))


def optimization_race(
    problem: ToyProblem,
    estimators: Sequence[str] = STRAIGHT_THROUGH_ESTIMATORS,
    *,
    steps: int = 200,
    n_samples: int = 4,
    tau: float = 1.0,
    lr: float = 0.1,
    seeds: int = 4,
    mc_samples: int = MC_SAMPLES,
    include_exact: bool = True,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """Minimise ``E[f(z)]`` with Adam from ``logits = 0`` using each estimator's gradient.

    The ``seeds`` runs go side by side as one batch, with one generator seeded from ``seed``. Returns, per
    estimator (and ``"exact"``), the exact objective after each step, shape ``[seeds, steps + 1]``. ``relax``
    trains its control-variate network as it goes (:func:`gumbel_book.control_variates.relax_step`, Adam with
    step :data:`RELAX_NET_LR`, one network for the side-by-side runs).
    """
    check_int(steps, "steps")
    check_int(seeds, "seeds")
    tau = check_tau(tau)
    lr = check_real(lr, "lr", positive=True)
    names = _estimator_names(estimators) + (["exact"] if include_exact else [])
    check_int(n_samples, "n_samples", 2 if "reinforce_baseline" in names else 1)
    check_int(mc_samples, "mc_samples")
    return {name: _race(name, problem, steps, n_samples, tau, lr, seeds, mc_samples, seed) for name in names}
