"""History from elsewhere: responses read from WARC/WACZ bundles or fetched from the Wayback
Machine, stored as captures with their original times and bytes.

Each response is matched to the watches of its URL (for pagewatch's own bundles, to the watch
its metadata names), classified exactly as a live capture would be (counted, or kept as
``unusable`` with the reason), and stored under its SHA-256 with its source. A capture already
stored for the watch at the same time with the same body is a duplicate and is skipped, so an
import can be run again, and a backfill resumed, without adding anything twice. Nothing is
compared here: the affected watches are decided again as a whole afterwards (see timeline).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from . import detect
from .analysis import POOL_THRESHOLD, Analysis, analyse, gone_analysis, make_executor
from .check import _capture_row, _count_rows, config_hash, group_fingerprints
from .errors import ArchiveError
from .fetch import GONE_STATUSES, PAGE_STATUSES, FetchPolicy, decode_content
from .models import HEALTH_KINDS, ArchivedResponse, Capture, Redirect, Watch
from .store import Store, iso, utcnow
from .wayback import (
    NOT_ORIGINAL_HEADER,
    WaybackPolicy,
    capture_url,
    fetch_capture,
    list_captures,
)

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("pagewatch.ingest")


@dataclass
class Ingested:
    """What one import or backfill stored."""

    added: int = 0  # new captures (comparable or not)
    unusable: int = 0  # of those, kept as evidence but not comparable
    duplicates: int = 0  # already in the workspace
    unwatched: int = 0  # responses for URLs no watch has
    failed: list[str] = field(default_factory=list)  # what could not be had, one line each
    unlisted: int = 0  # watches whose archive listing could not be read at all
    watches: dict[tuple[str, str], Watch] = field(default_factory=dict)  # every watch touched

    def line(self) -> str:
        return (
            f"{self.added} captures added ({self.unusable} not comparable),"
            f" {self.duplicates} already stored, {self.unwatched} for unwatched URLs,"
            f" {len(self.watches)} watches affected"
            + (f", {len(self.failed)} failed" if self.failed else "")
        )


def normal_url(url: str) -> str:
    """A URL as archives and watchlists may both write it: lower-case scheme and host, no
    default port, no fragment, ``/`` for an empty path."""
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port if parts.port not in (None, {"http": 80, "https": 443}.get(scheme)) else None
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{port}" if port else ""
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


class Matcher:
    """Finds the watches a response belongs to."""

    def __init__(self, watches: Sequence[Watch]):
        self.by_key = {w.key: w for w in watches}
        self.by_url: dict[str, list[Watch]] = {}
        for watch in watches:
            self.by_url.setdefault(normal_url(watch.url), []).append(watch)

    def watches_for(self, response: ArchivedResponse) -> list[Watch]:
        own = response.pagewatch or {}
        key = (str(own.get("list", "")), str(own.get("watch_url", "")))
        if key in self.by_key:
            return [self.by_key[key]]
        if own.get("watch_url"):  # moved to another list since, or the list was renamed
            found = self.by_url.get(normal_url(str(own["watch_url"])), [])
            if found:
                return found
        return self.by_url.get(normal_url(response.target_uri), [])


#: responses analysed together; a batch this full starts a process pool, so both cores work
BATCH = 32
#: analyses kept for captures whose bytes (and everything else read with them) recur
KNOWN_ANALYSES = 256


def ingest(
    store: Store,
    watches: Sequence[Watch],
    responses: Iterable[ArchivedResponse],
    source: str,
    *,
    policy: FetchPolicy = FetchPolicy(),
    on_response: Callable[[ArchivedResponse, str], None] | None = None,
    summary: Ingested | None = None,
) -> Ingested:
    """Store every response that belongs to a watch (see the module doc). ``on_response`` is
    told each response and what became of it (added, unusable, duplicate, unwatched).
    ``summary`` is filled as it goes, so a caller knows what was stored if reading fails."""
    summary = Ingested() if summary is None else summary
    matcher = Matcher(watches)
    seen: dict[tuple[str, str, datetime, str], int] = {}
    batch: list[_Pending] = []
    known: dict[tuple[object, ...], Analysis] = {}  # an unchanged page is read once, not again
    executor: Executor | None = None

    def flush() -> None:
        nonlocal executor
        if len(batch) >= BATCH and executor is None:
            executor = make_executor(POOL_THRESHOLD)
        fresh = {item.key: item for item in batch if item.key not in known}
        jobs = [(item.capture, item.content_type, item.watch, policy) for item in fresh.values()]
        done = executor.map(_analysis_job, jobs) if executor else map(_analysis_job, jobs)
        known.update(zip(fresh, done, strict=True))
        while len(known) > KNOWN_ANALYSES:
            del known[next(iter(known))]
        for item in batch:
            what = _save(store, item, known[item.key], source)
            summary.added += 1
            summary.unusable += what == "unusable"
            if on_response:
                on_response(item.response, what)
        batch.clear()

    try:
        for response in responses:
            targets = matcher.watches_for(response)
            if not targets:
                summary.unwatched += 1
                if on_response:
                    on_response(response, "unwatched")
                continue
            for watch in targets:
                summary.watches[watch.key] = watch
                pending = _prepare(store, watch, response, seen)
                if pending is None:
                    summary.duplicates += 1
                    if on_response:
                        on_response(response, "duplicate")
                    continue
                batch.append(pending)
                if len(batch) >= BATCH:
                    flush()
        flush()
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    return summary


def carry_watching(store: Store, watches: Sequence[Watch], metadata: dict[str, Any]) -> int:
    """What a pagewatch bundle says of its own watching, brought in after its captures: the
    failed checks (so `history` tells the same story) and the health alerts (`blocked`,
    `failing`, `restored_health`), which are observations of that watching, not decisions a
    timeline implies. Each health alert is carried with its checks mapped to this workspace's
    ids; one already here (same watch, kind and window) is not carried twice. Returns the
    number of health alerts carried."""
    matcher = Matcher(watches)
    ids: dict[int, int] = {}  # the bundle's check ids -> this workspace's

    def watch_of(entry: dict[str, Any]) -> tuple[Watch, int] | None:
        probe = ArchivedResponse(str(entry.get("watch_url", "")), 0, (), b"", utcnow(), "",
                                 pagewatch=entry)  # fmt: skip
        found = matcher.watches_for(probe)
        if not found:
            return None
        watch = found[0]
        return watch, store.sync_watch(watch, config_hash(watch), utcnow())

    taken: dict[tuple[int, str, str | None], list[int]] = {}
    for key, entry in sorted(metadata.get("captures", {}).items(), key=lambda kv: int(kv[0])):
        target = watch_of(entry)
        if target is None or not str(key).isdigit():
            continue
        at, sha256 = str(entry.get("captured_at")), entry.get("sha256")
        slot = (target[1], at, sha256)
        if slot not in taken:
            taken[slot] = store.check_ids_at(target[1], at, sha256)
        if taken[slot]:
            ids[int(key)] = taken[slot].pop(0)
    failed = [e for e in metadata.get("failed_checks", []) if isinstance(e, dict)]
    for entry in sorted(failed, key=lambda e: _number(e.get("id"))):
        target = watch_of(entry)
        if target is None:
            continue
        at = str(entry.get("checked_at"))
        slot = (target[1], at, None)
        if slot not in taken:
            taken[slot] = store.check_ids_at(target[1], at, None)
        if taken[slot]:
            check_id = taken[slot].pop(0)
        else:
            check_id = store.add_check(_carried_failure(target, entry)).id
        if _number(entry.get("id")) >= 0:
            ids[_number(entry.get("id"))] = check_id
    carried = 0
    for alert in metadata.get("alerts", []):
        if not isinstance(alert, dict) or alert.get("kind") not in HEALTH_KINDS:
            continue
        target = watch_of({"list": alert.get("list"), "watch_url": alert.get("url")})
        before = ids.get(_number(alert.get("capture_before")))
        after = ids.get(_number(alert.get("capture_after")))
        window = (alert.get("last_seen_at"), alert.get("first_missing_at"))
        if (
            target is None
            or before is None
            or after is None
            or not all(isinstance(t, str) for t in window)
        ):
            log.warning("health alert %s: its checks are not in the bundle; not carried",
                        alert.get("id"))  # fmt: skip
            continue
        row = {
            "watch_id": target[1], "list": target[0].list, "url": target[0].url, "grp": "",
            "alias": "", "kind": alert["kind"], "count_before": 0, "count_after": 0,
            "last_seen_at": window[0], "first_missing_at": window[1],
            "check_before": before, "check_after": after,
            "snapshot_before": alert.get("snapshot_before") or "",
            "snapshot_after": alert.get("snapshot_after") or "",
            "final_url": alert.get("final_url"), "context": alert.get("context", ""),
            "context_parts": "{}", "status": "new", "created_at": iso(utcnow()),
            "source": "import",
        }  # fmt: skip
        carried += store.carry_alert(row) is not None
    return carried


def _number(value: object) -> int:
    """A check id from metadata, or -1 if it is none."""
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _carried_failure(target: tuple[Watch, int], entry: dict[str, Any]) -> dict[str, Any]:
    watch, watch_id = target
    return {
        "watch_id": watch_id,
        "checked_at": str(entry.get("checked_at")),
        "outcome": "failed",
        "reason": str(entry.get("reason", "")),
        "message": str(entry.get("message", "")),
        "status": entry.get("status"),
        "final_url": None,
        "redirects": "[]",
        "headers": "[]",
        "sha256": None,
        "content_type": None,
        "config_hash": config_hash(watch),
        "source": "import",
    }


async def backfill(
    store: Store,
    client: httpx.AsyncClient,
    watches: Sequence[Watch],
    policy: WaybackPolicy,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    on_event: Callable[[Watch, str, int, int], None] | None = None,
) -> Ingested:
    """Each watch's captures from the Wayback Machine, stored with source ``wayback``.

    Resumable: a capture already stored (by its archive time) is not fetched again, so an
    interrupted backfill run again carries on where it stopped. A listing or a capture the
    archive cannot give is noted in ``failed`` and the rest goes on. ``on_event(watch, what,
    done, total)`` reports progress: "listed", then "added"/"unusable"/"duplicate"/"failed".
    """
    summary = Ingested()
    for watch in watches:
        watch_id = store.sync_watch(watch, config_hash(watch), utcnow())
        summary.watches[watch.key] = watch
        try:
            rows = await list_captures(client, watch.url, policy=policy, since=since, until=until)
        except ArchiveError as exc:
            summary.failed.append(str(exc))
            summary.unlisted += 1
            if on_event:
                on_event(watch, "failed", 0, 0)
            continue
        done = store.capture_moments(watch_id, "wayback")
        todo = [row for row in rows if row.captured_at not in done]
        summary.duplicates += len(rows) - len(todo)
        if on_event:
            on_event(watch, "listed", 0, len(todo))
        for number, row in enumerate(todo, 1):
            try:
                response = await fetch_capture(client, row, policy=policy)
            except ArchiveError as exc:
                log.warning("%s: %s", capture_url(row, policy.base_url), exc)
                summary.failed.append(str(exc))
                what = "failed"
            else:
                what = store_response(store, watch, response, "wayback", policy.fetch)
                if what == "duplicate":
                    summary.duplicates += 1
                else:
                    summary.added += 1
                    summary.unusable += what == "unusable"
            if on_event:
                on_event(watch, what, number, len(todo))
    return summary


def store_response(
    store: Store, watch: Watch, response: ArchivedResponse, source: str, policy: FetchPolicy
) -> str:
    """Store one archived response as a capture of ``watch``; returns what it became."""
    pending = _prepare(store, watch, response, {})
    if pending is None:
        return "duplicate"
    analysis = _analysis(pending.capture, pending.content_type, watch, policy)
    return _save(store, pending, analysis, source)


@dataclass(frozen=True)
class _Pending:
    """A response on its way to be stored as a capture of a watch."""

    response: ArchivedResponse
    watch: Watch
    watch_id: int
    capture: Capture
    content_type: str | None
    config_hash: str

    @property
    def key(self) -> tuple[object, ...]:
        """What the capture's analysis depends on: the same key, the same analysis."""
        capture = self.capture
        return (
            capture.sha256, capture.status, self.content_type, self.config_hash, capture.url,
            capture.final_url, bool(capture.redirects), capture.header("content-encoding"),
        )  # fmt: skip


