"""Shared pytest set-up: the CUDA marker skips cleanly on machines without a GPU."""

from __future__ import annotations

import pytest
import torch


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
