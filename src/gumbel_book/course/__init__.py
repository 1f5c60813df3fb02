"""The coursework edition: student notebooks, an offline autograder (otter-grader) and a student HTML book.

``python -m gumbel_book.course build`` turns every chapter whose ``## Exercises`` section starts with a raw
``# ASSIGNMENT CONFIG`` cell into ``<out>/<chapter>/{student,autograder,instructor}``; ``grade`` grades a
submission (or a folder of them) offline with a time limit; ``book`` builds the HTML book without solutions.
"""

from .chapters import Chapter, discover_chapters
from .leaks import find_leaks, hidden_test_sources, solution_lines

__all__ = ["Chapter", "discover_chapters", "find_leaks", "hidden_test_sources", "solution_lines"]