def _prepare(
    store: Store,
    watch: Watch,
    response: ArchivedResponse,
    seen: dict[tuple[str, str, datetime, str], int],
) -> _Pending | None:
    """The capture a response makes, or None if it is a duplicate: a capture of the watch at the
    same time with the same body. ``seen`` counts those met so far in one import: a bundle may
    hold two (a confirming fetch in the same instant), and the second is only a duplicate if the
    workspace has two already."""
    chash = config_hash(watch)
    watch_id = store.sync_watch(watch, chash, utcnow())
    sha256 = hashlib.sha256(response.body).hexdigest()
    captured_at = response.captured_at.astimezone(UTC)
    key = (*watch.key, captured_at, sha256)
    seen[key] = seen.get(key, 0) + 1
    if store.captures_at(watch_id, captured_at, sha256) >= seen[key]:
        return None
    own = response.pagewatch or {}
    capture = Capture(
        url=watch.url,
        final_url=response.target_uri,
        status=response.status,
        headers=response.headers,
        body=response.body,
        sha256=sha256,
        captured_at=captured_at,
        redirects=_redirects(own.get("redirects")),
    )
    return _Pending(response, watch, watch_id, capture, response.header("content-type"), chash)


def _save(store: Store, pending: _Pending, analysis: Analysis, source: str) -> str:
    capture = pending.capture
    row = _capture_row(pending.watch_id, capture, pending.config_hash, pending.content_type)
    row["source"] = source
    row["message"] = f"from {pending.response.origin}"
    counts: list[dict[str, Any]] = []
    if analysis.usable:
        counts = _count_rows(analysis.counts, group_fingerprints(pending.watch))
    else:
        row.update(outcome="unusable", reason=analysis.reason, message=analysis.note)
    store.add_check(
        row, blob=(capture.body, capture.sha256), counts=counts, compared=True, in_order=False
    )
    return "added" if analysis.usable else "unusable"


