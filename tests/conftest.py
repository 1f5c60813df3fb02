"""Shared pytest set-up: the CUDA marker skips cleanly on machines without a GPU, and without a GPU the fused
kernels run in Triton's interpreter for the whole session, whichever test module happens to import Triton first."""

from __future__ import annotations

import importlib.util

import pytest
import torch

if not torch.cuda.is_available() and importlib.util.find_spec("triton") is not None:
    import gumbel_book.kernels  # noqa: F401  (before anything imports Triton: it selects the interpreter)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none is present")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def gen():
    """A CPU generator with a fixed seed, so statistical tests are reproducible."""
    return torch.Generator().manual_seed(1234)
