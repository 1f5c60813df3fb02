"""Command line: ``python -m gumbel_book.course {build,grade,book,pdf}`` (see the instructor page of the book)."""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ..validation import check_int
from .chapters import discover_chapters, find_root
from .stamp import STAMP, write_stamp


def _cmd_build(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from .build import build_chapter

    jobs = check_int(args.jobs, "--jobs")
    root = find_root(args.root)
    chapters = discover_chapters(root, args.chapter or None)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def build(chapter) -> None:
        start = time.perf_counter()
        summary = build_chapter(chapter, out, instructor=not args.no_instructor)
        points = ", ".join(f"{q} {p:g}" for q, p in summary["points"].items())
        print(
            f"{chapter.name}: {len(summary['points'])} questions, {summary['total']:g} points ({points}) "
            f"in {time.perf_counter() - start:.1f} s -> {out / chapter.name}",
            flush=True,
        )

    (out / STAMP).unlink(missing_ok=True)  # an interrupted build leaves no stamp
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(build, chapters))  # list(): re-raises the first chapter's error
    if not args.chapter:
        write_stamp(out, root, "course" if not args.no_instructor else "course-no-instructor")
    return 0


def _cmd_grade(args: argparse.Namespace) -> int:
    from .grade import format_table, grade_folder, grade_submission
    from .remote import Limits

    target = Path(args.submission)
    out = Path(args.out)
    limits = Limits(seconds=args.timeout, memory_mb=args.memory_mb)
    if target.is_dir():
        results = grade_folder(target, args.chapter, Path(args.course), out, args.timeout, args.jobs, limits)
        off = sorted({layer for r in results for layer in r["sandbox_off"]})
        if off:
            print("warning: this machine runs the worker without " + "; ".join(off), file=sys.stderr)
        for r in results:
            flagged = f" [{len(r['flags'])} flags]" if r["flags"] else ""
            print(f"{Path(r['submission']).name}: {r['score']:g} / {r['max_score']:g} ({r['status']}){flagged}")
        print(f"wrote {out / f'{args.chapter}-grades.csv'} and {out / f'{args.chapter}-written.md'}")
        return 0
    with contextlib.redirect_stdout(io.StringIO()):  # the checks print "correct"
        result = grade_submission(target, args.chapter, Path(args.course), out, args.timeout, limits)
    if result["sandbox_off"]:
        print("warning: this machine runs the worker without " + "; ".join(result["sandbox_off"]), file=sys.stderr)
    print(format_table(result))
    print(f"wrote {out / 'results.json'}")
    return 0 if result["status"] == "ok" else 1


def _cmd_book(args: argparse.Namespace) -> int:
    from .book import build_student_book

    root = find_root(args.root)
    html = build_student_book(root, Path(args.out), executed=Path(args.executed) if args.executed else None)
    print(f"student book: {html / 'index.html'}")
    return 0


def _cmd_pdf(args: argparse.Namespace) -> int:
    from .pdf import build_pdfs, summary

    root = find_root(args.root)
    html = Path(args.html) if args.html else root / "_build" / "html"
    out = Path(args.out) if args.out else html / "pdf"
    editions = build_pdfs(root, html, out, args.edition or ("instructor", "student"))
    print(summary(editions))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``course`` argument parser."""
    parser = argparse.ArgumentParser(prog="python -m gumbel_book.course", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="student, autograder and instructor editions of every coursework chapter")
    build.add_argument("--out", default="dist/course", help="output folder (default: dist/course)")
    build.add_argument("--chapter", action="append", help="only this chapter (repeatable)")
    build.add_argument("--root", type=Path, default=None, help="the book's folder (default: found from here)")
    build.add_argument("--no-instructor", action="store_true", help="skip executing the instructor edition")
    build.add_argument("--jobs", type=int, default=1, help="chapters built at once (default: 1)")
    build.set_defaults(run=_cmd_build)

    grade = sub.add_parser("grade", help="grade one submission, or a folder of them (one CSV), offline")
    grade.add_argument("submission", help="a submitted .ipynb, or a folder of them")
    grade.add_argument("--chapter", required=True, help="the chapter it answers, e.g. gumbel_max")
    grade.add_argument("--course", default="dist/course", help="what `build` wrote (default: dist/course)")
    grade.add_argument("--out", default="grades", help="where results.json (and the CSV) go (default: grades)")
    grade.add_argument(
        "--timeout", type=float, default=120, help="seconds for each cell and each question's tests (default: 120)"
    )
    grade.add_argument("--memory-mb", type=int, default=6144, help="memory limit of a worker (default: 6144)")
    grade.add_argument("--jobs", type=int, default=1, help="submissions graded at once for a folder (default: 1)")
    grade.set_defaults(run=_cmd_grade)

    book = sub.add_parser("book", help="the HTML book without any solution")
    book.add_argument("--out", default="_build/student", help="output folder (default: _build/student)")
    book.add_argument("--root", type=Path, default=None, help="the book's folder (default: found from here)")
    book.add_argument(
        "--executed",
        default=None,
        help="executed notebooks of the full book whose outputs to reuse (default: _build/jupyter_execute if present)",
    )
    book.set_defaults(run=_cmd_book)

    pdf = sub.add_parser("pdf", help="the book and each page as PDFs: instructor and student editions")
    pdf.add_argument("--html", default=None, help="the built book (default: _build/html)")
    pdf.add_argument("--out", default=None, help="output folder (default: pdf/ in the built book, which links it)")
    pdf.add_argument("--edition", action="append", choices=("instructor", "student"), help="only this edition")
    pdf.add_argument("--root", type=Path, default=None, help="the book's folder (default: found from here)")
    pdf.set_defaults(run=_cmd_pdf)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``course`` command line."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
