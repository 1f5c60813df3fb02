"""The files a training run leaves in its directory, and reading them back.

``checkpoint.pt`` holds everything a resume needs (weights, optimizer, both generators, the REINFORCE baseline,
the history), ``best.pt`` the weights of the best validation epoch, ``metrics.json`` the config and history as
JSON. :func:`save_compact` writes a small bfloat16 copy of a model for committing. Every file is written to a
temporary name first and then renamed, so an interruption never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..device import default_device
from .config import BEST, CHECKPOINT, METRICS, VAEConfig
from .model import CategoricalVAE


@dataclass
class TrainResult:
    """A trained model, its config and the per-epoch history (train loss, test -ELBO, tau, ...)."""

    model: CategoricalVAE
    config: VAEConfig
    history: list[dict[str, float]]


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_metrics(out_dir: Path, config: VAEConfig, history: list[dict], extra: dict | None = None) -> None:
    """Update ``out_dir/metrics.json`` with the config, the history and ``extra``, keeping its other keys."""
    path = out_dir / METRICS
    data: dict[str, Any] = {}
    if path.exists():
        data = json.loads(path.read_text())
    data.update({"config": config.to_dict(), "epochs": history})
    if extra:
        data.update(extra)
    _atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2)))


def read_checkpoint(out_dir: Path, config: VAEConfig) -> dict[str, Any] | None:
    """The resume state in ``out_dir`` (None if there is none), refused if another config wrote it.

    Only ``epochs`` may differ: asking for more epochs later extends the same run.
    """
    path = out_dir / CHECKPOINT
    if not path.exists():
        return None
    # On the CPU: generator states must stay CPU ByteTensors; the model and Adam copy to their device.
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    saved = dict(ckpt["config"])
    mine = config.to_dict()
    diff = sorted(k for k in mine if k != "epochs" and saved.get(k) != mine[k])
    if diff:
        raise ValueError(
            f"{path} was written by a different config (fields {diff} differ); use another out_dir or the same settings"
        )
    return ckpt


def write_checkpoint(out_dir: Path, config: VAEConfig, state: dict[str, Any], *, best: bool) -> None:
    """Save the end-of-epoch ``state`` (the keys :func:`read_checkpoint` returns) as ``checkpoint.pt``, its
    weights as ``best.pt`` too when ``best``, and the history into ``metrics.json``."""
    if best:
        weights = {"config": config.to_dict(), "epoch": state["epoch"], "model": state["model"]}
        _atomic_write(out_dir / BEST, lambda p: torch.save(weights, p))
    _atomic_write(out_dir / CHECKPOINT, lambda p: torch.save(state, p))
    write_metrics(out_dir, config, state["history"])


def load_run(
    out_dir: str | os.PathLike, device: torch.device | str | None = None, *, which: str = "last"
) -> TrainResult:
    """The model, config and history saved by :func:`~gumbel_book.vae.train_vae` in ``out_dir``: the last
    epoch's weights (``which="last"``) or the best validation epoch's (``which="best"``)."""
    if which not in ("last", "best"):
        raise ValueError(f"which must be 'last' or 'best', got {which!r}")
    path = Path(out_dir) / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}: train first with `python -m gumbel_book.vae train`")
    device = default_device() if device is None else torch.device(device)
    ckpt = torch.load(path, map_location=device, weights_only=False)
    config = VAEConfig(**dict(ckpt["config"]))
    model = CategoricalVAE(*config.latent, config.prior).to(device)
    weights = ckpt["model"]
    if which == "best":
        best_path = Path(out_dir) / BEST
        if not best_path.exists():
            raise FileNotFoundError(f"no {BEST} in {str(out_dir)!r}: the run was trained without validation images")
        weights = torch.load(best_path, map_location=device, weights_only=False)["model"]
    model.load_state_dict(weights)
    model.eval()
    return TrainResult(model, config, ckpt["history"])


def save_compact(model: CategoricalVAE, config: VAEConfig, path: str | os.PathLike, **info: Any) -> None:
    """Save only the weights, in bfloat16, with the config: a small file for committing a trained model."""
    state = {k: v.detach().to("cpu", torch.bfloat16) for k, v in model.state_dict().items()}
    payload = {"config": config.to_dict(), "model": state, "info": info}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(Path(path), lambda p: torch.save(payload, p))


def load_compact(path: str | os.PathLike, device: torch.device | str | None = None) -> TrainResult:
    """A model saved by :func:`save_compact`, in float32 on ``device`` (its history is empty)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no compact checkpoint at {str(path)!r}")
    device = torch.device("cpu") if device is None else torch.device(device)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    config = VAEConfig(**dict(payload["config"]))
    model = CategoricalVAE(*config.latent, config.prior)
    model.load_state_dict({k: v.to(torch.float32) for k, v in payload["model"].items()})
    model.to(device).eval()
    return TrainResult(model, config, [])
