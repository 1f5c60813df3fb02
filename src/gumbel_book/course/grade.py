"""``course grade``: grade submissions offline, the student's code in a sandboxed worker, the tests in the grader.

Otter-grader stays the format (the autograder zip's ``tests/<question>.py`` files and their points, read by otter's
own ``ExceptionTestFile``) and the report (each question's test results, as otter writes them). What changes is
where things run. ``otter run`` executes the notebook and the tests in one kernel, where the notebook can rewrite
the checks, the tests or otter itself; here the notebook runs in a worker process (:mod:`.remote`, :mod:`.worker`,
:mod:`.sandbox`) and the tests run in this process, against stand-ins that send inputs to the worker and get data
back. The zip is read into memory here and never reaches the worker.

Each question is graded on its own: a cell or a test that crashes, exits or hangs loses the worker, which is
restarted without that cell (its earlier cells replayed), and costs only what depended on it. The status column
says what happened; ``flags`` lists code that looks like an attempt on the grader, for a human to read.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import hashlib
import importlib.util
import io
import json
import math
import re
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from ..exercises.guard import remote_checks
from .extras import require
from .remote import Limits, Notebook, RemoteNamespace, WorkerLost
from .written import written_answers

DEFAULT_TIMEOUT_S = 120
# Code a submission has no reason to contain: each match is reported in the "flags" column for a human to read.
SUSPICIOUS = {
    "introspection of classes": r"__subclasses__|__bases__|__mro__|__base__",
    "the garbage collector": r"\bgc\.|import gc\b",
    "frames and tracebacks": r"_getframe|f_back|tb_frame|f_locals|f_globals|currentframe",
    "code objects": r"__code__|__globals__|__closure__|cell_contents|co_filename|\bmarshal\b|types\.CodeType",
    "profilers and audit hooks": r"setprofile|settrace|getprofile|addaudithook|sys\.monitoring",
    "imports by hand": r"importlib|__import__|sys\.modules|spec_from_file_location",
    "processes and signals": r"subprocess|os\.system|os\.fork|os\.kill|os\._exit|\bsignal\b|multiprocessing|/proc",
    "native code": r"\bctypes\b|\bcffi\b|torch\.library|torch\.ops|_VariableFunctions|torch\._C",
    "random sources that are not allowed": r"numpy\.random|np\.random|default_rng|RandomState|scipy\.stats\.\w+\.rvs",
    "the grader": r"\botter\b|ExceptionTestFile|autograder|results\.json|grades\.csv|gumbel_book\.course",
    "the check functions": r"exercises\.\w+\.check_\w+\s*=|own_work",
}


def load_points(course_dir: Path, chapter: str) -> dict:
    """The chapter's ``points.json`` (written by ``course build``)."""
    path = Path(course_dir) / chapter / "autograder" / "points.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m gumbel_book.course build` first")
    return json.loads(path.read_text())


def load_tests(course_dir: Path, chapter: str) -> dict[str, str]:
    """Every ``tests/<question>.py`` of the chapter's autograder zip, read into memory: {question: source}."""
    path = Path(course_dir) / chapter / "autograder" / f"{chapter}-autograder.zip"
    with zipfile.ZipFile(path) as archive:
        return {
            Path(name).stem: archive.read(name).decode()
            for name in archive.namelist()
            if name.startswith("tests/") and name.endswith(".py")
        }


def code_cells(nb: nbformat.NotebookNode) -> list[str]:
    """The sources of the notebook's code cells, whatever its kernelspec or metadata say."""
    cells = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            cells.append("".join(source) if isinstance(source, list) else str(source))
    return cells


