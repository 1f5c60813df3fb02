"""What the temperature tau trades away, measured: the data behind the Gumbel-Softmax chapter.

Every function here returns plain tensors, arrays or dicts; the figures in
:mod:`gumbel_book.figures.gumbel_softmax` and the live app in :mod:`gumbel_book.widgets` draw them.
:func:`learning_curves` is the chapter's small learning experiment (the relaxed estimator against
REINFORCE), :func:`near_ties` measures where the gradient variance of small temperatures comes from, and
:func:`density_precision` traces the float32 difference between two Concrete densities to its cause.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from ..device import default_device
from ..sampling import concrete_log_prob, gumbel_max, gumbel_softmax
from ..schedule import anneal_tau
from ..vae import REFERENCE, VALIDATION_FRACTION
from ..validation import as_logits, check_int, check_real, check_tau, check_taus, validate_args

SQRT3_2 = math.sqrt(3.0) / 2.0

MNIST_TRAINING_DIGITS = 60_000
"""The size of MNIST's official training split (LeCun et al. 1998)."""


def _device(device: torch.device | str | None) -> torch.device:
    return default_device() if device is None else torch.device(device)


def relaxed_samples(
    logits: Sequence[float] | torch.Tensor,
    tau: float,
    n_samples: int,
    seed: int = 0,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``n_samples`` Gumbel-Softmax samples of shape ``[n_samples, K]`` on ``device``, drawn with ``seed``.

    The same seed gives the same Gumbel noise at every ``tau`` (common random numbers), so curves
    against tau are smooth and differences between taus are due to tau alone.
    """
    lg = as_logits(logits)
    tau = check_tau(tau)
    n = check_int(n_samples, "n_samples")
    seed = check_int(seed, "seed", minimum=0)
    dev = _device(device)
    gen = torch.Generator(device=dev).manual_seed(seed)
    return gumbel_softmax(lg.to(dev).expand(n, -1), tau, generator=gen)


def simplex_xy(y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Cartesian coordinates of points ``y`` of the 2-simplex (shape ``[..., 3]``) in an equilateral triangle.

    Vertex 1 is at (0, 0), vertex 2 at (1, 0) and vertex 3 at (1/2, sqrt(3)/2).
    """
    if not isinstance(y, torch.Tensor) or y.dim() < 1 or y.shape[-1] != 3:
        raise ValueError(f"y must be a tensor of shape [..., 3], got {getattr(y, 'shape', type(y).__name__)}")
    y = y.detach().to("cpu", torch.float64)
    x = y[..., 1] + 0.5 * y[..., 2]
    h = SQRT3_2 * y[..., 2]
    return x.numpy(), h.numpy()


def concrete_density_grid(
    logits: Sequence[float] | torch.Tensor,
    tau: float,
    resolution: int = 40,
    *,
    device: torch.device | str | None = None,
) -> dict[str, np.ndarray]:
    """The Concrete log density on a ``resolution``-column grid over the triangle of :func:`simplex_xy`.

    Returns ``x`` (columns), ``y`` (rows) and ``log_density`` of shape ``[rows, columns]``, NaN outside
    the open simplex, computed by :func:`gumbel_book.concrete_log_prob` at the cell centres.
    """
    lg = as_logits(logits, k=3)
    tau = check_tau(tau)
    cols = check_int(resolution, "resolution", minimum=4)
    rows = max(2, round(cols * SQRT3_2))
    xs = (torch.arange(cols, dtype=torch.float64) + 0.5) / cols
    hs = (torch.arange(rows, dtype=torch.float64) + 0.5) / rows * SQRT3_2
    hh, xx = torch.meshgrid(hs, xs, indexing="ij")
    y3 = hh / SQRT3_2
    y2 = xx - 0.5 * y3
    y1 = 1.0 - y2 - y3
    bary = torch.stack([y1, y2, y3], dim=-1)
    inside = (bary > 1e-6).all(dim=-1)
    dev = _device(device)
    pts = bary[inside].to(dev, torch.float32)
    pts = pts / pts.sum(dim=-1, keepdim=True)
    logp = concrete_log_prob(pts, lg.to(dev).expand_as(pts), tau).to("cpu", torch.float64)
    grid = torch.full((rows, cols), float("nan"), dtype=torch.float64)
    grid[inside] = logp
    return {"x": xs.numpy(), "y": hs.numpy(), "log_density": grid.numpy()}


def simplex_view(
    logits: Sequence[float] | torch.Tensor,
    tau: float,
    n_samples: int = 500,
    seed: int = 0,
    resolution: int = 40,
    *,
    device: torch.device | str | None = None,
) -> dict[str, np.ndarray]:
    """Everything the simplex figure draws for one setting (K = 3): samples, their mean, pi, and the density.

    Keys: ``sample_x``, ``sample_y`` (Cartesian sample positions), ``mean`` (E[y] estimated from the
    samples, barycentric), ``pi``, ``mean_xy``, ``pi_xy``, and the ``grid_x``, ``grid_y``,
    ``log_density`` of :func:`concrete_density_grid`. The static slider and the live widget both use it.
    """
    lg = as_logits(logits, k=3)
    y = relaxed_samples(lg, tau, n_samples, seed, device=device)
    sx, sy = simplex_xy(y)
    mean = y.double().mean(dim=0).cpu()
    pi = torch.softmax(lg.double(), dim=-1)
    grid = concrete_density_grid(lg, tau, resolution, device=device)
    mx, my = simplex_xy(mean)
    px, py = simplex_xy(pi)
    return {
        "sample_x": sx,
        "sample_y": sy,
        "mean": mean.numpy(),
        "pi": pi.numpy(),
        "mean_xy": np.array([mx, my]),
        "pi_xy": np.array([px, py]),
        "grid_x": grid["x"],
        "grid_y": grid["y"],
        "log_density": grid["log_density"],
    }


def temperature_tradeoffs(
    logits: Sequence[float] | torch.Tensor,
    taus: Sequence[float],
    n_samples: int = 20_000,
    seed: int = 0,
    cost: Sequence[float] | None = None,
    *,
    device: torch.device | str | None = None,
) -> dict[str, np.ndarray]:
    """Measure, for each tau, what the relaxation costs: bias of E[y], one-hotness, and gradient variance.

    With pi = softmax(logits): ``mean_bias`` is the total-variation distance 0.5 * ||E[y] - pi||_1,
    estimated as the mean of y - onehot(argmax y), since onehot(argmax y) is an exact Gumbel-max draw
    from pi with the same noise (a control variate: no Monte Carlo floor as tau -> 0); ``mean_max`` is
    E[max_i y_i]; ``grad_var`` is the total variance sum_i Var(d f(y) / d logit_i) of the reparameterized
    gradient of the loss f(y) = cost . y (default cost = linspace(0, 1, K)). All taus share one ``seed``'s noise.
    """
    lg = as_logits(logits)
    taus = check_taus(taus)
    n = check_int(n_samples, "n_samples", minimum=2)
    k = lg.numel()
    c = torch.linspace(0.0, 1.0, k) if cost is None else as_logits(cost, name="cost", k=k)
    dev = _device(device)
    pi = torch.softmax(lg.double(), dim=-1)
    out = {name: np.empty(len(taus)) for name in ("mean_bias", "mean_max", "grad_var")}
    for i, tau in enumerate(taus):
        yd, grads = _relaxed_gradients(lg, tau, n, seed, c, dev)
        hard = torch.nn.functional.one_hot(yd.argmax(dim=-1), k).double()
        out["mean_bias"][i] = 0.5 * float((yd - hard).mean(dim=0).abs().sum())
        out["mean_max"][i] = float(yd.max(dim=-1).values.mean())
        out["grad_var"][i] = float(grads.var(dim=0).sum())
    out["taus"] = np.asarray(taus, dtype=np.float64)
    out["pi"] = pi.numpy()
    return out


def _relaxed_gradients(
    lg: torch.Tensor, tau: float, n: int, seed: int, cost: torch.Tensor, dev: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` relaxed samples ``y`` at ``tau`` (noise from ``seed``) and the per-sample gradients of ``cost . y`` in the
    logits, both ``[n, K]`` float64 on the CPU."""
    leaf = lg.to(dev).expand(n, -1).clone().requires_grad_(True)
    gen = torch.Generator(device=dev).manual_seed(seed)
    y = gumbel_softmax(leaf, tau, generator=gen)
    # Row r of y depends only on row r of the leaf, so leaf.grad holds n per-sample gradients.
    (y @ cost.to(dev)).sum().backward()
    return y.detach().double().cpu(), leaf.grad.double().cpu()


def near_ties(
    logits: Sequence[float] | torch.Tensor,
    taus: Sequence[float],
    width: float = 3.0,
    n_samples: int = 20_000,
    seed: int = 0,
    *,
    device: torch.device | str | None = None,
) -> dict[str, np.ndarray]:
    """Where the gradient variance of small temperatures comes from: near ties of the perturbed logits.

    For each tau, with the noise of :func:`temperature_tradeoffs` (same ``seed``) and its loss ``f(y) = c . y``:
    ``tie_prob`` is the fraction of samples whose two largest entries of ``logits + g`` are within ``tau`` of
    each other, ``near_fraction`` the fraction within ``width * tau``, and ``variance_share`` the share of the
    total gradient variance (the summed squared deviations of the per-sample gradients) that those
    ``near_fraction`` samples carry. The gap is read off the sample itself, ``tau * log(y_(1) / y_(2))``.
    """
    lg = as_logits(logits)
    taus = check_taus(taus)
    width = check_real(width, "width", positive=True)
    n = check_int(n_samples, "n_samples", minimum=2)
    c = torch.linspace(0.0, 1.0, lg.numel())
    dev = _device(device)
    out = {name: np.empty(len(taus)) for name in ("tie_prob", "near_fraction", "variance_share")}
    for i, tau in enumerate(taus):
        yd, grads = _relaxed_gradients(lg, tau, n, seed, c, dev)
        top2 = yd.topk(2, dim=-1).values
        gap = tau * (top2[:, 0].log() - top2[:, 1].log())  # +inf where y_(2) underflowed: no tie
        squares = (grads - grads.mean(dim=0)).pow(2).sum(dim=-1)
        near = gap < width * tau
        out["tie_prob"][i] = float((gap < tau).double().mean())
        out["near_fraction"][i] = float(near.double().mean())
        out["variance_share"][i] = float(squares[near].sum() / squares.sum())
    out["taus"] = np.asarray(taus, dtype=np.float64)
    return out


def density_precision(
    logits: Sequence[float] | torch.Tensor, taus: Sequence[float], n_samples: int = 2000, seed: int = 1
) -> dict[str, np.ndarray]:
    """Why torch's Concrete density differs from :func:`gumbel_book.concrete_log_prob` for a float32 temperature.

    On ``n_samples`` float64 samples per tau, the largest relative difference of the log densities between
    ``torch.distributions.RelaxedOneHotCategorical(torch.tensor(tau), ...)`` (a float32 temperature) and
    ``concrete_log_prob`` given: ``exact``, tau itself in float64; ``rounded``, tau rounded to float32 (the
    same number torch sees); ``rounded_const``, the rounded tau plus the rounding error of torch's normalising
    constant ``lgamma(K) + (K - 1) log tau``, which torch computes in the temperature's dtype. ``float64`` is the
    difference when torch gets a float64 temperature. If rounding tau were the cause, ``rounded`` would vanish;
    ``rounded_const`` vanishing says the float32 normalising constant is.
    """
    lg = as_logits(logits).double()
    taus = check_taus(taus)
    n = check_int(n_samples, "n_samples")
    k = lg.numel()
    batch = lg.expand(n, -1)
    out = {name: np.empty(len(taus)) for name in ("float64", "exact", "rounded", "rounded_const")}

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(((a - b).abs() / b.abs().clamp(min=1)).max())

    for i, tau in enumerate(taus):
        ys = gumbel_softmax(batch, tau, generator=torch.Generator().manual_seed(seed))
        tau32 = torch.tensor(tau, dtype=torch.float32)
        theirs32 = torch.distributions.RelaxedOneHotCategorical(tau32, logits=batch).log_prob(ys)
        tau64 = torch.tensor(tau, dtype=torch.float64)
        theirs64 = torch.distributions.RelaxedOneHotCategorical(tau64, logits=batch).log_prob(ys)
        const32 = float(torch.lgamma(torch.tensor(float(k))) + (k - 1) * torch.log(tau32))
        const64 = math.lgamma(k) + (k - 1) * math.log(float(tau32))
        rounded = concrete_log_prob(ys, batch, float(tau32))
        out["float64"][i] = rel(concrete_log_prob(ys, batch, tau), theirs64)
        out["exact"][i] = rel(concrete_log_prob(ys, batch, tau), theirs32)
        out["rounded"][i] = rel(rounded, theirs32)
        out["rounded_const"][i] = rel(rounded + (const32 - const64), theirs32)
    out["taus"] = np.asarray(taus, dtype=np.float64)
    return out


def annealing_curves(
    rate: float,
    every: int,
    total_steps: int = 100_000,
    epoch_steps: int = 600,
    *,
    tau0: float = 1.0,
    tau_min: float = 0.5,
) -> dict[str, np.ndarray]:
    """The schedule tau = max(tau_min, tau0 exp(-rate t)), updated every ``every`` steps, over ``total_steps``.

    ``tau`` uses the global step (correct); ``tau_restarted`` uses the step within the epoch
    (``epoch_steps`` steps each), the bug that makes the temperature restart at every epoch. Both are
    computed by :func:`gumbel_book.anneal_tau` at every step where either can change (piecewise constant).
    """
    every = check_int(every, "every")
    total = check_int(total_steps, "total_steps")
    epoch = check_int(epoch_steps, "epoch_steps")
    rate = check_real(rate, "rate", minimum=0)
    points = set(range(0, total + 1, every))
    for start in range(0, total + 1, epoch):
        points.update(range(start, min(start + epoch, total + 1), every))
    points.add(total)
    steps = np.array(sorted(points), dtype=np.int64)
    kw = {"tau0": tau0, "rate": rate, "tau_min": tau_min, "every": every}
    tau = np.array([anneal_tau(int(s), **kw) for s in steps])
    restarted = np.array([anneal_tau(int(s) % epoch, **kw) for s in steps])
    return {"step": steps, "tau": tau, "tau_restarted": restarted}


def vae_epoch(training_digits: int = MNIST_TRAINING_DIGITS) -> dict[str, int]:
    """The epoch of the book's categorical VAE: ``digits`` it trains on, ``held_out`` for validation, ``batch``
    size and ``steps`` per epoch, computed from :data:`gumbel_book.vae.VALIDATION_FRACTION` and the reference
    configuration as :func:`gumbel_book.vae.split_validation` and the training loop do."""
    total = check_int(training_digits, "training_digits", minimum=2)
    held_out = max(1, round(total * VALIDATION_FRACTION))
    digits = total - held_out
    batch = min(REFERENCE.batch_size, digits)
    return {"digits": digits, "held_out": held_out, "batch": batch, "steps": digits // batch}


# --------------------------------------------------------------------------------------------- learning

LEARNING_TARGET = (0.1, 0.2, 0.3, 0.4)
"""The toy objective's target: ``f(z) = (1/N) sum_n ||z_n - t||^2``; every variable should pick the last category."""
LEARNING_TAUS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)
"""The temperatures on the learning figure's slider."""


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run a loop of many tiny tensor operations on one thread: on a busy machine, waking a thread pool for each
    op costs far more than the op itself."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def toy_values(target: Sequence[float] = LEARNING_TARGET) -> torch.Tensor:
    """``f(e_k) = ||e_k - t||^2`` for each one-hot ``e_k``: the K values the discrete objective can take."""
    t = torch.as_tensor(target, dtype=torch.float32)
    return ((torch.eye(t.numel()) - t) ** 2).sum(dim=-1)


def learning_curves(
    target: Sequence[float] = LEARNING_TARGET,
    taus: Sequence[float] = LEARNING_TAUS,
    *,
    variables: int = 8,
    steps: int = 300,
    lr: float = 2.0,
    runs: int = 32,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Learn the logits of ``variables`` independent categoricals by gradient descent on
    ``E[f(z)]``, ``f(z) = (1/N) sum_n ||z_n - target||^2``, from uniform logits, with three gradients:

    - ``relaxed``: the Gumbel-Softmax gradient, ``f`` evaluated at ``y = gumbel_softmax(theta, tau)``, one
      sample per step, for each ``tau`` in ``taus``;
    - ``reinforce``: the score-function gradient of the surrogate ``f(z) sum_n log p(z_n)`` with ``z`` the
      one-hot Gumbel-max sample of the same logits, one sample per step;
    - ``exact``: the exact gradient of ``E[f(z)]``.

    ``runs`` independent runs go side by side. Returns the exact objective ``E[f(z)]`` after each step (mean and
    standard deviation over runs, ``[len(taus), steps + 1]`` for ``relaxed``, ``[steps + 1]`` for the others, and
    the last step's values of every run, ``*_final``), the relaxed objective ``E[f(y)]`` that the relaxed gradient
    descends (``relaxed_surrogate``, the mean of the training losses over runs, ``[len(taus), steps]``), the
    ``optimum`` ``min_k f(e_k)`` and the settings. The relaxed and REINFORCE noise come from generators seeded
    ``seed`` and ``seed + 1``, so one run at one tau (``runs=1``) repeats a plain loop over ``theta`` of shape
    ``[variables, K]`` with ``torch.Generator().manual_seed(seed)``, step by step.
    """
    t = torch.as_tensor(as_logits(target, name="target"), dtype=torch.float32)
    taus = check_taus(taus)
    settings = {
        "variables": check_int(variables, "variables"),
        "steps": check_int(steps, "steps"),
        "lr": check_real(lr, "lr", positive=True),
        "runs": check_int(runs, "runs"),
        "seed": check_int(seed, "seed", minimum=0),
        "target": t.tolist(),
    }
    with _one_thread(), validate_args(False):
        history, surrogate = _descend(t, taus, settings)
    curves = {name: torch.stack(h, dim=-1).double() for name, h in history.items()}
    correction = 1 if runs > 1 else 0
    return {
        "relaxed": curves["relaxed"].mean(dim=1).numpy(),
        "relaxed_sd": curves["relaxed"].std(dim=1, correction=correction).numpy(),
        "relaxed_final": curves["relaxed"][..., -1].numpy(),
        "relaxed_surrogate": torch.stack(surrogate, dim=-1).double().numpy(),
        "reinforce": curves["reinforce"].mean(dim=0).numpy(),
        "reinforce_sd": curves["reinforce"].std(dim=0, correction=correction).numpy(),
        "reinforce_final": curves["reinforce"][:, -1].numpy(),
        "exact": curves["exact"].numpy(),
        "optimum": float(toy_values(t).min()),
        "taus": np.asarray(taus, dtype=np.float64),
        "step": np.arange(steps + 1),
        "settings": settings,
    }


def _descend(t: torch.Tensor, taus: list[float], settings: dict) -> tuple[dict[str, list], list]:
    """The three descents of :func:`learning_curves`, side by side: the objective after every step, and the
    relaxed training losses."""
    values, k = toy_values(t), t.numel()
    n_vars, runs, lr = settings["variables"], settings["runs"], settings["lr"]
    tau = torch.tensor(taus, dtype=torch.float32).view(-1, 1, 1, 1)
    relaxed = torch.zeros(len(taus), runs, n_vars, k, requires_grad=True)
    reinforce = torch.zeros(runs, n_vars, k, requires_grad=True)
    exact = torch.zeros(n_vars, k)
    gen_relaxed = torch.Generator().manual_seed(settings["seed"])
    gen_reinforce = torch.Generator().manual_seed(settings["seed"] + 1)

    def objective(theta: torch.Tensor) -> torch.Tensor:
        return (torch.softmax(theta.detach(), dim=-1) @ values).mean(dim=-1)

    history = {"relaxed": [objective(relaxed)], "reinforce": [objective(reinforce)], "exact": [objective(exact)]}
    surrogate = []
    for _ in range(settings["steps"]):
        y = gumbel_softmax(relaxed, tau, generator=gen_relaxed)
        loss = ((y - t) ** 2).sum(dim=-1).mean(dim=-1)
        loss.sum().backward()
        surrogate.append(loss.detach().mean(dim=1))
        index = gumbel_max(reinforce.detach(), generator=gen_reinforce)
        log_p = torch.log_softmax(reinforce, dim=-1).gather(-1, index.unsqueeze(-1)).squeeze(-1)
        (values[index].mean(dim=-1) * log_p.sum(dim=-1)).sum().backward()
        p = torch.softmax(exact, dim=-1)
        with torch.no_grad():
            for theta in (relaxed, reinforce):
                theta -= lr * theta.grad
                theta.grad = None
            exact -= lr * p * (values - (p @ values).unsqueeze(-1)) / n_vars
        for name, theta in (("relaxed", relaxed), ("reinforce", reinforce), ("exact", exact)):
            history[name].append(objective(theta))
    return history, surrogate
