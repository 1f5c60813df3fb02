"""Sphinx extension: every chapter page offers a runnable ``.ipynb`` and Colab/Binder buttons that open it.

At build time each MyST chapter in the table of contents is converted (jupytext) into a notebook without
outputs whose first cell installs ``gumbel-book`` pinned to the book's version when it is missing. It is
written to ``_sources/<page>.ipynb``, where the theme's ".ipynb" download button points. The Colab and
Binder buttons open the same notebook from the ``notebooks`` branch, which the publish workflow fills
with these files; both are derived from the one ``repository.url`` setting in ``_config.yml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import jupytext
import nbformat
from sphinx.application import Sphinx

from .. import __version__

NOTEBOOKS_BRANCH = "notebooks"
INSTALL_TAG = "gumbel-book-install"


def install_cell_source(version: str = __version__) -> str:
    """The first cell of a downloaded notebook: install the package, pinned to the book's version, if missing."""
    return f"""# Run this cell first: it installs the book's package (gumbel-book {version}) where it is missing,
# as on Colab or in a fresh Jupyter. Where gumbel_book is already installed it does nothing.
import importlib
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("gumbel_book") is None:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "gumbel-book=={version}"])
    importlib.invalidate_caches()
if "google.colab" in sys.modules:  # Colab shows the live apps' widgets only with its custom widget manager
    from google.colab import output

    output.enable_custom_widget_manager()"""


def is_notebook_source(path: str | Path) -> bool:
    """True for a MyST Markdown notebook (a jupytext header with a kernelspec), False for plain pages."""
    path = Path(path)
    if path.suffix != ".md":
        return False
    return "kernelspec" in jupytext.read(path).metadata


def download_notebook(source: str | Path, version: str = __version__) -> nbformat.NotebookNode:
    """The chapter ``source`` (MyST Markdown) as an ``.ipynb`` without outputs, headed by the install cell."""
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"source={str(source)!r}: no such chapter file")
    nb = jupytext.read(source)
    if "kernelspec" not in nb.metadata:
        raise ValueError(f"source={str(source)!r} is not a MyST notebook (its header has no kernelspec)")
    nb.metadata.pop("jupytext", None)  # a plain .ipynb, not paired with a text file the reader does not have
    nb.metadata["gumbel_book"] = {"version": version, "source": source.name}
    install = nbformat.v4.new_code_cell(install_cell_source(version), metadata={"tags": [INSTALL_TAG]})
    nb.cells.insert(0, install)
    for cell in nb.cells:
        cell.pop("id", None)
    nb = nbformat.v4.upgrade(nb)
    for i, cell in enumerate(nb.cells):  # stable ids, so that a rebuild gives byte-identical files
        cell["id"] = f"cell-{i}"
    nbformat.validate(nb)
    return nb


def github_parts(repository_url: str) -> tuple[str, str]:
    """``(owner, repo)`` of a ``https://github.com/<owner>/<repo>`` URL; anything else is an error naming it."""
    url = repository_url.strip().removesuffix("/").removesuffix(".git")
    prefix = "https://github.com/"
    parts = url[len(prefix) :].split("/") if url.startswith(prefix) else []
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"repository.url={repository_url!r} must look like https://github.com/<owner>/<repo>")
    return parts[0], parts[1]


def launch_urls(
    repository_url: str,
    pagename: str,
    *,
    branch: str = NOTEBOOKS_BRANCH,
    colab_url: str = "https://colab.research.google.com",
    binderhub_url: str = "https://mybinder.org",
) -> dict[str, str]:
    """The Colab and Binder addresses of page ``pagename``'s notebook on ``branch`` of the repository."""
    owner, repo = github_parts(repository_url)
    path = f"{pagename}.ipynb"
    return {
        "Colab": f"{colab_url.rstrip('/')}/github/{owner}/{repo}/blob/{branch}/{path}",
        "Binder": f"{binderhub_url.rstrip('/')}/v2/gh/{owner}/{repo}/{quote(branch)}?urlpath=lab/tree/{path}",
    }


def pages_url(repository_url: str) -> str:
    """The GitHub Pages address of the repository: ``https://<owner>.github.io/<repo>/``."""
    owner, repo = github_parts(repository_url)
    return f"https://{owner.lower()}.github.io/{repo}/"


def _set_baseurl(app: Sphinx, config) -> None:
    url = config.html_theme_options.get("repository_url") if config.html_theme_options else None
    if url and not config.html_baseurl:
        config.html_baseurl = pages_url(url)


def _rewrite_buttons(buttons: list[dict[str, Any]], urls: dict[str, str]) -> int:
    found = 0
    for button in buttons:
        if button.get("type") == "group":
            found += _rewrite_buttons(button.get("buttons", []), urls)
        elif button.get("text") in urls:
            button["url"] = urls[button["text"]]
            found += 1
    return found


def _notebook_page(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Write the page's download notebook and point its Colab/Binder buttons at it (after the theme's buttons)."""
    if doctree is None or pagename not in app.env.found_docs:
        return
    source = Path(app.env.doc2path(pagename))
    if not is_notebook_source(source):
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(download_notebook(source), target)
    context["ipynb_source"] = f"{pagename}.ipynb"
    options = app.config.html_theme_options or {}
    launch = options.get("launch_buttons", {})
    if options.get("repository_url"):
        urls = launch_urls(
            options["repository_url"],
            pagename,
            branch=app.config.gumbel_notebooks_branch,
            colab_url=launch.get("colab_url") or "https://colab.research.google.com",
            binderhub_url=launch.get("binderhub_url") or "https://mybinder.org",
        )
        configured = {"Colab": launch.get("colab_url"), "Binder": launch.get("binderhub_url")}
        urls = {name: url for name, url in urls.items() if configured[name]}
        _rewrite_buttons(context.get("header_buttons", []), urls)


def setup(app: Sphinx) -> dict:
    app.add_config_value("gumbel_notebooks_branch", NOTEBOOKS_BRANCH, "html")
    app.connect("config-inited", _set_baseurl)
    app.connect("html-page-context", _notebook_page, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
