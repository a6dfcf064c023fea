"""What each page of `pagewatch serve` shows, read from the workspace into frozen values.

The alerts and their JSON fields come from `pagewatch.alerts`, health from `pagewatch.health`
(through `alerts.status`); the texts of captures are read back the way `check` reads them
(`fetch.decode_content`, then `extract.visible_text` under the watch's selector) and their
flagged phrases found with `pagewatch.match`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from pagewatch import alerts as alerts_api
from pagewatch import extract, match
from pagewatch.errors import NotFound, PagewatchError, StoreError, UsageError
from pagewatch.fetch import GONE_STATUSES, FetchPolicy, decode_content
from pagewatch.health import Health
from pagewatch.models import PhraseGroup, Watch, header
from pagewatch.store import Store, parse_iso
from pagewatch.workspace import select_watches

from .chart import Chart, Sample, charts
from .highlight import Block, Flagged, Piece, passage, passage_texts, side_by_side

log = logging.getLogger("pagewatch.web")

STATUSES = alerts_api.STATUSES  # new, acked, all
#: alerts about a phrase; others (a watch's health, say) carry no passage
KINDS = ("removed", "page_removed", "restored")
_KIND = re.compile(r"[a-z_]{1,40}")
PAGE_SIZE = 100


# -- the inbox ----------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxFilter:
    """Which alerts the inbox shows; dates bound the day the phrase was first missing (UTC)."""

    status: str = "new"
    list: str = ""
    kind: str = ""
    group: str = ""
    since: date | None = None
    until: date | None = None
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> InboxFilter:
        """From a query string's parameters; UsageError naming a value that is not allowed."""
        status = params.get("status") or "new"
        if status not in STATUSES:
            raise UsageError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
        kind = params.get("kind") or ""
        if kind and not _KIND.fullmatch(kind):
            raise UsageError(f"kind must be an alert kind such as {', '.join(KINDS)}, not {kind!r}")
        page = params.get("page") or "1"
        if not page.isdigit() or int(page) < 1:
            raise UsageError(f"page must be a number from 1, not {page!r}")
        return cls(
            status=status,
            list=params.get("list") or "",
            kind=kind,
            group=params.get("group") or "",
            since=_date(params, "since"),
            until=_date(params, "until"),
            page=int(page),
        )

    def query(self, **changes: Any) -> str:
        """This filter, changed as given, as a query string that leaves out the defaults."""
        chosen = replace(self, **changes)
        pairs = {
            "status": chosen.status if chosen.status != "new" else "",
            "list": chosen.list,
            "kind": chosen.kind,
            "group": chosen.group,
            "since": chosen.since.isoformat() if chosen.since else "",
            "until": chosen.until.isoformat() if chosen.until else "",
            "page": str(chosen.page) if chosen.page != 1 else "",
        }
        text = urlencode({k: v for k, v in pairs.items() if v})
        return "?" + text if text else ""

    def admits(self, alert: Mapping[str, Any]) -> bool:
        """Whether an alert passes every part of the filter but its status."""
        if self.list and alert["list"] != self.list:
            return False
        if self.kind and alert["kind"] != self.kind:
            return False
        if self.group and alert["group"] != self.group:
            return False
        missing = parse_iso(alert["first_missing_at"])
        if self.since and missing < datetime.combine(self.since, time.min, UTC):
            return False
        return not (self.until and missing >= datetime.combine(self.until, time.max, UTC))


def _date(params: Mapping[str, str], name: str) -> date | None:
    text = params.get(name) or ""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{name} must be a date like 2020-12-08, not {text!r}") from None


@dataclass(frozen=True)
class Inbox:
    alerts: tuple[dict[str, Any], ...]  # this page of the chosen alerts, newest first
    counts: Mapping[str, int]  # alerts per status under the rest of the filter
    total: int  # alerts the whole filter chooses
    pages: int
    lists: tuple[str, ...]
    kinds: tuple[str, ...]
    groups: tuple[str, ...]
    filter: InboxFilter
    stamp: str  # changes when alerts arrive or are acknowledged anywhere


