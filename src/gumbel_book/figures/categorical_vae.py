"""Figures of the categorical-VAE chapter: loss curves, reconstructions, prior samples, the reference runs
and the latent explorer."""

from __future__ import annotations

import base64
import html
import struct
import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from plotly.subplots import make_subplots

from ..vae.model import CategoricalVAE
from .style import COLORS, base_layout, slider

GREYS = [[0.0, "#ffffff"], [1.0, "#000000"]]
LEVELS = 9  # pixel probabilities are drawn in 10 grey levels, 0..9: one digit per pixel keeps the page small


def check_images(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """``x`` as float32 if it is a non-empty batch of 28x28 images ``[n, 28, 28]``, else an error naming ``name``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 3 or tuple(x.shape[1:]) != (28, 28) or len(x) == 0:
        raise ValueError(f"{name} must be a non-empty batch of 28x28 images [n, 28, 28], got {tuple(x.shape)}")
    return x.to(torch.float32)


def _device(model: CategoricalVAE) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def decode_mean(model: CategoricalVAE, z: torch.Tensor) -> torch.Tensor:
    """Pixel probabilities ``sigmoid(decoder(z))`` as ``[n, 28, 28]`` on the CPU."""
    return torch.sigmoid(model.decode(z.to(_device(model)))).view(-1, 28, 28).cpu()


@torch.no_grad()
def posterior_mode(model: CategoricalVAE, x: torch.Tensor) -> torch.Tensor:
    """The most probable code under q(z|x): one-hot ``[n, N, K]``."""
    logits = model.encode(check_images(x).to(_device(model)))
    return F.one_hot(logits.argmax(-1), model.n_classes).to(torch.float32)


def reconstructions(model: CategoricalVAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(originals, reconstructions)``, both ``[n, 28, 28]``: the decoder's mean at the posterior mode."""
    x = check_images(x)
    return x.cpu(), decode_mean(model, posterior_mode(model, x))


def prior_samples(model: CategoricalVAE, n: int = 16, seed: int = 0) -> torch.Tensor:
    """Decoder means ``[n, 28, 28]`` for ``n`` codes drawn from the prior p(z) (one-hot per variable)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    gen = torch.Generator().manual_seed(seed)
    probs = model.log_prior().detach().exp().cpu()
    index = torch.multinomial(probs.repeat(n, 1), 1, generator=gen).view(n, model.n_latent)
    return decode_mean(model, F.one_hot(index, model.n_classes).to(torch.float32))


def latent_traversal(model: CategoricalVAE, x: torch.Tensor, variable: int) -> torch.Tensor:
    """Decoder means ``[K, n, 28, 28]``: each image's posterior-mode code with ``variable`` set to 0..K-1."""
    if isinstance(variable, bool) or not isinstance(variable, int) or not 0 <= variable < model.n_latent:
        raise ValueError(f"variable must be an int in [0, {model.n_latent - 1}], got {variable!r}")
    z = posterior_mode(model, x)
    frames = []
    for k in range(model.n_classes):
        zk = z.clone()
        zk[:, variable] = F.one_hot(torch.tensor(k), model.n_classes).to(zk)
        frames.append(decode_mean(model, zk))
    return torch.stack(frames)


def tile(images: torch.Tensor | np.ndarray, cols: int, pad: int = 2) -> np.ndarray:
    """Arrange ``[n, 28, 28]`` images row by row in a grid ``cols`` wide, ``pad`` blank pixels between them."""
    images = np.asarray(images, dtype=np.float32)
    n, h, w = images.shape
    rows = -(-n // cols)
    grid = np.zeros((rows * (h + pad) - pad, cols * (w + pad) - pad), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = images[i]
    return grid


def quantize(grid: np.ndarray) -> list[list[int]]:
    """Pixel values in [0, 1] as integer grey levels 0..LEVELS, nested lists ready for a heatmap."""
    return np.rint(np.clip(grid, 0, 1) * LEVELS).astype(int).tolist()


def _heatmap(z: list[list[int]], **kwargs) -> go.Heatmap:
    return go.Heatmap(z=z, colorscale=GREYS, zmin=0, zmax=LEVELS, showscale=False, hoverinfo="skip", **kwargs)


def _image_axes(fig: go.Figure) -> None:
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")


def image_grid_figure(images: torch.Tensor, cols: int, title: str, height: int = 300) -> go.Figure:
    """Greyscale images ``[n, 28, 28]`` (values in [0, 1]) tiled ``cols`` wide in one heatmap."""
    fig = go.Figure(_heatmap(quantize(tile(images, cols))))
    fig.update_layout(**base_layout(title, height=height))
    _image_axes(fig)
    return fig


def reconstruction_figure(model: CategoricalVAE, x: torch.Tensor, height: int = 260) -> go.Figure:
    """Originals (top row) above their reconstructions (bottom row)."""
    originals, recon = reconstructions(model, x)
    both = torch.cat([originals, recon])
    return image_grid_figure(
        both, cols=len(originals), title="Test digits (top) and their reconstructions (bottom)", height=height
    )


def loss_curves_figure(histories: Mapping[str, Sequence[Mapping[str, float]]], height: int = 420) -> go.Figure:
    """Training loss and test -ELBO of each estimator's run against the training step, one point per scoring
    (the history's entries: each ``train_loss`` is the mean over the steps since the previous point)."""
    if not histories:
        raise ValueError("histories must name at least one run")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss (relaxed for gs)", "test −ELBO (one-hot z)"))
    for i, (name, hist) in enumerate(histories.items()):
        if not hist:
            raise ValueError(f"history of {name!r} is empty")
        steps = [h["step"] for h in hist]
        color = COLORS[i % len(COLORS)]
        for col, key in ((1, "train_loss"), (2, "test_neg_elbo")):
            fig.add_trace(
                go.Scatter(
                    x=steps,
                    y=[h[key] for h in hist],
                    mode="lines+markers",
                    marker={"size": 5},
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    line={"color": color},
                    hovertemplate=f"{name}<br>step %{{x}}<br>%{{y:.1f}} nats<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_layout(**base_layout("Loss during training (nats per digit, lower is better)", height=height))
    fig.update_xaxes(title="training step", rangemode="tozero")
    fig.update_yaxes(title="nats")
    return fig


# ---------------------------------------------------------------- the reference runs and the latent explorer


def png_data_uri(grid: np.ndarray) -> str:
    """A greyscale image (values in [0, 1], 1 = black ink) as a ``data:image/png;base64`` URI.

    Written with zlib alone: a page of many small images stays small, with no imaging library needed.
    """
    grid = np.asarray(grid, dtype=np.float64)
    if grid.ndim != 2 or grid.size == 0:
        raise ValueError(f"grid must be a non-empty 2-D array, got shape {grid.shape}")
    pixels = np.rint((1.0 - np.clip(grid, 0.0, 1.0)) * 255).astype(np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    h, w = pixels.shape
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


EXPLORER_COLS = 6  # images per row of the explorer: two rows of 6 fit a 688 px column with room to spare
EXPLORER_DIGIT_PX = 96  # on-screen height of one 28-pixel digit (3.4x) when the column is wide enough
TILE = 28 + 2  # one image and its padding, in pixels of the grid


def explorer_grid(model: CategoricalVAE, x: torch.Tensor, variable: int) -> np.ndarray:
    """The images for one digit ``x`` ``[28, 28]``, :data:`EXPLORER_COLS` to a row: the input, its reconstruction,
    then the decoded digit with ``variable`` set to each of its K values (every other variable where the encoder
    put it)."""
    x = check_images(x.unsqueeze(0) if x.dim() == 2 else x)
    if len(x) != 1:
        raise ValueError(f"x must be one digit [28, 28], got {len(x)} digits")
    original, recon = reconstructions(model, x)
    values = latent_traversal(model, x, variable)[:, 0]
    return tile(torch.cat([original, recon, values]), cols=EXPLORER_COLS)


def explorer_labels(model: CategoricalVAE) -> list[str]:
    """Labels of the images of :func:`explorer_grid`, in order."""
    return ["input", "recon.", *(f"= {k}" for k in range(model.n_classes))]


def explorer_layout(model: CategoricalVAE, title: str | None, extra_height: int) -> dict:
    """Height, margins and the label annotations that give each digit :data:`EXPLORER_DIGIT_PX` pixels: shared by
    the static figure and the live app. ``extra_height`` is the room for a title, a menu or a slider."""
    labels = explorer_labels(model)
    rows = -(-len(labels) // EXPLORER_COLS)
    scale = EXPLORER_DIGIT_PX / 28
    margin = {"l": 10, "r": 10, "t": 10 + extra_height, "b": 10}
    annotations = [
        {
            "x": TILE * (i % EXPLORER_COLS),
            "y": TILE * (i // EXPLORER_COLS),
            "text": label,
            "showarrow": False,
            "xanchor": "left",
            "yanchor": "top",
            "font": {"size": 11, "color": "#555555"},
        }
        for i, label in enumerate(labels)
    ]
    layout = base_layout(title, height=round(rows * TILE * scale) + margin["t"] + margin["b"])
    layout.update(margin=margin, annotations=annotations)
    return layout


def explorer_digit_px(layout: Mapping, n_images: int, column_px: int = 688) -> float:
    """On-screen height of one digit when ``layout`` is drawn ``column_px`` wide (the image keeps its aspect)."""
    rows, cols = -(-n_images // EXPLORER_COLS), min(n_images, EXPLORER_COLS)
    margin = layout["margin"]
    width = column_px - margin["l"] - margin["r"]
    height = layout["height"] - margin["t"] - margin["b"]
    return 28 * min(width / (cols * TILE - 2), height / (rows * TILE - 2))


def latent_explorer_figure(model: CategoricalVAE, x: torch.Tensor) -> go.Figure:
    """Pick a test digit (menu) and a latent variable (slider): the digit decoded with that variable set to each
    of its K values. Every image is precomputed, so the figure works in static HTML without a kernel."""
    x = check_images(x)
    n_var = model.n_latent
    uris = [[png_data_uri(explorer_grid(model, xi, v)) for v in range(n_var)] for xi in x]
    fig = go.Figure([go.Image(source=uris[d][0], visible=d == 0, hoverinfo="skip") for d in range(len(x))])
    steps = [
        {"method": "restyle", "label": str(v), "args": [{"source": [u[v] for u in uris]}, list(range(len(x)))]}
        for v in range(n_var)
    ]
    buttons = [
        {"method": "restyle", "label": f"test digit {d}", "args": [{"visible": [i == d for i in range(len(x))]}]}
        for d in range(len(x))
    ]
    layout = explorer_layout(model, "One latent variable set to each value", extra_height=90)
    layout["margin"]["b"] = 110  # the slider
    layout["height"] += 100
    fig.update_layout(
        **layout,
        sliders=[slider(steps, "latent variable ", active=0, pad_top=10)],
        updatemenus=[{"buttons": buttons, "direction": "down", "x": 0.0, "y": 1.0, "yanchor": "bottom"}],
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def reference_curves_figure(summary: Mapping, height: int = 430) -> go.Figure:
    """Training loss, validation and test -ELBO per epoch of every reference run (one colour per estimator)."""
    runs = [r for r in summary["runs"] if r["config"]["binarization"] == "dynamic"]
    if not runs:
        raise ValueError("summary holds no reference runs")
    titles = ("training loss", "validation −ELBO", "test −ELBO")
    fig = make_subplots(rows=1, cols=3, subplot_titles=titles, shared_yaxes=True)
    estimators = list(dict.fromkeys(r["config"]["estimator"] for r in runs))
    for r in runs:
        est = r["config"]["estimator"]
        color = COLORS[estimators.index(est) % len(COLORS)]
        epochs = [h["epoch"] for h in r["history"]]
        for col, key in enumerate(("train_loss", "val_neg_elbo", "test_neg_elbo"), start=1):
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=[h[key] for h in r["history"]],
                    name=est,
                    legendgroup=est,
                    showlegend=col == 1 and r["config"]["seed"] == 0,
                    line={"color": color, "width": 1.5},
                    hovertemplate=f"{r['name']}<br>epoch %{{x}}<br>%{{y:.2f}} nats<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_layout(**base_layout("Reference runs, every seed: nats per digit (lower is better)", height=height))
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(range=[85, 140])
    return fig


def binarization_figure(control: Mapping[str, Mapping], height: int = 400) -> go.Figure:
    """Training loss and validation -ELBO of the same run with fixed and with dynamic binarization."""
    if set(control) != {"fixed", "dynamic"}:
        raise ValueError(f"control must hold 'fixed' and 'dynamic' runs, got {sorted(control)}")
    fig = go.Figure()
    for i, (kind, run) in enumerate(control.items()):
        epochs = [h["epoch"] for h in run["history"]]
        for key, dash in (("train_loss", "dot"), ("val_neg_elbo", "solid")):
            label = "training loss" if key == "train_loss" else "validation −ELBO"
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=[h[key] for h in run["history"]],
                    name=f"{kind}: {label}",
                    line={"color": COLORS[i], "dash": dash},
                )
            )
    fig.update_layout(**base_layout("Fixed against dynamic binarization (gs, seed 0)", height=height))
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="nats per digit", range=[85, 130])
    return fig


def _cell(value: float | None, sd: float | None = None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f}" if sd is None else f"{value:.1f} ± {sd:.1f}"


SCROLL_BOX = "<div style='overflow-x:auto;max-width:100%'>{}</div>"  # a table wider than its column scrolls


def reference_table_html(rows: Sequence[Mapping[str, object]], iw_samples: int) -> str:
    """The reference runs beside Table 1: −ELBO and −L_m as mean ± sd over seeds, the best run's −L_m, the paper's
    number and the gaps to it. Seven short columns, in a box that scrolls sideways on a narrow screen."""
    n_sub = rows[0]["iw_subset_images"] if rows else 0
    head = (
        "<th>estimator</th><th>test −ELBO<br>(10,000 digits)</th>"
        f"<th>test −L<sub>{iw_samples}</sub><br>(first {n_sub:,})</th>"
        f"<th>best run's<br>−L<sub>{iw_samples}</sub></th>"
        "<th>Table 1</th><th>gap<br>(−ELBO)</th><th>gap<br>(−L)</th>"
    )
    body = []
    for r in rows:
        gap_e = "–" if r["gap_elbo"] is None else f"{r['gap_elbo']:+.1f}"
        gap_i = "–" if r["gap_iw"] is None else f"{r['gap_iw']:+.1f}"
        row = html.escape(str(r["paper_row"]))
        paper = "(newer)" if r["paper"] is None else f"{_cell(r['paper'])}<br><small>{row}</small>"
        body.append(
            f"<tr><td><code>{html.escape(str(r['estimator']))}</code></td>"
            f"<td>{_cell(r['neg_elbo_mean'], r['neg_elbo_sd'])}</td>"
            f"<td>{_cell(r['neg_iw_subset_mean'], r['neg_iw_subset_sd'])}</td><td>{_cell(r['best_neg_iw'])}</td>"
            f"<td>{paper}</td><td>{gap_e}</td><td>{gap_i}</td></tr>"
        )
    table = f"<table class='table'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return SCROLL_BOX.format(table)


def paper_table_html(rows: Sequence[Mapping[str, object]]) -> str:
    """Every row of Table 1's VAE column, with our mean −ELBO and best −L beside the rows we ran."""
    head = "<th>Table 1 row</th><th>Table 1 (nats)</th><th>ours</th><th>our −ELBO</th><th>our −L<sub>1000</sub></th>"
    body = []
    for r in rows:
        ours = "–" if r["estimator"] is None else f"<code>{html.escape(str(r['estimator']))}</code>"
        body.append(
            f"<tr><td>{html.escape(str(r['paper_row']))}</td><td>{r['paper']:.1f}</td><td>{ours}</td>"
            f"<td>{_cell(r['neg_elbo'])}</td><td>{_cell(r['neg_iw'])}</td></tr>"
        )
    table = f"<table class='table'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return SCROLL_BOX.format(table)
