"""Shared by the browser tests: a local server for a built site, and Debian's Chromium under playwright with every
request outside that server blocked."""

from __future__ import annotations

import contextlib
import functools
import gzip
import http.server
import io
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


#: What GitHub Pages sends gzip-compressed when the browser accepts it: text, not fonts or images.
COMPRESSED_SUFFIXES = {".html", ".js", ".css", ".json", ".svg", ".txt", ".xml", ".map", ".ipynb"}


class _GzipHandler(_QuietHandler):
    """Serves text files gzip-compressed to a browser that accepts it, as GitHub Pages does, so that the bytes a
    test measures are the bytes a reader of the published book downloads."""

    _cache: dict[tuple[str, float], bytes] = {}

    def send_head(self):
        path = Path(self.translate_path(self.path))
        accepts = "gzip" in self.headers.get("Accept-Encoding", "")
        if not (accepts and path.is_file() and path.suffix in COMPRESSED_SUFFIXES):
            return super().send_head()
        key = (str(path), path.stat().st_mtime)
        if key not in self._cache:
            self._cache[key] = gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)
        body = self._cache[key]
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)


@contextlib.contextmanager
def serve(directory: Path, *, compress: bool = False) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port) for the length of the block; yields the base URL. With
    ``compress``, text files go out gzip-compressed, as GitHub Pages sends them."""
    handler = _GzipHandler if compress else _QuietHandler
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
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
