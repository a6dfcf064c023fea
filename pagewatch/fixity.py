"""Fixity of WARC records: every digest recomputed, every missing one reported.

Strict where the reference tools are lenient: a record that should carry a digest and does not is a
problem, as is a digest in an unknown algorithm, a truncated record, a duplicate record id, or a
revisit whose digest differs from the record it refers to. Digests are read in any algorithm
hashlib knows and in base32, hex or base64 (see `records.Digest`).

The payload digest of an HTTP record covers the bytes after the HTTP head as recorded (as warcio
and Heritrix compute it); for a chunked payload the digest of the de-chunked entity is accepted
too, since WARC 1.1 defines the payload as the entity body and some tools (wget) digest that.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .records import (
    HEAD_END,
    MAX_HEAD,
    READ_ERRORS,
    Digest,
    Records,
    content_length,
    dechunk,
    is_chunked,
    one_line,
    parse_head,
)

#: records that must carry a WARC-Block-Digest (warcinfo's is checked when present)
BLOCK_DIGESTED = frozenset(
    {"response", "request", "revisit", "metadata", "resource", "conversion", "continuation"}
)
#: fields every WARC record must have (WARC 1.1, section 5)
MANDATORY = ("WARC-Record-ID", "Content-Length", "WARC-Date", "WARC-Type")
MAX_DECHUNK = 256 * 1024 * 1024  # payloads kept in memory to try the de-chunked digest


def computed(hasher: Any, like: Digest) -> str:
    return f"{like.text.partition(':')[0]}:{hasher.hexdigest()} (hex)"


@dataclass(frozen=True)
class VerifyReport:
    """What `verify` found: ``problems`` each name the file or record that failed."""

    path: Path
    checked: int  # records and files checked
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class RecordSeen:
    """A record's place and identity, for checking an index and revisits against it."""

    offset: int
    length: int
    rec_type: str
    record_id: str
    target_uri: str
    payload_digest: str
    refers_to: str


@dataclass
class WarcCheck:
    """The outcome of checking one WARC file record by record."""

    label: str
    problems: list[str] = field(default_factory=list)
    records: dict[int, RecordSeen] = field(default_factory=dict)


