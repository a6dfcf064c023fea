"""Whether a pagewatch bundle tells the truth about itself and about where it came from.

Digests (`bundle.verify`) prove that no record changed after it was written. They do not prove
that pagewatch's metadata and the records agree: a WARC-Date is covered by no digest, and a
record can be swapped with its digests recomputed. So for a pagewatch bundle each capture's
record must carry exactly the body digest, time and URL its metadata entry gives, every entry
must have its record, and each entry's chain value must follow from the one before it and those
fields. Against a workspace, each capture must be that workspace's, unedited since it was
chained.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .bundle import verify
from .errors import BundleError
from .ingest import normal_url
from .models import ArchivedResponse
from .responses import read_metadata, read_responses
from .store import Store, chain_value, parse_iso

#: the fields every capture entry of pagewatch's metadata must have, and their types
ENTRY_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": int,
    "list": str,
    "watch_url": str,
    "target_uri": str,
    "captured_at": str,
    "status": int,
    "sha256": str,
    "chain": str,
    "chain_prev": str,
}


def metadata_problems(metadata: dict[str, Any]) -> list[str]:
    """What is malformed in pagewatch's metadata record (each problem names the entry)."""
    problems = []
    for key in ("watches", "failed_checks", "alerts"):
        if not isinstance(metadata.get(key, []), list):
            problems.append(f"metadata: {key!r} is not a list")
    captures = metadata.get("captures")
    if not isinstance(captures, dict):
        return [*problems, "metadata: 'captures' is not an object"]
    for key, entry in captures.items():
        if not isinstance(entry, dict):
            problems.append(f"metadata: capture {key!r} is not an object")
            continue
        wrong = [f for f, kind in ENTRY_FIELDS.items() if not isinstance(entry.get(f), kind)]
        if wrong:
            problems.append(f"metadata: capture {key!r} lacks or mistypes {', '.join(wrong)}")
        elif str(entry["id"]) != key:
            problems.append(f"metadata: capture {key!r} says it is capture {entry['id']}")
        elif _moment(entry["captured_at"]) is None:
            problems.append(f"metadata: capture {key!r} has no valid capture time")
    return problems


def chain_problems(metadata: dict[str, Any]) -> list[str]:
    """Captures whose chain value does not follow from the previous value and their own digest,
    URL, time and status: what a bundle alone can prove of its chain."""
    problems = []
    for key, entry in metadata["captures"].items():
        expected = chain_value(
            entry["chain_prev"],
            entry["sha256"],
            entry.get("final_url"),
            entry["captured_at"],
            entry["status"],
        )
        if expected != entry["chain"]:
            problems.append(f"capture {key}: chain value does not match its digest, URL and time")
    return problems


def record_problems(responses: Iterable[ArchivedResponse], metadata: dict[str, Any]) -> list[str]:
    """Where the records and the metadata disagree: each capture's record must carry the digest,
    time and URL of its entry, once; every entry must have its record, and every response must
    be one of the entries' (an added record would otherwise be imported as a capture)."""
    entries: dict[str, Any] = metadata["captures"]
    seen: dict[str, int] = {}
    problems = []
    for response in responses:
        entry = response.pagewatch
        if entry is None:  # pagewatch writes no response that is not one of its captures
            problems.append(f"{response.origin}: a response that is none of the bundle's captures")
            continue
        key = str(entry.get("id"))
        seen[key] = seen.get(key, 0) + 1
        where = f"{response.origin} (capture {key})"
        if seen[key] > 1:
            problems.append(f"{where}: a second record for the same capture")
        if hashlib.sha256(response.body).hexdigest() != entry.get("sha256"):
            problems.append(f"{where}: its body is not the one the metadata names")
        if response.captured_at != _moment(entry.get("captured_at")):
            problems.append(
                f"{where}: WARC-Date {response.captured_at.isoformat()} is not the capture time"
                f" {entry.get('captured_at')} the metadata gives"
            )
        if response.target_uri != entry.get("target_uri"):
            problems.append(f"{where}: its target URI is not {entry.get('target_uri')}")
        elif not _answers_for(entry):
            problems.append(
                f"{where}: the metadata files it under {entry.get('watch_url')}, which neither"
                " is its URL nor redirects to it"
            )
    missing = sorted((k for k in entries if k not in seen), key=lambda k: (len(k), k))
    problems += [f"capture {key}: in the metadata, but its record is not in the bundle"
                 for key in missing]  # fmt: skip
    return problems


def workspace_problems(store: Store, metadata: dict[str, Any]) -> list[str]:
    """Captures of the bundle that are not this workspace's as it chained them: missing here,
    different here, or edited here since."""
    entries: dict[str, Any] = metadata["captures"]
    rows = store.chained_rows([int(k) for k in entries if str(k).isdigit()])
    problems = []
    for key, entry in entries.items():
        row = rows.get(int(key)) if str(key).isdigit() else None
        if row is None:
            problems.append(f"capture {key}: not in this workspace")
            continue
        differ = [
            name
            for name, ours, theirs in (
                ("digest", row["sha256"], entry["sha256"]),
                ("time", row["checked_at"], entry["captured_at"]),
                ("URL", row["final_url"], entry.get("final_url")),
                ("status", row["status"], entry["status"]),
                ("watch", (row["list"], row["url"]), (entry["list"], entry["watch_url"])),
            )
            if ours != theirs
        ]
        if differ:
            problems.append(
                f"capture {key}: this workspace's capture {key} has another {', '.join(differ)}"
                " (the bundle is not from this workspace, or the capture was changed)"
            )
        elif row["chain"] != entry["chain"]:
            problems.append(f"capture {key}: its chain value differs from this workspace's")
        elif row["chain"] != chain_value(
            row["chain_prev"] or "", row["sha256"], row["final_url"], row["checked_at"],
            row["status"],
        ):  # fmt: skip
            problems.append(
                f"capture {key}: this workspace's chain breaks here (a row was edited or deleted;"
                " `pagewatch fsck` says more)"
            )
    return problems


def _answers_for(entry: dict[str, Any]) -> bool:
    """Is the capture's URL the watched one, or where the watched one's redirects led?"""
    hops = entry.get("redirects") or []
    start = hops[0].get("url") if hops and isinstance(hops[0], dict) else entry.get("target_uri")
    return normal_url(str(start)) == normal_url(str(entry.get("watch_url")))


def _moment(text: object) -> datetime | None:
    try:
        return parse_iso(str(text))
    except ValueError:
        return None


@dataclass(frozen=True)
class BundleCheck:
    """Everything `pagewatch verify` checks of one bundle."""

    checked: int  # records and files whose digests were recomputed
    metadata: dict[str, Any] | None  # pagewatch's metadata, when the bundle has (sound) one
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_bundle(path: Path, store: Store | None = None) -> BundleCheck:
    """Digests, then (for a pagewatch bundle) metadata against records and chain values, then
    (given a workspace) the captures against that workspace. Raises BundleError only when the
    path cannot be opened as a bundle at all."""
    report = verify(path)
    problems = list(report.problems)
    metadata = None
    try:
        metadata = read_metadata(path)
        if metadata is not None:
            shape = metadata_problems(metadata)
            problems += shape
            if not shape:
                problems += chain_problems(metadata)
                problems += record_problems(read_responses(path), metadata)
    except BundleError as exc:
        problems.append(str(exc))
    sound = metadata if metadata is not None and not metadata_problems(metadata) else None
    if store is not None:
        if sound is None:
            problems.append(f"{path}: no sound pagewatch metadata to check against a workspace")
        else:
            problems += workspace_problems(store, sound)
    return BundleCheck(report.checked, sound, tuple(problems))
