"""A fake Wayback Machine on 127.0.0.1, for tests: a CDX index and ``id_`` replay of a history.

It answers as web.archive.org does where pagewatch relies on it:

- ``/cdx/search/cdx``: exact-URL match (scheme and ``www.`` ignored), ``from``/``to`` (1 to 14
  digits, inclusive), ``collapse=digest`` (adjacent repeats only), ``fl``, ``output=json`` (a
  header row first; ``[]`` when nothing matches), ``limit`` with ``showResumeKey``/``resumeKey``
  (``[]`` then ``[key]`` after the rows). A revisit is listed as ``warc/revisit`` with status
  "-". Digests are base32 SHA-1 of the archived body.
- ``/web/<ts>id_/<url>``: the archived bytes with the archived status; the original headers as
  ``X-Archive-Orig-*`` except Content-Type, Content-Encoding and Location (Location rewritten into
  the archive), plus the archive's own (Memento-Datetime, Link, Server, Set-Cookie, ...). A time
  with no capture of the URL redirects (302, no Memento-Datetime) to its nearest capture; a URL
  with none answers 404 with X-Archive-Wayback-Runtime-Error.

Failures are injected per endpoint with `FakeWayback.fail`; every request is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, quote_plus, urljoin, urlsplit

from pagewatch.replay import LocalServer

HTML = (("Content-Type", "text/html; charset=utf-8"),)
CDX_FIELDS = ("urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "length")
PASSED_THROUGH = frozenset({"content-type", "content-encoding", "location"})


@dataclass(frozen=True)
class Snapshot:
    """One archived capture of a URL."""

    timestamp: str  # 14 digits
    url: str
    status: int = 200
    headers: tuple[tuple[str, str], ...] = HTML  # the original response's headers
    body: bytes = b""  # the original payload, content-encoding intact
    revisit: bool = False  # listed as a warc/revisit row (status "-"); replayed as the original
    gone: bool = False  # listed, but the replay answers 404 as if it were not in the archive
    served: bytes | None = None  # the replay serves these bytes instead of ``body``
    served_encoding: str | None = None  # the replay's Content-Encoding (None: the original's)

    @property
    def digest(self) -> str:
        return base64.b32encode(hashlib.sha1(self.body).digest()).decode()

    @property
    def mimetype(self) -> str:
        if self.revisit:
            return "warc/revisit"
        kind = dict((k.lower(), v) for k, v in self.headers).get("content-type", "unk")
        return kind.split(";")[0].strip() or "unk"


@dataclass(frozen=True)
class Canned:
    """A fixed answer injected in place of the real one. Status 0 drops the connection."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    delay: float = 0.0  # seconds to wait before answering


RESET = Canned(0)


@dataclass(frozen=True)
class Seen:
    """One request the fake archive received."""

    at: float  # time.monotonic() on arrival
    path: str  # path and query as sent
    query: dict[str, list[str]]
    headers: dict[str, str] = field(default_factory=dict)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


def key(url: str) -> str:
    """The index key of a URL: no scheme, no ``www.``, host lower-cased."""
    parts = urlsplit(url if "://" in url else "http://" + url)
    host = (parts.hostname or "").removeprefix("www.")
    port = f":{parts.port}" if parts.port and parts.port not in (80, 443) else ""
    return f"{host}{port}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")


def stamp_datetime(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=UTC)


