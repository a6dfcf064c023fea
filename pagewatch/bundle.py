"""Evidence bundles: WACZ 1.1.1 or plain WARC 1.1 files written from stored captures, read back
as archived responses (from pagewatch or any other tool), and verified strictly.

This module is what the rest of pagewatch calls. The record conventions are `warc`'s (writing)
and `records`' (reading), the packaging and zip safety `wacz`'s, the checks `fixity`'s (records)
and `manifest`'s (packages); import reads through `responses`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from . import __version__
from .errors import BundleError, PagewatchError, StoreError, UsageError
from .fixity import VerifyReport, check_revisits, check_warc
from .manifest import verify_package
from .models import StoredCapture
from .responses import MAX_BODY, read_metadata, read_responses
from .wacz import DEFAULT_LIMITS, WARC_NAME, ZipLimits, cdxj_line, is_zip, page_entry, write_package
from .warc import METADATA_URI, RecordWriter

__all__ = [
    "MAX_BODY",
    "BundleSummary",
    "VerifyReport",
    "ZipLimits",
    "read_metadata",
    "read_responses",
    "verify",
    "write_bundle",
]


@dataclass(frozen=True)
class BundleSummary:
    """What `write_bundle` wrote."""

    path: Path
    captures: int
    responses: int
    revisits: int
    bytes: int
    sha256: str  # of the whole bundle file


def bundle_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".wacz"):
        return "wacz"
    if name.endswith(".warc.gz"):
        return "warc"
    raise UsageError(f"{path}: a bundle's name must end in .wacz or .warc.gz")


# --- writing ------------------------------------------------------------------------------


def write_bundle(
    out: Path,
    captures: Iterable[StoredCapture],
    read_body: Callable[[str], bytes],
    metadata: dict[str, Any],
    *,
    created: datetime,
    progress: Callable[[int], None] | None = None,
) -> BundleSummary:
    """Write ``captures`` (bodies from ``read_body(sha256)``) and ``metadata`` to ``out``; the
    suffix (.wacz or .warc.gz) picks the format. Nothing appears under ``out`` until complete,
    and an existing file is never replaced (UsageError)."""
    kind = bundle_kind(out)
    if out.exists():  # checked again, atomically, when the bundle is given its name
        raise UsageError(f"{out}: exists already; bundles are never overwritten")
    software = f"pagewatch {__version__}"
    with ExitStack() as cleanup:
        warc_tmp = _temp_beside(out, ".warc.gz.tmp", cleanup)
        counts = {"response": 0, "revisit": 0}
        index: list[str] = []
        pages: list[dict[str, Any]] = []
        try:
            with open(warc_tmp, "xb") as raw:
                writer = RecordWriter(raw, WARC_NAME if kind == "wacz" else out.name, created)
                writer.warcinfo(
                    {
                        "software": software,
                        "format": "WARC File Format 1.1",
                        "conformsTo": "http://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
                        "description": "pagewatch evidence bundle",
                    }
                )
                index.append(cdxj_line(writer.metadata(metadata)))
                for number, capture in enumerate(captures, 1):
                    try:
                        written, _ = writer.capture(capture, read_body)
                    except PagewatchError:
                        raise
                    except ValueError as exc:
                        raise StoreError(f"capture {capture.capture_id}: {exc}") from exc
                    counts[written.rec_type] += 1
                    index.append(cdxj_line(written))
                    title = f"{capture.watch_url} ({capture.list}, capture {capture.capture_id})"
                    pages.append(page_entry(written, title))
                    if progress:
                        progress(number)
                _durable(raw)
            if kind == "wacz":
                package_tmp = _temp_beside(out, ".tmp", cleanup)
                write_package(
                    package_tmp,
                    warc_tmp,
                    writer.sha256(),
                    index,
                    pages,
                    created=created,
                    title="pagewatch evidence bundle",
                    description=_describe(len(pages), counts),
                    software=software,
                )
                with open(package_tmp, "rb+") as handle:
                    _durable(handle)
                _publish(package_tmp, out)
                digest = _file_sha256(out)
            else:
                _publish(warc_tmp, out)
                digest = writer.sha256()
        except OSError as exc:
            raise BundleError(f"cannot write the bundle: {exc.strerror or exc}", out) from exc
    return BundleSummary(
        path=out,
        captures=len(pages),
        responses=counts["response"],
        revisits=counts["revisit"],
        bytes=out.stat().st_size,
        sha256=digest,
    )


def _temp_beside(out: Path, suffix: str, cleanup: ExitStack) -> Path:
    """A fresh name beside ``out`` (same file system, so the final rename is atomic), removed
    on the way out unless it was renamed into place."""
    path = out.parent / f".{out.name}.{secrets.token_hex(6)}{suffix}"
    cleanup.callback(_remove, path)
    return path


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):  # where nothing could be written, nothing is left
        path.unlink(missing_ok=True)


def _publish(done: Path, out: Path) -> None:
    """Give the finished file its name, atomically, unless the name is taken."""
    try:
        os.link(done, out)  # fails if ``out`` exists, where a rename would replace it
    except FileExistsError:
        raise UsageError(f"{out}: exists already; bundles are never overwritten") from None
    except OSError:  # a file system without hard links
        if out.exists():
            raise UsageError(f"{out}: exists already; bundles are never overwritten") from None
        os.replace(done, out)


def _durable(handle: IO[bytes]) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _describe(captures: int, counts: dict[str, int]) -> str:
    return (
        f"{captures} captures ({counts['response']} responses,"
        f" {counts['revisit']} revisits of an identical body) with pagewatch's metadata"
        f" ({METADATA_URI})"
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --- verifying ----------------------------------------------------------------------------


def verify(path: Path, limits: ZipLimits = DEFAULT_LIMITS) -> VerifyReport:
    """Recompute every digest in a .wacz, .warc.gz or .warc; problems name the culprit. Raises
    BundleError only when ``path`` cannot be opened as one at all."""
    try:
        zipped = is_zip(path)
    except OSError as exc:
        raise BundleError(f"cannot open: {exc.strerror or exc}", path) from exc
    if zipped:
        return verify_package(path, limits)
    with open(path, "rb") as stream:
        start = stream.read(5)
        if not (start.startswith(b"\x1f\x8b") or start == b"WARC/"):
            raise BundleError("not a WARC or WACZ file", path)
        stream.seek(0)
        check = check_warc(stream, path.name)
    problems = check.problems + check_revisits([check])
    return VerifyReport(path, len(check.records), tuple(problems))
