"""WACZ 1.1.1 packages: writing one around a bundle's WARC, and opening one safely.

Layout written: ``archive/data.warc.gz`` and ``indexes/index.cdxj`` stored (not deflated, as the
spec asks, so replay tools can read records by range), ``pages/pages.jsonl`` (one page per
capture: each is a dated snapshot an archivist may want to open), ``datapackage.json`` (a
SHA-256 and byte count for every file) and ``datapackage-digest.json``.

The CDXJ lines are computed while the WARC is written, from the offsets and lengths of its gzip
members, in exactly the form Webrecorder's ``cdxj-indexer`` writes (SURT key, 14-digit
timestamp, JSON with string values; ``filename`` relative to ``archive/``) and sorted; the tests
compare them with that indexer's output. Indexing during the write saves a second pass over the
WARC.

Opening never trusts the zip: before any member is read, names that are absolute, hold ``..``,
backslashes or drive letters, duplicates, encrypted or symlink members, and bombs (too many
members, too large a declared total, too high a compression ratio) are refused; members are then
read as streams capped at their declared size. Checking a package's contents is `manifest`'s.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import surt

from .errors import BundleError
from .warc import Written

WACZ_VERSION = "1.1.1"
WARC_NAME = "data.warc.gz"
WARC_MEMBER = "archive/" + WARC_NAME
INDEX_MEMBER = "indexes/index.cdxj"
PAGES_MEMBER = "pages/pages.jsonl"
MANIFEST = "datapackage.json"
MANIFEST_DIGEST = "datapackage-digest.json"
_MIME_END = re.compile(r"[;\s]")
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ZipLimits:
    """What a package may declare before we refuse to read it."""

    max_members: int = 10_000
    max_total: int = 64 * 1024**3  # declared uncompressed bytes, all members together
    max_ratio: int = 200  # uncompressed : compressed, for members larger than ratio_floor
    ratio_floor: int = 1024 * 1024
    max_json: int = 256 * 1024**2  # datapackage.json and its digest, read whole


DEFAULT_LIMITS = ZipLimits()


# --- writing ------------------------------------------------------------------------------


def cdxj_line(written: Written) -> str:
    """The index line `cdxj-indexer` writes for this record (with ``recordDigest``)."""
    fields: dict[str, str] = {"url": written.target_uri}
    mime = "warc/revisit" if written.rec_type == "revisit" else written.mime
    if mime is not None:
        fields["mime"] = _MIME_END.split(mime, maxsplit=1)[0].strip()
    if written.status is not None and written.rec_type in ("response", "revisit"):
        fields["status"] = str(written.status)
    if written.payload_digest:
        fields["digest"] = written.payload_digest
    fields["length"] = str(written.length)
    fields["offset"] = str(written.offset)
    fields["filename"] = WARC_NAME
    fields["recordDigest"] = written.record_digest
    try:
        key = surt.surt(written.target_uri)
    except Exception:  # surt raises assorted errors on odd URIs; cdxj-indexer falls back too
        key = written.target_uri
    return f"{key} {written.date.strftime('%Y%m%d%H%M%S')} {json.dumps(fields)}"


def page_entry(written: Written, title: str) -> dict[str, Any]:
    return {
        "id": f"capture-{written.capture_id}",
        "url": written.target_uri,
        "ts": written.date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "title": title,
    }


def write_package(
    out: Path,
    warc: Path,
    warc_sha256: str,
    index: list[str],
    pages: list[dict[str, Any]],
    *,
    created: datetime,
    title: str,
    description: str,
    software: str,
) -> None:
    """Write the WACZ zip at ``out`` around the finished WARC file ``warc``."""
    stamp = created.astimezone(UTC)
    when = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)
    header = {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}
    page_lines = [json.dumps(header)] + [json.dumps(page, ensure_ascii=False) for page in pages]
    index_bytes = "".join(line + "\n" for line in sorted(index)).encode("utf-8")
    pages_bytes = "".join(line + "\n" for line in page_lines).encode("utf-8")
    resources = [
        _resource(WARC_MEMBER, "sha256:" + warc_sha256, warc.stat().st_size),
        _resource(INDEX_MEMBER, _sha256(index_bytes), len(index_bytes)),
        _resource(PAGES_MEMBER, _sha256(pages_bytes), len(pages_bytes)),
    ]
    manifest = {
        "profile": "data-package",
        "resources": resources,
        "wacz_version": WACZ_VERSION,
        "title": title,
        "description": description,
        "created": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "software": software,
    }
    manifest_bytes = json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8")
    digest = {"path": MANIFEST, "hash": _sha256(manifest_bytes)}
    with zipfile.ZipFile(out, "w", allowZip64=True) as package:
        info = _info(WARC_MEMBER, when, zipfile.ZIP_STORED)
        info.file_size = warc.stat().st_size
        with open(warc, "rb") as source, package.open(info, "w") as target:
            shutil.copyfileobj(source, target, 1 << 20)
        package.writestr(_info(INDEX_MEMBER, when, zipfile.ZIP_STORED), index_bytes)
        package.writestr(_info(PAGES_MEMBER, when, zipfile.ZIP_DEFLATED), pages_bytes)
        package.writestr(_info(MANIFEST, when, zipfile.ZIP_DEFLATED), manifest_bytes)
        digest_bytes = json.dumps(digest, indent=2).encode("utf-8")
        package.writestr(_info(MANIFEST_DIGEST, when, zipfile.ZIP_DEFLATED), digest_bytes)


def _resource(path: str, digest: str, size: int) -> dict[str, Any]:
    return {"name": path.rsplit("/", 1)[-1], "path": path, "hash": digest, "bytes": size}


def _info(name: str, when: tuple[int, ...], compression: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, when[:6])  # type: ignore[arg-type]
    info.compress_type = compression
    info.external_attr = (stat.S_IFREG | 0o644) << 16
    return info


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- opening safely -----------------------------------------------------------------------


def is_zip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


def open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"not a readable WACZ (zip): {exc}", path) from exc


def unsafe_name(name: str) -> str | None:
    """Why a member name could land outside the package when extracted, or None."""
    if not name:
        return "empty member name"
    if "\\" in name:
        return "backslash in member name"
    if name.startswith("/") or _DRIVE.match(name):
        return "absolute path"
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        return "path escapes the package"
    if any(part in ("", ".") for part in parts):
        return "not a normal relative path"
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        return "control character in member name"
    return None


def screen(package: zipfile.ZipFile, limits: ZipLimits) -> list[str]:
    """Everything wrong with the zip's directory, found before any member is read."""
    infos = package.infolist()
    if len(infos) > limits.max_members:
        return [f"{len(infos)} members, over the cap of {limits.max_members} (zip bomb?)"]
    problems: list[str] = []
    seen: set[str] = set()
    total = 0
    for info in infos:
        name = show(info.filename)
        reason = unsafe_name(info.filename)
        if reason:
            problems.append(f"{name}: {reason}")
        if info.filename in seen:
            problems.append(f"{name}: duplicate member")
        seen.add(info.filename)
        if info.flag_bits & 0x1:
            problems.append(f"{name}: encrypted member")
        if stat.S_ISLNK(info.external_attr >> 16):
            problems.append(f"{name}: symbolic link")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            problems.append(f"{name}: unsupported compression method {info.compress_type}")
        if info.file_size > limits.ratio_floor and (
            info.file_size > limits.max_ratio * max(info.compress_size, 1)
        ):
            ratio = info.file_size // max(info.compress_size, 1)
            problems.append(
                f"{name}: compression ratio {ratio}:1 over the cap of {limits.max_ratio}:1"
                " (zip bomb?)"
            )
        total += info.file_size
    if total > limits.max_total:
        problems.append(
            f"members declare {total:,} bytes, over the cap of {limits.max_total:,} (zip bomb?)"
        )
    return problems


