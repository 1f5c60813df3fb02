"""The coursework edition end to end: ``course build`` for every chapter, then grading (the notebook in a sandboxed
worker, the tests in the grader) of the reference solutions (full marks), the untouched student notebook (0, and the
grader does not crash) and a notebook with one deliberately wrong answer (exactly that question's points less); the
red-team notebooks of issue 24, each combining several attacks (every attack scores 0 on what it attacks and costs
nothing else); the leak check; the written-answer cells.

The build and the gradings run once per session (module fixtures); ``benchmarks/course_round_trip.py`` prints
how long they take.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from gumbel_book import notebook as claims
from gumbel_book.course import discover_chapters, find_leaks, hidden_test_sources, solution_lines
from gumbel_book.course.build import assignment_notebook, build_chapter
from gumbel_book.course.chapters import strip_solutions
from gumbel_book.course.demo import WRONG, write_demo_submissions
from gumbel_book.course.grade import grade_folder
from gumbel_book.course.leaks import guard_lines, secret_lines
from gumbel_book.course.redteam import ALIASES, HANGS, aliased, crashing, tampered
from gumbel_book.course.stamp import is_fresh
from gumbel_book.course.written import rubric

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = [c.name for c in discover_chapters(ROOT)]
# The chapters whose alias notebooks are graded end to end here (the budget: a few notebooks that combine
# several attacks): gumbel_max (with the tampering and the crashes) and language_models (aliases through the lab).
END_TO_END = ("gumbel_max", "language_models")
# The chapters whose instructor edition the tests build (executing it is the slow part of a build).
INSTRUCTOR = ("reparameterization", "categorical_vae")


def test_every_chapter_with_exercises_is_coursework():
    assert claims.CHAPTERS[0] == "intro" and CHAPTERS == list(claims.CHAPTERS[1:])  # every chapter after the intro
    assert set(WRONG) == set(CHAPTERS)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """``course build`` of every chapter: {chapter: summary}, written under the returned folder. README command 1
    builds it into ``_build/course`` (every edition of every chapter) and stamps it; while the stamp matches the
    sources that build is the one checked. Otherwise (after an edit, or without command 1) it is built here, two
    chapters at a time, with the instructor edition (the exercises executed with their solutions) for
    :data:`INSTRUCTOR` only: that every chapter's reference answers pass is what the ``graded`` fixture's full marks
    prove."""
    built = ROOT / "_build" / "course"
    if is_fresh(built, ROOT, "course"):
        summaries = [json.loads((built / c / "autograder" / "points.json").read_text()) for c in CHAPTERS]
        return built, {s["chapter"]: s for s in summaries}
    out = tmp_path_factory.mktemp("course")
    chapters = discover_chapters(ROOT)
    with ThreadPoolExecutor(max_workers=2) as pool:
        summaries = list(pool.map(lambda c: build_chapter(c, out, instructor=c.name in INSTRUCTOR), chapters))
    return out, {s["chapter"]: s for s in summaries}


@pytest.fixture(scope="module")
def graded(course, tmp_path_factory):
    """Grade reference, untouched and one-wrong submissions of every chapter (the notebook in a worker)."""
    out, _ = course
    results = {}
    for chapter in CHAPTERS:
        subs = tmp_path_factory.mktemp(f"submissions-{chapter}")
        write_demo_submissions(out, chapter, subs)
        graded_dir = tmp_path_factory.mktemp(f"grades-{chapter}")
        rows = grade_folder(subs, chapter, out, graded_dir, timeout=600, jobs=2)
        results[chapter] = ({Path(r["submission"]).stem: r for r in rows}, graded_dir)
    return results


@pytest.fixture(scope="module")
def attacked(course, tmp_path_factory):
    """Grade the red-team notebooks end to end: in :data:`END_TO_END` chapters all their aliases at once, and in
    gumbel_max also the tampering cell on the untouched notebook and the crashes (a hang, an exit, interrupts,
    100 MB of output, no metadata). Every alias of every chapter is also tried in a worker by
    tests/unit/test_grading_worker.py; ``benchmarks/course_round_trip.py --attacks`` grades one notebook per attack
    in every chapter."""
    out, _ = course
    subs = tmp_path_factory.mktemp("attacks")
    expected = {}
    for chapter in END_TO_END:
        reference = nbformat.read(out / chapter / "autograder" / f"{chapter}.ipynb", 4)
        nbformat.write(aliased(reference, chapter), subs / f"{chapter}-aliases.ipynb")
        expected[f"{chapter}-aliases"] = (chapter, set(ALIASES[chapter]) | _dependents(chapter))
    reference = nbformat.read(out / "gumbel_max" / "autograder" / "gumbel_max.ipynb", 4)
    student = nbformat.read(out / "gumbel_max" / "student" / "gumbel_max.ipynb", 4)
    nbformat.write(tampered(student), subs / "gumbel_max-tamper.ipynb")
    nbformat.write(crashing(reference, "gumbel_max"), subs / "gumbel_max-crashes.ipynb")
    expected["gumbel_max-tamper"] = ("gumbel_max", "all")
    expected["gumbel_max-crashes"] = ("gumbel_max", {HANGS["gumbel_max"][0]})
    graded_dir = tmp_path_factory.mktemp("attack-grades")
    for chapter in END_TO_END:
        folder = subs / chapter
        folder.mkdir()
        for path in subs.glob(f"{chapter}-*.ipynb"):
            path.rename(folder / path.name)

    rows = {}
    for chapter in END_TO_END:
        graded = grade_folder(subs / chapter, chapter, out, graded_dir / chapter, timeout=15, jobs=2)
        rows.update({Path(r["submission"]).stem: r for r in graded})
    return rows, expected, graded_dir


def _dependents(chapter: str) -> set[str]:
    """Questions whose reference answer calls an aliased one (so they fail with it)."""
    return set()  # none today: no reference answer calls another question's answer


def test_attacks_score_zero_on_what_they_attack_and_cost_nothing_else(attacked, course):
    _, summaries = course
    rows, expected, _ = attacked
    for name, (chapter, zero) in expected.items():
        row = rows[name]
        zero = set(summaries[chapter]["points"]) if zero == "all" else zero
        scores = {q: v["score"] for q, v in row["questions"].items()}
        assert all(scores[q] == 0 for q in zero), (name, scores, row["status"])
        full = {q: v["max"] for q, v in row["questions"].items() if q not in zero}
        assert all(scores[q] == full[q] for q in full), (name, scores, row["status"])


def test_tampering_changes_no_result_and_is_flagged(attacked):
    rows, _, graded_dir = attacked
    row = rows["gumbel_max-tamper"]
    assert row["score"] == 0 and row["flags"], row
    time.sleep(6)  # the tampering cell tries to leave a process that rewrites the results after 5 s
    results = json.loads((graded_dir / "gumbel_max" / "gumbel_max-tamper" / "results.json").read_text())
    assert results["score"] == 0
    csv = (graded_dir / "gumbel_max" / "gumbel_max-grades.csv").read_text()
    assert "gumbel_max-tamper.ipynb,0.0,0.0,0.0,0.0,0.0" in csv


def test_crashes_are_reported_in_the_status(attacked):
    rows, _, _ = attacked
    status = rows["gumbel_max-crashes"]["status"]
    assert "the worker exited" in status and "time limit" in status, status


def test_build_writes_three_editions(course):
    out, summaries = course
    for chapter in CHAPTERS:
        editions = {"student", "autograder"} | ({"instructor"} if chapter in INSTRUCTOR else set())
        found = {p.name for p in (out / chapter).iterdir()}
        assert editions <= found <= editions | {"instructor"}, chapter  # command 1 builds every instructor edition
        for path in (
            f"student/{chapter}.ipynb",
            f"autograder/{chapter}.ipynb",
            f"autograder/{chapter}-autograder.zip",
            "autograder/points.json",
        ):
            assert (out / chapter / path).is_file(), path
        assert summaries[chapter]["total"] == sum(summaries[chapter]["points"].values()) > 0
    for chapter in [c for c in CHAPTERS if (out / c / "instructor").is_dir()]:
        executed = nbformat.read(out / chapter / "instructor" / f"{chapter}.ipynb", 4)
        outputs = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert any("correct" in o.get("text", "") for o in outputs), f"{chapter}: the instructor edition ran no check"
        assert not any(o.get("output_type") == "error" for o in outputs)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_round_trip(graded, course, chapter):
    _, summaries = course
    rows, graded_dir = graded[chapter]
    total = summaries[chapter]["total"]
    table = "\n".join(f"{k}: {v['score']:g}/{v['max_score']:g} {v['status']}" for k, v in rows.items())
    assert rows["reference"]["status"] == "ok" and rows["reference"]["score"] == total, table
    assert rows["untouched"]["status"] == "ok" and rows["untouched"]["score"] == 0, table
    question = WRONG[chapter][0]
    expected = total - summaries[chapter]["points"][question]
    assert rows["one_wrong"]["score"] == expected, table
    assert rows["one_wrong"]["questions"][question]["score"] == 0
    csv = (graded_dir / f"{chapter}-grades.csv").read_text().splitlines()
    assert csv[0].startswith("submission,") and len(csv) == 4
    assert json.loads((graded_dir / "reference" / "results.json").read_text())["score"] == total


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_solution_or_hidden_test_reaches_students(course, chapter):
    out, _ = course
    source = assignment_notebook(next(c for c in discover_chapters(ROOT) if c.name == chapter))
    student = nbformat.read(out / chapter / "student" / f"{chapter}.ipynb", 4)
    assert solution_lines(source) and hidden_test_sources(source)
    assert find_leaks(source, student) == []
    text = json.dumps(student)
    for test in hidden_test_sources(source):
        name = re.search(r"def (\w+)\(", test).group(1)
        assert name not in text, f"hidden test {name} is in the student notebook or its metadata"
    assert "hidden=True" not in text and "hidden: true" not in text.lower()
    assert "solution:" not in text, "a hidden solution guard's message reached the student notebook"
    questions = set(summaries_written(out, chapter))
    rubric_items = {item.question for item in rubric(ROOT / "book" / "instructor.md")}
    assert questions == rubric_items & set(
        json.loads((out / chapter / "autograder" / "points.json").read_text())["points"]
    ), "every written part of the rubric gets an answer cell"
    for question in questions:
        assert f"<!-- written answer: {question} -->" in "".join(c.source for c in student.cells)
    # The check itself can fail: a solution line pasted into the student notebook is found.
    student.cells.append(nbformat.v4.new_code_cell(solution_lines(source)[0]))
    assert find_leaks(source, student)


def summaries_written(out: Path, chapter: str) -> list[str]:
    return json.loads((out / chapter / "autograder" / "points.json").read_text()).get("written", [])


def test_every_rubric_item_is_a_question():
    questions = {q for c in discover_chapters(ROOT) for q in points_of(c)}
    items = rubric(ROOT / "book" / "instructor.md")
    assert len(items) >= 6 and {i.question for i in items} <= questions


def points_of(chapter) -> list[str]:
    from gumbel_book.course.build import points_by_question

    return list(points_by_question(assignment_notebook(chapter)))


# Solution code lines that are also the package's own library code, where the book implements the same formula
# for its figures and labs (not in the exercises, the course tools or any data file): {line: the one file}.
LIBRARY_IDIOMS = {
    "z = mu + sigma * eps": "gumbel_book/labs/reparameterization.py",
    "log_q = torch.log_softmax(logits, dim=-1)": "gumbel_book/vae/model.py",
}


def test_the_wheel_holds_no_solution(tmp_path):
    """What a student installs: no solution line (prose, code or hidden guard) in any file of the wheel (the
    language-model corpus included), apart from :data:`LIBRARY_IDIOMS`; and no stated answer in the checks."""
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        texts = {n: archive.read(n).decode("utf-8", "replace") for n in archive.namelist() if not n.endswith(".so")}
    assert "gumbel_book/labs/book_prose.txt" in texts and "gumbel_book/exercises/reparameterization.py" in texts
    lines = {line for c in discover_chapters(ROOT) for nb in [assignment_notebook(c)] for line in _telling(nb)}
    assert len(lines) > 80
    leaks = sorted(
        f"{name}: {line!r}"
        for line in lines
        for name, text in texts.items()
        if line in text and LIBRARY_IDIOMS.get(line) != name
    )
    assert leaks == []
    checks = "\n".join(t for n, t in texts.items() if n.startswith("gumbel_book/exercises/"))
    for stated in ("SCORE_VARIANCE = 30", "34 - 4", "mu^2 + 3 sigma^2", "b* ="):
        assert stated not in checks, f"a check module states an answer: {stated!r}"


def _telling(nb) -> list[str]:
    return solution_lines(nb) + guard_lines(nb)


def test_student_edition_strips_every_solution():
    """The notebooks the student book is built from keep the exercises and drop solutions and tests."""
    for chapter in discover_chapters(ROOT):
        nb = chapter.read()
        stripped = strip_solutions(nb)
        text = "\n".join(c.source for c in stripped.cells)
        assert "{exercise}" in text and "solution-start" not in text and "BEGIN TESTS" not in text
        secret = secret_lines(solution_lines(assignment_notebook(chapter)), nb)  # lines the page teaches aside
        assert secret and not [line for line in secret if line in text]
