"""Each chapter opens as a notebook in a real Jupyter server (jupytext's contents manager), as the intro promises."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gumbel_book import notebook as claims

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "gumbel-book-test"
CHAPTERS = claims.CHAPTERS  # every page, the language-model chapter included


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyter_server():
    port = _free_port()
    cmd = [sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}", "--ip=127.0.0.1"]
    cmd += [f"--IdentityProvider.token={TOKEN}", "--allow-root", f"--ServerApp.root_dir={ROOT}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(base, "/api/status")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("the Jupyter server did not start within 60 s")
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _get(base: str, path: str) -> dict:
    request = urllib.request.Request(base + path, headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@pytest.mark.slow
@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_is_served_as_a_notebook(jupyter_server, name):
    model = _get(jupyter_server, f"/api/contents/book/{name}.md?type=notebook&content=1")
    assert model["type"] == "notebook"
    nb = model["content"]
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert sum(c["cell_type"] == "code" for c in nb["cells"]) >= 1
    assert sum(c["cell_type"] == "markdown" for c in nb["cells"]) >= 1
