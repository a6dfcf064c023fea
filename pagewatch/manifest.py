"""A WACZ's manifest held against its contents: the strict half of `pagewatch verify`.

After `wacz.screen` has passed the zip's directory (nothing is read before that):
``datapackage.json`` must be present and valid JSON, every resource in it must have a safe path,
a hash and a byte count, and each must match its file; a file not listed, or listed and absent,
is a problem. ``datapackage-digest.json`` must hold the hash of ``datapackage.json``. Every WARC
under ``archive/`` is checked record by record (`fixity`) while it is hashed; every line of a CDXJ
index under ``indexes/`` must parse, be in order, and land on the start of a record with the same
length, URI and digest; ``pages/pages.jsonl`` must be JSON lines with a header.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import BundleError
from .fixity import VerifyReport, WarcCheck, check_revisits, check_warc
from .records import Digest
from .wacz import (
    DEFAULT_LIMITS,
    MANIFEST,
    MANIFEST_DIGEST,
    PAGES_MEMBER,
    Capped,
    ZipLimits,
    member,
    open_zip,
    screen,
    show,
    unsafe_name,
)

#: what reading a member whose compressed bytes were tampered with raises
MEMBER_ERRORS = (zipfile.BadZipFile, BundleError, OSError, EOFError, zlib.error)


def verify_package(path: Path, limits: ZipLimits = DEFAULT_LIMITS) -> VerifyReport:
    """Check a WACZ strictly (see the module doc); BundleError only if it is not a zip at all."""
    with open_zip(path) as package:
        problems = screen(package, limits)
        if problems:
            return VerifyReport(path, 0, tuple(problems))
        files = {i.filename: i for i in package.infolist() if not i.is_dir()}
        manifest_bytes = _small(package, files, MANIFEST, limits, problems)
        manifest = _json(manifest_bytes, MANIFEST, problems)
        _check_manifest_digest(package, files, manifest_bytes, limits, problems)
        listed = _listed(manifest, problems)
        for name in files:
            if name not in listed and name not in (MANIFEST, MANIFEST_DIGEST):
                problems.append(f"{name}: not listed in {MANIFEST}")
        for name in listed:
            if name not in files:
                problems.append(f"{name}: listed in {MANIFEST} but missing from the package")
        checks: dict[str, WarcCheck] = {}
        for name, info in files.items():
            if name in listed:
                checks.update(_check_member(package, info, listed[name], problems))
        if not checks:
            problems.append("archive/: no WARC file in the package")
        for check in checks.values():
            problems.extend(check.problems)
        problems.extend(check_revisits(checks.values()))
        indexes = [n for n in files if n.startswith("indexes/") and n.endswith(_INDEX_ENDINGS)]
        if not indexes:
            problems.append("indexes/: no CDXJ index in the package")
        for name in indexes:
            problems.extend(_check_index(package, files[name], checks, limits))
        if PAGES_MEMBER in files:
            problems.extend(_check_pages(package, files[PAGES_MEMBER]))
        else:
            problems.append(f"{PAGES_MEMBER}: missing")
        checked = len(files) + sum(len(c.records) for c in checks.values())
        return VerifyReport(path, checked, tuple(problems))


_INDEX_ENDINGS = (".cdx", ".cdxj", ".cdx.gz")


def _small(
    package: zipfile.ZipFile,
    files: dict[str, zipfile.ZipInfo],
    name: str,
    limits: ZipLimits,
    problems: list[str],
) -> bytes | None:
    info = files.get(name)
    if info is None:
        problems.append(f"{name}: missing")
        return None
    if info.file_size > limits.max_json:
        problems.append(f"{name}: {info.file_size:,} bytes, over the cap of {limits.max_json:,}")
        return None
    try:
        with member(package, info) as stream:
            return stream.read()
    except MEMBER_ERRORS as exc:
        problems.append(f"{name}: unreadable ({exc})")
        return None


def _json(data: bytes | None, name: str, problems: list[str]) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        problems.append(f"{name}: not valid JSON ({exc})")
        return None
    if not isinstance(value, dict):
        problems.append(f"{name}: not a JSON object")
        return None
    return value


def _check_manifest_digest(
    package: zipfile.ZipFile,
    files: dict[str, zipfile.ZipInfo],
    manifest_bytes: bytes | None,
    limits: ZipLimits,
    problems: list[str],
) -> None:
    found = _json(
        _small(package, files, MANIFEST_DIGEST, limits, problems), MANIFEST_DIGEST, problems
    )
    if found is None or manifest_bytes is None:
        return
    if found.get("path") != MANIFEST:
        problems.append(f"{MANIFEST_DIGEST}: path is {found.get('path')!r}, not {MANIFEST!r}")
    recorded = found.get("hash")
    if not isinstance(recorded, str) or not recorded:
        problems.append(f"{MANIFEST_DIGEST}: no hash of {MANIFEST}")
        return
    try:
        digest = Digest.parse(recorded)
    except ValueError as exc:
        problems.append(f"{MANIFEST_DIGEST}: {exc}")
        return
    if hashlib.new(digest.algorithm, manifest_bytes).digest() != digest.value:
        problems.append(f"{MANIFEST}: does not match the hash in {MANIFEST_DIGEST} (edited?)")


def _listed(manifest: dict[str, Any] | None, problems: list[str]) -> dict[str, dict[str, Any]]:
    if manifest is None:
        return {}
    resources = manifest.get("resources")
    if not isinstance(resources, list):
        problems.append(f"{MANIFEST}: no resources list")
        return {}
    listed: dict[str, dict[str, Any]] = {}
    for number, resource in enumerate(resources, 1):
        path = resource.get("path") if isinstance(resource, dict) else None
        if not isinstance(path, str):
            problems.append(f"{MANIFEST}: resource {number} has no path")
            continue
        reason = unsafe_name(path)
        if reason:
            problems.append(f"{MANIFEST}: resource {show(path)}: {reason}")
        elif path in listed:
            problems.append(f"{MANIFEST}: {path} listed twice")
        elif not isinstance(resource.get("hash"), str) or not resource["hash"]:
            problems.append(f"{path}: no hash in {MANIFEST}")
        elif not isinstance(resource.get("bytes"), int):
            problems.append(f"{path}: no byte count in {MANIFEST}")
        else:
            listed[path] = resource
    return listed


class _Tee(io.RawIOBase):
    """Hashes and counts every byte read through it."""

    def __init__(self, stream: IO[bytes], hasher: Any):
        self.stream, self.hasher, self.count = stream, hasher, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.stream.read(len(buffer))
        self.hasher.update(data)
        self.count += len(data)
        buffer[: len(data)] = data
        return len(data)


def _check_member(
    package: zipfile.ZipFile, info: zipfile.ZipInfo, resource: dict[str, Any], problems: list[str]
) -> dict[str, WarcCheck]:
    """Hash one listed member (checking its records on the way when it is a WARC)."""
    name = info.filename
    try:
        digest = Digest.parse(resource["hash"])
    except ValueError as exc:
        problems.append(f"{name}: {exc}")
        return {}
    checks: dict[str, WarcCheck] = {}
    try:
        with member(package, info) as stream:
            tee = _Tee(stream, digest.hasher())
            if name.startswith("archive/") and name.endswith((".warc", ".warc.gz")):
                checks[name.removeprefix("archive/")] = check_warc(
                    io.BufferedReader(tee, 1 << 16), name
                )
            while tee.read(1 << 20):
                pass
    except MEMBER_ERRORS as exc:
        problems.append(f"{name}: unreadable ({exc})")
        return checks
    if tee.hasher.digest() != digest.value:
        problems.append(
            f"{name}: hash mismatch (datapackage.json says {digest},"
            f" file has {digest.text.partition(':')[0]}:{tee.hasher.hexdigest()})"
        )
    if tee.count != resource["bytes"]:
        problems.append(f"{name}: {tee.count} bytes, datapackage.json says {resource['bytes']}")
    return checks


def _index_lines(
    package: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ZipLimits
) -> Iterator[str]:
    stream: IO[bytes] = member(package, info)
    if info.filename.endswith(".gz"):
        cap = max(limits.max_ratio * max(info.compress_size, 1), 64 * 1024**2)
        stream = io.BufferedReader(Capped(gzip.GzipFile(fileobj=stream), cap, info.filename))  # type: ignore[arg-type]
    with stream:
        for raw in _lines(stream, info.filename):
            yield raw.decode("utf-8").rstrip("\n")


#: the longest line an index or page list may have (a CDXJ or page line is well under 4 KB)
MAX_LINE = 1024 * 1024


def _lines(stream: IO[bytes], name: str) -> Iterator[bytes]:
    """The lines of a member, each read with a length cap: memory stays bounded however the
    member was made."""
    number = 0
    while line := stream.readline(MAX_LINE + 1):
        number += 1
        if len(line) > MAX_LINE:
            raise BundleError(f"line {number} is longer than {MAX_LINE:,} bytes", member=name)
        yield line


def _check_index(
    package: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    checks: dict[str, WarcCheck],
    limits: ZipLimits,
) -> list[str]:
    """Each index line parses, and points at the start of a record with its URI and length."""
    problems: list[str] = []
    previous = ""
    number = 0
    try:
        for number, line in enumerate(_index_lines(package, info, limits), 1):
            where = f"{info.filename}:{number}"
            if not line.strip():
                continue
            if line < previous:
                problems.append(f"{where}: not sorted")
            previous = line
            problem = _index_problem(line, checks)
            if problem:
                problems.append(f"{where}: {problem}")
    except (*MEMBER_ERRORS, UnicodeDecodeError) as exc:
        problems.append(f"{info.filename}:{number + 1}: unreadable ({exc})")
    return problems


def _index_problem(line: str, checks: dict[str, WarcCheck]) -> str | None:
    parts = line.split(" ", 2)
    try:
        fields = json.loads(parts[2])
        offset, length = int(fields["offset"]), int(fields["length"])
        filename = str(fields["filename"])
    except (IndexError, ValueError, KeyError, TypeError):
        return "not a CDXJ line with offset, length and filename"
    check = checks.get(filename) or checks.get(filename.removeprefix("archive/"))
    if check is None:
        return f"points into {filename!r}, which is not a WARC of this package"
    seen = check.records.get(offset)
    if seen is None:
        return f"offset {offset} in {filename} is not the start of a record"
    if seen.length != length:
        return f"length {length} differs from the record's {seen.length} at {filename}#{offset}"
    if "url" in fields and fields["url"] != seen.target_uri:
        return f"url differs from the WARC-Target-URI of {filename}#{offset}"
    if fields.get("digest") and seen.payload_digest and fields["digest"] != seen.payload_digest:
        return f"digest differs from the WARC-Payload-Digest of {filename}#{offset}"
    return None


def _check_pages(package: zipfile.ZipFile, info: zipfile.ZipInfo) -> list[str]:
    problems: list[str] = []
    try:
        with member(package, info) as stream:
            for number, raw in enumerate(_lines(stream, info.filename), 1):
                try:
                    page = json.loads(raw)
                except ValueError:
                    problems.append(f"{info.filename}:{number}: not JSON")
                    continue
                wanted = ("format", "id") if number == 1 else ("url", "ts")
                if not isinstance(page, dict) or any(key not in page for key in wanted):
                    problems.append(f"{info.filename}:{number}: lacks {' or '.join(wanted)}")
    except MEMBER_ERRORS as exc:
        problems.append(f"{info.filename}: unreadable ({exc})")
    return problems
