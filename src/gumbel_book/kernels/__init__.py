"""The fused Triton samplers, seen from above: what they cover, and the switch to Triton's interpreter.

This module never imports Triton. :mod:`gumbel_book.kernels.fused` holds the ``@triton.jit`` code and
:mod:`gumbel_book.kernels.static` compiles it for a GPU target without a GPU. The public samplers in
:mod:`gumbel_book.sampling` decide per call whether a tensor goes to the kernels (:func:`covers`), and
call :func:`race_topk` or :func:`fused_gumbel_softmax` for already-checked input.

Without a CUDA GPU the kernels can still run, slowly, on CPU tensors in Triton's interpreter. That mode is
chosen once per process, before Triton is first imported, by calling :func:`use_interpreter` (the tests'
``conftest.py`` and the language-model chapter do). Nothing is switched as a side effect of an import.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import torch

from .coverage import KERNEL_DEVICES, KERNEL_DTYPES, KERNEL_MAX_K, covers

__all__ = [
    "KERNEL_DEVICES",
    "KERNEL_DTYPES",
    "KERNEL_MAX_K",
    "covers",
    "fused_gumbel_softmax",
    "interpreted",
    "race_topk",
    "triton_installed",
    "use_interpreter",
]

INTERPRET_ENV = "TRITON_INTERPRET"


def triton_installed() -> bool:
    """Whether Triton can be imported here."""
    return importlib.util.find_spec("triton") is not None


def use_interpreter() -> bool:
    """Run the kernels in Triton's interpreter in this process when no CUDA GPU is present.

    Call it before anything imports Triton (``torch.optim`` may). Returns whether the interpreter is on.
    Raises ``RuntimeError`` when Triton was already imported in compiled mode on a machine without a GPU,
    where the kernels could then run nowhere.
    """
    if torch.cuda.is_available() or not triton_installed():
        return False
    if "triton" in sys.modules and os.environ.get(INTERPRET_ENV) != "1":
        raise RuntimeError(
            "Triton was imported before gumbel_book.kernels.use_interpreter() was called; call it first "
            "(before importing torch.optim), or start Python with TRITON_INTERPRET=1"
        )
    os.environ[INTERPRET_ENV] = "1"
    return True


def race_topk(logits: torch.Tensor, k: int, dim: int, generator: torch.Generator | None) -> torch.Tensor:
    """Indices of the top ``k`` of ``logits - log E`` along ``dim`` (best first), for already-checked input."""
    from .fused import race_topk as run

    return run(logits, k, dim, generator)


def fused_gumbel_softmax(
    logits: torch.Tensor, tau: float, hard: bool, dim: int, generator: torch.Generator | None
) -> torch.Tensor:
    """The Gumbel-Softmax sample for already-checked input and a float ``tau``, in one fused pass."""
    from .fused import fused_gumbel_softmax as run

    return run(logits, tau, hard, dim, generator)


def interpreted() -> bool:
    """Whether the kernels run in Triton's interpreter in this process (imports Triton)."""
    from .fused import INTERPRETED

    return INTERPRETED
