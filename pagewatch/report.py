"""`pagewatch report`: the alerts in a range as one self-contained HTML file.

For editors and lawyers who will never install anything: inline CSS, no script, and a
Content-Security-Policy that forbids every request, so the file opens offline and shows the same
thing anywhere. Each alert carries its passage (removed and inserted text marked, flagged phrases
highlighted), its window and the SHA-256 of both captures.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from . import alerts as alerts_api
from .blobs import workspace_error
from .errors import PagewatchError
from .store import Store
from .web.highlight import Piece
from .web.render import render
from .web.views import KINDS, InboxFilter, marked_passage, matcher_for, phrase_groups
from .workspace import select_watches


@dataclass(frozen=True)
class Entry:
    alert: dict[str, Any]  # as `alerts --json` has it
    passage: tuple[Piece, ...]


@dataclass(frozen=True)
class Report:
    entries: tuple[Entry, ...]  # oldest first, by the time the phrase was first missing
    generated_at: datetime
    since: date | None
    list_name: str | None
    workspace: str


def build_report(
    store: Store, root: Path, since: date | None, list_name: str | None, now: datetime
) -> Report:
    chosen = InboxFilter(status="all", list=list_name or "", since=since)
    rows = [
        a
        for a in alerts_api.list_alerts(store, "all", list_name)
        if a["kind"] in KINDS and chosen.admits(a)  # phrases, not the watches' health
    ]
    rows.sort(key=lambda a: (a["first_missing_at"], a["id"]))
    try:
        watches = {w.key: w for w in select_watches(root)}
    except PagewatchError:  # a broken watchlist: mark the alias that went, nothing more
        watches = {}
    entries = []
    for alert in rows:
        groups = phrase_groups(watches.get((alert["list"], alert["url"])), alert)
        entries.append(Entry(alert, marked_passage(alert, matcher_for(groups))))
    return Report(tuple(entries), now, since, list_name, str(root))


def write_report(
    root: Path, out: Path, since: date | None, list_name: str | None, now: datetime
) -> Report:
    """Write the report to ``out`` (whole or not at all) and return what it holds."""
    store = Store(root, readonly=True)
    try:
        report = build_report(store, root, since, list_name, now)
    finally:
        store.close()
    html = render("report.html", report=report)
    target = out.resolve()
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(html)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise workspace_error(exc, target) from exc
    return report
