"""Check functions for the chapters' exercises, one module per chapter.

Each check prints "correct" or raises ``AssertionError`` with a message that explains the mistake.
"""
