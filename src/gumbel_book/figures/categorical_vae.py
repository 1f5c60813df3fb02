"""Figures of the categorical-VAE chapter: loss curves, reconstructions, prior samples, a latent traversal."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from plotly.subplots import make_subplots

from ..plotting import COLORS, base_layout, slider
from ..vae import PAPER_ROW, PAPER_TABLE1_VAE_CAT, CategoricalVAE

GREYS = [[0.0, "#ffffff"], [1.0, "#000000"]]
LEVELS = 9  # pixel probabilities are drawn in 10 grey levels, 0..9: one digit per pixel keeps the page small


def _check_images(x: torch.Tensor, name: str = "x") -> torch.Tensor:
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
    logits = model.encode(_check_images(x).to(_device(model)))
    return F.one_hot(logits.argmax(-1), model.n_classes).to(torch.float32)


def reconstructions(model: CategoricalVAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(originals, reconstructions)``, both ``[n, 28, 28]``: the decoder's mean at the posterior mode."""
    x = _check_images(x)
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


def most_influential_variable(model: CategoricalVAE, x: torch.Tensor) -> int:
    """The latent variable whose value changes the decoded images most (mean pixel variance over its K values)."""
    scores = [float(latent_traversal(model, x, v).var(dim=0).mean()) for v in range(model.n_latent)]
    return int(np.argmax(scores))


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


def traversal_figure(
    model: CategoricalVAE, x: torch.Tensor, variable: int | None = None, height: int = 330
) -> go.Figure:
    """Decoded digits with one categorical variable set to each of its K values, chosen with a slider."""
    x = _check_images(x)
    if variable is None:
        variable = most_influential_variable(model, x)
    frames = latent_traversal(model, x, variable)
    base = posterior_mode(model, x)[:, variable].argmax(-1)
    grids = [quantize(tile(f, cols=len(x))) for f in frames]
    fig = go.Figure(_heatmap(grids[0]))
    steps = [{"method": "restyle", "label": str(k), "args": [{"z": [grids[k]]}, [0]]} for k in range(len(grids))]
    fig.update_layout(
        **base_layout(
            f"Latent variable {variable} set to each of its {model.n_classes} values "
            f"(the posterior picked {', '.join(str(int(b)) for b in base)})",
            height=height,
        ),
        sliders=[slider(steps, f"variable {variable} = ", active=0, pad_top=10)],
    )
    _image_axes(fig)
    return fig


def loss_curves_figure(histories: Mapping[str, Sequence[Mapping[str, float]]], height: int = 420) -> go.Figure:
    """Per-epoch training loss and test -ELBO of each estimator's run, side by side."""
    if not histories:
        raise ValueError("histories must name at least one run")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss (relaxed for gs)", "test −ELBO (discrete z)"))
    for i, (name, hist) in enumerate(histories.items()):
        if not hist:
            raise ValueError(f"history of {name!r} is empty")
        epochs = [h["epoch"] for h in hist]
        color = COLORS[i % len(COLORS)]
        fig.add_trace(
            go.Scatter(x=epochs, y=[h["train_loss"] for h in hist], name=name, legendgroup=name, line={"color": color}),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=[h["test_neg_elbo"] for h in hist],
                name=name,
                legendgroup=name,
                showlegend=False,
                line={"color": color},
            ),
            row=1,
            col=2,
        )
    fig.update_layout(**base_layout("Loss per epoch (nats per image, lower is better)", height=height))
    fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="nats")
    return fig


def comparison_rows(measured: Mapping[str, Mapping[str, float]]) -> list[dict[str, object]]:
    """Rows pairing each estimator's measured bounds with its row of Table 1 of Jang et al. (2017), if any."""
    rows = []
    for name, m in measured.items():
        if name not in PAPER_ROW:
            raise ValueError(f"unknown estimator {name!r}; expected one of {sorted(PAPER_ROW)}")
        paper = PAPER_ROW[name]
        rows.append(
            {
                "estimator": name,
                "neg_elbo": float(m["neg_elbo"]),
                "neg_iw": float(m["neg_iw"]),
                "paper_row": paper or "(not in the paper)",
                "paper_value": PAPER_TABLE1_VAE_CAT[paper] if paper else None,
            }
        )
    return rows


def comparison_html(rows: Sequence[Mapping[str, object]], samples: int, images: int) -> str:
    """The comparison as an HTML table: measured here beside the paper's Table 1 VAE (Cat.) numbers."""
    head = (
        "<th>estimator</th><th>−ELBO here</th>"
        f"<th>−log p(x) bound here<br>({samples} samples, {images} test digits)</th>"
        "<th>Table 1 row</th><th>Table 1 (nats)</th>"
    )
    body = []
    for r in rows:
        paper = "–" if r["paper_value"] is None else f"{r['paper_value']:.1f}"
        body.append(
            f"<tr><td><code>{html.escape(str(r['estimator']))}</code></td><td>{r['neg_elbo']:.1f}</td>"
            f"<td>{r['neg_iw']:.1f}</td><td>{html.escape(str(r['paper_row']))}</td><td>{paper}</td></tr>"
        )
    return f"<table class='table'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
