"""Responses read back from WARC and WACZ files, for import: pagewatch's own bundles or any
other tool's (Browsertrix, Webrecorder, wget, the Internet Archive).

Each ``response`` record with an HTTP status line becomes an `ArchivedResponse`: status and headers
as recorded (pagewatch's own renames undone), body with chunked framing undone and content-encoding
intact, WARC-Date as capture time. A ``revisit`` gets the body of the record it refers to (found by
WARC-Refers-To, then by target URI and date, then by URI and payload digest) when that record is in
the same file set, and is skipped with a warning otherwise. Digests are checked on the way: a
record whose block or payload digest does not match stops the import with a `BundleError`, as does
a malformed record; non-HTTP records (dns:, warcinfo, ...) are passed over.
"""

from __future__ import annotations

import json
import logging
import struct
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .errors import BundleError
from .models import ArchivedResponse
from .records import (
    READ_ERRORS,
    Digest,
    Headers,
    Records,
    content_length,
    dechunk,
    is_chunked,
    one_line,
    parse_head,
    parse_warc_date,
    read_block,
    split_head,
    status_of,
)
from .wacz import is_zip, member, safe_zip, warc_members
from .warc import CAPTURE_HEADER, METADATA_URI, RENAMED_HEADER, restore_headers

log = logging.getLogger("pagewatch.responses")

MAX_BODY = 64 * 1024 * 1024  # a response larger than this is skipped, with a warning
_CACHE_BYTES = 64 * 1024 * 1024  # revisited bodies kept at hand while reading


@dataclass(frozen=True)
class _Source:
    """One WARC to read: a file, or a member of a WACZ."""

    path: Path
    package: zipfile.ZipFile | None = None
    info: zipfile.ZipInfo | None = None

    @property
    def label(self) -> str:
        return f"{self.path.name}!{self.info.filename}" if self.info else self.path.name

    def open(self) -> IO[bytes]:
        if self.package is None or self.info is None:
            return open(self.path, "rb")
        return member(self.package, self.info)

    def open_at(self, offset: int) -> IO[bytes]:
        """A stream positioned at ``offset``: a plain seek, or for a stored member, a seek into
        the zip file itself (its data starts after the member's local header)."""
        if self.info is not None and self.info.compress_type == zipfile.ZIP_STORED:
            handle = open(self.path, "rb")  # noqa: SIM115 - returned; the caller closes it
            handle.seek(self.info.header_offset)
            local = handle.read(30)
            if local[:4] != b"PK\x03\x04":
                handle.close()
                raise BundleError("bad local header", self.path, self.info.filename)
            name_length, extra_length = struct.unpack("<HH", local[26:30])
            handle.seek(self.info.header_offset + 30 + name_length + extra_length + offset)
            return handle
        stream = self.open()  # a deflated member cannot seek: read up to the record
        while offset > 0 and (skipped := len(stream.read(min(offset, 1 << 20)))):
            offset -= skipped
        return stream

    def error(self, message: str, offset: int | None = None) -> BundleError:
        return BundleError(message, self.path, self.info.filename if self.info else None, offset)


@dataclass(frozen=True)
class _Http:
    status: int
    headers: Headers
    body: bytes  # chunked framing undone
    payload: bytes  # as recorded (the same object when it was not chunked)


def _sources(path: Path, stack: ExitStack) -> list[_Source]:
    try:
        zipped = is_zip(path)
    except OSError as exc:
        raise BundleError(f"cannot open: {exc.strerror or exc}", path) from exc
    if not zipped:
        return [_Source(path)]
    package = stack.enter_context(safe_zip(path))
    found = [_Source(path, package, info) for info in warc_members(package)]
    if not found:
        raise BundleError("no WARC file under archive/", path)
    return found


def read_metadata(path: Path) -> dict[str, Any] | None:
    """pagewatch's metadata record of a bundle, or None. It is looked for among the records
    before the first HTTP record, where pagewatch writes it."""
    with ExitStack() as stack:
        for source in _sources(path, stack):
            for record, records in _records(source):
                rec_type = record.rec_headers.get_header("WARC-Type")
                if rec_type in ("response", "revisit", "request"):
                    break
                if _is_metadata(record):
                    return _metadata(source, record, records)
    return None


def read_responses(
    path: Path,
    *,
    accept: Callable[[str], bool] | None = None,
    max_body: int = MAX_BODY,
) -> Iterator[ArchivedResponse]:
    """Every HTTP response in a .warc, .warc.gz or .wacz, revisits resolved to the body they
    refer to. ``accept(target_uri)`` may skip records before their bodies are read."""
    with ExitStack() as stack:
        reader = _Reader(accept, max_body)
        for source in _sources(path, stack):
            yield from reader.read(source)


