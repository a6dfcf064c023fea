"""Fetching against misbehaving servers on 127.0.0.1: every case ends in a classified value,
never an exception and never a hang past the deadline."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from pagewatch.fetch import FetchPolicy, fetch, make_client
from pagewatch.models import Capture, FailedCheck

Behaviour = Callable[[socket.socket, str], None]


def now() -> datetime:
    return datetime.now(UTC)


class RawServer:
    """A TCP server whose replies are written by hand, path by path."""

    def __init__(self, routes: dict[str, Behaviour]):
        self.routes = routes
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            data = read_head(conn)
            if data is None:
                return
            path = data.split(b" ")[1].decode()
            with contextlib.suppress(OSError):
                self.routes[path](conn, path)

    def close(self) -> None:
        self.stopping.set()
        self.sock.close()


def read_head(conn: socket.socket) -> bytes | None:
    """A request's head as far as its blank line, or None if the client closed first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return None
        data += chunk
    return data


def reply(status: str, body: bytes, *headers: str) -> Behaviour:
    def send(conn: socket.socket, _: str) -> None:
        head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close", *headers]
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)

    return send


def trickle(conn: socket.socket, _: str) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1500\r\n\r\n")
    for _ in range(200):
        conn.sendall(b"x")
        time.sleep(0.05)


def endless(conn: socket.socket, _: str) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n")
    while True:
        conn.sendall(b"<p>more</p>" * 1000)


def lying_length(conn: socket.socket, _: str) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1500\r\n\r\n<p>short</p>")


def reset(conn: socket.socket, _: str) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def garbage(conn: socket.socket, _: str) -> None:
    conn.sendall(b"HELLO THERE\r\n\r\n")


BOMB = gzip.compress(b"\0" * (8 * 1024 * 1024))
HTML = b"<html><body><p>Is it Uyghur</p></body></html>"

ROUTES: dict[str, Behaviour] = {
    "/ok": reply("200 OK", HTML, "Content-Type: text/html"),
    "/gz": reply("200 OK", gzip.compress(HTML), "Content-Encoding: gzip"),
    "/deflate": reply("200 OK", zlib.compress(HTML), "Content-Encoding: deflate"),
    "/raw-deflate": reply("200 OK", zlib.compress(HTML)[2:-4], "Content-Encoding: deflate"),
    "/bomb": reply("200 OK", BOMB, "Content-Encoding: gzip"),
    "/gz-members": reply(
        "200 OK", gzip.compress(HTML[:20]) + gzip.compress(HTML[20:]), "Content-Encoding: gzip"
    ),
    "/gz-truncated": reply("200 OK", gzip.compress(HTML)[:-12], "Content-Encoding: gzip"),
    "/deflate-bomb": reply("200 OK", zlib.compress(b"\0" * 2_000_000), "Content-Encoding: deflate"),
    "/corrupt-gzip": reply("200 OK", b"\x1f\x8b\x08garbage", "Content-Encoding: gzip"),
    "/br": reply("200 OK", b"??", "Content-Encoding: br"),
    "/404": reply("404 Not Found", b"gone"),
    "/410": reply("410 Gone", b"gone"),
    "/403": reply("403 Forbidden", b"no"),
    "/429": reply("429 Too Many Requests", b"slow down", "Retry-After: 120"),
    "/503": reply("503 Service Unavailable", b"down"),
    "/304": reply("304 Not Modified", b""),
    "/big": reply("200 OK", b"x" * 3000),
    "/trickle": trickle,
    "/endless": endless,
    "/lying-length": lying_length,
    "/reset": reset,
    "/garbage": garbage,
    "/loop-a": reply("302 Found", b"", "Location: /loop-b"),
    "/loop-b": reply("302 Found", b"", "Location: /loop-a"),
    "/to-ftp": reply("301 Moved", b"", "Location: ftp://127.0.0.1/x"),
    "/to-metadata": reply("301 Moved", b"", "Location: http://169.254.169.254/latest/meta-data/"),
    "/to-metadata-v6": reply("301 Moved", b"", "Location: http://[fd00:ec2::254]/latest/"),
    "/moved": reply("301 Moved", b"", "Location: /ok"),
    **{f"/chain{i}": reply("302 Found", b"", f"Location: /chain{i + 1}") for i in range(20)},
}

POLICY = FetchPolicy(
    connect_timeout=2, read_timeout=2, deadline=1.5, max_body=2000, max_decoded=1024 * 1024,
    max_redirects=5,
)  # fmt: skip


@pytest.fixture(scope="module")
def raw() -> Iterator[RawServer]:
    server = RawServer(ROUTES)
    yield server
    server.close()


def get(raw: RawServer, path: str, policy: FetchPolicy = POLICY) -> Capture | FailedCheck:
    async def go() -> Capture | FailedCheck:
        async with make_client(policy) as client:
            return await fetch(client, raw.url(path), now, policy)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/trickle", "timeout"),
        ("/endless", "too_large"),
        ("/big", "too_large"),
        ("/bomb", "too_large"),
        ("/corrupt-gzip", "bad_encoding"),
        ("/gz-truncated", "bad_encoding"),
        ("/deflate-bomb", "too_large"),
        ("/br", "bad_encoding"),
        ("/lying-length", "network"),
        ("/reset", "network"),
        ("/garbage", "network"),
        ("/403", "http_403"),
        ("/429", "http_429"),
        ("/503", "http_503"),
        ("/304", "http_304"),
        ("/loop-a", "redirect_loop"),
        ("/chain0", "too_many_redirects"),
        ("/to-ftp", "bad_redirect"),
        ("/to-metadata", "refused_address"),
        ("/to-metadata-v6", "refused_address"),
    ],
    ids=lambda v: v.strip("/"),
)
def test_failures_are_classified_values(raw: RawServer, path: str, reason: str) -> None:
    started = time.monotonic()
    result = get(raw, path)
    assert isinstance(result, FailedCheck), result
    assert result.reason == reason, result.message
    assert result.message and "\n" not in result.message
    assert time.monotonic() - started < POLICY.deadline + 1.0  # the total deadline holds


