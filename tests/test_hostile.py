"""A hostile web, end to end: each misbehaving server runs against `pagewatch check` through the
CLI, on a watch that first had a good capture with the phrases, so that reading the misbehaviour
as a page would raise a false removal (the second fetch that confirms one sees the same server).

Every case must end in a recorded, classified check (its reason visible in `history --json`),
never an alert, never a hang past the deadline, and the other watches of the pass captured fine.
"""

from __future__ import annotations

import asyncio
import codecs
import gzip
import hashlib
import json
import random
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import brotli
import pytest
import zstandard
from click.testing import CliRunner
from test_fetch import Behaviour, RawServer, reply

from pagewatch import alerts as alerts_api
from pagewatch.cli import cli
from pagewatch.models import HEALTH_KINDS, REMOVAL_KINDS
from pagewatch.store import Store
from pagewatch.workspace import check_pass, init, select_watches

DEADLINE = 2.0
STOP = threading.Event()  # ends the servers that would otherwise stall or trickle forever

GOOD = (
    "<html><head><title>Face attributes</title></head><body><main>"
    "<p>Is it Uyghur: a boolean attribute of a detected face.</p>"
    "<p>新疆维吾尔自治区: region attribute.</p></main></body></html>"
)
PHRASES = 'uyghur = ["Uyghur", "维吾尔"]'
HTML = "Content-Type: text/html; charset=utf-8"


# -- misbehaviours ------------------------------------------------------------------------------


