"""A watch's whole history at once.

Live checks compare each new capture with the one before it. History that arrives later (an
imported bundle, a Wayback backfill) can land anywhere in a timeline, so after it is stored the
watch's detection is run again over every capture in capture-time order, by the same rule as
live checking (a change needs a later capture that agrees). The alerts that run implies are then
reconciled with the stored ones: an alert whose window the new captures narrowed keeps its id,
its acknowledgement and its note; only alerts no stored one covers are added; a stored alert
the timeline no longer implies is ``withdrawn`` (kept, never deleted). Running it twice changes
nothing.

Also here: the questions analysts ask of whole timelines (which removals happened around a
date; in which spans of time a phrase was on a page).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .check import Checker, config_hash
from .errors import StoreError, UsageError
from .models import CHANGE_KINDS, REMOVAL_KINDS, Watch
from .store import CheckRow, Store, iso, parse_iso

log = logging.getLogger("pagewatch.timeline")

#: the alert fields that re-detection may move; status, acknowledgement and note stay
_MOVABLE = (
    "alias",
    "count_before",
    "count_after",
    "last_seen_at",
    "first_missing_at",
    "check_before",
    "check_after",
    "snapshot_before",
    "snapshot_after",
    "final_url",
    "context",
    "context_parts",
    "source",
)
_ATTEMPTS = 5


@dataclass(frozen=True)
class Redetected:
    """What re-detecting one watch changed."""

    watch: Watch
    captures: int  # comparable captures in its timeline
    added: tuple[int, ...]  # new alerts
    moved: tuple[int, ...]  # alerts whose window or passage changed (status and note kept)
    stale: tuple[int, ...]  # alerts the timeline no longer implies: now ``withdrawn``, kept
    waiting: bool  # the latest change still awaits a later capture to confirm it


async def redetect(checker: Checker, watch: Watch) -> Redetected:
    """Decide a watch's whole timeline again and reconcile its alerts (see the module doc)."""
    store = checker.store
    watch_id = store.sync_watch(watch, config_hash(watch), checker.now())
    for _ in range(_ATTEMPTS):
        rows, latest = store.timeline(watch_id)
        outcomes, implied, waiting = await _decide(checker, watch, rows)
        existing = store.watch_alerts(watch_id, CHANGE_KINDS)
        updates, inserts, moved, stale = _reconcile(existing, implied)
        changed = {
            row.id: outcomes[row.id]
            for row in rows
            if outcomes[row.id][:2] != (row.outcome, row.compared)
        }
        added = store.settle(watch_id, latest, changed, updates, inserts)
        if added is not None:
            return Redetected(watch, len(rows), tuple(added), moved, stale, waiting)
        log.info("%s: a check arrived while re-detecting; starting over", watch.url)
    raise StoreError(f"{watch.url}: could not re-detect: checks kept arriving")


async def _decide(
    checker: Checker, watch: Watch, rows: Sequence[CheckRow]
) -> tuple[dict[int, tuple[str, bool, str]], list[dict[str, Any]], bool]:
    """Walk the timeline as live checking would have: each capture against the last accepted
    one; a change is accepted when the capture after it agrees, set aside (``unconfirmed``) when
    it does not, and left uncompared when no capture follows yet."""
    outcomes: dict[int, tuple[str, bool, str]] = {}
    implied: list[dict[str, Any]] = []
    open_removals: set[str] = set()
    accepted: CheckRow | None = None
    waiting = False
    for index, current in enumerate(rows):
        if waiting:
            outcomes[current.id] = ("capture", False, "")
            continue
        found: list[dict[str, Any]] = []
        if accepted is not None:
            found = await checker._alerts(watch, accepted, current, None, set(open_removals))
        if found:
            later = rows[index + 1] if index + 1 < len(rows) else None
            if later is None:
                outcomes[current.id] = ("capture", False, "")
                waiting = True
                continue
            if not await checker._agrees(watch, later, found):
                outcomes[current.id] = ("unconfirmed", True, f"check #{later.id} disagreed")
                continue
        outcomes[current.id] = ("capture", True, "")
        for alert in found:
            if alert["kind"] in REMOVAL_KINDS:
                open_removals.add(alert["grp"])
            else:
                open_removals.discard(alert["grp"])
        implied += found
        accepted = current
    return outcomes, implied, waiting


_Updates = list[tuple[int, dict[str, Any]]]
_Plan = tuple[_Updates, list[dict[str, Any]], tuple[int, ...], tuple[int, ...]]


def _reconcile(existing: Sequence[dict[str, Any]], implied: Sequence[dict[str, Any]]) -> _Plan:
    """Match each implied alert to a stored one of the same group and kind whose window overlaps
    it (the same captures first); returns updates, inserts, moved ids and stale ids."""
    free = {row["id"]: row for row in existing}
    updates: list[tuple[int, dict[str, Any]]] = []
    inserts: list[dict[str, Any]] = []
    moved: list[int] = []
    for alert in implied:
        match = _same_captures(free.values(), alert) or _overlapping(free.values(), alert)
        if match is None:
            inserts.append(alert)
            continue
        del free[match["id"]]
        fields = {k: alert[k] for k in _MOVABLE if k in alert and match.get(k) != alert[k]}
        if match["status"] == "withdrawn":  # implied again: back to what it was
            fields["status"] = "acked" if match["acked_at"] else "new"
        if fields:
            updates.append((match["id"], fields))
            if _window_moved(match, alert):
                moved.append(match["id"])
    stale = tuple(sorted(i for i, row in free.items() if row["status"] != "withdrawn"))
    updates += [(alert_id, {"status": "withdrawn"}) for alert_id in stale]
    return updates, inserts, tuple(moved), stale