def inbox(store: Store, chosen: InboxFilter) -> Inbox:
    every = alerts_api.list_alerts(store, "all")
    admitted = [a for a in every if chosen.admits(a)]
    counts = {
        "new": sum(a["status"] == "new" for a in admitted),
        "acked": sum(a["status"] == "acked" for a in admitted),
        "withdrawn": sum(a["status"] == "withdrawn" for a in admitted),
        "all": len(admitted),
    }
    shown = [a for a in admitted if chosen.status in ("all", a["status"])]
    shown.reverse()  # newest first
    pages = max(1, -(-len(shown) // PAGE_SIZE))
    start = (min(chosen.page, pages) - 1) * PAGE_SIZE
    return Inbox(
        alerts=tuple(shown[start : start + PAGE_SIZE]),
        counts=counts,
        total=len(shown),
        pages=pages,
        lists=tuple(sorted({a["list"] for a in every})),
        kinds=(*KINDS, *sorted({a["kind"] for a in every} - set(KINDS))),
        groups=tuple(sorted({a["group"] for a in every if a["group"]})),
        filter=chosen,
        stamp=stamp(store),
    )


def stamp(store: Store) -> str:
    latest, new = store.alert_stamp()
    return f"{latest}:{new}"


# -- reading captures back ----------------------------------------------------------------


@dataclass(frozen=True)
class CaptureText:
    """A stored capture read back: its visible text as detection saw it, and its title."""

    check_id: int
    checked_at: str
    sha256: str
    status: int | None
    final_url: str | None
    outcome: str
    text: str
    title: str
    note: str = ""  # why there is no text, when there is none


def read_capture(store: Store, check_id: int, selector: str | None) -> CaptureText:
    row = store.check(check_id)
    base = CaptureText(
        check_id=check_id,
        checked_at=row["checked_at"],
        sha256=row["sha256"] or "",
        status=row["status"],
        final_url=row["final_url"],
        outcome=row["outcome"],
        text="",
        title="",
    )
    if not row["sha256"]:
        return replace(base, note="no body was captured")
    try:
        content = _content(store, row)
    except (StoreError, ValueError) as exc:
        return replace(base, note=f"the capture cannot be read: {exc}")
    try:
        title = extract.visible_text(content, row["content_type"], "title").text
        if row["status"] in GONE_STATUSES:
            note = f"HTTP {row['status']}: the page is gone, so every phrase counts as missing"
            return replace(base, title=title, note=note)
        extracted = extract.visible_text(content, row["content_type"], selector)
    except ValueError as exc:  # a selector lxml cannot use
        return replace(base, note=f"the text cannot be extracted: {exc}")
    note = "" if extracted.readable and extracted.scope_found else extracted.note
    return replace(base, text=extracted.text, title=" ".join(title.split()), note=note)


def _content(store: Store, row: Mapping[str, Any]) -> bytes:
    """A capture's body with its content-encoding undone (ValueError when it cannot be)."""
    body = store.blobs.get(row["sha256"])
    headers = tuple((k, v) for k, v in json.loads(row["headers"] or "[]"))
    decoded = decode_content(
        body, header(headers, "content-encoding") or "", FetchPolicy().max_decoded
    )
    return body if decoded is None else decoded


@dataclass(frozen=True)
class RawCapture:
    check_id: int
    sha256: str
    url: str
    checked_at: str
    body: bytes  # exactly as stored, content-encoding intact: its SHA-256 is its name
    text: str  # the body decoded for reading, as text


def raw_capture(store: Store, check_id: int) -> RawCapture:
    row = store.check(check_id)
    if not row["sha256"]:
        raise NotFound(f"capture {check_id} has no body (the check failed)")
    body = store.blobs.get(row["sha256"])
    watch = store.watch(row["watch_id"])
    try:
        content = _content(store, row)
    except ValueError as exc:
        text = f"(the body cannot be decoded: {exc}; download it to see its bytes)"
    else:
        encoding = extract.visible_text(content, row["content_type"]).encoding or "utf-8"
        try:
            text = content.decode(encoding, errors="replace")
        except LookupError:
            text = content.decode("utf-8", errors="replace")
    return RawCapture(check_id, row["sha256"], watch["url"], row["checked_at"], body, text)


# -- one alert ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertPage:
    alert: dict[str, Any]  # as `alerts --json` has it
    watch_id: int
    title: str
    passage: tuple[Piece, ...]
    before: CaptureText
    after: CaptureText
    blocks: tuple[Block, ...]  # the two texts side by side
    compare_note: str  # why there is no side by side, when there is none
    groups: tuple[PhraseGroup, ...]  # the flagged phrases marked in the texts
    evidence: bool  # an evidence package can be downloaded


def alert_page(store: Store, root: Path, alert_id: int, evidence: bool) -> AlertPage:
    row = store.alert(alert_id)
    alert = alerts_api.alert_json(row)
    watch_row = store.watch(row["watch_id"])
    config = _watch_config(root, alert["list"], alert["url"])
    selector = config.selector if config else watch_row["selector"]
    groups = phrase_groups(config, alert)
    matcher = matcher_for(groups)
    before = read_capture(store, row["check_before"], selector)
    after = read_capture(store, row["check_after"], selector)
    pieces = marked_passage(alert, matcher)
    blocks: tuple[Block, ...] = ()
    note = ""
    if before.note and not before.text:
        note = f"capture #{before.check_id}: {before.note}"
    if after.note and not after.text:
        note = (note + "; " if note else "") + f"capture #{after.check_id}: {after.note}"
    if alert["kind"] not in KINDS:  # a health alert: its captures are evidence, not a diff
        note = ""
    elif before.text or after.text:
        blocks = side_by_side(
            before.text, after.text, _flagged(matcher, before.text), _flagged(matcher, after.text)
        )
    return AlertPage(
        alert=alert,
        watch_id=row["watch_id"],
        title=after.title or before.title,
        passage=pieces,
        before=before,
        after=after,
        blocks=blocks,
        compare_note=note,
        groups=groups,
        evidence=evidence,
    )


def phrase_groups(config: Watch | None, alert: Mapping[str, Any]) -> tuple[PhraseGroup, ...]:
    """The phrases to mark for an alert: its watch's groups as the watchlist has them now, and
    at least the alias that went (a watch no list has any more, a group since renamed)."""
    groups = config.groups if config else ()
    if alert["group"] not in {g.name for g in groups} and alert["alias"]:
        groups = (*groups, PhraseGroup(alert["group"], (alert["alias"],)))
    return groups


def marked_passage(alert: Mapping[str, Any], matcher: match.Matcher | None) -> tuple[Piece, ...]:
    """An alert's passage as pieces: removed and inserted text, flagged phrases cut out."""
    said_before, said_after = passage_texts(alert["context_segments"])
    return passage(
        alert["context_segments"], _flagged(matcher, said_before), _flagged(matcher, said_after)
    )


def _watch_config(root: Path, list_name: str, url: str) -> Watch | None:
    """The watch as its watchlist has it now; None when it is gone or the lists do not load."""
    try:
        watches = select_watches(root)
    except PagewatchError as exc:
        log.warning("watchlists do not load: %s", exc)
        return None
    return next((w for w in watches if w.key == (list_name, url)), None)


def matcher_for(groups: Sequence[PhraseGroup]) -> match.Matcher | None:
    try:
        return match.compile_groups(groups)
    except ValueError as exc:
        log.warning("phrases cannot be compiled for marking: %s", exc)
        return None


def _flagged(matcher: match.Matcher | None, text: str) -> Flagged:
    if matcher is None or not text:
        return Flagged(())
    return Flagged.of({g.name: match.spans(matcher, g.name, text) for g in matcher.groups})


# -- one watch ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WatchPage:
    watch: dict[str, Any]  # its database row
    health: Health | None  # None when no watchlist has it any more
    title: str
    checks: tuple[dict[str, Any], ...]  # as `history --json` has them, newest first
    charts: tuple[Chart, ...]
    alerts: tuple[dict[str, Any], ...]  # newest first
    groups: tuple[str, ...]


def watch_page(store: Store, root: Path, watch_id: int, now: datetime) -> WatchPage:
    row = store.watch(watch_id)
    entries = alerts_api.history(store, row["url"], row["list"])
    config = _watch_config(root, row["list"], row["url"])
    health = alerts_api.status(store, [config], now)[0] if config else None
    groups = [g.name for g in config.groups] if config else []
    for entry in entries:
        groups += [g for g in entry["counts"] if g not in groups]
    samples = [
        Sample(parse_iso(e["checked_at"]), e["outcome"], e["reason"], e["counts"]) for e in entries
    ]
    latest = next((e for e in reversed(entries) if e["outcome"] == "capture"), None)
    title = read_capture(store, latest["id"], None).title if latest else ""
    alerts = [a for a in alerts_api.list_alerts(store, "all") if a["url"] == row["url"]]
    return WatchPage(
        watch=row,
        health=health,
        title=title,
        checks=tuple(reversed(entries)),
        charts=charts(samples, groups),
        alerts=tuple(a for a in reversed(alerts) if a["list"] == row["list"]),
        groups=tuple(groups),
    )


# -- the workspace ------------------------------------------------------------------------


@dataclass(frozen=True)
class WatchSummary:
    watch_id: int | None  # None: listed but never checked
    list: str
    url: str
    state: str  # ok | failing | blind | new | unlisted
    why: str
    every: int
    last_check: datetime | None
    last_capture: datetime | None
    due: datetime | None
    new_alerts: int


@dataclass(frozen=True)
class WorkspacePage:
    watches: tuple[WatchSummary, ...]
    states: Mapping[str, int]
    problem: str = ""  # why the watchlists did not load, when they did not
    root: str = field(default="")


def workspace_page(store: Store, root: Path, now: datetime) -> WorkspacePage:
    problem = ""
    try:
        listed = select_watches(root)
    except PagewatchError as exc:
        listed, problem = [], str(exc)
    ids = {(w["list"], w["url"]): w for w in store.watches()}
    new: dict[tuple[str, str], int] = {}
    for alert in alerts_api.list_alerts(store, "new"):
        key = (alert["list"], alert["url"])
        new[key] = new.get(key, 0) + 1
    summaries = []
    for item in alerts_api.status(store, listed, now):
        key = item.watch.key
        known = ids.pop(key, None)
        summaries.append(
            WatchSummary(
                known["id"] if known else None,
                item.watch.list,
                item.watch.url,
                item.state,
                item.why,
                item.watch.every,
                item.last_check,
                item.last_capture,
                item.due,
                new.get(key, 0),
            )
        )
    last = store.capture_times()
    checked = store.last_checked()
    for key, row in ids.items():  # in the database, in no watchlist now
        capture = last.get(key, (None, None))[0]
        summaries.append(
            WatchSummary(
                row["id"],
                row["list"],
                row["url"],
                "unlisted",
                "no watchlist has it any more" if not problem else "watchlists did not load",
                row["every"],
                checked.get(key),
                parse_iso(capture) if capture else None,
                None,
                new.get(key, 0),
            )
        )
    states: dict[str, int] = {}
    for summary in summaries:
        states[summary.state] = states.get(summary.state, 0) + 1
    return WorkspacePage(tuple(summaries), states, problem, str(root))