def test_retry_after_is_kept_in_the_message(raw: RawServer) -> None:
    result = get(raw, "/429")
    assert isinstance(result, FailedCheck)
    assert result.message == "HTTP 429 Too Many Requests (Retry-After: 120)"


@pytest.mark.parametrize(
    "path", ["/gz", "/gz-members", "/deflate", "/raw-deflate"], ids=lambda p: p[1:]
)
def test_encoded_bodies_are_kept_raw_and_decoded_for_reading(raw: RawServer, path: str) -> None:
    result = get(raw, path)
    assert isinstance(result, Capture), result
    assert result.body != HTML  # evidence keeps the bytes as received
    assert result.content == HTML


@pytest.mark.parametrize(("path", "status"), [("/404", 404), ("/410", 410)], ids=["404", "410"])
def test_gone_pages_are_captures(raw: RawServer, path: str, status: int) -> None:
    result = get(raw, path)
    assert isinstance(result, Capture)
    assert (result.status, result.body) == (status, b"gone")


def test_redirect_chain_is_recorded(raw: RawServer) -> None:
    result = get(raw, "/moved")
    assert isinstance(result, Capture)
    assert result.final_url == raw.url("/ok")
    assert [(r.url, r.status, r.location) for r in result.redirects] == [
        (raw.url("/moved"), 301, raw.url("/ok"))
    ]


def test_capture_keeps_headers_hash_and_utc_time(raw: RawServer) -> None:
    result = get(raw, "/ok")
    assert isinstance(result, Capture)
    assert result.header("content-type") == "text/html"
    assert ("Content-Length", str(len(HTML))) in result.headers
    import hashlib

    assert result.sha256 == hashlib.sha256(HTML).hexdigest()
    assert result.captured_at.tzinfo is not None


def test_refused_connection_is_a_failed_check() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def go() -> Capture | FailedCheck:
        async with make_client(POLICY) as client:
            return await fetch(client, f"http://127.0.0.1:{port}/", now, POLICY)

    result = asyncio.run(go())
    assert isinstance(result, FailedCheck) and result.reason == "connect"


# -- keep-alive: connections reused, and a connection the server dropped while idle -------------


class KeepAliveServer:
    """Answers many requests per connection (``Content-Length``, no ``Connection: close``).

    ``drop``: what a connection does on its second request: ``"idle"`` closes it as soon as the
    first answer is sent (a server's idle timeout), ``"on-request"`` reads the next request and
    closes without a word (the timeout fired as the request arrived), ``"half"`` sends half an
    answer and closes. Counts the connections accepted and the requests answered in full.
    """

    def __init__(self, drop: str = ""):
        self.drop = drop
        self.connections = 0
        self.answered = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(HTML), HTML)
        with conn, contextlib.suppress(OSError):
            for number in range(1000):
                if read_head(conn) is None:
                    return
                if number == 1 and self.drop == "on-request":
                    return
                if number == 1 and self.drop == "half":
                    conn.sendall(answer[: len(answer) // 2])
                    return
                conn.sendall(answer)
                self.answered += 1
                if self.drop == "idle":
                    return

    def close(self) -> None:
        self.sock.close()


def fetch_all(urls: list[str], pause: float = 0.0) -> list[Capture | FailedCheck]:
    """Fetch one after another with one client, as a pass does."""

    async def go() -> list[Capture | FailedCheck]:
        async with make_client(POLICY) as client:
            found = []
            for url in urls:
                found.append(await fetch(client, url, now, POLICY))
                await asyncio.sleep(pause)
            return found

    return asyncio.run(go())


def test_one_connection_serves_a_pass() -> None:
    server = KeepAliveServer()
    results = fetch_all([server.url(f"/p{i}") for i in range(5)])
    server.close()
    assert all(isinstance(r, Capture) and r.body == HTML for r in results)
    assert (server.connections, server.answered) == (1, 5)


@pytest.mark.parametrize(("drop", "pause"), [("idle", 0.2), ("idle", 0.0), ("on-request", 0.0)])
def test_a_connection_dropped_while_idle_is_replaced(drop: str, pause: float) -> None:
    """Whether the close is seen before sending (pause) or only after (none, or a request the
    server read and dropped), the next fetch gets its page on a new connection."""
    server = KeepAliveServer(drop)
    results = fetch_all([server.url(f"/p{i}") for i in range(3)], pause)
    server.close()
    assert all(isinstance(r, Capture) and r.body == HTML for r in results), results
    assert server.answered == 3


def test_an_answer_cut_short_on_a_reused_connection_is_not_retried() -> None:
    """Half an answer is an answer: the server acted on the request, so it fails, classified."""
    server = KeepAliveServer("half")
    results = fetch_all([server.url("/a"), server.url("/b")])
    server.close()
    assert isinstance(results[0], Capture)
    assert isinstance(results[1], FailedCheck) and results[1].reason == "network"
    assert server.connections == 1
