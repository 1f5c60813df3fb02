"""Shared pytest set-up: the CUDA marker skips cleanly on machines without a GPU, and without a GPU the fused
kernels run in Triton's interpreter for the whole session, whichever test module happens to import Triton first."""

from __future__ import annotations

import pytest
import torch

from gumbel_book import kernels

kernels.use_interpreter()  # before anything imports Triton; a no-op with a GPU or without Triton


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
