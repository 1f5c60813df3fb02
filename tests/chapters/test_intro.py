"""The data behind the intro page's figure, and the figure's precomputed slider."""

from __future__ import annotations

import pytest
import torch

import gumbel_book as gb
from gumbel_book.figures.intro import DEFAULT_LOGITS, DEFAULT_TAUS, relaxed_sample_path, tau_slider_figure


def test_path_rows_lie_on_the_simplex():
    path = relaxed_sample_path([1.0, 0.0, -1.0, 2.0], DEFAULT_TAUS, seed=1)
    assert path.shape == (len(DEFAULT_TAUS), 4)
    assert (path >= 0).all()
    torch.testing.assert_close(path.sum(-1), torch.ones(len(DEFAULT_TAUS), dtype=torch.float64))


def test_small_tau_is_the_gumbel_max_sample_and_large_tau_is_uniform():
    logits = [1.0, 0.0, -1.0, 2.0]
    path = relaxed_sample_path(logits, [1e-3, 1e4], seed=5)
    winner = gb.gumbel_max(torch.tensor(logits, dtype=torch.float64), generator=torch.Generator().manual_seed(5))
    assert path[0].argmax() == winner and path[0].max() > 0.999
    torch.testing.assert_close(path[1], torch.full((4,), 0.25, dtype=torch.float64), atol=1e-3, rtol=0)


def test_largest_entry_shrinks_as_tau_grows():
    """With the noise fixed, max_i y_i is non-increasing in tau (the figure's story)."""
    for seed in range(20):
        top = relaxed_sample_path([0.3, 0.1, -0.2], DEFAULT_TAUS, seed=seed).max(-1).values
        assert all(a >= b - 1e-12 for a, b in zip(top.tolist(), top[1:].tolist(), strict=False))


def test_slider_steps_carry_the_path():
    fig = tau_slider_figure(seed=3)
    path = relaxed_sample_path(DEFAULT_LOGITS, DEFAULT_TAUS, seed=3)
    steps = fig.layout.sliders[0].steps
    assert len(steps) == len(DEFAULT_TAUS)
    for step, row, tau in zip(steps, path, DEFAULT_TAUS, strict=True):
        assert step.label == f"{tau:g}"
        assert step.args[0]["y"][0] == pytest.approx(row.tolist())
    assert fig.layout.sliders[0].active == DEFAULT_TAUS.index(1.0)


def test_bad_input():
    with pytest.raises(ValueError, match="taus"):
        relaxed_sample_path([0.0, 1.0], [0.5, -1.0])
    with pytest.raises(ValueError, match="logits"):
        relaxed_sample_path([0.0], [0.5])
