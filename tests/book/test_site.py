"""The built book's way out to a running notebook: every notebook page links its ``.ipynb`` download, which
exists in the site and starts with the pinned install cell, and its Colab and Binder buttons carry the
addresses derived from ``repository.url``. They are plain links (the offline browser test sees no request)."""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

import pytest
import yaml
from test_package import notebook_pages, package_version, toc_pages

from gumbel_book.sphinxext.markers import strip_markers
from gumbel_book.sphinxext.notebooks import INSTALL_TAG, NOTEBOOKS_BRANCH, install_cell_source, launch_urls, pages_url

ROOT = Path(__file__).resolve().parents[2]
HTML_DIR = Path(os.environ.get("GUMBEL_BOOK_HTML_DIR", ROOT / "_build" / "html"))
NOT_BUILT = f"no built book at {HTML_DIR}: run the README's install-and-build command"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def _anchors(page: str) -> dict[str, str]:
    """href -> the opening <a ...> tag, for every link of the built page."""
    path = HTML_DIR / f"{page}.html"
    assert path.exists(), f"{path} missing; {NOT_BUILT}"
    text = path.read_text()
    return {html.unescape(m.group(1)): m.group(0) for m in re.finditer(r'<a\s[^>]*href="([^"]+)"[^>]*>', text)}


def test_every_chapter_of_the_toc_is_a_notebook_page():
    """New chapters need no list here: pages come from _toc.yml; only the back matter is not a notebook."""
    assert set(toc_pages()) - set(notebook_pages()) == {"book/references"}


