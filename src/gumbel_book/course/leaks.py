"""The leak check: no solution line and no hidden test may reach a student notebook.

Otter copies solution lines without markers to students silently, so every build runs this check.
"""

from __future__ import annotations

import json
import re

import nbformat

from ..notebook import HIDDEN_TAGS
from .chapters import CONFIG_MARKER, is_marker

MIN_CHARS = 12  # shorter lines ("$$", "return y", a closing bracket) are not telling and occur in prompts too
_SOLUTION_LINE = re.compile(r"^(.*?)\s*# ?SOLUTION\s*$")


def _blocks(nb: nbformat.NotebookNode):
    """Yield ``(block, cell)`` for every non-marker cell: block is "solution", "tests" or "" (elsewhere)."""
    block = ""
    for cell in nb.cells:
        if cell.cell_type == "raw":
            head = cell.source.strip().splitlines()[0].strip().upper() if cell.source.strip() else ""
            if head in ("# BEGIN SOLUTION", "# BEGIN TESTS"):
                block = head.split()[-1].lower()
                continue
            if head in ("# END SOLUTION", "# END TESTS"):
                block = ""
                continue
        yield block, cell


def solution_lines(nb: nbformat.NotebookNode) -> list[str]:
    """Every line an answer consists of: marked lines of solution code cells and all lines of solution prose."""
    lines: list[str] = []
    for block, cell in _blocks(nb):
        if block != "solution":
            continue
        if cell.cell_type == "markdown":
            lines += [line.strip() for line in cell.source.splitlines()]
            continue
        inside = False
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped.startswith("# BEGIN SOLUTION"):
                inside = True
            elif stripped.startswith("# END SOLUTION"):
                inside = False
            elif inside:
                lines.append(stripped)
            elif m := _SOLUTION_LINE.match(line):
                lines.append(m.group(1).strip())
    return [line for line in lines if len(line) >= MIN_CHARS]


def taught_lines(chapter_nb: nbformat.NotebookNode, config_marker: str = CONFIG_MARKER) -> set[str]:
    """The lines of code the chapter shows to every reader before its exercises: visible code cells before the
    ``config_marker`` cell. A later exercise may reuse one of them (the Gumbel-Softmax sample line in the VAE
    loss): finding it on a student's page is the chapter teaching it, not a solution leaking."""
    taught: set[str] = set()
    for cell in chapter_nb.cells:
        if is_marker(cell, config_marker):
            break
        hidden = set(HIDDEN_TAGS) & set(cell.metadata.get("tags", []))
        if cell.cell_type == "code" and not hidden and "SOLUTION" not in cell.source:
            taught |= {line.strip() for line in cell.source.splitlines() if len(line.strip()) >= MIN_CHARS}
    return taught


def secret_lines(lines: list[str], *chapters: nbformat.NotebookNode) -> list[str]:
    """``lines`` (solution lines) without those the ``chapters`` teach every reader (:func:`taught_lines`)."""
    taught = set().union(*(taught_lines(nb) for nb in chapters))
    return [line for line in lines if line not in taught]


def solution_guards(nb: nbformat.NotebookNode) -> list[int]:
    """The indices of hidden solution guards: code cells tagged ``remove-cell`` inside a question but outside its
    solution and tests blocks (the book hides them in the solution's dropdown; a student notebook must not show
    their asserts, whose messages say what the solution finds)."""
    found, in_question = [], False
    cells = list(nb.cells)
    blocks = {id(c): b for b, c in _blocks(nb)}
    for i, cell in enumerate(cells):
        if is_marker(cell, "# BEGIN QUESTION"):
            in_question = True
        elif is_marker(cell, "# END QUESTION"):
            in_question = False
        elif (
            in_question
            and cell.cell_type == "code"
            and blocks.get(id(cell)) == ""
            and "remove-cell" in cell.get("metadata", {}).get("tags", [])
        ):
            found.append(i)
    return found


def guard_lines(nb: nbformat.NotebookNode) -> list[str]:
    """The telling lines of the hidden solution guards (their asserts and messages)."""
    return [
        line.strip()
        for i in solution_guards(nb)
        for line in nb.cells[i].source.splitlines()
        if len(line.strip()) >= MIN_CHARS
    ]


def hidden_test_sources(nb: nbformat.NotebookNode) -> list[str]:
    """The source of every hidden test cell (those whose test config says ``hidden: true``)."""
    tests = []
    for block, cell in _blocks(nb):
        if block == "tests" and cell.cell_type == "code":
            head = cell.source.split("# END TEST CONFIG")[0]
            if re.search(r"^\s*hidden:\s*true\s*$", head, re.M | re.I):
                tests.append(cell.source.split("# END TEST CONFIG")[-1].strip())
    return tests


def _hidden_lines(test: str) -> list[str]:
    """The telling lines of a hidden test: its def line and the calls with the hidden inputs."""
    return [line.strip() for line in test.splitlines() if len(line.strip()) >= MIN_CHARS and "import" not in line]


def find_leaks(source_nb: nbformat.NotebookNode, student_nb: nbformat.NotebookNode) -> list[str]:
    """Every solution line or hidden-test line of ``source_nb`` found in ``student_nb``'s cells or metadata."""
    haystacks = [cell.source for cell in student_nb.cells]
    haystacks += [json.dumps(cell.get("metadata", {})) for cell in student_nb.cells]
    haystacks.append(json.dumps(student_nb.metadata))
    text = "\n".join(haystacks)
    escaped = json.dumps(text)
    leaks = [f"solution line: {line!r}" for line in solution_lines(source_nb) if line in text]
    leaks += [f"solution guard line: {line!r}" for line in guard_lines(source_nb) if line in text]
    for test in hidden_test_sources(source_nb):
        leaks += [f"hidden test line: {line!r}" for line in _hidden_lines(test) if line in text or line in escaped]
    return leaks


def assert_marker_pairs(nb: nbformat.NotebookNode) -> None:
    """Fail early, naming the cell, when a question has no solution block or no tests."""
    question, has_solution, has_tests = None, False, False
    for i, cell in enumerate(nb.cells):
        if is_marker(cell, "# BEGIN QUESTION"):
            question, has_solution, has_tests = i, False, False
        elif is_marker(cell, "# BEGIN SOLUTION"):
            has_solution = True
        elif is_marker(cell, "# BEGIN TESTS"):
            has_tests = True
        elif is_marker(cell, "# END QUESTION"):
            if not (has_solution and has_tests):
                raise ValueError(f"the question starting at cell {question} needs a solution block and a tests block")