def _same_captures(rows: Any, alert: dict[str, Any]) -> dict[str, Any] | None:
    for row in rows:
        if (row["grp"], row["kind"], row["check_before"], row["check_after"]) == (
            alert["grp"],
            alert["kind"],
            alert["check_before"],
            alert["check_after"],
        ):
            return dict(row)
    return None


def _overlapping(rows: Any, alert: dict[str, Any]) -> dict[str, Any] | None:
    start, end = parse_iso(alert["last_seen_at"]), parse_iso(alert["first_missing_at"])
    for row in rows:
        if (row["grp"], row["kind"]) != (alert["grp"], alert["kind"]):
            continue
        if parse_iso(row["last_seen_at"]) <= end and start <= parse_iso(row["first_missing_at"]):
            return dict(row)
    return None


def _window_moved(stored: dict[str, Any], alert: dict[str, Any]) -> bool:
    return (stored["check_before"], stored["check_after"]) != (
        alert["check_before"],
        alert["check_after"],
    )


# -- questions of whole timelines ---------------------------------------------------------


def changes_around(
    store: Store, moment: datetime, days: float, list_name: str | None = None
) -> list[dict[str, Any]]:
    """Every removal whose window overlaps ``days`` either side of ``moment``, earliest first."""
    if days < 0:
        raise UsageError("--days must not be negative")
    try:
        start, end = moment - timedelta(days=days), moment + timedelta(days=days)
    except OverflowError:
        raise UsageError(f"{days:g} days around {moment.date()} run past the calendar") from None
    rows = [
        row
        for row in store.alerts(status="all", list_name=list_name)
        if row["kind"] in REMOVAL_KINDS
        and parse_iso(row["last_seen_at"]) <= end
        and start <= parse_iso(row["first_missing_at"])
    ]
    return sorted(rows, key=lambda r: (r["first_missing_at"], r["id"]))


@dataclass(frozen=True)
class Presence:
    """A span of time in which a phrase group was on a page: from the first capture that had it
    to the last one that still did (``until`` None: still there at the latest capture)."""

    group: str
    since: datetime
    last_seen: datetime
    until: datetime | None  # the first capture without it
    captures: int
    most: int  # the highest count in the span

    def as_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "since": iso(self.since),
            "last_seen": iso(self.last_seen),
            "until": iso(self.until) if self.until else None,
            "captures": self.captures,
            "most": self.most,
        }

    def line(self) -> str:
        end = f"gone by {iso(self.until)}" if self.until else "still there"
        return (
            f"{iso(self.since)} .. {iso(self.last_seen)}  ({end}; {self.captures} captures,"
            f" at most {self.most})"
        )


def presence(rows: Sequence[dict[str, Any]], group: str) -> list[Presence]:
    """The spans in which ``group`` was present on a watch's page, from its checks (as
    Store.checks gives them), comparable captures only, in capture-time order."""
    spans: list[Presence] = []
    since = last = None
    seen = most = 0
    captures = [r for r in rows if r["outcome"] == "capture" and group in r["counts"]]
    for row in sorted(captures, key=lambda r: (r["checked_at"], r["id"])):
        at, count = parse_iso(row["checked_at"]), row["counts"][group]
        if count > 0:
            since = since or at
            last, seen, most = at, seen + 1, max(most, count)
        elif since is not None and last is not None:
            spans.append(Presence(group, since, last, at, seen, most))
            since = last = None
            seen = most = 0
    if since is not None and last is not None:
        spans.append(Presence(group, since, last, None, seen, most))
    return spans


@dataclass(frozen=True)
class PagePresence:
    """One watched page's presence spans of a phrase group."""

    watch: Watch
    spans: tuple[Presence, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.watch.url,
            "list": self.watch.list,
            "group": self.spans[0].group if self.spans else None,
            "spans": [span.as_json() for span in self.spans],
        }


def presence_by_watch(
    store: Store, watches: Sequence[Watch], phrase: str
) -> tuple[str, list[PagePresence]]:
    """The group ``phrase`` names, and its presence spans on every watch that counts it."""
    group = group_named(watches, phrase)
    pages = []
    for watch in watches:
        if not any(g.name == group for g in watch.groups):
            continue
        ids = store.watch_id(watch.url, watch.list)
        rows = store.checks(ids) if ids else []
        pages.append(PagePresence(watch, tuple(presence(rows, group))))
    return group, pages


def group_named(watches: Sequence[Watch], phrase: str) -> str:
    """The phrase group a name or an alias refers to (case-insensitively), across watches."""
    wanted = phrase.casefold()
    for watch in watches:
        for group in watch.groups:
            if group.name.casefold() == wanted:
                return group.name
    for watch in watches:
        for group in watch.groups:
            if any(alias.casefold() == wanted for alias in group.aliases):
                return group.name
    raise UsageError(f"no phrase group or alias {phrase!r} in the watchlists")