def test_launch_buttons_are_configured_from_one_repository_url():
    url = CONFIG["repository"]["url"]
    assert url.startswith("https://github.com/")
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert CONFIG["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert "gumbel_book.sphinxext.notebooks" in CONFIG["sphinx"]["extra_extensions"]
    assert pages_url(url).endswith(".github.io/" + url.rstrip("/").rsplit("/", 1)[1] + "/")


@pytest.mark.parametrize("page", notebook_pages())
def test_page_links_its_notebook_download(page):
    anchors = _anchors(page)
    href = next((h for h in anchors if h.endswith(f"_sources/{page}.ipynb")), None)
    assert href, f"{page}.html has no .ipynb download link"
    target = ((HTML_DIR / page).parent / href).resolve()
    assert target.is_file(), f"{page}: the download link points at {target}, which is not in the site"
    nb = json.loads(target.read_text())
    first = nb["cells"][0]
    assert first["metadata"]["tags"] == [INSTALL_TAG]
    assert "".join(first["source"]) == install_cell_source(package_version())
    assert nb["metadata"]["gumbel_book"]["version"] == package_version()
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert not [c for c in nb["cells"] if c.get("outputs")], "a downloaded notebook should carry no outputs"


@pytest.mark.parametrize("page", notebook_pages())
def test_page_launch_buttons_carry_the_configured_urls(page):
    anchors = _anchors(page)
    branch = CONFIG["sphinx"]["config"].get("gumbel_notebooks_branch", NOTEBOOKS_BRANCH)
    expected = launch_urls(CONFIG["repository"]["url"], page, branch=branch)
    for name, url in expected.items():
        assert url in anchors, f"{page}.html: no {name} button to {url}"
        tag = anchors[url]
        assert "onclick" not in tag and 'target="_blank"' in tag, f"{page}: the {name} button is not a plain link"
    canonical = re.search(r'<link rel="canonical" href="([^"]+)"', (HTML_DIR / f"{page}.html").read_text())
    assert canonical and canonical.group(1) == pages_url(CONFIG["repository"]["url"]) + f"{page}.html"


@pytest.mark.parametrize("page", notebook_pages())
def test_download_notebook_is_the_chapter_headed_by_the_install_cell(page):
    """Without a build: the generated notebook is the install cell, then the chapter as a student's notebook
    (tests/book/test_downloads.py says what that drops and converts)."""
    import jupytext

    from gumbel_book.sphinxext.jupyter_markdown import References
    from gumbel_book.sphinxext.notebooks import download_notebook, student_cells

    source = jupytext.read(ROOT / f"{page}.md")
    nb = download_notebook(ROOT / f"{page}.md", "9.8.7")
    assert nb.cells[0].source == install_cell_source("9.8.7") and "gumbel-book==9.8.7" in nb.cells[0].source
    expected = student_cells(source.cells, References(docname=page))
    assert [c.source for c in nb.cells[1:]] == [c.source for c in expected]
    kept = [c.source for c in source.cells if c.cell_type == "code" and "claim" not in c.metadata.get("tags", [])]
    assert [c.source for c in nb.cells[1:] if c.cell_type == "code"][:3] == kept[:3], "the chapter's opening cells"
    assert "jupytext" not in nb.metadata, "a downloaded notebook must not be paired with a .md the reader lacks"
    assert [c.id for c in nb.cells] == [f"cell-{i}" for i in range(len(nb.cells))]


def test_bad_sources_and_urls_are_errors_naming_them(tmp_path):
    from gumbel_book.sphinxext.notebooks import download_notebook, github_parts, is_notebook_source

    assert not is_notebook_source(ROOT / "book" / "references.md")
    with pytest.raises(ValueError, match="references.md.*not a MyST notebook"):
        download_notebook(ROOT / "book" / "references.md")
    with pytest.raises(FileNotFoundError, match="nowhere.md"):
        download_notebook(tmp_path / "nowhere.md")
    with pytest.raises(ValueError, match="repository.url='https://gitlab.com/a/b'"):
        github_parts("https://gitlab.com/a/b")
    assert github_parts("https://github.com/owner/repo.git/") == ("owner", "repo")
    urls = launch_urls("https://github.com/Owner/repo", "book/x", branch="nb")
    assert urls == {
        "Colab": "https://colab.research.google.com/github/Owner/repo/blob/nb/book/x.ipynb",
        "Binder": "https://mybinder.org/v2/gh/Owner/repo/nb?urlpath=lab/tree/book/x.ipynb",
    }
    assert pages_url("https://github.com/Owner/repo") == "https://owner.github.io/repo/"


@pytest.mark.parametrize("page", [p for p in notebook_pages() if p != "book/instructor"])
def test_code_cells_do_not_show_the_course_markers(page):
    """Solutions keep their ``# BEGIN SOLUTION`` comments for the course build; the book's pages hide them."""
    path = HTML_DIR / f"{page}.html"
    assert path.exists(), f"{path} missing; {NOT_BUILT}"
    text = html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text


def test_strip_markers_removes_only_the_marker_lines():
    source = "def f(x):\n    # BEGIN SOLUTION\n    return x  # the answer\n    # END SOLUTION\n"
    assert strip_markers(source) == "def f(x):\n    return x  # the answer\n"
    inline = "x = 1  # BEGIN SOLUTION, after code, is not a marker\n"
    assert strip_markers(inline) == inline


def test_drop_fontawesome_js_removes_only_that_tag(tmp_path):
    from gumbel_book.sphinxext.offline import drop_fontawesome_js

    page = tmp_path / "book" / "x.html"
    page.parent.mkdir()
    keep = '<script defer src="../_static/scripts/bootstrap.js?digest=1"></script>\n'
    page.write_text('  <script defer src="../_static/scripts/fontawesome.js?digest=55c2"></script>\n' + keep)
    assert drop_fontawesome_js(tmp_path) == 1 and page.read_text() == keep
    assert drop_fontawesome_js(tmp_path) == 0, "a second pass finds nothing"


@pytest.mark.parametrize("page", toc_pages())
def test_pages_load_plotly_only_with_a_figure_and_no_fontawesome_js(page):
    """The theme's fontawesome.js (1.5 MB, custom icons) is gone; plotly.js (4.8 MB) only where a figure is."""
    path = HTML_DIR / f"{page}.html"
    assert path.exists(), f"{path} missing; {NOT_BUILT}"
    text = path.read_text()
    assert "fontawesome.js" not in text
    scripts = re.findall(r'<script[^>]*src="[^"]*plotly[^"]*"', text)
    assert len(scripts) == (1 if 'class="plotly-graph-div"' in text else 0), f"{page}: plotly scripts {scripts}"
    assert "_static/gumbel-book.js" in text and "_static/gumbel-book.css" in text