class _HeadSplit:
    """Finds where an HTTP head ends in a block read piece by piece."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.head: bytes | None = None
        self.overlong = False

    def feed(self, chunk: bytes) -> bytes:
        """The part of ``chunk`` that is payload."""
        if self.head is not None or self.overlong:
            return chunk
        self.buffer += chunk
        found = HEAD_END.search(self.buffer)
        if found:
            self.head = bytes(self.buffer[: found.end()])
            rest = bytes(self.buffer[found.end() :])
            self.buffer = bytearray()
            return rest
        self.overlong = len(self.buffer) > MAX_HEAD
        return b""


def check_warc(stream: IO[bytes], label: str) -> WarcCheck:
    """Every record of one WARC stream checked; never raises for what the file holds."""
    check = WarcCheck(label)
    records = Records(stream)
    iterator = iter(records)
    start = records.offset  # of the record being read
    broken: int | None = None  # the last record found incomplete, where a cut file ends
    while True:
        try:
            record = next(iterator)
        except StopIteration:
            break
        except READ_ERRORS as exc:
            check.problems.append(f"{label}#{start}: malformed WARC: {one_line(exc)}")
            break
        errors_before = records.err_count
        try:
            notes, seen = _check_record(record, records)
            start = records.next_offset()
        except READ_ERRORS as exc:
            check.problems.append(f"{label}#{start}: malformed record: {one_line(exc)}")
            break
        where = f"{label}#{seen.offset} {seen.record_id or '(no WARC-Record-ID)'}"
        where += f" {seen.target_uri}" if seen.target_uri else ""
        if records.err_count > errors_before:
            notes.append("not followed by two blank lines (wrong Content-Length?)")
        check.problems.extend(f"{where}: {note}" for note in notes)
        check.records[seen.offset] = seen
        incomplete = any(note.startswith(("no Content-Length", "truncated")) for note in notes)
        broken = seen.offset if incomplete else None
    if not records.complete:
        at = start if broken is None else broken
        check.problems.append(f"{label}#{at}: truncated: the file ends inside a record")
    return check


def _check_record(record: Any, records: Any) -> tuple[list[str], RecordSeen]:
    fields = record.rec_headers
    rec_type = (fields.get_header("WARC-Type") or "").lower()
    uri = fields.get_header("WARC-Target-URI") or ""
    notes = [f"no {name}" for name in MANDATORY if not fields.get_header(name)]
    block = _declared(fields, "WARC-Block-Digest", notes)
    payload = _declared(fields, "WARC-Payload-Digest", notes)
    http = (fields.get_header("Content-Type") or "").lower().startswith("application/http")
    profile = fields.get_header("WARC-Profile") or ""
    if rec_type in BLOCK_DIGESTED and not fields.get_header("WARC-Block-Digest"):
        notes.append("no WARC-Block-Digest")
    wants_payload = (rec_type == "response" and http) or (
        rec_type == "revisit" and profile.endswith("identical-payload-digest")
    )
    if wants_payload and not fields.get_header("WARC-Payload-Digest"):
        notes.append("no WARC-Payload-Digest")
    block_hash = block.hasher() if block else None
    payload_hash = payload.hasher() if payload and rec_type != "revisit" else None
    split = _HeadSplit() if http else None
    chunked: bool | None = None
    kept: list[bytes] | None = None  # a chunked payload, to try its de-chunked digest
    declared, total = content_length(record), 0
    while chunk := record.raw_stream.read(1 << 16):
        total += len(chunk)
        if block_hash:
            block_hash.update(chunk)
        part = split.feed(chunk) if split else chunk
        if chunked is None and split and split.head is not None:
            chunked = is_chunked(parse_head(split.head)[1])
            kept = [] if chunked and payload_hash else None
        if kept is not None and total > MAX_DECHUNK:
            kept = None
        elif kept is not None:
            kept.append(part)
        if payload_hash:
            payload_hash.update(part)
    seen = RecordSeen(
        offset=records.get_record_offset(),
        length=records.get_record_length(),
        rec_type=rec_type,
        record_id=fields.get_header("WARC-Record-ID") or "",
        target_uri=uri,
        payload_digest=fields.get_header("WARC-Payload-Digest") or "",
        refers_to=fields.get_header("WARC-Refers-To") or "",
    )
    if total < declared:
        notes.append(f"truncated: {total} of {declared} bytes")
    if split and split.head is None and rec_type != "revisit":
        notes.append("HTTP head does not end")
    if block and block_hash and block_hash.digest() != block.value:
        notes.append(
            f"WARC-Block-Digest mismatch: recorded {block}, computed {computed(block_hash, block)}"
        )
    if (
        payload
        and payload_hash
        and payload_hash.digest() != payload.value
        and not (kept is not None and _dechunked_matches(b"".join(kept), payload))
    ):
        notes.append(
            f"WARC-Payload-Digest mismatch: recorded {payload},"
            f" computed {computed(payload_hash, payload)}"
        )
    return notes, seen


def _declared(fields: Any, name: str, notes: list[str]) -> Digest | None:
    text = fields.get_header(name)
    if not text:
        return None
    try:
        return Digest.parse(text)
    except ValueError as exc:
        notes.append(f"{name} unreadable: {exc}")
        return None


def _dechunked_matches(payload: bytes, digest: Digest) -> bool:
    try:
        entity = dechunk(payload)
    except ValueError:
        return False
    return digest.matches(entity)


def check_revisits(checks: Iterable[WarcCheck]) -> list[str]:
    """Revisits whose payload digest differs from the record they refer to (when it is here),
    and record ids used twice."""
    checks = list(checks)
    by_id: dict[str, tuple[WarcCheck, RecordSeen]] = {}
    problems = []
    for check in checks:
        for seen in check.records.values():
            if not seen.record_id:
                continue
            if seen.record_id in by_id:
                first = by_id[seen.record_id]
                problems.append(
                    f"{check.label}#{seen.offset} {seen.record_id}: record id also used at"
                    f" {first[0].label}#{first[1].offset}"
                )
            else:
                by_id[seen.record_id] = (check, seen)
    for check in checks:
        for seen in check.records.values():
            if seen.rec_type != "revisit" or seen.refers_to not in by_id:
                continue
            original = by_id[seen.refers_to][1]
            if not _same_digest(seen.payload_digest, original.payload_digest):
                problems.append(
                    f"{check.label}#{seen.offset} {seen.record_id} {seen.target_uri}: payload"
                    f" digest differs from the record it refers to ({seen.refers_to})"
                )
    return problems


def _same_digest(a: str, b: str) -> bool:
    try:
        first, second = Digest.parse(a), Digest.parse(b)
    except ValueError:
        return False
    return first.algorithm != second.algorithm or first.value == second.value
