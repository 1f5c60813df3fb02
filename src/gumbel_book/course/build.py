"""``course build``: student, autograder and instructor editions of every coursework chapter (otter assign)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import yaml

from .chapters import CONFIG_MARKER, Chapter, is_marker, student_markdown
from .extras import require
from .leaks import assert_marker_pairs, find_leaks, solution_guards
from .written import add_answer_cells, rubric

# What every chapter's ASSIGNMENT CONFIG must say (see the instructor page for why).
REQUIRED_CONFIG = {"export_cell": False, "init_cell": False, "check_all_cell": False, "run_tests": False}
REQUIRED_TESTS = {"ok_format": False, "files": False}
BOOK_ONLY_DIRECTIVES = ("solution-start", "solution-end")
ASSIGN_TIMEOUT_S = 300
EXECUTE_TIMEOUT_S = 600


def _title(nb: nbformat.NotebookNode) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return "Exercises"


def _config(cell: nbformat.NotebookNode, chapter: str) -> dict:
    config = yaml.safe_load(cell.source.split("\n", 1)[1]) or {}
    wrong = {k: config.get(k) for k, v in REQUIRED_CONFIG.items() if config.get(k) != v}
    wrong |= {
        f"tests.{k}": config.get("tests", {}).get(k)
        for k, v in REQUIRED_TESTS.items()
        if config.get("tests", {}).get(k) != v
    }
    if wrong or config.get("name") != chapter:
        raise ValueError(
            f"{chapter}: the ASSIGNMENT CONFIG must have name: {chapter}, {REQUIRED_CONFIG} "
            f"and tests: {REQUIRED_TESTS}; found {config}"
        )
    return config


def assignment_notebook(chapter: Chapter) -> nbformat.NotebookNode:
    """The chapter's exercise section as an otter-assign source notebook (markers, solutions, tests).

    It starts at the ASSIGNMENT CONFIG cell; the book-only ``solution-start``/``solution-end`` directive cells are
    dropped and ``{exercise}`` directives become plain Markdown, so the notebook reads well in Jupyter.
    """
    nb = chapter.read()
    starts = [i for i, cell in enumerate(nb.cells) if is_marker(cell, CONFIG_MARKER)]
    if len(starts) != 1:
        raise ValueError(f"{chapter.source}: expected one raw '{CONFIG_MARKER}' cell, found {len(starts)}")
    _config(nb.cells[starts[0]], chapter.name)
    intro = nbformat.v4.new_markdown_cell(
        f"# Exercises: {_title(nb)}\n\n"
        "Read the chapter in the book first. Replace each `...` with your answer and run the check cell below it: "
        "a check prints `correct` or raises an `AssertionError` with a hint. The package's own samplers and "
        "densities are switched off while a check runs your function, so the answer must be your own work. "
        "Your grade also includes hidden tests with other inputs."
    )
    cells = [intro]
    for cell in nb.cells[starts[0] :]:
        if cell.cell_type == "markdown":
            text = student_markdown(cell.source, BOOK_ONLY_DIRECTIVES)
            if not text:
                continue
            cell = nbformat.v4.new_markdown_cell(text)
        cells.append(cell)
    out = nbformat.v4.new_notebook(cells=cells)
    out.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    for i, cell in enumerate(out.cells):
        cell["id"] = f"{chapter.name}-{i}"
    assert_marker_pairs(out)
    return out


def _run(cmd: list[str], timeout: float, cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=os.environ.copy())
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def otter_command() -> list[str]:
    """``otter`` from this Python's environment (the venv), so it sees the same packages and kernel."""
    return [sys.executable, "-m", "otter"]


def execute(nb: nbformat.NotebookNode, cwd: Path, timeout: int = EXECUTE_TIMEOUT_S) -> nbformat.NotebookNode:
    """Execute ``nb`` in a fresh python3 kernel in ``cwd``; any error fails (the reference answers must pass)."""
    client = require("nbclient", "nbclient").NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    return nb


def points_by_question(nb: nbformat.NotebookNode) -> dict[str, float]:
    """The points of every question, from its BEGIN QUESTION config, in notebook order."""
    points = {}
    for cell in nb.cells:
        if is_marker(cell, "# BEGIN QUESTION"):
            config = yaml.safe_load(cell.source.split("\n", 1)[1])
            points[config["name"]] = float(config.get("points", 1))
    return points


def handout_source(chapter: Chapter, source: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, list[str]]:
    """What ``otter assign`` gets: ``source`` without its hidden solution guards and with an answer cell for every
    written part of the instructor page's rubric; also returns the questions that got an answer cell."""
    handout = nbformat.from_dict(json.loads(json.dumps(source)))
    guards = set(solution_guards(handout))
    handout.cells = [c for i, c in enumerate(handout.cells) if i not in guards]
    instructor_page = chapter.source.parent / "instructor.md"
    written = add_answer_cells(handout, rubric(instructor_page)) if instructor_page.is_file() else []
    for i, cell in enumerate(handout.cells):
        cell["id"] = f"{chapter.name}-{i}"
    return handout, written


def build_chapter(chapter: Chapter, out: Path, *, instructor: bool = True) -> dict:
    """Build ``out/<chapter>/{student,autograder,instructor}``; returns the chapter's summary (questions, points)."""
    source = assignment_notebook(chapter)
    handout, written = handout_source(chapter, source)
    dest = out / chapter.name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix=f"course-{chapter.name}-") as tmp:
        master = Path(tmp) / f"{chapter.name}.ipynb"
        nbformat.write(handout, master)
        _run(
            [*otter_command(), "assign", "--no-pdfs", "--no-run-tests", str(master), str(Path(tmp) / "dist")],
            ASSIGN_TIMEOUT_S,
            cwd=Path(tmp),
        )
        dist = Path(tmp) / "dist"
        shutil.copytree(dist / "student", dest / "student")
        shutil.copytree(dist / "autograder", dest / "autograder")
    zips = sorted((dest / "autograder").glob("*.zip"))
    if len(zips) != 1:
        raise RuntimeError(f"otter assign wrote {len(zips)} autograder zips for {chapter.name}")
    zips[0].rename(dest / "autograder" / f"{chapter.name}-autograder.zip")

    student = nbformat.read(dest / "student" / f"{chapter.name}.ipynb", as_version=4)
    # A solution cell wrapped whole in "# BEGIN SOLUTION NO PROMPT" (a hidden assert) leaves an empty cell: drop it.
    student.cells = [c for c in student.cells if c.cell_type != "code" or c.source.strip()]
    nbformat.write(student, dest / "student" / f"{chapter.name}.ipynb")
    leaks = find_leaks(source, student)
    if leaks:
        raise RuntimeError(f"{chapter.name}: the student notebook leaks\n" + "\n".join(leaks))

    summary = {"chapter": chapter.name, "points": points_by_question(source), "source": str(chapter.source)}
    summary["written"] = written
    summary["total"] = sum(summary["points"].values())
    (dest / "autograder" / "points.json").write_text(json.dumps(summary, indent=2) + "\n")
    if instructor:
        (dest / "instructor").mkdir()
        executed = execute(nbformat.from_dict(json.loads(json.dumps(source))), chapter.source.parent)
        nbformat.write(executed, dest / "instructor" / f"{chapter.name}.ipynb")
    return summary
