"""A tiny HTTP server on 127.0.0.1 that serves whatever pages it is told to, for replaying a
page history: `pagewatch demo` uses it, and so do the tests. Not for the open internet."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self


@dataclass(frozen=True)
class Page:
    """One response: status, body and headers (Content-Length is added)."""

    body: bytes = b""
    status: int = 200
    headers: Mapping[str, str] = field(
        default_factory=lambda: {"Content-Type": "text/html; charset=utf-8"}
    )
    delay: float = 0.0  # seconds to wait before answering
    etag: str = ""  # when set: sent as ETag, and a matching If-None-Match gets 304

    @classmethod
    def html(cls, text: str, status: int = 200, charset: str = "utf-8") -> Page:
        return cls(text.encode(charset), status, {"Content-Type": f"text/html; charset={charset}"})

    @classmethod
    def redirect(cls, location: str, status: int = 301) -> Page:
        return cls(b"", status, {"Location": location})


NOT_FOUND = Page(b"<html><body><h1>Not Found</h1></body></html>", 404)


class LocalServer:
    """An HTTP server on 127.0.0.1 in a thread of its own: start, stop, or use as a context."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], poll_interval: float = 0.5):
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ReplayServer(LocalServer):
    """Serves ``pages`` (path -> Page, path including any query) until stopped."""

    def __init__(self, pages: Mapping[str, Page] | None = None):
        self.pages: dict[str, Page] = dict(pages or {})
        self.requests: list[str] = []
        self._queues: dict[str, list[Page]] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with server._lock:
                    queued = server._queues.get(self.path)
                    page = queued.pop(0) if queued else server.pages.get(self.path, NOT_FOUND)
                    server.requests.append(self.path)
                if page.delay:
                    time.sleep(page.delay)
                if page.etag and self.headers.get("If-None-Match") == page.etag:
                    self.send_response(304)
                    self.send_header("ETag", page.etag)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(page.status)
                if page.etag:
                    self.send_header("ETag", page.etag)
                for name, value in page.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(page.body)))
                self.end_headers()
                self.wfile.write(page.body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(Handler)

    def url(self, path: str) -> str:
        return self.base_url + path

    def set(self, path: str, page: Page) -> None:
        with self._lock:
            self.pages[path] = page

    def queue(self, path: str, *pages: Page) -> None:
        """Serve these pages at ``path`` one request each, then the last one for good."""
        with self._lock:
            self._queues[path] = list(pages[:-1])
            self.pages[path] = pages[-1]

    def replace(self, pages: Mapping[str, Page]) -> None:
        with self._lock:
            self.pages = dict(pages)
