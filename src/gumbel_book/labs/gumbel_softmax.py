"""What the temperature tau trades away, measured: the data behind the Gumbel-Softmax chapter.

Every function here returns plain tensors, arrays or dicts; the figures in
:mod:`gumbel_book.figures.gumbel_softmax` and the live app in :mod:`gumbel_book.widgets` draw them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from ..device import default_device
from ..sampling import concrete_log_prob, gumbel_softmax
from ..schedule import anneal_tau
from ..validation import as_logits, check_int, check_real, check_tau, check_taus

SQRT3_2 = math.sqrt(3.0) / 2.0


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
    c_dev = c.to(dev)
    for i, tau in enumerate(taus):
        leaf = lg.to(dev).expand(n, -1).clone().requires_grad_(True)
        gen = torch.Generator(device=dev).manual_seed(seed)
        y = gumbel_softmax(leaf, tau, generator=gen)
        # Row r of y depends only on row r of the leaf, so leaf.grad holds n per-sample gradients.
        (y @ c_dev).sum().backward()
        grads = leaf.grad.double().cpu()
        yd = y.detach().double().cpu()
        hard = torch.nn.functional.one_hot(yd.argmax(dim=-1), k).double()
        out["mean_bias"][i] = 0.5 * float((yd - hard).mean(dim=0).abs().sum())
        out["mean_max"][i] = float(yd.max(dim=-1).values.mean())
        out["grad_var"][i] = float(grads.var(dim=0).sum())
    out["taus"] = np.asarray(taus, dtype=np.float64)
    out["pi"] = pi.numpy()
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
