"""Written answers: an answer cell in the student notebook for every rubric item, and their export for hand grading.

The rubric is the list under "Rubric for the written parts" on the instructor page (``book/instructor.md``), one
item per question: ``- **`<question>`, <what>** [<points>]: ...``. ``course build`` adds, after each such
question's statement, a Markdown cell marked ``<!-- written answer: <question> -->`` (and with the same name in
its metadata); ``course grade`` copies those cells, as the student left them, into ``written.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

RUBRIC_HEADING = "## Rubric for the written parts"
_ITEM = re.compile(r"^- \*\*`([\w-]+)`, (.+?)\*\* \[(\d+(?:\.\d+)?)\]")
MARKER = "<!-- written answer: {question} -->"
_MARKER = re.compile(r"<!-- written answer: ([\w-]+) -->")
PLACEHOLDER = "_Replace this line with your answer (Markdown; LaTeX between dollar signs)._"


@dataclass(frozen=True)
class RubricItem:
    question: str
    what: str
    points: float


def rubric(instructor_page: Path) -> list[RubricItem]:
    """The rubric items of the instructor page, in order."""
    text = Path(instructor_page).read_text()
    if RUBRIC_HEADING not in text:
        return []
    section = text.split(RUBRIC_HEADING, 1)[1].split("\n## ", 1)[0]
    items = []
    for line in section.splitlines():
        m = _ITEM.match(line)
        if m:
            items.append(RubricItem(m.group(1), m.group(2), float(m.group(3))))
    return items


def answer_cell(item: RubricItem) -> nbformat.NotebookNode:
    """The Markdown cell a student writes the answer to ``item`` in."""
    text = (
        f"{MARKER.format(question=item.question)}\n"
        f"**Your written answer** ({item.what}; graded by hand, {item.points:g} points)\n\n{PLACEHOLDER}\n"
    )
    cell = nbformat.v4.new_markdown_cell(text)
    cell.metadata["course"] = {"written": item.question}
    return cell


def add_answer_cells(nb: nbformat.NotebookNode, items: list[RubricItem]) -> list[str]:
    """Insert an answer cell for every rubric item whose question is in ``nb`` (an assignment source notebook),
    right before the question's solution; return the questions that got one."""
    from .chapters import is_marker

    wanted = {item.question: item for item in items}
    cells, added, current = [], [], None
    for cell in nb.cells:
        if is_marker(cell, "# BEGIN QUESTION"):
            name = re.search(r"^name:\s*([\w-]+)", cell.source, re.M)
            current = name.group(1) if name else None
        elif is_marker(cell, "# BEGIN SOLUTION") and current in wanted and current not in added:
            cells.append(answer_cell(wanted[current]))
            added.append(current)
        cells.append(cell)
    nb.cells = cells
    return added


def written_answers(nb: nbformat.NotebookNode, submission: str) -> str:
    """The submission's written answers as Markdown: a heading per question, the cell as the student left it."""
    parts = [f"## {submission}\n"]
    for cell in nb.get("cells", []):
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        question = (cell.get("metadata", {}).get("course") or {}).get("written")
        m = _MARKER.search(source)
        question = question or (m.group(1) if m else None)
        if cell.get("cell_type") != "markdown" or not question:
            continue
        body = _MARKER.sub("", source).strip()
        body = "\n".join(line for line in body.splitlines() if not line.startswith("**Your written answer**"))
        body = body.replace(PLACEHOLDER, "").strip() or "_(no answer)_"
        parts.append(f"### {question}\n\n{body}\n")
    return "\n".join(parts) + "\n"