def package_imports(cells: list[str]) -> list[str]:
    """The book's modules the notebook imports (the worker imports them before its blocker is on)."""
    found = {"gumbel_book", "gumbel_book.exercises"}
    for source in cells:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            found |= {n for n in names if re.fullmatch(r"gumbel_book(\.\w+)*", n) and _is_module(n)}
    return sorted(found)


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def flags(cells: list[str]) -> list[str]:
    """What :data:`SUSPICIOUS` finds, as ``"cell N: what (text)"``."""
    found = []
    for i, source in enumerate(cells, 1):
        for what, pattern in SUSPICIOUS.items():
            match = re.search(pattern, source)
            if match:
                found.append(f"cell {i}: {what} ({match.group(0)})")
    return found


def _read_submission(submission: Path) -> tuple[nbformat.NotebookNode | None, str]:
    try:
        text = submission.read_text(encoding="utf-8", errors="replace")
        return nbformat.reads(text, as_version=4), ""
    except Exception as err:  # noqa: BLE001 - any unreadable notebook is a status, not a crash
        return None, f"unreadable notebook: {type(err).__name__}: {str(err)[:200]}"


def grade_question(notebook: Notebook, name: str, source: str, seconds: float) -> tuple[dict, str]:
    """Run one question's test file against the worker; return otter's result for it and what went wrong."""
    exception_test = require("otter.test_files.exception_test", "otter-grader")
    test_file = exception_test.ExceptionTestFile.from_string(source, path=f"tests/{name}.py")
    problem = ""
    try:
        notebook.ensure()
    except WorkerLost as err:
        return _failed(test_file, f"not graded: {err}"), f"{name}: not graded ({err})"
    notebook.deadline = time.monotonic() + seconds
    try:
        with remote_checks():
            test_file.run(RemoteNamespace(notebook))
    except Exception as err:  # noqa: BLE001 - otter's own error reporting failed; the question scores 0
        return _failed(test_file, f"{type(err).__name__}: {err}"), f"{name}: {type(err).__name__}"
    finally:
        notebook.deadline = float("inf")
    lost = [r.message for r in test_file.test_case_results if "WorkerLost" in r.message]
    if lost:
        problem = f"{name}: {lost[0].splitlines()[-1].removeprefix('WorkerLost: ')}"
    elif notebook.worker is not None and notebook.worker.alive():
        try:
            notebook.request({"op": "release"}, [])
        except WorkerLost:
            pass
    return test_file.to_dict(), problem


def _failed(test_file, message: str) -> dict:
    return {"name": test_file.name, "score": 0, "possible": test_file.possible, "error": message}


def grade_submission(
    submission: Path,
    chapter: str,
    course_dir: Path,
    out: Path,
    timeout: float = DEFAULT_TIMEOUT_S,
    limits: Limits | None = None,
) -> dict:
    """Grade one notebook; writes ``out/results.json`` (and ``written.md``) and returns the results.

    ``timeout`` is the time limit of each cell and of each question's tests, in seconds.
    """
    submission, out = Path(submission), Path(out)
    points = load_points(course_dir, chapter)
    tests = load_tests(course_dir, chapter)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    limits = limits or Limits(seconds=timeout)
    nb, problem = _read_submission(submission)
    cells = code_cells(nb) if nb is not None else []
    report = {"cells": [], "questions": {}, "sandbox": {}, "events": []}
    scores = {q: 0.0 for q in points["points"]}
    problems = [problem] if problem else []
    if nb is not None:
        key = hashlib.sha256("".join(tests[q] for q in sorted(tests)).encode()).digest()
        hidden = [str(Path(p).resolve()) for p in (course_dir, out, submission.parent)]
        notebook = Notebook(cells, package_imports(cells), hidden, key, limits)
        try:
            _run_and_grade(notebook, points, tests, scores, report, problems)
        finally:
            notebook.close()
    questions = {q: {"score": scores[q], "max": p} for q, p in points["points"].items()}
    refused = [
        f"cell {c['cell']}: refused by the sandbox ({c['message'][:120]})"
        for c in report["cells"]
        if "not allowed while grading" in c["message"]  # the sandbox's refusals (the answer blocker's are not flags)
    ]
    result = {
        "chapter": chapter,
        "submission": str(submission),
        "status": "; ".join(problems) or "ok",
        "questions": questions,
        "score": sum(q["score"] for q in questions.values()),
        "max_score": points["total"],
        "flags": flags(cells) + refused,
        "sandbox_off": [f"{k}: {v}" for k, v in report["sandbox"].items() if str(v).startswith("off")],
        "seconds": round(time.perf_counter() - start, 1),
    }
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "grading.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    if nb is not None:
        (out / "written.md").write_text(written_answers(nb, Path(submission).name))
    return result


