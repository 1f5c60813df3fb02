"""JupyterLab as a reader meets it: double-click a chapter, get a rendered notebook, run the live app, move tau.

Starts the installed ``jupyter lab`` on 127.0.0.1 (a fresh workspace and user settings in a temporary
directory) and drives it with headless Chromium; every request outside the Lab server is blocked and
recorded. This proves that the pinned JupyterLab, jupytext, jupyterlab-myst, the widget manager,
anywidget and plotly load together, and that the project's default-viewer setting is installed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import offline_browser as ob
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "gumbel-book-lab-test"
SETTINGS = ROOT / "jupyter" / "overrides.d" / "gumbel-book.json"
APP_CELL = "temperature_app(logits"
PLOT_STATE = """cell => {
  const el = cell.querySelector('.js-plotly-plot');
  return JSON.stringify(el.data.map(t => [t.x, t.y, t.z]));
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _user_settings(folder: Path) -> None:
    """Test-only settings: render every cell (no lazy windowing) and ask no news question over the app."""
    for plugin, value in {
        "notebook-extension/tracker": {"windowingMode": "none"},
        "apputils-extension/notification": {"fetchNews": "false"},
    }.items():
        path = folder / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lab")
    _user_settings(tmp / "settings")
    port = _free_port()
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}"]
    cmd += [f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={ROOT}"]
    cmd += [f"--LabApp.user_settings_dir={tmp / 'settings'}", f"--LabApp.workspaces_dir={tmp / 'workspaces'}"]
    cmd += ["--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # as the README says for root (CI containers)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp / "runtime")}
    log = open(tmp / "lab.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"JupyterLab did not start within 120 s:\n{(tmp / 'lab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


@pytest.fixture(scope="module")
def page(lab):
    with ob.chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        pg, external, errors = ob.offline_page(context, lab)
        pg.goto(f"{lab}/lab?token={TOKEN}", wait_until="load")
        pg.wait_for_selector(".jp-DirListing-item", timeout=120_000)
        yield pg, external, errors
        context.close()


def test_default_viewer_setting_is_installed():
    """The README's install copies the default-viewer setting into the environment JupyterLab reads."""
    installed = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.d" / SETTINGS.name
    assert installed.exists(), f"{installed} is missing: run the README's install command"
    assert json.loads(installed.read_text()) == json.loads(SETTINGS.read_text())
    viewers = json.loads(SETTINGS.read_text())["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers["markdown"] == "Jupytext Notebook"


def test_double_clicked_chapter_is_a_rendered_notebook_with_a_live_app(page):
    pg, external, errors = page
    pg.locator(".jp-DirListing-item", has=pg.locator(".jp-DirListing-itemText", has_text="book")).first.dblclick()
    pg.locator(".jp-DirListing-item[title^='Name: gumbel_softmax.md']").dblclick()
    pg.wait_for_selector(".jp-NotebookPanel, .jp-FileEditor", timeout=60_000)
    assert pg.locator(".jp-NotebookPanel").count() == 1, "the chapter did not open as a notebook"
    assert pg.locator(".jp-FileEditor").count() == 0, "the chapter opened in the text editor"

    # jupyterlab-myst renders the {prf:theorem} directive: a titled theorem box, not raw ```{prf:theorem}
    theorem = pg.locator("aside.myst-proof", has_text="The temperature limits")
    theorem.wait_for(timeout=60_000)
    assert "Theorem" in theorem.inner_text()
    assert not pg.locator(".jp-MarkdownCell .myst", has_text="{prf:theorem}").count(), "raw MyST shown"

    # Run the live app cell: five sliders and a plotly figure appear
    cell = pg.locator(".jp-CodeCell", has_text=APP_CELL).first
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputArea-editor").click()
    pg.keyboard.press("Shift+Enter")
    pg.wait_for_function(
        f"() => [...document.querySelectorAll('.jp-CodeCell')].some(c => c.textContent.includes({APP_CELL!r})"
        " && c.querySelectorAll('.widget-slider').length >= 5 && c.querySelector('.js-plotly-plot .main-svg'))",
        timeout=180_000,
    )
    handle = cell.locator(".widget-slider", has=pg.locator("label", has_text="τ")).locator(".noUi-handle")
    assert cell.locator(".widget-slider").count() >= 5
    before = cell.evaluate(PLOT_STATE)
    value_before = handle.get_attribute("aria-valuenow")

    # Move tau with the keyboard (the slider's own handle); the figure must redraw
    handle.focus()
    for _ in range(5):
        pg.keyboard.press("ArrowLeft")
    pg.wait_for_function(
        f"cell => ({PLOT_STATE})(cell) !== {json.dumps(before)}", arg=cell.element_handle(), timeout=60_000
    )
    assert handle.get_attribute("aria-valuenow") != value_before, "the tau slider did not move"
    assert cell.evaluate(PLOT_STATE) != before, "moving tau did not change the figure"

    assert not external, f"JupyterLab requested addresses outside the server: {external[:5]}"
    failed = [e for e in errors if "RUNTIME-" in e or "Failed to load" in e or "extension" in e.lower()]
    assert not failed, f"a JupyterLab extension failed to load: {failed[:3]}"
