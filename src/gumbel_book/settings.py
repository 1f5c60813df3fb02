"""Every ``GUMBEL_BOOK_*`` environment variable, read in one place.

The rest of the package asks these functions instead of ``os.environ``, so the README's table of
variables and this module are the whole story. Each function reads the environment when called,
so a test or a notebook may set a variable after import.
"""

from __future__ import annotations

import os
from pathlib import Path

DEVICE_ENV = "GUMBEL_BOOK_DEVICE"
"""Force a device: ``cpu``, ``cuda``, ``cuda:1``, ``mps``."""
DATA_ENV = "GUMBEL_BOOK_DATA"
"""A folder with the MNIST IDX ``.gz`` files."""
RESULTS_ENV = "GUMBEL_BOOK_RESULTS"
"""Where the VAE chapter finds the reference runs."""
FULL_ENV = "GUMBEL_BOOK_FULL"
"""``1``: the VAE chapter trains longer on the full data."""
KERNELS_ENV = "GUMBEL_BOOK_KERNELS"
"""``0``: never use the fused Triton kernels, even for CUDA tensors."""
BUILD_ENV = "GUMBEL_BOOK_HTML"
"""Set by the book build (:mod:`gumbel_book.sphinxext.offline`): figures render as kernel-free HTML."""

CHROMIUM_ENV = "GUMBEL_BOOK_CHROMIUM"
"""The Chromium that prints the PDFs (default: Debian's ``/usr/bin/chromium``, else playwright's own)."""
DEFAULT_CHROMIUM = Path("/usr/bin/chromium")

ENVIRONMENT = (DEVICE_ENV, DATA_ENV, RESULTS_ENV, FULL_ENV, KERNELS_ENV, BUILD_ENV, CHROMIUM_ENV)
"""The variables the package reads."""


def _get(name: str) -> str:
    return os.environ.get(name, "").strip()


def forced_device() -> str:
    """``$GUMBEL_BOOK_DEVICE`` as written (empty when unset)."""
    return _get(DEVICE_ENV)


def data_dir() -> Path | None:
    """``$GUMBEL_BOOK_DATA`` as a path, or ``None``."""
    return Path(_get(DATA_ENV)) if _get(DATA_ENV) else None


def results_dir() -> Path | None:
    """``$GUMBEL_BOOK_RESULTS`` as a path, or ``None``."""
    return Path(_get(RESULTS_ENV)) if _get(RESULTS_ENV) else None


def full_run_asked() -> bool:
    """Whether ``GUMBEL_BOOK_FULL=1``."""
    return _get(FULL_ENV) == "1"


def kernels_allowed() -> bool:
    """False when ``GUMBEL_BOOK_KERNELS=0``."""
    return _get(KERNELS_ENV) != "0"


def in_book_build() -> bool:
    """Whether this process runs inside the Jupyter Book build."""
    return bool(_get(BUILD_ENV))


def mark_book_build() -> None:
    """Set :data:`BUILD_ENV` for this process and the notebook kernels it starts."""
    os.environ[BUILD_ENV] = "1"


def chromium_path() -> Path | None:
    """``$GUMBEL_BOOK_CHROMIUM``, else Debian's Chromium if installed, else ``None`` (playwright's own browser)."""
    if _get(CHROMIUM_ENV):
        return Path(_get(CHROMIUM_ENV))
    return DEFAULT_CHROMIUM if DEFAULT_CHROMIUM.exists() else None
