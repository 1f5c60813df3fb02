"""Time the coursework round trip: ``course build`` of every chapter, then grading the reference solutions, the
untouched student notebook and one deliberately wrong answer per chapter (the notebook in a sandboxed worker, the
tests in the grader). Prints the grade table and the seconds each phase took.

``--attacks`` also grades every red-team notebook of ``gumbel_book.course.redteam`` (issue 24), one attack per
notebook, and says for each whether it scored 0 on what it attacks and full marks on the rest. ``--copies N``
grades N copies of the demo submissions of each chapter (13 submissions: ``--chapter gumbel_max --copies 5``
grades 15), for the grading time of a class.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gumbel_book.course import discover_chapters
from gumbel_book.course.build import build_chapter
from gumbel_book.course.demo import write_demo_submissions
from gumbel_book.course.grade import grade_folder
from gumbel_book.course.redteam import write_attacks


def _grade_demos(out: Path, tmp: Path, chapter, summaries: dict, jobs: int, copies: int) -> None:
    folder = tmp / "subs" / chapter.name
    question = write_demo_submissions(out, chapter.name, folder)
    for i in range(1, copies):
        for name in ("reference", "untouched", "one_wrong"):
            shutil.copy(folder / f"{name}.ipynb", folder / f"{name}_{i}.ipynb")
    rows = grade_folder(folder, chapter.name, out, tmp / "grades" / chapter.name, timeout=600, jobs=jobs)
    for r in rows:
        per = ", ".join(f"{q} {v['score']:g}/{v['max']:g}" for q, v in r["questions"].items())
        status = "" if r["status"] == "ok" else f"  [{r['status']}]"
        print(f"{chapter.name:20s} {Path(r['submission']).stem:13s} {r['score']:6g} {r['max_score']:5g}  {per}{status}")
    print(f"{'':20s} (one_wrong breaks {question}: {summaries[chapter.name]['points'][question]:g} points)")


def _grade_attacks(out: Path, tmp: Path, chapter, jobs: int) -> int:
    folder = tmp / "attacks" / chapter.name
    attacks = write_attacks(out, chapter.name, folder)
    rows = grade_folder(folder, chapter.name, out, tmp / "attack-grades" / chapter.name, timeout=60, jobs=jobs)
    failed = 0
    for r in rows:
        attack = attacks[Path(r["submission"]).stem]
        scores = {q: v["score"] for q, v in r["questions"].items()}
        held = all(scores[q] == 0 for q in attack.zero) and all(
            scores[q] == r["questions"][q]["max"] for q in attack.full
        )
        failed += not held
        verdict = "held" if held else "BROKEN"
        print(f"{chapter.name:20s} {attack.name:26s} {verdict:6s} {r['score']:g}/{r['max_score']:g}  [{r['status']}]")
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2, help="chapters built / submissions graded at once")
    parser.add_argument("--chapter", action="append", help="only this chapter (repeatable)")
    parser.add_argument("--copies", type=int, default=1, help="copies of each demo submission to grade")
    parser.add_argument("--attacks", action="store_true", help="also grade every red-team notebook")
    args = parser.parse_args()
    chapters = discover_chapters(only=args.chapter)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        out = tmp / "course"
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            summaries = {s["chapter"]: s for s in pool.map(lambda c: build_chapter(c, out), chapters)}
        built = time.perf_counter()
        print(f"build: {built - start:.0f} s for {len(chapters)} chapters")
        print(f"{'chapter':20s} {'submission':13s} {'score':>6s} {'max':>5s}  per question")
        for chapter in chapters:
            _grade_demos(out, tmp, chapter, summaries, args.jobs, args.copies)
        graded = time.perf_counter()
        print(f"grading: {graded - built:.0f} s; build + grading: {graded - start:.0f} s")
        if args.attacks:
            broken = sum(_grade_attacks(out, tmp, chapter, args.jobs) for chapter in chapters)
            print(f"attacks: {time.perf_counter() - graded:.0f} s; {broken} broken")


if __name__ == "__main__":
    main()
