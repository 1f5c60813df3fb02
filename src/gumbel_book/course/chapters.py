"""Which chapters are coursework: those in ``_toc.yml`` whose source has a raw ``# ASSIGNMENT CONFIG`` cell."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import jupytext
import nbformat
import yaml

CONFIG_MARKER = "# ASSIGNMENT CONFIG"
QUESTION_MARKER = "# BEGIN QUESTION"
_OPEN = re.compile(r"^(`{3,}|~{3,})\{(\w[\w-]*)\}(.*)$")


@dataclass(frozen=True)
class Chapter:
    """One coursework chapter: its name (``book/<name>.md``) and source path."""

    name: str
    source: Path

    def read(self) -> nbformat.NotebookNode:
        """The chapter as a notebook (jupytext), cells in book order, nothing executed."""
        return jupytext.read(self.source)


def find_root(start: Path | None = None) -> Path:
    """The book's root: the nearest folder at or above ``start`` (default: the working directory) with _toc.yml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file():
            return folder
    package_root = Path(__file__).resolve().parents[3]
    if (package_root / "_toc.yml").is_file():
        return package_root
    raise FileNotFoundError(f"no _toc.yml at or above {here}: run from the book's folder or pass --root")


def toc_files(root: Path) -> list[str]:
    """Every ``file:`` entry of ``_toc.yml`` (root first), in order, without suffix."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc.get("parts", toc.get("chapters", [])))
    return files


def is_marker(cell: dict, marker: str) -> bool:
    """Whether ``cell`` is a raw cell whose first line is ``marker`` (an otter-assign marker)."""
    lines = cell.get("source", "").strip().splitlines()
    return cell.get("cell_type") == "raw" and bool(lines) and lines[0].strip().upper() == marker


def discover_chapters(root: Path | None = None, only: list[str] | None = None) -> list[Chapter]:
    """The coursework chapters, in table-of-contents order; ``only`` selects some by name (unknown names fail)."""
    root = find_root() if root is None else Path(root)
    chapters = []
    for entry in toc_files(root):
        source = root / f"{entry}.md"
        if source.is_file() and re.search(
            rf"^```\{{raw-cell\}}\n{re.escape(CONFIG_MARKER)}\s*$", source.read_text(), re.M
        ):
            chapters.append(Chapter(Path(entry).name, source))
    if only:
        names = {c.name for c in chapters}
        unknown = sorted(set(only) - names)
        if unknown:
            raise ValueError(f"unknown chapter(s) {unknown}; coursework chapters are {sorted(names)}")
        chapters = [c for c in chapters if c.name in only]
    return chapters


def _blocks(markdown: str) -> list[tuple[str | None, str, str, str]]:
    """Split Markdown into top-level pieces ``(directive or None, argument, body, original text)``."""
    pieces: list[tuple[str | None, str, str, str]] = []
    lines, text, i = markdown.splitlines(), [], 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if not m:
            text.append(lines[i])
            i += 1
            continue
        if text:
            pieces.append((None, "", "\n".join(text), "\n".join(text)))
            text = []
        fence, name, argument = m.group(1), m.group(2), m.group(3).strip()
        j = i + 1
        while j < len(lines) and not (
            lines[j].strip() and set(lines[j].strip()) == {fence[0]} and len(lines[j].strip()) >= len(fence)
        ):
            j += 1
        body = [line for line in lines[i + 1 : j] if not line.startswith(":")]
        pieces.append((name, argument, "\n".join(body).strip(), "\n".join(lines[i : j + 1])))
        i = j + 1
    if text:
        pieces.append((None, "", "\n".join(text), "\n".join(text)))
    return pieces


def student_markdown(markdown: str, drop: tuple[str, ...] = ("solution-start", "solution-end")) -> str:
    """Book Markdown for a notebook: ``drop`` directives removed, ``{exercise}`` as a bold title and its text."""
    out = []
    for name, argument, body, _ in _blocks(markdown):
        if name in drop:
            continue
        if name == "exercise":
            out.append((f"**Exercise: {argument}**" if argument else "**Exercise**") + "\n\n" + body)
        else:
            out.append(body)
    return "\n\n".join(piece.strip() for piece in out if piece.strip())


def strip_solutions(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of a book notebook without solutions: gated solutions (start to end), ``{solution}`` directives,
    otter marker cells and tests blocks are removed; everything else, outputs included, stays as it is."""
    nb = copy.deepcopy(nb)
    cells, in_solution, in_tests = [], False, False
    for cell in nb.cells:
        if cell.cell_type == "raw":
            head = cell.source.strip().splitlines()[0].strip().upper() if cell.source.strip() else ""
            if head == "# BEGIN TESTS":
                in_tests = True
            elif head == "# END TESTS":
                in_tests = False
            if head.startswith("# "):
                continue
        if in_tests:
            continue
        if cell.cell_type != "markdown":
            if not in_solution:
                cells.append(cell)
            continue
        kept = []
        for name, _, _, original in _blocks(cell.source):
            if name == "solution-start":
                in_solution = True
            elif name == "solution-end":
                in_solution = False
            elif name != "solution" and not in_solution:
                kept.append(original)
        if any(piece.strip() for piece in kept):
            cell.source = "\n".join(kept).strip() + "\n"
            cells.append(cell)
    nb.cells = cells
    return nb