def safe_zip(path: Path, limits: ZipLimits = DEFAULT_LIMITS) -> zipfile.ZipFile:
    """The package opened for reading, or BundleError naming the first unsafe thing in it."""
    package = open_zip(path)
    problems = screen(package, limits)
    if problems:
        package.close()
        raise BundleError(f"refused: {problems[0]}", path)
    return package


class Capped(io.RawIOBase):
    """A member stream that fails rather than yield more than ``limit`` bytes."""

    def __init__(self, stream: IO[bytes], limit: int, name: str):
        self.stream = stream
        self.left = limit
        self.name = name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.stream.read(min(len(buffer), self.left + 1))
        if len(data) > self.left:
            raise BundleError(f"{self.name}: longer than its declared size")
        self.left -= len(data)
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.stream.close()
        super().close()


def member(package: zipfile.ZipFile, info: zipfile.ZipInfo) -> IO[bytes]:
    """A buffered, size-capped stream of one member."""
    raw = Capped(package.open(info), info.file_size, info.filename)
    return io.BufferedReader(raw, 1 << 16)


def warc_members(package: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    return [
        info
        for info in package.infolist()
        if info.filename.startswith("archive/") and info.filename.endswith((".warc", ".warc.gz"))
    ]


def show(name: str) -> str:
    return name if name.isprintable() else repr(name)