def bomb(compress: Callable[[bytes], bytes], size: int = 60 * 1024 * 1024) -> bytes:
    """``size`` zero bytes compressed (well past the 50 MiB decoded cap), built a MiB at a time."""
    chunk = b"\0" * (1024 * 1024)
    if compress is gzip.compress:
        packer = zlib.compressobj(1, zlib.DEFLATED, 31)
        return b"".join(packer.compress(chunk) for _ in range(size // len(chunk))) + packer.flush()
    return compress(chunk * (size // len(chunk)))


def trickle(conn: socket.socket, _: str) -> None:
    """One byte every half second, forever (headers never end)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n")
    while not STOP.wait(0.5):
        conn.sendall(b"X")


def trickle_body(conn: socket.socket, _: str) -> None:
    """Headers at once, then the body one byte every half second, forever."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n")
    while not STOP.wait(0.5):
        conn.sendall(b"<")


def stall(conn: socket.socket, _: str) -> None:
    """Accept, read the request, never answer."""
    STOP.wait(60)


def stall_after_headers(conn: socket.socket, _: str) -> None:
    conn.sendall(f"HTTP/1.1 200 OK\r\n{HTML}\r\nContent-Length: 5000\r\n\r\n".encode())
    STOP.wait(60)


def endless(conn: socket.socket, _: str) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n")
    while not STOP.is_set():
        conn.sendall(b"<p>more and more</p>" * 4096)


def length_lies_longer(conn: socket.socket, _: str) -> None:
    conn.sendall(f"HTTP/1.1 200 OK\r\n{HTML}\r\nContent-Length: 5000\r\n\r\n".encode())
    conn.sendall(GOOD.encode()[:100])  # then the connection closes


def length_lies_longer_stalls(conn: socket.socket, _: str) -> None:
    conn.sendall(f"HTTP/1.1 200 OK\r\n{HTML}\r\nContent-Length: 5000\r\n\r\n".encode())
    conn.sendall(GOOD.encode()[:100])
    STOP.wait(60)


def length_lies_shorter(conn: socket.socket, _: str) -> None:
    """Content-Length covers the first 120 bytes: the phrase lies beyond it."""
    conn.sendall(f"HTTP/1.1 200 OK\r\n{HTML}\r\nContent-Length: 120\r\n\r\n".encode())
    conn.sendall(GOOD.encode())


def length_lies_shorter_rest_late(conn: socket.socket, _: str) -> None:
    """As above, but the rest of the page comes a fifth of a second after the part the length
    covers: only a fetch that waits after the body sees it (the one that confirms a change)."""
    conn.sendall(f"HTTP/1.1 200 OK\r\n{HTML}\r\nContent-Length: 120\r\n\r\n".encode())
    conn.sendall(GOOD.encode()[:120])
    time.sleep(0.2)
    conn.sendall(GOOD.encode()[120:])


def chunk_then_garbage(conn: socket.socket, _: str) -> None:
    body = GOOD.encode()[:120]
    conn.sendall(
        f"HTTP/1.1 200 OK\r\n{HTML}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n" + GOOD.encode()[120:]
    )  # fmt: skip


def bad_chunk(conn: socket.socket, _: str) -> None:
    conn.sendall(f"HTTP/1.1 200 OK\r\n{HTML}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".encode())


def reset(conn: socket.socket, _: str) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


def reset_mid_body(conn: socket.socket, _: str) -> None:
    conn.sendall(f"HTTP/1.1 200 OK\r\n{HTML}\r\nContent-Length: 50000\r\n\r\n".encode())
    conn.sendall(GOOD.encode()[:80])
    time.sleep(0.05)
    reset(conn, _)


def close_silently(conn: socket.socket, _: str) -> None:
    pass


def raw(data: bytes) -> Behaviour:
    def send(conn: socket.socket, _: str) -> None:
        conn.sendall(data)

    return send


def page(body: bytes | str, *headers: str, status: str = "200 OK") -> Behaviour:
    data = body.encode() if isinstance(body, str) else body
    return reply(status, data, *headers)


def nested(depth: int) -> str:
    return GOOD.replace("<main>", "<main>" + "<div>" * depth).replace(
        "</main>", "</div>" * depth + "</main>"
    )


GBK = GOOD.encode("gb18030")
NOISE = random.Random(4).randbytes(20_000)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + NOISE
BIG_SCRIPT = GOOD.replace("<main>", "<main><script>" + "x" * 20_000_000 + "</script>")
BIG_TEXT = GOOD.replace("<main>", "<main><p>" + "lorem ipsum " * 880_000 + "</p>")
ZSTD = zstandard.ZstdCompressor()


@dataclass(frozen=True)
class Case:
    id: str
    behaviour: Behaviour
    outcome: str  # failed | unusable | capture (then: counted as the good page was)
    reason: str = ""
    says: str = ""  # a piece of the one-line message history shows
    body: bytes | None = None  # the raw body the capture must keep, byte for byte


CASES = [
    # decompression bombs: the decoded size is capped (50 MiB), whichever coding or chain
    Case("gzip-bomb", page(bomb(gzip.compress), HTML, "Content-Encoding: gzip"),
         "failed", "too_large", "cap"),
    Case("deflate-bomb", page(bomb(zlib.compress), HTML, "Content-Encoding: deflate"),
         "failed", "too_large", "cap"),
    Case("brotli-bomb", page(bomb(lambda b: brotli.compress(b, quality=1)), HTML,
         "Content-Encoding: br"),
         "failed", "too_large", "cap"),
    Case("zstd-bomb", page(bomb(ZSTD.compress), HTML, "Content-Encoding: zstd"),
         "failed", "too_large", "cap"),
    Case("gzip-then-br-bomb", page(brotli.compress(bomb(gzip.compress), quality=1), HTML,
         "Content-Encoding: gzip, br"), "failed", "too_large", "cap"),
    Case("zstd-then-gzip-bomb", page(gzip.compress(bomb(ZSTD.compress)), HTML,
         "Content-Encoding: zstd", "Content-Encoding: gzip"), "failed", "too_large", "cap"),
    Case("brotli-truncated", page(brotli.compress(GOOD.encode() * 20)[:-4], HTML,
         "Content-Encoding: br"), "failed", "bad_encoding", "truncated"),
    Case("zstd-truncated", page(ZSTD.compress(GOOD.encode() * 20)[:-4], HTML,
         "Content-Encoding: zstd"), "failed", "bad_encoding", "truncated"),
    Case("gzip-corrupt", page(b"\x1f\x8b\x08\x00garbage-not-deflate", HTML,
         "Content-Encoding: gzip"), "failed", "bad_encoding", "corrupt"),
    Case("unknown-encoding", page(GOOD, HTML, "Content-Encoding: compress"),
         "failed", "bad_encoding", "unsupported"),
    Case("brotli-page", page(brotli.compress(GOOD.encode()), HTML, "Content-Encoding: br"),
         "capture", body=brotli.compress(GOOD.encode())),
    Case("zstd-two-frames", page(ZSTD.compress(GOOD.encode()[:90]) +
         ZSTD.compress(GOOD.encode()[90:]), HTML, "Content-Encoding: zstd"), "capture"),
    Case("gzip-then-br-page", page(brotli.compress(gzip.compress(GOOD.encode())), HTML,
         "Content-Encoding: gzip, br"), "capture"),
    # the deadline and the caps end what never ends
    Case("trickle-headers", trickle, "failed", "timeout"),
    Case("trickle-body", trickle_body, "failed", "timeout"),
    Case("stall-before-answer", stall, "failed", "timeout"),
    Case("stall-after-headers", stall_after_headers, "failed", "timeout"),
    Case("endless-body", endless, "failed", "too_large", "cap"),
    Case("body-over-cap", raw(b"HTTP/1.1 200 OK\r\nContent-Length: 30000000\r\n\r\n<p>"),
         "failed", "too_large", "30,000,000"),
    Case("content-length-longer-then-close", length_lies_longer, "failed", "network"),
    Case("content-length-longer-then-stall", length_lies_longer_stalls, "failed", "timeout"),
    Case("content-length-shorter", length_lies_shorter, "failed", "bad_length", "cut short"),
    Case("content-length-shorter-rest-late", length_lies_shorter_rest_late, "failed",
         "bad_length", "cut short"),
    Case("data-after-last-chunk", chunk_then_garbage, "failed", "bad_length", "last chunk"),
    Case("bad-chunk-size", bad_chunk, "failed", "network"),
    Case("reset-before-answer", reset, "failed", "network"),
    Case("reset-mid-body", reset_mid_body, "failed", "network"),
    Case("closed-without-answer", close_silently, "failed", "network", "closed the connection"),
    Case("space-before-colon", raw(b"HTTP/1.1 200 OK\r\nContent-Length : 10\r\n\r\n0123456789"),
         "failed", "network", "illegal header line: b'Content-Length : 10'"),
    Case("switching-protocols", raw(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket"
         b"\r\nConnection: Upgrade\r\n\r\n"), "failed", "network", "switched protocols"),
    Case("garbage-status-line", raw(b"HELLO THERE\r\n\r\n"), "failed", "network"),
    Case("binary-status-line", raw(b"\x00\xff\xfe\x01" * 64 + b"\r\n\r\n"), "failed", "network"),
    Case("odd-status-code", page(GOOD, HTML, status="999 Whatever"), "failed", "http_999"),
    # 2xx answers that are not the page
    Case("206-unasked", page(GOOD[:100], HTML, "Content-Range: bytes 0-99/400",
         status="206 Partial Content"), "failed", "http_206", "not the page itself"),
    Case("202-not-ready", page("<p>Your request is being processed.</p>", HTML,
         status="202 Accepted"), "failed", "http_202"),
    Case("226-delta", page("<p>a delta</p>", HTML, status="226 IM Used"), "failed", "http_226"),
    Case("huge-header", raw(b"HTTP/1.1 200 OK\r\nX-Junk: " + b"a" * 300_000 + b"\r\n\r\n"),
         "failed", "network"),
    Case("many-headers", raw(b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 40_000 + b"\r\n"),
         "failed", "network"),
    # redirects: loops and chains end; non-HTTP schemes and metadata addresses are refused
    Case("redirect-loop", page(b"", "Location: /loop/b", status="302 Found"),
         "failed", "redirect_loop"),
    Case("redirect-chain-too-long", page(b"", "Location: /chain/1", status="302 Found"),
         "failed", "too_many_redirects"),
    Case("redirect-location-raw-utf8", page(b"", "Location: /\u7ef4\u543e\u5c14/docs",
         status="301 Moved"), "capture"),  # asks for /%E7%BB%B4..., as a browser does
    Case("redirect-to-ftp", page(b"", "Location: ftp://127.0.0.1/x", status="301 Moved"),
         "failed", "bad_redirect"),
    Case("redirect-to-file", page(b"", "Location: file:///etc/passwd", status="301 Moved"),
         "failed", "bad_redirect"),
    *[
        Case(f"redirect-to-{name}", page(b"", f"Location: {target}", status="302 Found"),
             "failed", "refused_address")
        for name, target in [
            ("aws-metadata", "http://169.254.169.254/latest/meta-data/"),
            ("metadata-https", "https://169.254.170.2/v2/credentials"),
            ("metadata-decimal", "http://2852039166/latest/"),
            ("metadata-hex", "http://0xA9FEA9FE/latest/"),
            ("metadata-short-form", "http://169.254.43518/latest/"),
            ("metadata-ipv4-mapped", "http://[::ffff:169.254.169.254]/latest/"),
            ("metadata-ipv4-compatible", "http://[::169.254.169.254]/latest/"),
            ("metadata-6to4", "http://[2002:a9fe:a9fe::1]/latest/"),
            ("aws-metadata-ipv6", "http://[fd00:ec2::254]/latest/"),
            ("link-local-ipv6", "http://[fe80::1]/"),
            ("gcp-metadata-name", "http://metadata.google.internal/computeMetadata/v1/"),
            ("alibaba-metadata", "http://100.100.100.200/latest/meta-data/"),
        ]
    ],
    # charsets: decoded right, or not read at all; never read as "the phrase is gone"
    Case("utf16-bom-under-utf8-header", page(codecs.BOM_UTF16_LE + GOOD.encode("utf-16-le"),
         HTML), "capture", body=codecs.BOM_UTF16_LE + GOOD.encode("utf-16-le")),
    Case("utf16-be-bom-no-charset", page(codecs.BOM_UTF16_BE + GOOD.encode("utf-16-be"),
         "Content-Type: text/html"), "capture"),
    Case("utf16-without-bom", page(GOOD.encode("utf-16-le"), "Content-Type: text/html"),
         "capture"),
    Case("utf8-under-latin1-header", page(GOOD, "Content-Type: text/html; charset=iso-8859-1"),
         "capture"),
    Case("utf8-under-gbk-meta", page(GOOD.replace("<head>", '<head><meta charset="gbk">'),
         "Content-Type: text/html"), "capture"),
    Case("gbk-declared", page(GBK, "Content-Type: text/html; charset=gbk"), "capture"),
    Case("gbk-under-utf8-header", page(GBK, HTML), "unusable", "unreadable", "charset", GBK),
    Case("gbk-without-charset", page(GBK, "Content-Type: text/html"),
         "unusable", "unreadable", "charset"),
    Case("gbk-under-unknown-charset", page(GBK, "Content-Type: text/html; charset=klingon"),
         "unusable", "unreadable", "charset"),
    Case("invalid-utf8-bytes", page(GOOD.encode() + b"<p>\xff\xfe\xc3</p>", HTML), "capture"),
    Case("binary-as-html", page(NOISE, HTML), "unusable", "unreadable", "binary", NOISE),
    Case("png-as-html", page(PNG, "Content-Type: text/html"), "unusable", "unreadable",
         "binary"),
    Case("pdf-as-html", page(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + b"1 0 obj << /Type /Page >>\n"
         * 200, HTML), "unusable", "unreadable", "binary"),
    Case("utf8-under-utf16-header", page(GOOD, "Content-Type: text/html; charset=utf-16"),
         "capture"),
    Case("gzip-without-content-encoding", page(gzip.compress(GOOD.encode()), HTML),
         "unusable", "unreadable", "binary"),
    # lxml's limits: the text is whole, or the capture is not compared
    Case("nesting-300-deep", page(nested(300), HTML), "capture"),
    Case("nesting-5000-deep", page(nested(5000), HTML), "unusable", "unreadable", "depth"),
    Case("inline-script-20MB", page(BIG_SCRIPT, HTML), "capture"),
    Case("text-node-10MB", page(BIG_TEXT, HTML), "capture"),
    # stand-ins for the page: kept, never compared
    Case("empty-body", page(b"", HTML), "unusable", "empty"),
    Case("captcha", page("<html><body><h1>Please complete the CAPTCHA</h1></body></html>",
         HTML), "unusable", "suspect", "captcha"),
    Case("verify-human", page("<title>Verify you are human</title><p>Press and hold.</p>",
         HTML), "unusable", "suspect", "human"),
    Case("bot-challenge", page("<title>Just a moment...</title><p>Checking your browser before"
         " accessing the site.</p>", HTML), "unusable", "suspect", "moment"),
    Case("access-denied", page("<h1>Access Denied</h1><p>You don't have permission to access"
         " this server.</p>", HTML), "unusable", "suspect", "denied"),
    Case("login-wall", page(b"", "Location: /login?next=/docs", status="302 Found"),
         "unusable", "suspect", "login"),
    Case("meta-refresh-stub", page('<html><head><meta http-equiv="refresh" content="0; '
         'url=/docs/v2"></head><body><p>This page has moved.</p></body></html>', HTML),
         "unusable", "suspect", "sends browsers on to /docs/v2 (meta refresh)"),
    Case("403", page("<h1>Forbidden</h1>", HTML, status="403 Forbidden"), "failed", "http_403"),
    Case("401", page("<h1>Sign in</h1>", HTML, status="401 Unauthorized"),
         "failed", "http_401"),
    Case("429", page("slow down", "Retry-After: 3600", status="429 Too Many Requests"),
         "failed", "http_429", "Retry-After: 3600"),
    Case("503", page("down", HTML, status="503 Service Unavailable"), "failed", "http_503"),
]  # fmt: skip

EXTRA_ROUTES: dict[str, Behaviour] = {
    "/loop/b": page(b"", "Location: /redirect-loop", status="302 Found"),
    **{f"/chain/{i}": page(b"", f"Location: /chain/{i + 1}", status="302 Found")
       for i in range(1, 15)},
    "/login?next=/docs": page("<p>Please sign in to continue.</p>", HTML),
    "/%E7%BB%B4%E5%90%BE%E5%B0%94/docs": page(GOOD, HTML),
}  # fmt: skip
OTHERS = ("/other/a", "/other/b")


def run(root: Path, *args: str) -> Any:
    result = CliRunner().invoke(cli, ["--workspace", str(root), *args])
    assert result.exit_code == 0, result.output
    return result


def history(root: Path, url: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = json.loads(run(root, "history", "--json", url).stdout)
    return entries


def all_alerts(root: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(
        run(root, "alerts", "--json", "--status", "all").stdout
    )
    return found


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RawServer, Path]]:
    """A workspace watching every case's URL and two good pages, after a pass that captured
    the good page (with the phrases) at every one of them."""
    STOP.clear()
    routes: dict[str, Behaviour] = {f"/{case.id}": page(GOOD, HTML) for case in CASES}
    routes.update({path: page(GOOD, HTML) for path in OTHERS})
    server = RawServer(routes)
    root = tmp_path_factory.mktemp("hostile")
    init(root)
    urls = [server.url(path) for path in [*routes, *OTHERS]]
    watchlist = f'every = "6h"\n[phrases]\n{PHRASES}\n' + "".join(
        f'\n[[watch]]\nurl = "{url}"\n' for url in dict.fromkeys(urls)
    )
    (root / "watchlists" / "hostile.toml").write_text(watchlist, encoding="utf-8")
    run(root, "check", "--confirm-delay", "0")
    server.routes.update(EXTRA_ROUTES)
    yield server, root
    STOP.set()
    server.close()


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_server(hostile: tuple[RawServer, Path], case: Case) -> None:
    server, root = hostile
    url = server.url(f"/{case.id}")
    [seed] = history(root, url)
    assert seed["outcome"] == "capture" and seed["counts"] == {"uyghur": 2}, seed

    server.routes[f"/{case.id}"] = case.behaviour
    others = [server.url(path) for path in OTHERS]
    started = time.monotonic()
    result = run(root, "check", "--deadline", str(DEADLINE), "--confirm-delay", "0", url, *others)
    took = time.monotonic() - started

    assert took < DEADLINE + 3, f"the pass took {took:.1f}s"
    assert isinstance(result.exception, (SystemExit, type(None)))  # no traceback
    mine = [a for a in all_alerts(root) if a["url"] in (url, *others)]
    assert mine == [], "a misbehaving server raised an alert"
    [*_, last] = history(root, url)
    assert (last["outcome"], last["reason"]) == (case.outcome, case.reason), last
    assert last["message"] == " ".join(last["message"].split())  # one line
    assert case.says.lower() in last["message"].lower(), last["message"]
    if case.outcome == "capture":
        assert last["counts"] == seed["counts"]  # decoded right: the phrases are all there
    if case.outcome in ("capture", "unusable") and case.body is not None:
        assert last["sha256"] == hashlib.sha256(case.body).hexdigest()  # the raw bytes, kept
    if case.outcome == "failed":
        assert last["sha256"] is None
    for other in others:
        assert history(root, other)[-1]["outcome"] == "capture"


def test_every_case_has_its_own_route() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert all(path.lstrip("/") not in ids for path in EXTRA_ROUTES)


def test_redirect_to_a_name_that_resolves_to_metadata_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host name the resolver maps to 169.254.169.254 is refused before any connection."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "imds.vendor.example":
            asked.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    server = RawServer(
        {"/p": page(b"", "Location: http://imds.vendor.example/latest/", status="302 Found")}
    )
    try:
        init(tmp_path)
        (tmp_path / "watchlists" / "w.toml").write_text(
            f'[phrases]\n{PHRASES}\n[[watch]]\nurl = "{server.url("/p")}"\n', encoding="utf-8"
        )
        run(tmp_path, "check", "--deadline", str(DEADLINE))
        [entry] = history(tmp_path, server.url("/p"))
    finally:
        server.close()
    assert (entry["outcome"], entry["reason"]) == ("failed", "refused_address")
    assert "169.254.169.254" in entry["message"]
    assert asked == ["imds.vendor.example"]


# -- a page that merely shrinks is a removal, and says how much -----------------------------------


def watching(root: Path, url: str) -> None:
    """A new workspace with one watch of ``url`` for the phrases."""
    init(root)
    (root / "watchlists" / "w.toml").write_text(
        f'[phrases]\n{PHRASES}\n[[watch]]\nurl = "{url}"\n', encoding="utf-8"
    )


def test_gutted_page_is_a_removal_that_says_how_much_the_page_shrank(tmp_path: Path) -> None:
    big = GOOD.replace("</main>", "<p>" + "Long documentation paragraph. " * 400 + "</p></main>")
    gutted = "<html><body><main><p>This page has moved to our new portal.</p></main></body></html>"
    server = RawServer({"/doc": page(big, HTML)})
    try:
        watching(tmp_path, server.url("/doc"))
        run(tmp_path, "check")
        server.routes["/doc"] = page(gutted, HTML)
        run(tmp_path, "check", "--confirm-delay", "0")
    finally:
        server.close()
    [alert] = all_alerts(tmp_path)
    assert (alert["kind"], alert["count_before"], alert["count_after"]) == ("removed", 2, 0)
    assert alert["bytes_before"] == len(big.encode())
    assert alert["bytes_after"] == len(gutted.encode())
    assert alert["chars_after"] == len("This page has moved to our new portal.")
    assert alert["chars_before"] > 12_000
    shown = run(tmp_path, "show", str(alert["id"])).stdout
    before, after = alert["chars_before"], alert["chars_after"]
    assert f"page size      {before:,} -> {after:,} characters of text (-100%)" in shown
    assert f"{len(big.encode()):,} -> {len(gutted.encode()):,} bytes" in shown


def test_a_length_that_lies_late_never_confirms_a_removal_then_a_real_one_does(
    tmp_path: Path,
) -> None:
    """The server's Content-Length covers the text before the phrase and the rest comes late,
    pass after pass. A check takes the cut page (a removal, not yet confirmed); the second look
    waits after the body, sees the rest and fails, and the cut capture is never compared. A
    real removal is then alerted, once."""
    server = RawServer({"/doc": page(GOOD, HTML)})
    try:
        watching(tmp_path, server.url("/doc"))
        run(tmp_path, "check")
        server.routes["/doc"] = length_lies_shorter_rest_late
        for _ in range(3):
            run(tmp_path, "check", "--confirm-delay", "0")
        assert all_alerts(tmp_path) == []
        checks = history(tmp_path, server.url("/doc"))
        assert [(c["outcome"], c["reason"]) for c in checks[1:]] == [
            ("unconfirmed", "unconfirmed"),
            ("failed", "bad_length"),
        ] * 3
        assert "may be cut short" in checks[1]["message"]
        server.routes["/doc"] = page(
            GOOD.replace("Is it Uyghur", "Is it").replace("维吾尔", ""), HTML
        )
        run(tmp_path, "check", "--confirm-delay", "0")
    finally:
        server.close()
    [alert] = all_alerts(tmp_path)
    assert (alert["kind"], alert["count_before"], alert["count_after"]) == ("removed", 2, 0)


def test_a_change_awaiting_confirmation_is_confirmed_only_by_a_fetch_that_waits(
    tmp_path: Path,
) -> None:
    """The second look at a cut page times out, so the change waits for the next check; that
    check, like the second look, waits after the body, sees the rest come late, and the cut
    capture is never compared."""
    answers = iter([length_lies_shorter_rest_late, stall])

    def cut_then_stall_then_cut(conn: socket.socket, path: str) -> None:
        next(answers, length_lies_shorter_rest_late)(conn, path)

    server = RawServer({"/doc": page(GOOD, HTML)})
    try:
        watching(tmp_path, server.url("/doc"))
        run(tmp_path, "check")
        server.routes["/doc"] = cut_then_stall_then_cut
        for _ in range(2):
            run(tmp_path, "check", "--confirm-delay", "0", "--deadline", str(DEADLINE))
    finally:
        server.close()
    assert all_alerts(tmp_path) == []
    checks = history(tmp_path, server.url("/doc"))
    assert [(c["outcome"], c["reason"]) for c in checks[1:]] == [
        ("unconfirmed", "unconfirmed"), ("failed", "timeout"), ("failed", "bad_length")
    ]  # fmt: skip


# -- watch health: blocked, failing, restored_health ---------------------------------------------


def test_blocked_after_three_stand_ins_once_a_spell_then_restored(tmp_path: Path) -> None:
    server = RawServer({"/doc": page(GOOD, HTML), "/walled": page(GOOD, HTML)})
    captcha = page("<title>Attention Required!</title><p>Complete the captcha.</p>", HTML)
    try:
        init(tmp_path)
        (tmp_path / "watchlists" / "w.toml").write_text(
            f'[phrases]\n{PHRASES}\n[[watch]]\nurl = "{server.url("/doc")}"\n'
            f'[[watch]]\nurl = "{server.url("/walled")}"\n',
            encoding="utf-8",
        )
        run(tmp_path, "check")
        server.routes["/doc"] = captcha
        server.routes["/walled"] = page("no", HTML, status="403 Forbidden")
        for _ in range(2):
            run(tmp_path, "check")
        assert all_alerts(tmp_path) == []  # two in a row: not yet
        third = run(tmp_path, "check").stdout
        assert "new alerts 2" in third
        for _ in range(2):  # still blind: no alert per check, one per spell
            run(tmp_path, "check")
        alerts = all_alerts(tmp_path)
        assert sorted((a["kind"], a["url"]) for a in alerts) == [
            ("blocked", server.url("/doc")),
            ("blocked", server.url("/walled")),
        ]
        status = json.loads(run(tmp_path, "status", "--json").stdout)
        assert [s["state"] for s in status] == ["blind", "blind"]
        server.routes["/doc"] = page(GOOD, HTML)
        run(tmp_path, "check", server.url("/doc"))
    finally:
        server.close()
    alerts = all_alerts(tmp_path)
    assert [(a["kind"], a["group"]) for a in alerts] == [
        ("blocked", ""),
        ("blocked", ""),
        ("restored_health", ""),
    ]
    [blocked] = [a for a in alerts if a["url"] == server.url("/doc") and a["kind"] == "blocked"]
    restored = alerts[-1]
    doc = history(tmp_path, server.url("/doc"))
    assert blocked["capture_before"] == doc[0]["id"]  # the last capture that saw the page
    assert blocked["capture_after"] == doc[3]["id"]  # the third stand-in in a row
    assert blocked["last_seen_at"] == doc[0]["checked_at"]
    assert "stand-in" in blocked["context"] and "attention required" in blocked["context"].lower()
    assert (restored["capture_before"], restored["capture_after"]) == (doc[5]["id"], doc[6]["id"])
    assert all(a["kind"] not in REMOVAL_KINDS for a in alerts)
    assert {a["kind"] for a in alerts} <= HEALTH_KINDS
    shown = run(tmp_path, "show", str(blocked["id"])).stdout
    assert "the watch is blind" in shown
    listing = run(tmp_path, "alerts").stdout
    assert "(the watch)" in listing and "''" not in listing


def test_failing_after_three_intervals_once_a_spell_then_restored(root: Path, clock: Any) -> None:
    """Through real HTTP with a set clock: hourly checks that all fail raise `failing` at the
    third interval without a capture (not before, and not again), and the capture that ends
    the spell `restored_health`. A phrase removed before the spell and back after it is still
    `restored`: health alerts are no removals."""
    down = page("<h1>down</h1>", HTML, status="503 Service Unavailable")
    server = RawServer({"/doc": page(GOOD, HTML)})
    url = server.url("/doc")
    (root / "watchlists" / "w.toml").write_text(
        f'every = "1h"\n[phrases]\n{PHRASES}\n[[watch]]\nurl = "{url}"\n', encoding="utf-8"
    )
    watches = select_watches(root)
    store = Store(root)

    def check(behaviour: Behaviour) -> list[int]:
        server.routes["/doc"] = behaviour
        clock.advance(hours=1)
        summary = asyncio.run(check_pass(store, watches, now=clock, confirm_delay=0))
        return summary.alert_ids

    try:
        assert check(page(GOOD, HTML)) == []
        assert len(check(page(GOOD.replace("维吾尔", "某"), HTML))) == 1  # a real removal
        spell = [check(down), check(down)]
        status = alerts_api.status(store, watches, clock())
        assert [s.state for s in status] == ["ok"]  # two intervals: not yet
        spell += [check(down), check(down), check(reset), check(down)]
        status = alerts_api.status(store, watches, clock())
        assert [s.state for s in status] == ["failing"]
        back = check(page(GOOD, HTML))  # the phrase is back too
    finally:
        store.close()
        server.close()
    assert [len(ids) for ids in spell] == [0, 0, 1, 0, 0, 0]  # one alert for the whole spell
    assert len(back) == 2
    alerts = all_alerts(root)
    assert [(a["kind"], a["group"]) for a in alerts] == [
        ("removed", "uyghur"),
        ("failing", ""),
        ("restored", "uyghur"),
        ("restored_health", ""),
    ]
    checks = history(root, url)
    failing, restored_health = alerts[1], alerts[3]
    assert (failing["capture_before"], failing["capture_after"]) == (
        checks[2]["id"],
        checks[5]["id"],
    )
    assert failing["last_seen_at"] == checks[2]["checked_at"]  # the last capture
    assert failing["first_missing_at"] == checks[5]["checked_at"]  # three hours on
    assert (failing["count_before"], failing["count_after"]) == (0, 0)
    assert "no capture since" in failing["context"] and "http_503" in failing["context"]
    assert restored_health["capture_before"] == checks[8]["id"]  # the last failed check
    assert restored_health["capture_after"] == checks[9]["id"]
    assert "captures again" in restored_health["context"]
