"""Time the coursework round trip: ``course build`` of every chapter, then grading the reference solutions, the
untouched student notebook and one deliberately wrong answer per chapter with ``otter run``. Prints the grade
table and the seconds each phase took (the issue asks for "a few minutes on 2 CPU cores")."""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gumbel_book.course import discover_chapters
from gumbel_book.course.build import build_chapter
from gumbel_book.course.demo import write_demo_submissions
from gumbel_book.course.grade import grade_folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2, help="chapters built / submissions graded at once")
    parser.add_argument("--chapter", action="append", help="only this chapter (repeatable)")
    args = parser.parse_args()
    chapters = discover_chapters(only=args.chapter)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "course"
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            summaries = {s["chapter"]: s for s in pool.map(lambda c: build_chapter(c, out), chapters)}
        built = time.perf_counter()
        print(f"build: {built - start:.0f} s for {len(chapters)} chapters")
        print(f"{'chapter':20s} {'submission':11s} {'score':>6s} {'max':>5s}  per question")
        for chapter in chapters:
            question = write_demo_submissions(out, chapter.name, Path(tmp) / "subs" / chapter.name)
            rows = grade_folder(
                Path(tmp) / "subs" / chapter.name,
                chapter.name,
                out,
                Path(tmp) / "grades" / chapter.name,
                timeout=600,
                jobs=args.jobs,
            )
            for r in rows:
                per = ", ".join(f"{q} {v['score']:g}/{v['max']:g}" for q, v in r["questions"].items())
                print(
                    f"{chapter.name:20s} {Path(r['submission']).stem:11s} {r['score']:6g} {r['max_score']:5g}  {per}"
                    + ("" if r["status"] == "ok" else f"  [{r['status']}]")
                )
            print(f"{'':20s} (one_wrong breaks {question}: {summaries[chapter.name]['points'][question]:g} points)")
        print(f"grading: {time.perf_counter() - built:.0f} s; build + grading: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