def _records(source: _Source) -> Iterator[tuple[Any, Any]]:
    """Records of one source; a malformed one raises BundleError naming file and offset."""
    with source.open() as stream:
        records = Records(stream)
        iterator = iter(records)
        start = records.offset  # of the record being read
        while True:
            try:
                record = next(iterator)
            except StopIteration:
                if records.complete:
                    return
                raise source.error("truncated: the file ends inside a record", start) from None
            except READ_ERRORS as exc:
                raise source.error(f"malformed WARC: {one_line(exc)}", start) from exc
            if not record.rec_headers.get_header("Content-Length"):
                raise source.error("malformed WARC record: no Content-Length", start)
            yield record, records
            try:
                start = records.next_offset()  # reads what the caller left of the record
            except READ_ERRORS as exc:
                raise source.error(f"malformed WARC record: {one_line(exc)}", start) from exc


def _is_metadata(record: Any) -> bool:
    fields = record.rec_headers
    return bool(
        fields.get_header("WARC-Type") == "metadata"
        and fields.get_header("WARC-Target-URI") == METADATA_URI
    )


def _metadata(source: _Source, record: Any, records: Any) -> dict[str, Any]:
    block = _block(source, record, records)
    offset = records.get_record_offset()
    try:
        value = json.loads(block)
    except (ValueError, UnicodeDecodeError) as exc:
        raise source.error(f"pagewatch metadata is not JSON: {exc}", offset) from exc
    if not isinstance(value, dict):
        raise source.error("pagewatch metadata is not a JSON object", offset)
    return value


def _block(source: _Source, record: Any, records: Any) -> bytes:
    """A record's whole block, its block digest checked when it has one."""
    declared = content_length(record)
    try:
        block = read_block(record.raw_stream, declared)
    except READ_ERRORS as exc:
        raise source.error(f"malformed WARC record: {one_line(exc)}", records.offset) from exc
    if len(block) < declared:
        raise source.error(f"truncated: {len(block)} of {declared} bytes", records.offset)
    digest = record.rec_headers.get_header("WARC-Block-Digest")
    if digest:
        _expect(source, records.get_record_offset(), "WARC-Block-Digest", digest, block)
    return block


def _expect(source: _Source, offset: int, name: str, declared: str, *candidates: bytes) -> None:
    try:
        digest = Digest.parse(declared)
    except ValueError as exc:
        raise source.error(f"{name} unreadable: {exc}", offset) from exc
    if not digest.matches(*candidates):
        raise source.error(f"{name} mismatch ({declared})", offset)


