"""Shared pytest set-up: the CUDA marker skips cleanly on machines without a GPU, and without a GPU the fused
kernels run in Triton's interpreter for the whole session, whichever test module happens to import Triton first."""

from __future__ import annotations

import os

import pytest
import torch

from gumbel_book import kernels

kernels.use_interpreter()  # before anything imports Triton; a no-op with a GPU or without Triton

if os.environ.get("PYTEST_XDIST_WORKER"):
    # The README command runs two pytest-xdist workers on two cores: one thread each, for them and the processes
    # they start (kernels, grading workers), rather than two workers fighting over four threads.
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

#: The longest test files, longest first (measured with ``--durations=0`` on two cores: from about three minutes
#: down to ten seconds each), handed to the xdist workers first so that none of them starts last and leaves one
#: worker busy while the other idles; every other file keeps its place in the tiers' order.
LONGEST_FIRST = (
    "book/test_reader.py",
    "book/test_course.py",
    "book/test_package.py",
    "book/test_course_browser.py",
    "book/test_print.py",
    "book/test_jupyterlab.py",
    "unit/test_kernels.py",
    "chapters/test_gumbel_max.py",
    "unit/test_vae.py",
    "repo/test_layout.py",
    "chapters/test_language_models.py",
    "unit/test_data.py",
    "unit/test_grading_worker.py",
    "unit/test_widgets.py",
    "unit/test_kernel_static.py",
)


def _rank(item) -> int:
    path = item.path.as_posix()
    return next((i for i, name in enumerate(LONGEST_FIRST) if path.endswith(name)), len(LONGEST_FIRST))


def pytest_collection_modifyitems(config, items):
    items.sort(key=_rank)  # stable: the order inside a file, and of all other files, is kept
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
