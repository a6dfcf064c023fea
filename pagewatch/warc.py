"""WARC 1.1 records written for evidence bundles, through warcio's record builder, one gzip
member per record (so each can be read by offset, as indexes and replay tools do).

- Digests are ``sha256:<lowercase hex>``, the form Webrecorder's tools (warcio.js, Browsertrix,
  ArchiveWeb.page) write and the WACZ manifest uses; warcio and pywb read it as well as base32.
  The payload digest of a response is the capture's own SHA-256, i.e. its snapshot's name.
- The status line is rebuilt as ``HTTP/1.1 <code> <standard reason>``: pagewatch keeps the code,
  not the wire's protocol version or reason phrase. Header names, values and order are kept byte
  for byte (latin-1, as received), never %-encoded.
- Framing rule: the stored body is the payload as received with content-encoding intact but with
  chunked framing already undone by the HTTP client. So every ``Transfer-Encoding`` header is
  renamed ``X-Archive-Orig-Transfer-Encoding`` (as pywb does), and a ``Content-Length`` that
  disagrees with the stored bytes is renamed ``X-Archive-Orig-Content-Length`` with the true one
  appended; none is invented when there was none (the WARC record's own length frames the
  payload). ``WARC-Pagewatch-Renamed`` lists what was renamed so reading restores it exactly.
  ``Content-Encoding`` stays: the bytes are still encoded.
- A capture whose body was already written in the bundle becomes a ``revisit`` record (WARC 1.1
  identical-payload-digest profile, with ``WARC-Refers-To``, ``-Target-URI`` and ``-Date``).
- Each response or revisit is followed by a synthesised ``request`` record (a bare GET; pagewatch
  keeps no request headers, and the record says so in ``WARC-Pagewatch-Request``).

Reading records back is `records`' (any writer's WARCs) and `responses`' (bodies for import).
"""

from __future__ import annotations

import hashlib
import json
import uuid
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from io import BytesIO
from typing import IO, Any
from urllib.parse import urlsplit

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from .errors import StoreError
from .models import StoredCapture, header

Headers = tuple[tuple[str, str], ...]

METADATA_URI = "urn:pagewatch:metadata"
CAPTURE_HEADER = "WARC-Pagewatch-Capture"
CHAIN_HEADER = "WARC-Pagewatch-Chain"
RENAMED_HEADER = "WARC-Pagewatch-Renamed"
NOT_MODIFIED_HEADER = "WARC-Pagewatch-Not-Modified"
REQUEST_NOTE_HEADER = "WARC-Pagewatch-Request"
ORIG_PREFIX = "X-Archive-Orig-"
GZIP_LEVEL = 3  # on HTML ~6% larger than zlib's default (6), and about 3 times faster


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def format_warc_date(moment: datetime) -> str:
    """W3C ISO 8601 in UTC, to the microsecond when there is one (WARC 1.1 allows it)."""
    moment = moment.astimezone(UTC)
    pattern = "%Y-%m-%dT%H:%M:%S.%fZ" if moment.microsecond else "%Y-%m-%dT%H:%M:%SZ"
    return moment.strftime(pattern)


# --- the framing rule ---------------------------------------------------------------------


def archival_headers(headers: Headers, body_length: int) -> tuple[Headers, tuple[str, ...]]:
    """Headers as they go into a record for ``body_length`` stored bytes, and what was renamed."""
    kept: list[tuple[str, str]] = []
    renamed: list[str] = []
    wrong_length = False
    for name, value in headers:
        lower = name.lower()
        if lower == "transfer-encoding" or (
            lower == "content-length" and value.strip() != str(body_length)
        ):
            kept.append((ORIG_PREFIX + name, value))
            renamed.append(name)
            wrong_length |= lower == "content-length"
        else:
            kept.append((name, value))
    if wrong_length:
        kept.append(("Content-Length", str(body_length)))
    return tuple(kept), tuple(renamed)


def restore_headers(headers: Headers, renamed: str) -> Headers:
    """The inverse of `archival_headers`, given the record's ``WARC-Pagewatch-Renamed`` value."""
    names = {n.strip().lower() for n in renamed.split(",") if n.strip()}
    if not names:
        return headers
    restored = list(headers)
    if "content-length" in names:  # drop the Content-Length that was appended
        for index in range(len(restored) - 1, -1, -1):
            if restored[index][0].lower() == "content-length":
                del restored[index]
                break
    prefix = ORIG_PREFIX.lower()
    for index, (name, value) in enumerate(restored):
        if name.lower().startswith(prefix) and name[len(prefix) :].lower() in names:
            restored[index] = (name[len(prefix) :], value)
    return tuple(restored)


