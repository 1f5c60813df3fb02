"""A build's stamp: a digest of everything a course build reads, so that a later run can reuse the build.

README command 1 builds the coursework (``course build``) and the student book (``course pdf``) into ``_build``
and stamps each folder with :func:`sources_digest`. The test suite reuses a stamped folder whose digest still
matches the sources (the tests then check what command 1 built) and builds afresh into a temporary folder when
it does not: after any edit to a page, the package or the configuration.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

STAMP = "stamp.json"
#: What a course build and a student-book build read, relative to the book's root.
INPUTS = ("_config.yml", "_toc.yml", "pyproject.toml")
INPUT_GLOBS = ("book/**/*", "src/gumbel_book/**/*", "results/**/*")


def sources_digest(root: Path) -> str:
    """SHA-256 over the names and bytes of every input file under ``root`` (sorted, so the order is fixed)."""
    root = Path(root).resolve()
    files = {root / name for name in INPUTS if (root / name).is_file()}
    for pattern in INPUT_GLOBS:
        files |= {p for p in root.glob(pattern) if p.is_file() and "__pycache__" not in p.parts}
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def write_stamp(folder: Path, root: Path, what: str) -> None:
    """Stamp ``folder`` as a complete build of ``what`` from the sources under ``root`` as they are now."""
    (Path(folder) / STAMP).write_text(json.dumps({"what": what, "sources": sources_digest(root)}) + "\n")


def is_fresh(folder: Path, root: Path, what: str) -> bool:
    """Whether ``folder`` holds a complete build of ``what`` from the sources under ``root`` as they are now."""
    path = Path(folder) / STAMP
    if not path.is_file():
        return False
    try:
        stamp = json.loads(path.read_text())
    except ValueError:
        return False
    return stamp.get("what") == what and stamp.get("sources") == sources_digest(root)
