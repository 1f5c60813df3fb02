"""Shared by the browser tests: Debian's Chromium under playwright, with every request outside one server blocked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("GUMBEL_BOOK_CHROMIUM", "/usr/bin/chromium")


def require_chromium() -> str:
    """The Chromium executable, or a failure that says how to install it (playwright cannot download one here)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: the README's install command installs Debian's chromium package")
    return CHROMIUM


def offline_page(context, allowed: str):
    """A new page of ``context`` whose requests outside ``allowed`` are aborted and recorded.

    Returns ``(page, external, errors)``: the page, the blocked URLs, and its console errors and page errors.
    """
    external: list[str] = []
    errors: list[str] = []

    def route(r):
        if r.request.url.startswith(allowed):
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    return page, external, errors