def http_head(status: int, headers: Headers) -> bytes:
    """A response head, status line to blank line, with header bytes as received."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    lines = [f"HTTP/1.1 {status} {reason}".rstrip()]
    for name, value in headers:
        if "\r" in name + value or "\n" in name + value:
            raise ValueError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}")
    text = "\r\n".join(lines) + "\r\n\r\n"
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


# --- writing ------------------------------------------------------------------------------


class _Members:
    """The WARC output: each record one gzip member, its place and digest noted as it goes."""

    def __init__(self, raw: IO[bytes]):
        self.raw = raw
        self.position = 0
        self.start = 0
        self.whole = hashlib.sha256()
        self._member = hashlib.sha256()
        self._gzip = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS | 16)

    def _out(self, data: bytes) -> None:
        if data:
            self.raw.write(data)
            self.whole.update(data)
            self._member.update(data)
            self.position += len(data)

    def write(self, data: bytes) -> int:
        self._out(self._gzip.compress(data))
        return len(data)

    def flush(self) -> None:
        """warcio flushes after each record; members are closed by `end` instead."""

    def end(self) -> tuple[int, int, str]:
        """Close the current member: its offset, length and ``sha256:`` digest."""
        self._out(self._gzip.flush())
        placed = (self.start, self.position - self.start, "sha256:" + self._member.hexdigest())
        self.start = self.position
        self._member = hashlib.sha256()
        self._gzip = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        return placed


class _ExactHeaders(StatusAndHeaders):  # type: ignore[misc]
    """An HTTP head that warcio writes byte for byte instead of %-encoding non-ASCII values."""

    def __init__(self, statusline: str, headers: Headers, protocol: str, head: bytes):
        super().__init__(statusline, list(headers), protocol=protocol)
        self.head = head

    def compute_headers_buffer(self, header_filter: object = None) -> None:
        self.headers_buff = self.head


@dataclass(frozen=True)
class Written:
    """One record as written: where it is, and what an index line needs to know of it."""

    rec_type: str
    record_id: str
    target_uri: str
    date: datetime
    offset: int
    length: int
    record_digest: str  # sha256 of the record's bytes in the file (its gzip member)
    payload_digest: str
    status: int | None = None
    mime: str | None = None  # the Content-Type as written, None when there is none
    capture_id: int | None = None


@dataclass(frozen=True)
class _Original:
    record_id: str
    target_uri: str
    date: str
    length: int


class RecordWriter:
    """Writes a bundle's WARC: warcinfo, metadata, then each capture as response/revisit and
    request. ``originals`` remembers which bodies are already in the file, and where."""

    def __init__(self, raw: IO[bytes], filename: str, created: datetime):
        self.out = _Members(raw)
        self.filename = filename
        self.created = created
        self.writer = WARCWriter(self.out, gzip=False, warc_version="1.1")
        self.warcinfo_id = ""
        self.originals: dict[str, _Original] = {}

    def sha256(self) -> str:
        return self.out.whole.hexdigest()

    def _fields(
        self, rec_type: str, uri: str, date: str, more: Iterable[tuple[str, str]]
    ) -> StatusAndHeaders:
        fields = [
            ("WARC-Type", rec_type),
            ("WARC-Record-ID", f"<urn:uuid:{uuid.uuid4()}>"),
            ("WARC-Date", date),
        ]
        if uri:
            fields.append(("WARC-Target-URI", uri))
        if self.warcinfo_id:
            fields.append(("WARC-Warcinfo-ID", self.warcinfo_id))
        fields.extend((name, value) for name, value in more if value)
        return StatusAndHeaders("", fields, protocol=self.writer.warc_version)

    def _write(self, record: Any, captured_at: datetime, **facts: Any) -> Written:
        self.writer.write_record(record)
        offset, length, digest = self.out.end()
        fields = record.rec_headers
        return Written(
            rec_type=record.rec_type,
            record_id=fields.get_header("WARC-Record-ID"),
            target_uri=fields.get_header("WARC-Target-URI") or "",
            date=captured_at,
            offset=offset,
            length=length,
            record_digest=digest,
            payload_digest=fields.get_header("WARC-Payload-Digest") or "",
            **facts,
        )

    def _plain(
        self, rec_type: str, uri: str, content_type: str, payload: bytes, *more: tuple[str, str]
    ) -> Written:
        digest = sha256_digest(payload)
        more = (("WARC-Payload-Digest", digest), ("WARC-Block-Digest", digest), *more)
        fields = self._fields(rec_type, uri, format_warc_date(self.created), more)
        record = self.writer.create_warc_record(
            uri,
            rec_type,
            payload=BytesIO(payload),
            length=len(payload),
            warc_content_type=content_type,
            warc_headers=fields,
        )
        return self._write(record, self.created, mime=content_type)

    def warcinfo(self, info: dict[str, str]) -> Written:
        body = "".join(f"{name}: {value}\r\n" for name, value in info.items() if value)
        written = self._plain(
            "warcinfo",
            "",
            "application/warc-fields",
            body.encode("utf-8"),
            ("WARC-Filename", self.filename),
        )
        self.warcinfo_id = written.record_id
        return written

    def metadata(self, metadata: dict[str, Any]) -> Written:
        payload = json.dumps(metadata, ensure_ascii=False).encode("utf-8")
        return self._plain("metadata", METADATA_URI, "application/json", payload)

    def capture(
        self, capture: StoredCapture, read_body: Callable[[str], bytes]
    ) -> tuple[Written, Written]:
        """The capture's response (or revisit) record, then its request record."""
        date = format_warc_date(capture.captured_at)
        original = self.originals.get(capture.sha256)
        body = b"" if original else read_body(capture.sha256)
        if not original and hashlib.sha256(body).hexdigest() != capture.sha256:
            raise StoreError(
                f"snapshot {capture.sha256} of capture {capture.capture_id} does not match its name"
            )
        headers, renamed = archival_headers(
            capture.headers, original.length if original else len(body)
        )
        head = http_head(capture.status, headers)
        http = _ExactHeaders(str(capture.status), headers, "HTTP/1.1", head)
        payload_digest = "sha256:" + capture.sha256
        more = [
            ("WARC-Block-Digest", sha256_digest(head + body)),
            (CAPTURE_HEADER, str(capture.capture_id)),
            (CHAIN_HEADER, capture.chain),
            (RENAMED_HEADER, ", ".join(renamed)),
            (NOT_MODIFIED_HEADER, "true" if capture.not_modified else ""),
        ]
        if original:
            more.insert(0, ("WARC-Refers-To", original.record_id))
            fields = self._fields("revisit", capture.target_uri, date, more)
            record = self.writer.create_revisit_record(
                capture.target_uri,
                payload_digest,
                original.target_uri,
                original.date,
                http_headers=http,
            )
            record.rec_headers = _merge(fields, record.rec_headers)
        else:
            more.insert(0, ("WARC-Payload-Digest", payload_digest))
            fields = self._fields("response", capture.target_uri, date, more)
            record = self.writer.create_warc_record(
                capture.target_uri,
                "response",
                payload=BytesIO(body),
                length=len(body),
                warc_headers=fields,
                http_headers=http,
            )
        written = self._write(
            record,
            capture.captured_at,
            status=capture.status,
            mime=header(capture.headers, "content-type"),
            capture_id=capture.capture_id,
        )
        if not original:
            self.originals[capture.sha256] = _Original(
                written.record_id, capture.target_uri, date, len(body)
            )
        return written, self._request(capture.target_uri, capture.captured_at, written.record_id)

    def _request(self, uri: str, moment: datetime, concurrent_to: str) -> Written:
        parts = urlsplit(uri)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.netloc.rpartition("@")[2]
        head = f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode("latin-1", "replace")
        more = [
            ("WARC-Concurrent-To", concurrent_to),
            ("WARC-Payload-Digest", sha256_digest(b"")),
            ("WARC-Block-Digest", sha256_digest(head)),
            (REQUEST_NOTE_HEADER, "synthesised; pagewatch keeps no request headers"),
        ]
        fields = self._fields("request", uri, format_warc_date(moment), more)
        http = _ExactHeaders(f"{target} HTTP/1.1", (("Host", host),), "GET", head)
        record = self.writer.create_warc_record(
            uri, "request", payload=BytesIO(b""), length=0, warc_headers=fields, http_headers=http
        )
        return self._write(record, moment)


def _merge(ours: StatusAndHeaders, warcio_made: StatusAndHeaders) -> StatusAndHeaders:
    """Our fields first, then what warcio's revisit builder added (profile, refers-to, digest)."""
    have = {name.lower() for name, _ in ours.headers}
    for name, value in warcio_made.headers:
        if name.lower() not in have:
            ours.headers.append((name, value))
    return ours
