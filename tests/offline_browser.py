"""Shared by the browser tests: a local server for a built site, and Debian's Chromium under playwright with every
request outside that server blocked."""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("GUMBEL_BOOK_CHROMIUM", "/usr/bin/chromium")
#: Headless in a container, and nothing that phones home on its own (the tests record every outside request).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port) for the length of the block; yields the base URL."""
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory))
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextlib.contextmanager
def chromium() -> Iterator:
    """Debian's Chromium, headless under playwright, for the length of the block; yields the browser."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


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