class _Reader:
    """Reads responses across a bundle's WARCs, remembering where each response was so that a
    revisit can be given the body it refers to."""

    def __init__(self, accept: Callable[[str], bool] | None, max_body: int):
        self.accept = accept
        self.max_body = max_body
        self.metadata: dict[str, Any] = {}
        self.places: dict[tuple[str, ...], tuple[_Source, int]] = {}
        self.cache: OrderedDict[tuple[str, int], _Http] = OrderedDict()
        self.cached = 0

    def read(self, source: _Source) -> Iterator[ArchivedResponse]:
        for record, records in _records(source):
            fields = record.rec_headers
            rec_type = fields.get_header("WARC-Type")
            uri = fields.get_header("WARC-Target-URI") or ""
            if _is_metadata(record):
                self.metadata = _metadata(source, record, records)
                continue
            if rec_type not in ("response", "revisit") or not uri.lower().startswith("http"):
                continue
            if self.accept and not self.accept(uri):
                continue
            if content_length(record) > self.max_body:
                log.warning("%s: skipping a %s-byte response for %s", source.label,
                            content_length(record), uri)  # fmt: skip
                continue
            block = _block(source, record, records)
            offset = records.get_record_offset()
            if rec_type == "response":
                http = self._response(source, offset, fields, block)
                if http is None:
                    continue
                self._remember(source, offset, fields, http)
            else:
                http = self._revisit(source, offset, fields, block)
                if http is None:
                    continue
            yield self._archived(source, offset, fields, http)

    def _response(self, source: _Source, offset: int, fields: Any, block: bytes) -> _Http | None:
        split = split_head(block)
        if split is None:
            raise source.error("HTTP head does not end", offset)
        head, payload = split
        line, recorded = parse_head(head)
        status = status_of(line)
        if status is None:
            log.warning(
                "%s#%d: not an HTTP response (%r), skipped", source.label, offset, line[:80]
            )
            return None
        body = payload
        if is_chunked(recorded):
            try:
                body = dechunk(payload)
            except ValueError as exc:
                log.warning("%s#%d: chunked header but %s; kept as recorded", source.label,
                            offset, exc)  # fmt: skip
        declared = fields.get_header("WARC-Payload-Digest")
        if declared:
            _expect(source, offset, "WARC-Payload-Digest", declared, payload, body)
        return _Http(status, _restored(fields, recorded), body, payload)

    def _remember(self, source: _Source, offset: int, fields: Any, http: _Http) -> None:
        """Note where a response is, for revisits, and keep it at hand: they often follow."""
        self._keep((source.label, offset), http)
        place = (source, offset)
        self.places[("id", fields.get_header("WARC-Record-ID") or "")] = place
        uri = fields.get_header("WARC-Target-URI") or ""
        self.places[("at", uri, fields.get_header("WARC-Date") or "")] = place
        digest = fields.get_header("WARC-Payload-Digest")
        if digest:
            self.places.setdefault(("digest", uri, _digest_key(digest)), place)

    def _revisit(self, source: _Source, offset: int, fields: Any, block: bytes) -> _Http | None:
        uri = fields.get_header("WARC-Refers-To-Target-URI") or fields.get_header("WARC-Target-URI")
        digest = fields.get_header("WARC-Payload-Digest") or ""
        keys = [
            ("id", fields.get_header("WARC-Refers-To") or ""),
            ("at", uri or "", fields.get_header("WARC-Refers-To-Date") or ""),
            ("digest", uri or "", _digest_key(digest)) if digest else ("none",),
        ]
        place = next((self.places[key] for key in keys if key in self.places), None)
        if place is None:
            log.warning("%s#%d: revisit of %s whose original is not in this bundle, skipped",
                        source.label, offset, uri)  # fmt: skip
            return None
        original = self._load(*place)
        if digest:
            _expect(source, offset, "WARC-Payload-Digest", digest, original.payload, original.body)
        split = split_head(block)
        if split is None or not block.strip():
            return original
        line, recorded = parse_head(split[0])
        status = status_of(line)
        if status is None or status == 304:  # "not modified": the original answer stands
            return original
        return _Http(status, _restored(fields, recorded), original.body, original.payload)

    def _load(self, source: _Source, offset: int) -> _Http:
        key = (source.label, offset)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        with source.open_at(offset) as stream:
            records = Records(stream)
            try:
                record = next(iter(records))
            except READ_ERRORS as exc:
                raise source.error(f"malformed WARC: {one_line(exc)}", offset) from exc
            block = read_block(record.raw_stream, content_length(record))
        http = self._response(source, offset, record.rec_headers, block)
        if http is None:
            raise source.error("revisited record is not an HTTP response", offset)
        self._keep(key, http)
        return http

    def _keep(self, key: tuple[str, int], http: _Http) -> None:
        self.cache[key] = http
        self.cached += len(http.body)
        while self.cached > _CACHE_BYTES and len(self.cache) > 1:
            _, dropped = self.cache.popitem(last=False)
            self.cached -= len(dropped.body)

    def _archived(self, source: _Source, offset: int, fields: Any, http: _Http) -> ArchivedResponse:
        try:
            captured_at = parse_warc_date(fields.get_header("WARC-Date") or "")
        except ValueError as exc:
            raise source.error(f"bad WARC-Date: {exc}", offset) from exc
        capture = fields.get_header(CAPTURE_HEADER)
        entries = self.metadata.get("captures")
        entry = entries.get(capture) if capture and isinstance(entries, dict) else None
        return ArchivedResponse(
            target_uri=fields.get_header("WARC-Target-URI") or "",
            status=http.status,
            headers=http.headers,
            body=http.body,
            captured_at=captured_at,
            origin=f"{source.label}#{offset}",
            record_id=fields.get_header("WARC-Record-ID") or "",
            pagewatch=entry if isinstance(entry, dict) else None,
        )


def _restored(fields: Any, recorded: Headers) -> Headers:
    """Headers as received: pagewatch's renames undone for pagewatch's own records."""
    renamed = fields.get_header(RENAMED_HEADER)
    if renamed and fields.get_header(CAPTURE_HEADER):
        return restore_headers(recorded, renamed)
    return recorded


def _digest_key(text: str) -> str:
    try:
        return Digest.parse(text).key()
    except ValueError:
        return text
