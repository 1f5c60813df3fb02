"""Demo submissions that check a course build end to end: the reference solutions (full marks), the untouched
student notebook (0) and the reference with one deliberately wrong answer (that question's points less)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat

# One deliberately wrong answer per chapter: (question, code that redefines its answer wrongly).
WRONG = {
    "reparameterization": (
        "reparam-exponential",
        "def rsample(rate, n, generator=None):\n"
        "    return torch.empty(n, dtype=rate.dtype).exponential_(generator=generator) * rate\n",
    ),
    "gumbel_max": ("gm-top2", "top2_probability = 0.3 * 0.5\n"),
    "gumbel_softmax": ("gs-binary-concrete", "def log_density(y1, logit_diff, tau):\n    return torch.log(y1)\n"),
    "straight_through": ("st-layer", "def my_st(logits, generator):\n    return torch.softmax(logits, dim=-1)\n"),
    "categorical_vae": (
        "vae-loss",
        "def vae_loss(x, logits, g, tau, weight, bias, prior_logits):\n"
        "    return torch.zeros(x.shape[0], requires_grad=True)  # no loss at all\n",
    ),
    "language_models": (
        "lm-race",
        "def race(logits, temperature, generator=None):\n"
        "    probs = torch.softmax(logits / temperature, dim=-1)\n"
        "    return (probs * torch.empty_like(probs).exponential_(generator=generator)).argmax(dim=-1)\n",
    ),
}


def with_wrong_answer(reference: nbformat.NotebookNode, code: str) -> nbformat.NotebookNode:
    """A copy of ``reference`` with ``code`` inserted right after the cell that defines the same name."""
    name = re.match(r"(?:def )?(\w+)", code).group(1)
    nb = nbformat.from_dict(json.loads(json.dumps(reference)))
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and re.search(rf"^(def {name}\(|{name} = )", cell.source, re.M):
            nb.cells.insert(i + 1, nbformat.v4.new_code_cell(code))
            return nb
    raise ValueError(f"no cell defines {name}")


def write_demo_submissions(course_dir: Path, chapter: str, folder: Path) -> str | None:
    """Write reference.ipynb, untouched.ipynb and (if the chapter has one) one_wrong.ipynb; return its question."""
    folder.mkdir(parents=True, exist_ok=True)
    reference = nbformat.read(Path(course_dir) / chapter / "autograder" / f"{chapter}.ipynb", as_version=4)
    nbformat.write(reference, folder / "reference.ipynb")
    student = nbformat.read(Path(course_dir) / chapter / "student" / f"{chapter}.ipynb", as_version=4)
    nbformat.write(student, folder / "untouched.ipynb")
    if chapter not in WRONG:
        return None
    question, code = WRONG[chapter]
    nbformat.write(with_wrong_answer(reference, code), folder / "one_wrong.ipynb")
    return question
