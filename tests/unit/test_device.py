"""default_device(): CUDA, then MPS, then CPU; $GUMBEL_BOOK_DEVICE overrides it, and typos are errors."""

from __future__ import annotations

import pytest
import torch

from gumbel_book import default_device


def test_default_device_without_override(monkeypatch):
    monkeypatch.delenv("GUMBEL_BOOK_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert default_device().type == expected


def test_override_to_cpu(monkeypatch):
    monkeypatch.setenv("GUMBEL_BOOK_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")


def test_empty_override_is_ignored(monkeypatch):
    monkeypatch.setenv("GUMBEL_BOOK_DEVICE", "  ")
    assert isinstance(default_device(), torch.device)


@pytest.mark.parametrize("value", ["gpu", "cuda:x", "tpu0"])
def test_unknown_device_names_the_value(monkeypatch, value):
    monkeypatch.setenv("GUMBEL_BOOK_DEVICE", value)
    with pytest.raises(ValueError, match=f"GUMBEL_BOOK_DEVICE='{value}'"):
        default_device()


def test_unsupported_device_type_names_the_value(monkeypatch):
    monkeypatch.setenv("GUMBEL_BOOK_DEVICE", "meta")
    with pytest.raises(ValueError, match="GUMBEL_BOOK_DEVICE='meta'"):
        default_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_unavailable_cuda_names_the_value(monkeypatch):
    monkeypatch.setenv("GUMBEL_BOOK_DEVICE", "cuda:1")
    with pytest.raises(RuntimeError, match="GUMBEL_BOOK_DEVICE='cuda:1': CUDA is not available"):
        default_device()


@pytest.mark.cuda
def test_cuda_index_beyond_the_device_count(monkeypatch):
    monkeypatch.setenv("GUMBEL_BOOK_DEVICE", f"cuda:{torch.cuda.device_count()}")
    with pytest.raises(RuntimeError, match="CUDA device"):
        default_device()
