"""Watch health: is each watch still seeing its page?

A watch is `failing` when it has had no successful capture for three of its intervals, and
`blind` when its last checks all met a stand-in (a bot wall, a login wall, an empty page, a
401/403/429/451): the page may change and pagewatch would not know. Each such spell raises one
alert (`failing`, `blocked`), and the first successful capture after it one `restored_health`.
Pure: checks and a clock in, verdicts and alert rows out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .models import Watch

FAILING_INTERVALS = 3
BLIND_CHECKS = 3
BLOCKING_REASONS = frozenset(
    {"suspect", "empty", "http_401", "http_403", "http_407", "http_429", "http_451"}
)


@dataclass(frozen=True)
class RecentCheck:
    checked_at: datetime
    outcome: str
    reason: str
    message: str


@dataclass(frozen=True)
class Health:
    watch: Watch
    state: str  # ok | failing | blind | new
    why: str
    last_check: datetime | None
    last_capture: datetime | None
    due: datetime | None  # None: never checked, due now


def health(
    watch: Watch,
    recent: Sequence[RecentCheck],  # newest first
    last_capture: datetime | None,
    first_check: datetime | None,
    now: datetime,
) -> Health:
    if not recent:
        return Health(watch, "new", "never checked", None, None, None)
    last = recent[0]
    due = last.checked_at + timedelta(seconds=watch.every)
    since = last_capture or first_check or last.checked_at
    blocked = recent[:BLIND_CHECKS]
    if len(blocked) == BLIND_CHECKS and all(c.reason in BLOCKING_REASONS for c in blocked):
        why = f"last {BLIND_CHECKS} checks met a stand-in page: {last.reason}: {last.message}"
        return Health(watch, "blind", why, last.checked_at, last_capture, due)
    if now - since >= timedelta(seconds=FAILING_INTERVALS * watch.every) and (
        last_capture is None or last_capture < last.checked_at
    ):
        seen = f"since {last_capture.isoformat()}" if last_capture else "ever"
        why = f"no capture {seen}; last: {last.outcome} {last.reason}: {last.message}".rstrip(": ")
        return Health(watch, "failing", why, last.checked_at, last_capture, due)
    return Health(watch, "ok", "", last.checked_at, last_capture, due)


def alert_kind(verdict: Health, recent: Sequence[Mapping[str, Any]]) -> str:
    """The health alert a watch's latest checks (newest first) call for ('' for none):
    `blocked` while it is blind; `failing` while it fails, and has failed its last three
    checks (one failed check after the machine was off for days is no spell); and
    `restored_health` at a capture (raised only when it ends a spell that raised one of the
    others: the caller's store knows)."""
    if verdict.state == "blind":
        return "blocked"
    tried = recent[:FAILING_INTERVALS]
    if verdict.state == "failing" and len(tried) == FAILING_INTERVALS:
        return "failing" if all(c["outcome"] in ("failed", "unusable") for c in tried) else ""
    return "restored_health" if recent[0]["outcome"] == "capture" else ""


def alert_row(
    kind: str,
    verdict: Health,
    latest: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    seen: Mapping[str, Any],
) -> dict[str, Any]:
    """The alerts row of a health alert (without watch_id and created_at), with the checks it
    rests on: for `blocked` and `failing`, the last successful capture (``seen``; the first
    check when there was none) and the check that raised it (``latest``); for
    `restored_health`, the last bad check (``previous``) and the capture after it
    (``latest``)."""
    if kind == "restored_health":
        assert previous is not None
        before, after = previous, latest
        why = f"captures again; the check before: {previous['outcome']} {previous['reason']}"
        if previous["message"]:
            why += f": {previous['message']}"
    else:
        before, after, why = seen, latest, verdict.why
    return {
        "list": verdict.watch.list,
        "url": verdict.watch.url,
        "grp": "",
        "alias": "",
        "kind": kind,
        "count_before": 0,
        "count_after": 0,
        "last_seen_at": before["checked_at"],
        "first_missing_at": after["checked_at"],
        "check_before": before["id"],
        "check_after": after["id"],
        "snapshot_before": before["sha256"] or "",
        "snapshot_after": after["sha256"] or "",
        "final_url": after["final_url"],
        "context": why,
        "context_parts": "{}",
        "status": "new",
    }
