"""Pick the torch device the book computes on: CUDA, then Apple MPS, else the CPU."""

from __future__ import annotations

import torch

from .settings import DEVICE_ENV, forced_device


def _check_available(device: torch.device, raw: str) -> None:
    """Raise a RuntimeError naming ``raw`` when ``device`` cannot be used on this machine."""
    if device.type == "cpu":
        return
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"{DEVICE_ENV}={raw!r}: CUDA is not available on this machine")
        index = 0 if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise RuntimeError(f"{DEVICE_ENV}={raw!r}: only {torch.cuda.device_count()} CUDA device(s) are present")
        return
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise RuntimeError(f"{DEVICE_ENV}={raw!r}: Apple MPS is not available on this machine")
        return
    raise ValueError(f"{DEVICE_ENV}={raw!r}: unsupported device type {device.type!r}; use cpu, cuda[:N] or mps")


def default_device() -> torch.device:
    """Return the device to compute on: ``$GUMBEL_BOOK_DEVICE`` if set, else CUDA, then MPS, else CPU.

    An unknown or unavailable device in the environment variable is an error that names the value,
    so a typo never silently falls back to the CPU.
    """
    raw = forced_device()
    if raw:
        try:
            device = torch.device(raw)
        except (RuntimeError, ValueError) as err:
            raise ValueError(f"{DEVICE_ENV}={raw!r} is not a known torch device ({err})") from None
        _check_available(device, raw)
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
