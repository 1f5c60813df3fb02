"""Attack submissions: what a determined student tried against the autograder (issue 24), as notebooks to grade.

Each attack is a notebook built from a chapter's reference solutions (``reference.ipynb``) or its untouched
student notebook, with cells added or answers replaced, and the score it must get. ``tests/book/test_course.py``
grades a few that combine several attacks; ``benchmarks/course_round_trip.py --attacks`` grades every one, in
every chapter.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

# One cell that, run in the grader's process, used to give full marks to an untouched notebook (issue 24): it
# replaces the checks, rewrites the tests where it finds them, patches otter, looks for the grader through /proc,
# and leaves a process behind that rewrites the results after the batch. Every step is tried and may fail.
TAMPER = r'''
import glob, importlib, os, sys, textwrap
def _try(step):
    try:
        step()
    except BaseException as err:
        print("attack step failed:", type(err).__name__, err)

def _checks():
    import gumbel_book.exercises as ex
    for name in list(sys.modules):
        if name.startswith("gumbel_book.exercises"):
            module = sys.modules[name]
            for attr in dir(module):
                if attr.startswith("check_"):
                    setattr(module, attr, lambda *a, **k: None)
_try(_checks)

def _tests():
    for path in glob.glob("**/tests/*.py", recursive=True) + glob.glob("/tmp/**/tests/*.py", recursive=True):
        points = [line for line in open(path) if line.startswith("points")]
        open(path, "w").write("OK_FORMAT = False\nname = 'x'\n" + "".join(points))
_try(_tests)

def _otter():
    if "otter" not in sys.modules:  # otter used to run this notebook in its own process: patch it where loaded
        raise ImportError("otter is not loaded here")
    from otter.test_files.exception_test import ExceptionTestFile
    ExceptionTestFile.run = lambda self, env: setattr(self, "test_case_results", [])
_try(_otter)

def _proc():
    for pid in os.listdir("/proc"):
        if pid.isdigit() and b"course" in open(f"/proc/{pid}/cmdline", "rb").read():
            cwd = os.readlink(f"/proc/{pid}/cwd")
            open(os.path.join(cwd, "results.json"), "w").write('{"score": 999}')
_try(_proc)

def _detached():
    import subprocess
    script = textwrap.dedent("""
        import glob, json, time
        time.sleep(5)
        for path in glob.glob('/tmp/**/results.json', recursive=True):
            data = json.load(open(path)); data['score'] = data.get('max_score', 999); json.dump(data, open(path, 'w'))
    """)
    subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
_try(_detached)

def _fork():
    if os.fork() == 0:
        os.setsid()
        os._exit(0)
_try(_fork)

def _kill():
    import signal
    os.kill(os.getppid(), signal.SIGKILL)
_try(_kill)
'''

# Answers through other names for the package's own (issue 24, "Answers reachable by another name"):
# {chapter: {question: code that redefines its answer}}.
ALIASES = {
    "gumbel_max": {
        "gm-batch": "def sample(logits, n, generator=None):\n"
        "    probs = torch.softmax(logits, -1)\n"
        "    return torch._C._VariableFunctions.multinomial(probs, n, True, generator=generator).T\n",
        "gm-top2": "from gumbel_book.labs import gumbel_max as _lab\n"
        "top2_probability = _lab.ordered_tuple_probabilities((0.5, 0.3, 0.2), 2)[(1, 0)]\n",
    },
    "gumbel_softmax": {
        "gs-sampler": "def sampler(logit_diff, tau, generator):\n"
        "    t = torch.tensor(tau, dtype=logit_diff.dtype)\n"
        "    d = torch.distributions.relaxed_bernoulli.LogitRelaxedBernoulli(t, logits=logit_diff)\n"
        "    return torch.sigmoid(d.rsample())\n",
        "gs-binary-concrete": "def log_density(y1, logit_diff, tau):\n"
        "    t, lg = torch.tensor(tau, dtype=y1.dtype), torch.tensor(logit_diff, dtype=y1.dtype)\n"
        "    d = torch.distributions.relaxed_bernoulli.LogitRelaxedBernoulli(t, logits=lg)\n"
        "    x = torch.log(y1) - torch.log1p(-y1)\n"
        "    return d.log_prob(x) - torch.log(y1) - torch.log1p(-y1)\n",
    },
    "reparameterization": {
        "reparam-exponential": "_rsample = torch.distributions.Exponential.rsample\n"
        "def rsample(rate, n, generator=None):\n"
        "    return _rsample(torch.distributions.Exponential(rate), (n,))\n",
    },
    "straight_through": {
        "st-layer": "def my_st(logits, generator):\n"
        "    probs = torch.softmax(logits, -1)\n"
        "    i = torch.ops.aten.multinomial(probs.detach(), 1, generator=generator)[:, 0]\n"
        "    return torch.nn.functional.one_hot(i, logits.shape[-1]).to(probs.dtype) + probs - probs.detach()\n",
        "st-rao": "from gumbel_book import straight_through as _st\n"
        "def conditional_gumbels(logits, index, generator):\n"
        "    return _st.conditional_gumbel(logits.expand(index.shape[0], -1), index, 1, generator=generator)[0]"
        " - logits\n",
    },
    "categorical_vae": {
        "vae-kl-uniform": "import math\n"
        "def kl(logits):\n"
        "    q = torch.distributions.Categorical(logits=logits)\n"
        "    p = torch.distributions.Categorical(logits=torch.zeros_like(logits))\n"
        "    return torch.distributions.kl._kl_categorical_categorical(q, p).sum(-1)\n",
    },
    "language_models": {
        "lm-race": "def race(logits, temperature, generator=None):\n"
        "    return torch.softmax(logits / temperature, -1).multinomial(1, generator=generator)[:, 0]\n",
        "lm-topk": "def sample(logits, k, generator=None):\n"
        "    return lab.exponential_race(lab.top_k_logits(logits, k), 1.0, generator=generator)\n",
    },
}
# The check each alias answers, for the test that an alias is a correct answer when nothing blocks it.
ALIAS_CHECKS = {
    "gm-batch": ("gumbel_max", "check_categorical_sampler", "sample"),
    "gm-top2": ("gumbel_max", "check_top2_probability", "top2_probability"),
    "gs-sampler": ("gumbel_softmax", "check_relaxed_sampler", "sampler"),
    "gs-binary-concrete": ("gumbel_softmax", "check_binary_concrete_log_density", "log_density"),
    "reparam-exponential": ("reparameterization", "check_exponential_rsample", "rsample"),
    "st-layer": ("straight_through", "check_straight_through_layer", "my_st"),
    "st-rao": ("straight_through", "check_conditional_gumbels", "conditional_gumbels"),
    "vae-kl-uniform": ("categorical_vae", "check_kl_uniform", "kl"),
    "lm-race": ("language_models", "check_exponential_race", "race"),
    "lm-topk": ("language_models", "check_top_k_sampler", "sample"),
}
# A function whose question a hang must cost, and nothing else: {chapter: (question, function)}.
HANGS = {
    "gumbel_max": ("gm-batch", "sample"),
    "gumbel_softmax": ("gs-binary-concrete", "log_density"),
    "reparameterization": ("reparam-baseline", "estimator"),
    "straight_through": ("st-layer", "my_st"),
    "categorical_vae": ("vae-iw-bound", "iw"),
    "language_models": ("lm-race", "race"),
}
HANG = "def {name}(*args, **kwargs):\n    while True:\n        pass\n"
# Cells that fail in every way a cell can; none may cost anything but itself.
CELL_TROUBLE = (
    "import os\nos._exit(3)\n",
    "raise KeyboardInterrupt('a cell interrupted')\n",
    "raise SystemExit(2)\n",
    "print('x' * 100_000_000)\n",
)


@dataclass(frozen=True)
class Attack:
    """A notebook to grade and what it must score: ``zero`` questions score 0, ``full`` ones full marks."""

    name: str
    notebook: nbformat.NotebookNode
    zero: tuple[str, ...]
    full: tuple[str, ...]


def _copy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return nbformat.from_dict(json.loads(json.dumps(nb)))


def replace_definition(nb: nbformat.NotebookNode, code: str) -> nbformat.NotebookNode:
    """A copy of ``nb`` whose cell that defines the last public name ``code`` defines is ``code`` instead (so a
    blocked alias leaves the answer undefined, not the reference's)."""
    names = [a or b for a, b in re.findall(r"^(?:def (\w+)\(|(\w+) = )", code, re.M) if not (a or b).startswith("_")]
    nb = _copy(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and re.search(rf"^(def {names[-1]}\(|{names[-1]} = )", cell.source, re.M):
            nb.cells[i] = nbformat.v4.new_code_cell(code)
            return nb
    raise ValueError(f"no cell defines {names[-1]}")


def tampered(student: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The untouched student notebook with :data:`TAMPER` as its last cell."""
    nb = _copy(student)
    nb.cells.append(nbformat.v4.new_code_cell(TAMPER))
    return nb


def aliased(reference: nbformat.NotebookNode, chapter: str, questions: list[str] | None = None):
    """The reference with the answers of ``questions`` (default: all of :data:`ALIASES`) given by other names."""
    nb = reference
    for question, code in ALIASES[chapter].items():
        if questions is None or question in questions:
            nb = replace_definition(nb, code)
    return nb


def crashing(reference: nbformat.NotebookNode, chapter: str) -> nbformat.NotebookNode:
    """The reference with one function that hangs (:data:`HANGS`), the cells of :data:`CELL_TROUBLE` after the
    first cell, and a renamed kernelspec and no otter metadata."""
    nb = replace_definition(reference, HANG.format(name=HANGS[chapter][1]))
    for code in reversed(CELL_TROUBLE):
        nb.cells.insert(1, nbformat.v4.new_code_cell(code))
    nb.metadata = {"kernelspec": {"name": "renamed-kernel", "display_name": "Renamed", "language": "python"}}
    return nb


def attacks(course_dir: Path, chapter: str) -> list[Attack]:
    """Every attack on ``chapter`` (built under ``course_dir``), each alias on its own, with what it must score."""
    folder = Path(course_dir) / chapter
    reference = nbformat.read(folder / "autograder" / f"{chapter}.ipynb", as_version=4)
    student = nbformat.read(folder / "student" / f"{chapter}.ipynb", as_version=4)
    questions = tuple(json.loads((folder / "autograder" / "points.json").read_text())["points"])
    found = [Attack("tamper", tampered(student), questions, ())]
    for question in ALIASES.get(chapter, {}):
        others = tuple(q for q in questions if q != question and not _uses(chapter, q, question))
        found.append(Attack(f"alias-{question}", aliased(reference, chapter, [question]), (question,), others))
    if chapter in HANGS:
        question = HANGS[chapter][0]
        others = tuple(q for q in questions if q != question)
        found.append(Attack("crashes", crashing(reference, chapter), (question,), others))
    return found


def _uses(chapter: str, question: str, aliased_question: str) -> bool:
    """Whether the reference answer of ``question`` calls the answer of ``aliased_question`` (then it fails too)."""
    return False  # no reference answer calls another question's answer today


def write_attacks(course_dir: Path, chapter: str, folder: Path) -> dict[str, Attack]:
    """Write every attack on ``chapter`` as ``<folder>/<attack>.ipynb``; return them by name."""
    folder.mkdir(parents=True, exist_ok=True)
    found = {}
    for attack in attacks(course_dir, chapter):
        nbformat.write(attack.notebook, folder / f"{attack.name}.ipynb")
        found[attack.name] = attack
    return found
