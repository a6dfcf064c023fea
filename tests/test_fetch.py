"""Fetching against misbehaving servers on 127.0.0.1: every case ends in a classified value,
never an exception and never a hang past the deadline."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import select
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from pagewatch import client as client_module
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

#: the metadata address inside IPv6 addresses
EMBEDDED_METADATA = [
    ("v4-compatible", "::169.254.169.254"), ("6to4", "2002:a9fe:a9fe::1"),
    ("nat64", "64:ff9b::a9fe:a9fe"), ("mapped", "::ffff:169.254.169.254"),
]  # fmt: skip

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
    "/moved-utf8": reply("301 Moved", b"", "Location: /t/\u7ef4\u543e\u5c14"),  # raw UTF-8
    "/t/%E7%BB%B4%E5%90%BE%E5%B0%94": reply("200 OK", HTML, "Content-Type: text/html"),
    "/206": reply("206 Partial Content", HTML[:20], "Content-Range: bytes 0-19/46"),
    "/202": reply("202 Accepted", b"Your request is being processed."),
    "/226": reply("226 IM Used", b"a delta"),
    **{
        f"/to-{name}": reply("301 Moved", b"", f"Location: http://[{address}]/latest/")
        for name, address in EMBEDDED_METADATA
    },
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
        ("/to-v4-compatible", "refused_address"),
        ("/to-6to4", "refused_address"),
        ("/to-nat64", "refused_address"),
        ("/to-mapped", "refused_address"),
        ("/206", "http_206"),
        ("/202", "http_202"),
        ("/226", "http_226"),
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


def test_a_location_in_raw_utf8_is_read_as_a_browser_reads_it(raw: RawServer) -> None:
    """Not byte by byte as Latin-1: that asks for a path that does not exist, and its 404 would
    read as the page removed."""
    result = get(raw, "/moved-utf8")
    assert isinstance(result, Capture), result
    assert (result.status, result.final_url) == (200, raw.url("/t/%E7%BB%B4%E5%90%BE%E5%B0%94"))


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


#: how long a KeepAliveServer's connection is idle before it sends a stray answer or a 408: long
#: enough that the client has read the answer before on a loaded machine (else those bytes come
#: with it, and the answer is refused as longer than its Content-Length: safe, but not the case)
IDLE_S = 0.3


class KeepAliveServer:
    """Answers many requests per connection (``Content-Length``, no ``Connection: close``).

    ``drop``: what a connection does on its second request: ``"idle"`` closes it as soon as the
    first answer is sent (a server's idle timeout), ``"on-request"`` reads the next request and
    closes without a word (the timeout fired as the request arrived), ``"half"`` sends half an
    answer and closes; ``"stray"`` sends a 404 nobody asked for a moment after its first answer,
    ``"408"`` answers an idle connection with 408 and closes it. Counts the connections
    accepted, the requests answered in full and the connections the client closed, and keeps
    each request's head.
    """

    def __init__(self, drop: str = "", answer: bytes = b"", pause_at: int = 0):
        self.drop = drop
        self.pause_at = pause_at  # send the answer in two parts, split here, with a pause
        self.answer = answer or b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (
            len(HTML),
            HTML,
        )
        self.connections = 0
        self.answered = 0
        self.closed_by_client = 0
        self.heads: list[bytes] = []
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
        answer = self.answer
        with conn, contextlib.suppress(OSError):
            for number in range(1000):
                if number and self.drop == "408" and not _readable(conn, IDLE_S):
                    conn.sendall(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
                    return
                head = read_head(conn)
                if head is None:
                    self.closed_by_client += 1
                    return
                self.heads.append(head)
                if number == 1 and self.drop == "on-request":
                    return
                if number == 1 and self.drop == "half":
                    conn.sendall(answer[: len(answer) // 2])
                    return
                self.answered += 1  # before sending: the client may check it as soon as it has it
                if self.pause_at:
                    conn.sendall(answer[: self.pause_at])
                    time.sleep(0.05)
                conn.sendall(answer[self.pause_at :])
                if self.drop == "idle":
                    return
                if number == 0 and self.drop == "stray":
                    time.sleep(IDLE_S)
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")

    def close(self) -> None:
        self.sock.close()


def _readable(conn: socket.socket, wait: float) -> bool:
    """Does the client send anything (or close) within ``wait`` seconds?"""
    ready, _, _ = select.select([conn], [], [], wait)
    return bool(ready)


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


@pytest.mark.parametrize("drop", ["stray", "408"])
def test_bytes_on_an_idle_connection_are_no_answer(drop: str) -> None:
    """A 404 sent after an answer, or a 408 on an idle connection, would be read as the next
    page's answer if the connection were used again: it is not."""
    server = KeepAliveServer(drop)
    results = fetch_all([server.url(p) for p in ("/a", "/b", "/c")], pause=2 * IDLE_S)
    server.close()
    assert [r.body if isinstance(r, Capture) else r for r in results] == [HTML] * 3


def test_an_idle_connection_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    """Left idle longer than the keep-alive expiry, a connection is not trusted again (a NAT
    may have dropped it silently)."""
    monkeypatch.setattr(client_module, "KEEPALIVE_EXPIRY_S", 0.1)
    server = KeepAliveServer()
    results = fetch_all([server.url("/a"), server.url("/b"), server.url("/c")], pause=0.3)
    server.close()
    assert all(isinstance(r, Capture) for r in results)
    assert (server.connections, server.answered) == (3, 3)


def test_idle_connections_are_capped_over_all_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass over many hosts keeps few connections open, not one per host."""
    monkeypatch.setattr(client_module, "MAX_IDLE_TOTAL", 2)
    servers = [KeepAliveServer() for _ in range(5)]

    async def go() -> int:
        async with make_client(POLICY) as client:
            for server in servers:
                assert isinstance(await fetch(client, server.url("/"), now, POLICY), Capture)
            for _ in range(100):  # the sockets close as the loop runs
                if sum(s.closed_by_client for s in servers) >= 3:
                    break
                await asyncio.sleep(0.05)
            return sum(s.closed_by_client for s in servers)

    assert asyncio.run(go()) == 3
    for server in servers:
        server.close()


def test_a_header_block_up_to_100_kib_is_read() -> None:
    """httpcore's limit, which checks had before: a 20 KiB Set-Cookie is a page, not an error.
    (Over it, the block fails: see test_hostile's huge-header.)"""
    cookie = b"Set-Cookie: " + b"a" * 20_000 + b"\r\n"
    answer = b"HTTP/1.1 200 OK\r\n" + cookie + b"Content-Length: %d\r\n\r\n%s" % (len(HTML), HTML)
    server = KeepAliveServer(answer=answer, pause_at=18_000)  # a head in two reads
    (result,) = fetch_all([server.url("/")])
    server.close()
    assert isinstance(result, Capture) and result.body == HTML


def test_user_and_password_in_the_url_are_sent_as_basic_authentication() -> None:
    server = KeepAliveServer()
    (result,) = fetch_all([f"http://analyst:s%40cret@127.0.0.1:{server.port}/"])
    server.close()
    assert isinstance(result, Capture)
    assert b"\r\nAuthorization: Basic " + base64.b64encode(b"analyst:s@cret") in server.heads[0]


@pytest.mark.parametrize("etag", ['W/"a\x0cb"', "a\x00b", '"x" ', "caf\u00e9"])
def test_a_validator_that_cannot_be_sent_is_a_failed_check_not_an_exception(etag: str) -> None:
    server = KeepAliveServer()

    async def go() -> Capture | FailedCheck:
        async with make_client(POLICY) as client:
            return await fetch(client, server.url("/"), now, POLICY, {"If-None-Match": etag})

    result = asyncio.run(go())
    server.close()
    assert isinstance(result, FailedCheck) and result.reason == "network", result
