#!/usr/bin/env bash
# Command 1 of the README: install everything into .venv, then build the book with every
# notebook executed afresh and warnings treated as errors. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"Python 3.11 or newer is needed, found {sys.version.split()[0]} (set PYTHON=/path/to/python3.11)")
PY

if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
fi
echo "==> installing Python packages (requirements.txt pins torch==2.13.0, a CPU build)"
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt
.venv/bin/python -m pip install --quiet --no-deps -e .
# Double-clicking a chapter (book/*.md) in JupyterLab opens it as a notebook (jupytext), not as text.
mkdir -p .venv/share/jupyter/lab/settings/overrides.d
cp jupyter/overrides.d/gumbel-book.json .venv/share/jupyter/lab/settings/overrides.d/

# The browser tests drive Debian's Chromium through playwright (playwright cannot download browsers here).
if [ ! -x /usr/bin/chromium ]; then
    echo "==> installing Debian's chromium for the offline browser tests"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    if [ -z "$SUDO" ] || command -v sudo >/dev/null; then
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
    else
        echo "warning: cannot install chromium without root or sudo; the browser tests will fail" >&2
    fi
fi

echo "==> building the book (every notebook executed afresh, warnings are errors)"
start=$(date +%s)
.venv/bin/jupyter-book build --all --warningiserror --keep-going .
echo "==> book built in $(( $(date +%s) - start )) s: open _build/html/index.html"

# The print edition: the book and each page as PDFs (instructor and student editions) in _build/html/pdf,
# which every page's download button links. Chromium prints the built pages; matplotlib draws the figures.
echo "==> printing the PDFs"
start=$(date +%s)
.venv/bin/python -m gumbel_book.course pdf
echo "==> PDFs printed in $(( $(date +%s) - start )) s: _build/html/pdf"

# The coursework: student, autograder and instructor editions of every chapter, as an instructor would hand
# them out (`python -m gumbel_book.course build`). Stamped with a digest of the sources: the tests check this
# build while the stamp matches and build their own otherwise (as they do for the student book kept above).
echo "==> building the coursework"
start=$(date +%s)
.venv/bin/python -m gumbel_book.course build --out _build/course --jobs 2
echo "==> coursework built in $(( $(date +%s) - start )) s: _build/course"
