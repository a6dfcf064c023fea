"""Evidence out of a workspace: dated WARC/WACZ bundles of its captures, with pagewatch's own
metadata (the watchlist entries, the phrase counts, the alerts, the chain values) inside.

The bundle format itself (records, digests, packaging, verification) is `bundle`'s; this module
chooses what goes in and describes it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from . import __version__
from .alerts import alert_json
from .bundle import BundleSummary, write_bundle
from .errors import NotFound
from .models import NOT_MODIFIED, Redirect, StoredCapture, Watch
from .store import Store, iso, parse_iso, utcnow
from .watchlist import format_interval, load_watchlists

log = logging.getLogger("pagewatch.export")

BUNDLE_FORMAT = "pagewatch-bundle/1"


@dataclass(frozen=True)
class Selection:
    """Which captures an export holds."""

    list_name: str | None = None
    url: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    alert_id: int | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "list": self.list_name,
            "url": self.url,
            "since": iso(self.since) if self.since else None,
            "until": iso(self.until) if self.until else None,
            "alert": self.alert_id,
        }


def export(
    store: Store,
    watches: list[Watch],
    out: Path,
    selection: Selection,
    *,
    now: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> BundleSummary:
    """Write the selected captures (and their metadata) to ``out`` (.wacz or .warc.gz)."""
    if selection.alert_id is not None:
        alert = store.alert(selection.alert_id)
        check_ids = _alert_checks(store, alert)
        rows = list(store.evidence(check_ids=check_ids))
        alerts = [alert]
    else:
        rows = list(
            store.evidence(
                list_name=selection.list_name,
                url=selection.url,
                since=selection.since,
                until=selection.until,
            )
        )
        alerts = _alerts_in(store, selection)
    captures = [r for r in rows if r["sha256"]]
    if not captures:
        raise NotFound("nothing to export: no captures match the selection")
    metadata = _metadata(rows, captures, alerts, watches, selection, now)
    total = len(captures)
    return write_bundle(
        out,
        (_stored(row) for row in captures),
        store.blobs.get,
        metadata,
        created=now,
        progress=(lambda n: progress(n, total)) if progress else None,
    )


def export_alert(root: Path, alert_id: int, out: Path) -> BundleSummary:
    """One alert's evidence package from the workspace at ``root`` (see `export`)."""
    store = Store(root, readonly=True)
    try:
        watches = load_watchlists(root / "watchlists")
        return export(store, watches, out, Selection(alert_id=alert_id), now=utcnow())
    finally:
        store.close()


def _alert_checks(store: Store, alert: dict[str, Any]) -> list[int]:
    """An alert's evidence: its two captures, every check between them, and the capture that
    confirmed it (the first one after)."""
    rows = store.evidence(
        list_name=alert["list"],
        url=alert["url"],
        since=parse_iso(alert["last_seen_at"]),
    )
    ids = []
    for row in rows:
        ids.append(row["id"])
        if row["checked_at"] > alert["first_missing_at"] and row["outcome"] == "capture":
            break
    return ids


def _alerts_in(store: Store, selection: Selection) -> list[dict[str, Any]]:
    """Alerts of the selected watches whose window overlaps the selected time range."""
    found = []
    for alert in store.alerts(status="all", list_name=selection.list_name):
        if selection.url and alert["url"] != selection.url:
            continue
        if selection.since and parse_iso(alert["first_missing_at"]) < selection.since:
            continue
        if selection.until and parse_iso(alert["last_seen_at"]) > selection.until:
            continue
        found.append(alert)
    return found


def _stored(row: dict[str, Any]) -> StoredCapture:
    return StoredCapture(
        capture_id=row["id"],
        list=row["list"],
        watch_url=row["watch_url"],
        target_uri=row["final_url"] or row["watch_url"],
        status=row["status"],
        headers=tuple((k, v) for k, v in json.loads(row["headers"])),
        sha256=row["sha256"],
        captured_at=parse_iso(row["checked_at"]),
        chain=row["chain"] or "",
        source=row["source"],
        redirects=tuple(Redirect(**hop) for hop in json.loads(row["redirects"])),
        not_modified=row["message"] == NOT_MODIFIED,
    )


def _metadata(
    rows: list[dict[str, Any]],
    captures: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
    watches: list[Watch],
    selection: Selection,
    now: datetime,
) -> dict[str, Any]:
    """pagewatch's description of a bundle: machine-readable, one JSON document."""
    by_key = {w.key: w for w in watches}
    keys = dict.fromkeys((r["list"], r["watch_url"]) for r in rows)
    return {
        "format": BUNDLE_FORMAT,
        "software": f"pagewatch {__version__}",
        "created": iso(now),
        "selection": selection.describe(),
        "chain": (
            "chain = sha256(previous chain value, sha256, URL, capture time, status;"
            " joined by newlines), over the workspace's captures in the order stored"
        ),
        "watches": [_watch_entry(key, by_key.get(key), rows) for key in keys],
        "captures": {str(row["id"]): _capture_entry(row) for row in captures},
        "failed_checks": [_failed_entry(row) for row in rows if not row["sha256"]],
        "alerts": [alert_json(alert) for alert in alerts],
    }


def _watch_entry(key: tuple[str, str], watch: Watch | None, rows: list[dict[str, Any]]) -> Any:
    every = next(r["every"] for r in rows if (r["list"], r["watch_url"]) == key)
    entry: dict[str, Any] = {"list": key[0], "url": key[1], "every": format_interval(every)}
    if watch is None:  # no longer in a watchlist: its phrases are not known any more
        return {**entry, "in_watchlist": False, "phrases": {}, "selector": None}
    return {
        **entry,
        "in_watchlist": True,
        "phrases": {g.name: list(g.aliases) for g in watch.groups},
        "selector": watch.selector,
    }


def _capture_entry(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "list": row["list"],
        "watch_url": row["watch_url"],
        "target_uri": row["final_url"] or row["watch_url"],
        "final_url": row["final_url"],
        "captured_at": row["checked_at"],
        "status": row["status"],
        "sha256": row["sha256"],
        "source": row["source"],
        "outcome": row["outcome"],
        "reason": row["reason"],
        "message": row["message"],
        "redirects": json.loads(row["redirects"]),
        "counts": row["counts"],
        "aliases": row["aliases"],
        "chain": row["chain"],
        "chain_prev": row["chain_prev"] or "",
    }


def _failed_entry(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "list": row["list"],
        "watch_url": row["watch_url"],
        "checked_at": row["checked_at"],
        "status": row["status"],
        "reason": row["reason"],
        "message": row["message"],
    }
