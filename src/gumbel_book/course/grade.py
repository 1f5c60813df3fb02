"""``course grade``: grade submissions offline with ``otter run`` (no Docker), each under a time limit."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .build import otter_command

DEFAULT_TIMEOUT_S = 300


def load_points(course_dir: Path, chapter: str) -> dict:
    """The chapter's ``points.json`` (written by ``course build``)."""
    path = Path(course_dir) / chapter / "autograder" / "points.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m gumbel_book.course build` first")
    return json.loads(path.read_text())


def _otter_run(submission: Path, autograder: Path, out: Path, timeout: float) -> tuple[str, str]:
    """Run ``otter run`` (in ``out``, where its scratch files go) in its own process group; kill the whole group
    when it runs past ``timeout``."""
    cmd = [*otter_command(), "run", "--no-logo", "-a", str(autograder), "-o", str(out), str(submission)]
    proc = subprocess.Popen(
        cmd,
        cwd=out,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env=os.environ.copy(),
    )
    try:
        log, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        return "timeout", log
    return ("ok" if proc.returncode == 0 else f"otter exited {proc.returncode}"), log


def grade_submission(
    submission: Path, chapter: str, course_dir: Path, out: Path, timeout: float = DEFAULT_TIMEOUT_S
) -> dict:
    """Grade one notebook; writes ``out/results.json`` and returns it (every question listed, 0 if not graded)."""
    submission, out = Path(submission), Path(out)
    points = load_points(course_dir, chapter)
    autograder = Path(course_dir) / chapter / "autograder" / f"{chapter}-autograder.zip"
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="course-grade-") as tmp:
        status, log = _otter_run(submission.resolve(), autograder.resolve(), Path(tmp), timeout)
        raw = Path(tmp) / "results.json"
        otter = json.loads(raw.read_text()) if raw.is_file() else {}
        if raw.is_file():
            shutil.copy(raw, out / "otter_results.json")
    scores = {}
    for test in otter.get("tests", []):
        if test.get("name") in points["points"] and "score" in test:
            scores[test["name"]] = float(test["score"])
    if status == "ok" and set(scores) != set(points["points"]):
        status = "incomplete: otter returned no score for " + ", ".join(sorted(set(points["points"]) - set(scores)))
    questions = {q: {"score": scores.get(q, 0.0), "max": p} for q, p in points["points"].items()}
    result = {
        "chapter": chapter,
        "submission": str(submission),
        "status": status,
        "questions": questions,
        "score": sum(q["score"] for q in questions.values()),
        "max_score": points["total"],
        "seconds": round(time.perf_counter() - start, 1),
    }
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "otter.log").write_text(log)
    return result


def format_table(result: dict) -> str:
    """A per-question table and the total, as printed by ``course grade``."""
    width = max(len("question"), *(len(q) for q in result["questions"]))
    rows = [f"{'question':<{width}}  score    max", f"{'-' * width}  -----  -----"]
    for name, q in result["questions"].items():
        rows.append(f"{name:<{width}}  {q['score']:5.2f}  {q['max']:5.2f}")
    rows.append(f"{'total':<{width}}  {result['score']:5.2f}  {result['max_score']:5.2f}")
    if result["status"] != "ok":
        rows.append(f"status: {result['status']}")
    return "\n".join(rows)


def grade_folder(
    folder: Path, chapter: str, course_dir: Path, out: Path, timeout: float = DEFAULT_TIMEOUT_S, jobs: int = 1
) -> list[dict]:
    """Grade every ``*.ipynb`` in ``folder`` (``jobs`` at a time); writes ``out/<stem>/results.json`` and one CSV."""
    submissions = sorted(Path(folder).glob("*.ipynb"))
    if not submissions:
        raise FileNotFoundError(f"no .ipynb submissions in {folder}")
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(
            pool.map(lambda s: grade_submission(s, chapter, course_dir, Path(out) / s.stem, timeout), submissions)
        )
    questions = list(results[0]["questions"])
    with open(Path(out) / f"{chapter}-grades.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["submission", *questions, "total", "max_score", "status"])
        for r in results:
            scores = [r["questions"][q]["score"] for q in questions]
            writer.writerow([Path(r["submission"]).name, *scores, r["score"], r["max_score"], r["status"]])
    return results


def full_marks(result: dict) -> bool:
    """Whether a graded submission got every point."""
    return result["status"] == "ok" and math.isclose(result["score"], result["max_score"])
