"""Alerts and history as users and scripts see them: the JSON contract and the text views."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .errors import NotFound
from .health import BLIND_CHECKS, Health, RecentCheck, health
from .models import HEALTH_KINDS, Watch, mark
from .store import Store, iso, parse_iso

#: ``withdrawn``: an alert that history imported later no longer supports (kept, never deleted)
STATUSES = ("new", "acked", "withdrawn", "all")


def alert_json(row: dict[str, Any]) -> dict[str, Any]:
    """One alert as `alerts --json` prints it (DESIGN.md's contract fields, then extras)."""
    parts = json.loads(row["context_parts"] or "{}")
    return {
        "id": row["id"],
        "url": row["url"],
        "list": row["list"],
        "group": row["grp"],
        "alias": row["alias"],
        "kind": row["kind"],
        "count_before": row["count_before"],
        "count_after": row["count_after"],
        "last_seen_at": row["last_seen_at"],
        "first_missing_at": row["first_missing_at"],
        "snapshot_before": row["snapshot_before"],
        "snapshot_after": row["snapshot_after"],
        "context": row["context"],
        "status": row["status"],
        # extras
        "capture_before": row["check_before"],
        "capture_after": row["check_after"],
        "final_url": row["final_url"],
        "context_segments": parts.get("segments", []),
        "context_approximate": parts.get("approximate", False),
        "created_at": row["created_at"],
        "acked_at": row["acked_at"],
        "note": row["note"],
        "source": row.get("source", "live"),
        # how much the page shrank: visible text (characters) and raw body (bytes); None: unknown
        "chars_before": row.get("chars_before"),
        "chars_after": row.get("chars_after"),
        "bytes_before": row.get("bytes_before"),
        "bytes_after": row.get("bytes_after"),
    }


def list_alerts(
    store: Store, status: str = "new", list_name: str | None = None
) -> list[dict[str, Any]]:
    return [alert_json(r) for r in store.alerts(status=status, list_name=list_name)]


def get_alert(store: Store, alert_id: int) -> dict[str, Any]:
    return alert_json(store.alert(alert_id))


def ack(store: Store, alert_ids: Sequence[int], now: datetime, note: str = "") -> list[int]:
    return store.ack(alert_ids, now, note)


def window(alert: dict[str, Any]) -> str:
    if alert["kind"] == "restored":
        return f"still missing {alert['last_seen_at']}, back {alert['first_missing_at']}"
    if alert["kind"] == "restored_health":
        return f"still out {alert['last_seen_at']}, back {alert['first_missing_at']}"
    if alert["kind"] in HEALTH_KINDS:
        return f"last captured {alert['last_seen_at']}, raised {alert['first_missing_at']}"
    return f"last seen {alert['last_seen_at']}, first missing {alert['first_missing_at']}"


def show_lines(alert: dict[str, Any], style: Any = None) -> list[str]:
    """`pagewatch show`: the passage with the removed text marked, the window, both hashes.

    ``style(text, kind)`` may colour a removed ("-") or inserted ("+") piece for a terminal.
    """
    kind = alert["kind"]
    if kind in HEALTH_KINDS:
        return _health_lines(alert)
    went = "came back" if kind == "restored" else "went"
    before_label, after_label = (
        ("still missing", "back at      ")
        if kind == "restored"
        else ("last seen at ", "first missing")
    )
    lines = [
        f"Alert {alert['id']}: {kind} · group {alert['group']!r} · alias {alert['alias']!r} {went}",
        f"  url            {alert['url']}",
    ]
    if alert["final_url"] and alert["final_url"] != alert["url"]:
        lines.append(f"  now at         {alert['final_url']}")
    lines += [
        f"  list           {alert['list']}",
        f"  count          {alert['count_before']} -> {alert['count_after']}",
        *_size_lines(alert),
        f"  {before_label}  {alert['last_seen_at']}  snapshot {alert['snapshot_before']}",
        f"  {after_label}  {alert['first_missing_at']}  snapshot {alert['snapshot_after']}",
        f"  captures       #{alert['capture_before']} -> #{alert['capture_after']}",
        _status_line(alert),
        "",
        "Passage"
        + (" (approximate: the diff could not pin it down)" if alert["context_approximate"] else "")
        + ":  [-removed-] {+inserted+}",
    ]
    pieces = []
    for op, text in alert["context_segments"]:
        marked = mark(op, text)
        pieces.append(style(marked, op) if style and marked != text else marked)
    passage = "".join(pieces) if pieces else alert["context"] or "(no passage recorded)"
    lines += ["  " + line for line in passage.splitlines() or [""]]
    return lines


def _status_line(alert: dict[str, Any]) -> str:
    acked = f" at {alert['acked_at']}" if alert["acked_at"] else ""
    note = f" ({alert['note']})" if alert["note"] else ""
    return f"  status         {alert['status']}{acked}{note}"


def _size_lines(alert: dict[str, Any]) -> list[str]:
    """How much the page shrank (or grew) between the two captures, when known."""
    parts = []
    for unit, before, after in (
        ("characters of text", alert.get("chars_before"), alert.get("chars_after")),
        ("bytes", alert.get("bytes_before"), alert.get("bytes_after")),
    ):
        if before is None or after is None:
            continue
        change = f" ({(after - before) * 100 / before:+.0f}%)" if before else ""
        parts.append(f"{before:,} -> {after:,} {unit}{change}")
    return [f"  page size      {part}" for part in parts]


def _health_lines(alert: dict[str, Any]) -> list[str]:
    """`pagewatch show` for an alert about the watch itself (blocked, failing, restored)."""
    says = {
        "blocked": "the watch is blind: its checks meet a stand-in page, not the page",
        "failing": "the watch is failing: no successful capture for several intervals",
        "restored_health": "the watch captures its page again",
    }[alert["kind"]]
    before, after = (
        ("still out at ", "back at      ")
        if alert["kind"] == "restored_health"
        else ("last capture ", "raised at    ")
    )
    snapshot_before = alert["snapshot_before"] or "-"
    snapshot_after = alert["snapshot_after"] or "-"
    return [
        f"Alert {alert['id']}: {alert['kind']} · {says}",
        f"  url            {alert['url']}",
        f"  list           {alert['list']}",
        f"  {before}  {alert['last_seen_at']}  snapshot {snapshot_before}",
        f"  {after}  {alert['first_missing_at']}  snapshot {snapshot_after}",
        f"  checks         #{alert['capture_before']} -> #{alert['capture_after']}",
        _status_line(alert),
        "",
        "Why:",
        f"  {alert['context']}",
    ]


def history(store: Store, url: str, list_name: str | None = None) -> list[dict[str, Any]]:
    """Every check of the watch(es) of ``url``, oldest first."""
    watch_ids = store.watch_id(url, list_name)
    if not watch_ids:
        raise NotFound(f"no history for {url}" + (f" in list {list_name!r}" if list_name else ""))
    out = []
    for row in store.checks(watch_ids):
        out.append(
            {
                "id": row["id"],
                "url": row["url"],
                "list": row["list"],
                "checked_at": row["checked_at"],
                "outcome": row["outcome"],
                "status": row["status"],
                "reason": row["reason"],
                "message": row["message"],
                "final_url": row["final_url"],
                "redirects": json.loads(row["redirects"]),
                "sha256": row["sha256"],
                "counts": row["counts"],
                "source": row["source"],
            }
        )
    return out


def history_line(entry: dict[str, Any], with_list: bool = False) -> str:
    counts = " ".join(f"{g}={n}" for g, n in sorted(entry["counts"].items()))
    status = entry["status"] if entry["status"] is not None else "-"
    sha = (entry["sha256"] or "")[:12] or "-" * 12
    detail = counts if entry["outcome"] == "capture" else f"{entry['reason']}: {entry['message']}"
    if entry["redirects"] and entry["outcome"] == "capture":
        detail += f"  (redirected to {entry['final_url']})"
    when, outcome = entry["checked_at"], entry["outcome"]
    where = f"[{entry['list']}] " if with_list else ""
    source = f"  [{entry['source']}]" if entry.get("source", "live") != "live" else ""
    return f"#{entry['id']:<5} {where}{when}  {outcome:<10} {status:<4} {sha}  {detail}{source}"


def status(store: Store, watches: Sequence[Watch], now: datetime) -> list[Health]:
    """The health of each watch of the watchlists, as `pagewatch status` shows it."""
    recent = store.recent_checks(BLIND_CHECKS)
    times = store.capture_times()
    out = []
    for watch in watches:
        checks = [
            RecentCheck(parse_iso(c["checked_at"]), c["outcome"], c["reason"], c["message"])
            for c in recent.get(watch.key, [])
        ]
        capture, first = times.get(watch.key, (None, None))
        out.append(
            health(
                watch,
                checks,
                parse_iso(capture) if capture else None,
                parse_iso(first) if first else None,
                now,
            )
        )
    return out


def status_json(item: Health, now: datetime) -> dict[str, Any]:
    return {
        "url": item.watch.url,
        "list": item.watch.list,
        "state": item.state,
        "why": item.why,
        "every": item.watch.every,
        "last_check": iso(item.last_check) if item.last_check else None,
        "last_capture": iso(item.last_capture) if item.last_capture else None,
        "due": iso(item.due) if item.due else None,
        "due_now": item.due is None or item.due <= now,
    }


def status_summary(items: Sequence[Health], now: datetime) -> str:
    states = {s: sum(1 for i in items if i.state == s) for s in ("ok", "failing", "blind", "new")}
    due = sum(1 for i in items if i.due is None or i.due <= now)
    checked = [i.last_check for i in items if i.last_check]
    last = f"; last check {iso(max(checked))}" if checked else ""
    counts = ", ".join(f"{n} {s}" for s, n in states.items())
    return f"{len(items)} watches: {counts}; {due} due now{last}"
