"""The package's layout: imports point down the layers below and never in a cycle, functions stay short, no
private name crosses a module boundary, and every string that names a module (the exercise guard's forbidden
answers, ``_config.yml``'s Sphinx extensions, the ``python -m`` entry points) still resolves.

Every import counts, including the ones inside functions: an import hidden in a function body is how the two
cycles this test was written against (sampling <-> kernels, vae <-> reference_runs) went unnoticed.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "gumbel_book"

# The layers, lowest first. A module may import from its own layer or any layer below, never above. The name is
# the first part after ``gumbel_book.``: a subpackage counts as one unit (``gumbel_book`` itself is the API).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("settings", "validation", "notebook"),  # configuration, argument checks, the page runtime: no package imports
    ("device", "schedule", "kernels"),  # where to compute; the fused Triton kernels (below the samplers)
    ("sampling",),  # the samplers: plain torch, or the kernels through one backend switch
    ("gumbel_book", "straight_through", "data", "control_variates"),  # public API; ST; MNIST; MuProp, REBAR, RELAX
    ("estimators",),  # the estimator registry and gradient estimates
    ("vae",),  # the categorical VAE: config, model, training, presets, reference runs, CLI
    ("labs",),  # one lab per chapter
    ("figures",),  # one figure module per chapter, drawing only
    ("widgets", "exercises"),  # live Jupyter apps; exercise checks
    ("course", "sphinxext"),  # coursework tools; the book's Sphinx extensions
)
LAYER_OF = {unit: i for i, units in enumerate(LAYERS) for unit in units}
MAX_FUNCTION_LINES = 60
LONG_REASON = "is long because"  # a longer function says why in its docstring


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(imported package module, line) for every import in ``path``, function bodies included."""
    is_pkg = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # ``from .pkg import mod`` imports a module; ``from .mod import name`` imports from one
            targets = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in modules else stem for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target.startswith("gumbel_book") and target != module:
                found.append((target, node.lineno))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    return {m: {t for t, _ in imports_of(m, p, modules)} for m, p in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def upward_imports() -> list[str]:
    modules = package_modules()
    bad = []
    for module, path in modules.items():
        here = LAYER_OF[unit_of(module)]
        for target, line in imports_of(module, path, modules):
            there = LAYER_OF[unit_of(target)]
            if there > here:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {module} (layer {here}) imports {target} (layer {there})")
    return bad


def test_every_module_belongs_to_a_layer():
    units = {unit_of(m) for m in package_modules()}
    assert units <= set(LAYER_OF), f"add these to LAYERS: {sorted(units - set(LAYER_OF))}"


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None, " -> ".join(find_cycle(import_graph()))


def test_imports_point_downward_only():
    assert not upward_imports(), "\n".join(upward_imports())


def test_the_checks_can_fail(tmp_path):
    """Negative controls: imports inside functions, absolute and relative, are found and judged upward; a
    two-module cycle is found, and an acyclic graph passes."""
    probe = tmp_path / "sampling.py"
    probe.write_text(
        "from .labs import gumbel_max\n\ndef f():\n    from . import vae\n    import gumbel_book.figures.style\n"
    )
    edges = {t for t, _ in imports_of("gumbel_book.sampling", probe, package_modules())}
    assert edges == {"gumbel_book.labs.gumbel_max", "gumbel_book.vae", "gumbel_book.figures.style"}
    assert all(LAYER_OF[unit_of(t)] > LAYER_OF["sampling"] for t in edges)
    assert find_cycle({"a": {"b"}, "b": {"a"}, "c": set()}) in (["a", "b", "a"], ["b", "a", "b"])
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    graph = import_graph()
    graph["gumbel_book.validation"].add("gumbel_book.sampling")  # sampling imports validation
    assert find_cycle(graph) is not None


def test_kernels_package_never_imports_triton():
    """Importing the package, the samplers and ``gumbel_book.kernels`` loads no Triton: the interpreter switch is
    an explicit call (``kernels.use_interpreter()``), not a side effect of import order."""
    code = (
        "import sys, torch, gumbel_book, gumbel_book.kernels, gumbel_book.sampling\n"
        "x = gumbel_book.gumbel_max(torch.zeros(3)); print('triton' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def test_functions_are_short_or_say_why():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for fn in _functions(path):
            lines = fn.end_lineno - fn.lineno + 1
            if lines > MAX_FUNCTION_LINES and LONG_REASON not in (ast.get_docstring(fn) or ""):
                long.append(f"{path.relative_to(ROOT)}:{fn.lineno} {fn.name} ({lines} lines)")
    assert not long, "split these, or say in the docstring why each is long:\n" + "\n".join(long)


def test_no_private_name_crosses_a_module_boundary():
    modules = package_modules()
    crossing = []
    for path in modules.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level + bool(node.module):
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                if private:
                    crossing.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {', '.join(private)}")
    assert not crossing, "\n".join(crossing)


def _forbidden_answers() -> list[str]:
    from gumbel_book.exercises import guard, language_models

    return [*guard.PACKAGE_ANSWERS, *language_models.FORBIDDEN]


@pytest.mark.parametrize("spec", _forbidden_answers())
def test_every_forbidden_answer_names_the_function_where_it_is_defined(spec):
    """A stale "module:function" string would make the guard fail at run time in every exercise check; one that
    names a re-export would leave the defining function callable under its own name."""
    module_name_, name = spec.split(":")
    module = importlib.import_module(module_name_)
    fn = getattr(module, name)
    assert getattr(fn, "__module__", module_name_) == module_name_, f"{spec}: defined in {fn.__module__}"


def test_config_extensions_resolve():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    for ext in config["sphinx"]["extra_extensions"]:
        assert importlib.util.find_spec(ext) is not None, f"_config.yml names {ext}, which does not import"


ENTRY_POINTS = [
    ["gumbel_book.vae", "--help"],
    ["gumbel_book.vae", "train", "--help"],
    ["gumbel_book.vae", "evaluate", "--help"],
    ["gumbel_book.vae", "reproduce", "--help"],
    ["gumbel_book.course", "--help"],
    ["gumbel_book.kernels.static", "--help"],
]
BENCHMARKS = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py"))

# Runs each entry point as ``python -m`` would (runpy, as __main__, with its argv) in one process, so torch is
# imported once rather than once per entry: {key: [exit code, stdout, stderr]}, as JSON on the last line.
_HELP_RUNNER = """
import contextlib, io, json, runpy, sys
found = {}
for key, kind, target, argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    sys.argv = [target, *argv]
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            if kind == "module":
                runpy.run_module(target, run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(target, run_name="__main__")
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        except BaseException as error:  # an import that no longer resolves, say
            code, _ = 1, err.write(f"{type(error).__name__}: {error}")
    found[key] = [code, out.getvalue(), err.getvalue()]
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def help_pages() -> dict[str, list]:
    jobs = [[" ".join(argv), "module", argv[0], argv[1:]] for argv in ENTRY_POINTS]
    jobs += [[script, "path", str(ROOT / "benchmarks" / script), ["--help"]] for script in BENCHMARKS]
    result = subprocess.run(
        [sys.executable, "-c", _HELP_RUNNER, json.dumps(jobs)], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", ENTRY_POINTS, ids=[" ".join(a) for a in ENTRY_POINTS])
def test_python_m_entry_points_answer_help(help_pages, argv):
    code, out, err = help_pages[" ".join(argv)]
    assert code == 0 and "usage" in out.lower(), err[-2000:]


@pytest.mark.parametrize("script", BENCHMARKS)
def test_benchmarks_import_what_exists(help_pages, script):
    """Every benchmark answers ``--help``: its imports from the package still resolve after a move."""
    code, out, err = help_pages[script]
    assert code == 0 and "usage" in out.lower(), err[-2000:]


def test_the_help_runner_reports_a_broken_import(tmp_path):
    """Negative control: a script whose import no longer resolves fails its entry, and only its own."""
    broken = tmp_path / "broken.py"
    broken.write_text("from gumbel_book.no_such_module import x\n")
    fine = tmp_path / "fine.py"  # after the broken one, light (argparse only): it must still answer
    fine.write_text("import argparse\nargparse.ArgumentParser(prog='fine').parse_args()\n")
    jobs = [["broken", "path", str(broken), ["--help"]], ["fine", "path", str(fine), ["--help"]]]
    result = subprocess.run([sys.executable, "-c", _HELP_RUNNER, json.dumps(jobs)], capture_output=True, text=True)
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["broken"][0] != 0 and "ModuleNotFoundError" in found["broken"][2]
    assert found["fine"][0] == 0 and "usage" in found["fine"][1].lower()
