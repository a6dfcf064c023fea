"""Reading WARC records, whoever wrote them: the record iterator, HTTP heads and payloads,
chunked framing, dates and labelled digests.

Any WARC/1.0 or 1.1 file, gzip per record or uncompressed; digests in any algorithm hashlib knows
(sha1, sha256, sha512, md5, ...) written in base32, hex or base64. Header bytes are decoded
latin-1, one byte to one character, as pagewatch's fetch keeps them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any
from zipfile import BadZipFile

from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import DecompressingBufferedReader
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeadersParserException
from warcio.utils import BUFF_SIZE

from .models import header

Headers = tuple[tuple[str, str], ...]

MAX_HEAD = 1024 * 1024  # an HTTP head longer than this is not one
HEAD_END = re.compile(rb"\r?\n\r?\n")

#: what warcio, zlib and zipfile raise on a file that is not (wholly) a WARC
READ_ERRORS = (
    ArchiveLoadFailed,
    StatusAndHeadersParserException,
    zlib.error,
    BadZipFile,
    EOFError,
    OSError,
    ValueError,
)


class _StrictReader(DecompressingBufferedReader):  # type: ignore[misc]
    """warcio's reader, except that a gzip member corrupt after its first block raises zlib.error
    instead of being cut short with a note on stderr."""

    def _decompress(self, data: bytes) -> bytes:
        if self.decompressor and data and self.num_block_read:
            return self.decompressor.decompress(data)  # type: ignore[no-any-return]
        return super()._decompress(data)  # type: ignore[no-any-return]


class Records(ArchiveIterator):  # type: ignore[misc]
    """warcio's record iterator, made strict: a corrupt gzip member raises, a file that ends
    inside one leaves ``complete`` False, and a record not followed by blank lines is counted in
    ``err_count`` rather than noted on stderr (callers report both)."""

    INC_RECORD = ""

    def __init__(self, stream: IO[bytes], no_record_parse: bool = True):
        super().__init__(stream, no_record_parse=no_record_parse)
        self.reader = _StrictReader(self.fh, block_size=BUFF_SIZE)
        self.complete = True

    def next_offset(self) -> int:
        """Where the next record starts, the current one read to its end. (warcio's running
        offset is off when the file ends inside a gzip member; member lengths are not.)"""
        offset, length = self.get_record_offset(), self.get_record_length()
        if self.reader is not None and self.reader.decompressor is not None:
            return int(offset + length)
        return int(self.offset)

    def close(self) -> None:
        decompressor = self.reader.decompressor if self.reader else None
        if decompressor is not None and not decompressor.eof:
            self.complete = False
        super().close()


def content_length(record: Any) -> int:
    value = record.rec_headers.get_header("Content-Length") or "0"
    return int(value) if value.strip().isdigit() else 0


def read_block(stream: IO[bytes], length: int) -> bytes:
    chunks: list[bytes] = []
    while length > 0:
        chunk = stream.read(min(length, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        length -= len(chunk)
    return b"".join(chunks)


def split_head(block: bytes) -> tuple[bytes, bytes] | None:
    """An HTTP block as (head, payload); None when no head ends within `MAX_HEAD` bytes."""
    found = HEAD_END.search(block, 0, MAX_HEAD + 4)
    if found is None:
        return None
    return block[: found.end()], block[found.end() :]


def parse_head(head: bytes) -> tuple[str, Headers]:
    """Status or request line and headers, decoded latin-1 (byte for byte), continuations joined."""
    lines = head.decode("latin-1").replace("\r\n", "\n").rstrip("\n").split("\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
        elif ":" in line:
            name, value = line.split(":", 1)
            headers.append((name.rstrip(" \t"), value.strip(" \t")))
    return lines[0].strip(), tuple(headers)


def status_of(line: str) -> int | None:
    """The status code of an ``HTTP/x y reason`` line, or None when it is not a response."""
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].upper().startswith("HTTP/") or not parts[1].isdigit():
        return None
    return int(parts[1])


def is_chunked(headers: Headers) -> bool:
    return "chunked" in (header(headers, "transfer-encoding") or "").lower()


def dechunk(data: bytes) -> bytes:
    """Undo chunked transfer framing; ValueError when ``data`` is not (wholly) chunked."""
    out: list[bytes] = []
    pos = 0
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            raise ValueError("chunk size line missing")
        size = int(data[pos:end].split(b";", 1)[0].strip() or b"x", 16)
        pos = end + 1
        if size == 0:
            return b"".join(out)
        if pos + size > len(data):
            raise ValueError("chunk runs past the end of the payload")
        out.append(data[pos : pos + size])
        pos += size
        if data.startswith(b"\r\n", pos):
            pos += 2
        elif data.startswith(b"\n", pos):
            pos += 1
        else:
            raise ValueError("chunk not followed by a line break")


_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def parse_warc_date(value: str) -> datetime:
    """A WARC-Date as an aware UTC datetime; ValueError when it is not one."""
    text = _FRACTION.sub(r"\1", value.strip(), count=1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


_ALGORITHMS = {"sha1": "sha1", "sha-1": "sha1", "md5": "md5"}
_ALGORITHMS.update({f"sha{n}": f"sha{n}" for n in (224, 256, 384, 512)})
_ALGORITHMS.update({f"sha-{n}": f"sha{n}" for n in (224, 256, 384, 512)})
_HEX = re.compile(r"[0-9a-fA-F]+")


@dataclass(frozen=True)
class Digest:
    """A labelled digest (``algorithm:value``) decoded to its bytes."""

    algorithm: str  # hashlib's name
    value: bytes
    text: str  # as written

    @classmethod
    def parse(cls, text: str) -> Digest:
        """ValueError for an unknown algorithm or a value of the wrong length or encoding."""
        label, sep, encoded = text.strip().partition(":")
        algorithm = _ALGORITHMS.get(label.lower())
        if not sep or algorithm is None:
            raise ValueError(f"unknown digest algorithm in {text!r}")
        size = hashlib.new(algorithm).digest_size
        return cls(algorithm, _decode(encoded.strip(), size, text), text.strip())

    def hasher(self) -> Any:
        return hashlib.new(self.algorithm)

    def matches(self, *candidates: bytes) -> bool:
        """Whether any of ``candidates`` has this digest."""
        return any(hashlib.new(self.algorithm, data).digest() == self.value for data in candidates)

    def key(self) -> str:
        """The same digest however it was written."""
        return f"{self.algorithm}:{self.value.hex()}"

    def __str__(self) -> str:
        return self.text


def _decode(encoded: str, size: int, text: str) -> bytes:
    if len(encoded) == 2 * size and _HEX.fullmatch(encoded):
        return bytes.fromhex(encoded)
    b32 = encoded.upper().rstrip("=")
    b64 = encoded.rstrip("=")
    b64 += "=" * (-len(b64) % 4)
    attempts: list[Callable[[], bytes]] = [
        lambda: base64.b32decode(b32 + "=" * (-len(b32) % 8)),
        lambda: base64.b64decode(b64, validate=True),
        lambda: base64.b64decode(b64, altchars=b"-_", validate=True),
    ]
    for attempt in attempts:
        try:
            value = attempt()
        except (binascii.Error, ValueError):
            continue
        if len(value) == size:
            return value
    raise ValueError(f"digest value of the wrong length or encoding in {text!r}")


def one_line(exc: BaseException) -> str:
    """An exception's message on one short printable line (warcio quotes binary garbage)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return "".join(char if char.isprintable() else "?" for char in text)[:200]