def _run_and_grade(notebook: Notebook, points: dict, tests: dict, scores: dict, report: dict, problems: list) -> None:
    try:
        results = notebook.run()
    except WorkerLost as err:
        problems.append(f"the notebook could not be run: {err}")
        return
    report["sandbox"] = notebook.worker.sandbox if notebook.worker else {}
    report["cells"] = [{"cell": r.index + 1, "status": r.status, "message": r.message} for r in results]
    problems += notebook.events
    for question in points["points"]:
        if question not in tests:
            problems.append(f"{question}: no test file in the autograder")
            continue
        result, problem = grade_question(notebook, question, tests[question], notebook.limits.seconds)
        report["questions"][question] = result
        scores[question] = float(result.get("score", 0.0))
        if problem:
            problems.append(problem)


def format_table(result: dict) -> str:
    """A per-question table and the total, as printed by ``course grade``."""
    width = max(len("question"), *(len(q) for q in result["questions"]))
    rows = [f"{'question':<{width}}  score    max", f"{'-' * width}  -----  -----"]
    for name, q in result["questions"].items():
        rows.append(f"{name:<{width}}  {q['score']:5.2f}  {q['max']:5.2f}")
    rows.append(f"{'total':<{width}}  {result['score']:5.2f}  {result['max_score']:5.2f}")
    if result["status"] != "ok":
        rows.append(f"status: {result['status']}")
    for flag in result.get("flags", []):
        rows.append(f"flag: {flag}")
    return "\n".join(rows)


def grade_folder(
    folder: Path,
    chapter: str,
    course_dir: Path,
    out: Path,
    timeout: float = DEFAULT_TIMEOUT_S,
    jobs: int = 1,
    limits: Limits | None = None,
) -> list[dict]:
    """Grade every ``*.ipynb`` in ``folder`` (``jobs`` at a time); writes ``out/<stem>/results.json``, one CSV
    and ``<chapter>-written.md`` (every submission's written answers, for grading by hand)."""
    submissions = sorted(Path(folder).glob("*.ipynb"))
    if not submissions:
        raise FileNotFoundError(f"no .ipynb submissions in {folder}")
    # The checks print "correct": keep that out of the grader's output (one redirect for all threads, here).
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool, contextlib.redirect_stdout(io.StringIO()):
        results = list(
            pool.map(
                lambda s: grade_submission(s, chapter, course_dir, Path(out) / s.stem, timeout, limits), submissions
            )
        )
    questions = list(results[0]["questions"])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["submission", *questions, "total", "max_score", "status", "flags"])
    for r in results:
        scores = [r["questions"][q]["score"] for q in questions]
        row = [Path(r["submission"]).name, *scores, r["score"], r["max_score"], r["status"], " | ".join(r["flags"])]
        writer.writerow(row)
    (Path(out) / f"{chapter}-grades.csv").write_text(buffer.getvalue())
    written = [Path(out) / Path(r["submission"]).stem / "written.md" for r in results]
    (Path(out) / f"{chapter}-written.md").write_text("\n".join(p.read_text() for p in written if p.is_file()))
    return results


def full_marks(result: dict) -> bool:
    """Whether a graded submission got every point."""
    return result["status"] == "ok" and math.isclose(result["score"], result["max_score"])
