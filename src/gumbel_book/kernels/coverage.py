"""What the fused kernels cover: devices, dtypes and the largest ``k``. Imports no Triton."""

from __future__ import annotations

import torch

KERNEL_DEVICES = ("cuda",)
"""Devices whose tensors the compiled kernels take."""
KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
"""Input dtypes the kernels cover (they compute in float32)."""
KERNEL_MAX_K = 32
"""The largest ``k`` of the fused top-k."""


def covers(logits: torch.Tensor, k: int = 1, tau: float | torch.Tensor = 1.0) -> str | None:
    """Why the kernels cannot take this call, or ``None`` when they can (Triton itself aside)."""
    if logits.dtype not in KERNEL_DTYPES:
        return f"the fused kernels cover {KERNEL_DTYPES}, got logits of dtype {logits.dtype}"
    if k > KERNEL_MAX_K:
        return f"the fused top-k kernel handles k <= {KERNEL_MAX_K}, got k={k}"
    if isinstance(tau, torch.Tensor):
        return "the fused kernel takes a float tau, got a tensor"
    return None
