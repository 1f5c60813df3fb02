"""The build stamp (``gumbel_book.course.stamp``): the tests reuse README command 1's coursework and student book
only while their stamp matches the sources, so every edit that a build reads must make the stamp stale."""

from __future__ import annotations

import pytest

from gumbel_book.course.stamp import is_fresh, sources_digest, write_stamp


@pytest.fixture
def root(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "gumbel_max.md").write_text("# Gumbel-max\n")
    (tmp_path / "src" / "gumbel_book" / "exercises").mkdir(parents=True)
    (tmp_path / "src" / "gumbel_book" / "exercises" / "gumbel_max.py").write_text("def check(): pass\n")
    (tmp_path / "_toc.yml").write_text("root: book/intro\n")
    (tmp_path / "built").mkdir()
    write_stamp(tmp_path / "built", tmp_path, "course")
    return tmp_path


def test_a_stamp_is_fresh_until_an_input_changes(root):
    assert is_fresh(root / "built", root, "course")
    for path, text in [
        ("book/gumbel_max.md", "# Gumbel-max, edited\n"),
        ("src/gumbel_book/exercises/gumbel_max.py", "def check(): return None\n"),
        ("_toc.yml", "root: book/other\n"),
    ]:
        before = (root / path).read_text()
        (root / path).write_text(text)
        assert not is_fresh(root / "built", root, "course"), f"an edit of {path} left the stamp fresh"
        (root / path).write_text(before)
        assert is_fresh(root / "built", root, "course")


def test_a_new_or_renamed_input_makes_the_stamp_stale(root):
    (root / "book" / "new.md").write_text("# New\n")
    assert not is_fresh(root / "built", root, "course")
    (root / "book" / "new.md").unlink()
    (root / "book" / "gumbel_max.md").rename(root / "book" / "gumbel_max2.md")
    assert not is_fresh(root / "built", root, "course")


def test_outputs_and_caches_do_not_count(root):
    digest = sources_digest(root)
    (root / "src" / "gumbel_book" / "__pycache__").mkdir()
    (root / "src" / "gumbel_book" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (root / "_build").mkdir()
    (root / "_build" / "page.html").write_text("<html>")
    assert sources_digest(root) == digest


def test_a_missing_garbled_or_other_stamp_is_not_fresh(root):
    assert not is_fresh(root / "built", root, "student-book")  # another build's name
    (root / "built" / "stamp.json").write_text("{not json")
    assert not is_fresh(root / "built", root, "course")
    (root / "built" / "stamp.json").unlink()
    assert not is_fresh(root / "built", root, "course")