def _analysis_job(job: tuple[Capture, str | None, Watch, FetchPolicy]) -> Analysis:
    return _analysis(*job)


def _analysis(
    capture: Capture, content_type: str | None, watch: Watch, policy: FetchPolicy
) -> Analysis:
    """The capture read as a live check reads one: gone pages count zero; answers that are not
    the page (see PAGE_STATUSES) and stand-in pages are not comparable."""
    status = capture.status
    if not_original := capture.header(NOT_ORIGINAL_HEADER):
        return Analysis("", {}, False, "not_original", f"not the archived bytes: {not_original}")
    if status in GONE_STATUSES:
        return gone_analysis(watch.groups)
    if status not in PAGE_STATUSES:
        reason = f"http_{status}"
        return Analysis("", {}, False, reason, f"archived answer HTTP {status}, not comparable")
    try:
        decoded = decode_content(
            capture.body, capture.header("content-encoding") or "", policy.max_decoded
        )
    except ValueError as exc:
        return Analysis("", {}, False, "unreadable", f"cannot undo its content-encoding: {exc}")
    content = capture.body if decoded is None else decoded
    analysis = analyse(content, content_type, watch.selector, watch.groups)
    if analysis.usable and analysis.text:
        why = detect.suspect(analysis.text, capture.url, capture.final_url, bool(capture.redirects))
        if why:
            return Analysis(analysis.text, analysis.counts, False, "suspect", why)
    return analysis


def _redirects(value: object) -> tuple[Redirect, ...]:
    if not isinstance(value, list):
        return ()
    hops = []
    for hop in value:
        if isinstance(hop, dict) and {"url", "status", "location"} <= hop.keys():
            hops.append(Redirect(str(hop["url"]), int(hop["status"]), str(hop["location"])))
    return tuple(hops)
