"""The book tier's modules share helpers (``test_package.notebook_pages`` and friends): pytest's importlib mode
does not put this folder on ``sys.path``, so this file does, whatever order the modules are collected in."""

import sys
from pathlib import Path

HERE = str(Path(__file__).parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)
