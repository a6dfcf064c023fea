"""Watch health: is each watch still seeing its page?

A watch is `failing` when it has had no successful capture for three of its intervals, and
`blind` when its last checks all met a stand-in (a bot wall, a login wall, a 401/403/429/451):
the page may change and pagewatch would not know. Pure: checks and a clock in, verdicts out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .models import Watch

FAILING_INTERVALS = 3
BLIND_CHECKS = 3
BLOCKING_REASONS = frozenset(
    {"suspect", "http_401", "http_403", "http_407", "http_429", "http_451"}
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