class FakeWayback(LocalServer):
    """Serves ``history`` as the Wayback Machine would, until stopped."""

    def __init__(self, history: Iterable[Snapshot] = ()):
        self.history: list[Snapshot] = list(history)
        self.requests: list[Seen] = []
        self._failures: dict[str, list[Canned]] = {}
        self._resume: dict[str, int] = {}
        self._lock = threading.Lock()
        archive = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go as two writes

            def do_GET(self) -> None:
                archive._answer(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(Handler, poll_interval=0.01)

    def add(self, *snapshots: Snapshot) -> None:
        with self._lock:
            self.history.extend(snapshots)

    def fail(self, where: str, *answers: Canned) -> None:
        """Answer the next requests to ``where`` ("cdx" or "web") with these, one each."""
        with self._lock:
            self._failures.setdefault(where, []).extend(answers)

    def seen(self, where: str) -> list[Seen]:
        prefix = "/cdx/" if where == "cdx" else "/web/"
        return [r for r in self.requests if r.path.startswith(prefix)]

    # -- answering ---------------------------------------------------------------------------

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path
        query = parse_qs(urlsplit(path).query, keep_blank_values=True)
        where = "cdx" if path.startswith("/cdx/") else "web"
        with self._lock:
            self.requests.append(Seen(time.monotonic(), path, query, dict(handler.headers)))
            queued = self._failures.get(where)
            canned = queued.pop(0) if queued else None
        if canned is not None:
            if canned.delay:
                time.sleep(canned.delay)
            if canned.status == 0:
                _reset(handler)
                return
            _send(handler, canned.status, canned.headers, canned.body)
            return
        if where == "cdx" and urlsplit(path).path == "/cdx/search/cdx":
            self._cdx(handler, query)
            return
        found = re.match(r"^/web/(\d{1,14})id_/(.+)$", path, re.DOTALL)
        if where == "web" and found:
            self._replay(handler, found.group(1), found.group(2))
            return
        _send(handler, 404, (("Content-Type", "text/plain"),), b"no such endpoint")

    def _cdx(self, handler: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> None:
        def one(name: str, default: str = "") -> str:
            return query.get(name, [default])[0]

        url = one("url")
        low = one("from").ljust(14, "0")
        high = one("to") + "99991231235959"[len(one("to")) :]
        with self._lock:
            matching = [s for s in self.history if key(s.url) == key(url)]
        rows = sorted(
            (s for s in matching if low <= s.timestamp <= high), key=lambda s: s.timestamp
        )
        if one("collapse") == "digest":
            rows = [s for i, s in enumerate(rows) if i == 0 or rows[i - 1].digest != s.digest]
        fields = one("fl", ",".join(CDX_FIELDS)).split(",")
        if any(name not in CDX_FIELDS for name in fields):
            _send(handler, 400, (("Content-Type", "text/plain"),), b"Unknown field in fl")
            return
        start = 0
        resume_key = one("resumeKey")
        if resume_key:
            with self._lock:
                start = self._resume.get(resume_key, len(rows))
        limit = int(one("limit", "0") or 0)
        end = start + limit if limit > 0 else len(rows)
        page = [[_field(s, name, url) for name in fields] for s in rows[start:end]]
        more = end < len(rows) and one("showResumeKey") == "true"
        if one("output") == "json":
            document: list[list[str]] = [list(fields), *page] if page or more else []
            if more:
                document += [[], [self._key_after(rows[end - 1], url, end)]]
            body = json.dumps(document).encode()
            _send(handler, 200, (("Content-Type", "application/json"),), body)
            return
        lines = [" ".join(row) for row in page]
        if more:
            lines += ["", self._key_after(rows[end - 1], url, end)]
        _send(handler, 200, (("Content-Type", "text/plain"),), "\n".join(lines).encode())

    def _key_after(self, last: Snapshot, url: str, position: int) -> str:
        """A resume key shaped like the real one: URL-encoded "urlkey timestamp!"."""
        made = quote_plus(f"{_surt(url)} {last.timestamp}!")
        with self._lock:
            self._resume[made] = position
        return made

    def _replay(self, handler: BaseHTTPRequestHandler, stamp: str, url: str) -> None:
        with self._lock:
            captures = [s for s in self.history if key(s.url) == key(url)]
        exact = next((s for s in captures if s.timestamp == stamp), None)
        if exact is None or exact.gone:
            playable = [s for s in captures if not s.gone]
            if exact is not None or not playable:
                _send(
                    handler,
                    404,
                    (
                        ("Content-Type", "text/html"),
                        (
                            "X-Archive-Wayback-Runtime-Error",
                            f"ResourceNotInArchiveException: {url}",
                        ),
                    ),
                    b"<html><body>The Wayback Machine has not archived that URL.</body></html>",
                )
                return
            wanted = int(stamp.ljust(14, "0"))
            nearest = min(playable, key=lambda s: abs(int(s.timestamp) - wanted))
            location = f"{self.base_url}/web/{nearest.timestamp}id_/{nearest.url}"
            _send(handler, 302, (("Location", location), ("Content-Type", "text/plain")), b"")
            return
        _send(handler, exact.status, self._memento_headers(exact), _served(exact))

    def _memento_headers(self, snapshot: Snapshot) -> list[tuple[str, str]]:
        when = stamp_datetime(snapshot.timestamp)
        headers: list[tuple[str, str]] = [
            ("Server", "nginx"),
            ("Date", format_datetime(datetime.now(UTC), usegmt=True)),
        ]
        for name, value in snapshot.headers:
            lower = name.lower()
            if lower == "location":
                target = urljoin(snapshot.url, value)
                headers.append(
                    ("Location", f"{self.base_url}/web/{snapshot.timestamp}id_/{target}")
                )
            elif lower == "content-encoding":
                if snapshot.served_encoding is None:
                    headers.append((name, value))
            elif lower in PASSED_THROUGH:
                headers.append((name, value))
            else:
                headers.append((f"X-Archive-Orig-{name}", value))
        if snapshot.served_encoding is not None:
            headers.append(("Content-Encoding", snapshot.served_encoding))
        headers += [
            ("X-Archive-Src", "fake-20201102-00001.warc.gz"),
            ("Memento-Datetime", format_datetime(when, usegmt=True)),
            ("Link", f'<{snapshot.url}>; rel="original"'),
            ("Set-Cookie", "wb-session=archive-own; Path=/"),
            ("Permissions-Policy", "interest-cohort=()"),
        ]
        return headers


def _served(snapshot: Snapshot) -> bytes:
    return snapshot.body if snapshot.served is None else snapshot.served


def _field(snapshot: Snapshot, name: str, url: str) -> str:
    if name == "urlkey":
        return _surt(url)
    if name == "original":
        return snapshot.url
    if name == "statuscode":
        return "-" if snapshot.revisit else str(snapshot.status)
    if name == "length":
        return str(len(snapshot.body) + 300)  # the record's length, not the body's
    return str(getattr(snapshot, name))


def _surt(url: str) -> str:
    host, _, rest = key(url).partition("/")
    return ",".join(reversed(host.split("."))) + ")/" + rest


def _send(
    handler: BaseHTTPRequestHandler, status: int, headers: Sequence[tuple[str, str]], body: bytes
) -> None:
    handler.send_response_only(status)
    for name, value in headers:
        handler.send_header(name, value)
    if not any(name.lower() == "date" for name, _ in headers):
        handler.send_header("Date", handler.date_time_string())
    if not any(name.lower() == "content-length" for name, _ in headers):
        handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _reset(handler: BaseHTTPRequestHandler) -> None:
    """Drop the connection with a TCP reset, answering nothing."""
    handler.close_connection = True
    sock = handler.connection
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
