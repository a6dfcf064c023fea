"""One watch through the whole line: fetch, store, extract, count, compare, alert.

`Checker.check` takes one watch; `Checker.run_pass` takes many at once under a global and a
per-host limit. The outside world (client, clock, store, executor) is passed in.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from . import detect, diff, extract, match
from .fetch import GONE_STATUSES, FetchPolicy, decode_content, fetch
from .models import Capture, Context, FailedCheck, GroupCount, PhraseGroup, Watch
from .store import CheckRow, StaleComparison, Store, iso

log = logging.getLogger("pagewatch.check")

#: passes with at least this many watches extract in a process pool, so both cores work
POOL_THRESHOLD = 40


@dataclass(frozen=True)
class Analysis:
    """What extraction and matching made of one body."""

    text: str
    counts: dict[str, GroupCount]
    usable: bool
    reason: str = ""  # why not usable: unreadable | selector_missing | empty
    note: str = ""


@dataclass(frozen=True)
class CheckOutcome:
    """What one check did, for progress lines and the pass summary."""

    watch: Watch
    outcome: str  # capture | unusable | failed
    changed: bool
    alert_ids: tuple[int, ...]
    message: str
    check_id: int


@dataclass
class PassSummary:
    checked: int = 0
    changed: int = 0
    failed: int = 0
    unusable: int = 0
    alert_ids: list[int] = field(default_factory=list)

    def add(self, outcome: CheckOutcome) -> None:
        self.checked += 1
        self.changed += outcome.changed
        self.failed += outcome.outcome == "failed"
        self.unusable += outcome.outcome == "unusable"
        self.alert_ids.extend(outcome.alert_ids)

    def line(self) -> str:
        parts = [
            f"checked {self.checked}",
            f"changed {self.changed}",
            f"failed {self.failed}",
        ]
        if self.unusable:
            parts.append(f"unusable {self.unusable}")
        parts.append(f"new alerts {len(self.alert_ids)}")
        return ", ".join(parts)


def config_hash(watch: Watch) -> str:
    """What the stored counts of a capture depend on besides its body."""
    key = f"{match.fingerprint(watch.groups)}\n{watch.selector or ''}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=256)
def _matcher(groups: tuple[PhraseGroup, ...]) -> match.Matcher:
    return match.compile_groups(groups)


def analyse(
    content: bytes, content_type: str | None, selector: str | None, groups: tuple[PhraseGroup, ...]
) -> Analysis:
    """Visible text and phrase counts of one body. Pure; runs in a worker process on big passes."""
    extracted = extract.visible_text(content, content_type, selector)
    matcher = _matcher(groups)
    if not extracted.readable:
        return Analysis("", {}, False, "unreadable", extracted.note)
    if not extracted.scope_found:
        return Analysis("", {}, False, "selector_missing", extracted.note)
    if not extracted.text.strip():
        return Analysis("", {}, False, "empty", "the page has no visible text")
    return Analysis(extracted.text, match.count(matcher, extracted.text), True)


def _gone_analysis(groups: Sequence[PhraseGroup]) -> Analysis:
    return Analysis("", {g.name: GroupCount(g.name, 0) for g in groups}, True)


class Checker:
    """Checks watches against one workspace with one HTTP client."""

    def __init__(
        self,
        store: Store,
        client: httpx.AsyncClient,
        now: Callable[[], datetime],
        *,
        policy: FetchPolicy = FetchPolicy(),
        executor: Executor | None = None,
        concurrency: int = 16,
        per_host: int = 6,
    ):
        self.store = store
        self.client = client
        self.now = now
        self.policy = policy
        self.executor = executor
        self._global = asyncio.Semaphore(concurrency)
        self._per_host_limit = per_host
        self._hosts: dict[str, asyncio.Semaphore] = {}

    async def run_pass(
        self,
        watches: Iterable[Watch],
        on_done: Callable[[CheckOutcome], None] | None = None,
    ) -> PassSummary:
        """Check every watch once, many at a time; a watch's failure never stops the others."""
        summary = PassSummary()

        async def one(watch: Watch) -> None:
            outcome = await self.check(watch)
            summary.add(outcome)
            if on_done:
                on_done(outcome)

        await asyncio.gather(*(one(w) for w in watches))
        return summary

    async def check(self, watch: Watch) -> CheckOutcome:
        """One check of one watch, stored before this returns."""
        host = urlsplit(watch.url).hostname or ""
        semaphore = self._hosts.setdefault(host, asyncio.Semaphore(self._per_host_limit))
        async with self._global, semaphore:
            result = await fetch(self.client, watch.url, self.now, self.policy)
        for _attempt in range(3):
            try:
                outcome = await self._record(watch, result)
            except StaleComparison:
                continue
            log.info(
                "%s %s [%s] %s",
                outcome.outcome,
                watch.url,
                watch.list,
                outcome.message,
            )
            return outcome
        raise StaleComparison(0)

    async def _analyse(self, content: bytes, content_type: str | None, watch: Watch) -> Analysis:
        loop = asyncio.get_running_loop()
        job = functools.partial(analyse, content, content_type, watch.selector, watch.groups)
        return await loop.run_in_executor(self.executor, job)

    async def _record(self, watch: Watch, result: Capture | FailedCheck) -> CheckOutcome:
        chash = config_hash(watch)
        watch_id = self.store.sync_watch(watch, chash, self.now())
        if isinstance(result, FailedCheck):
            check_id, _ = self.store.record_check(_failed_row(watch_id, result, chash))
            return CheckOutcome(watch, "failed", False, (), result.message, check_id)

        capture = result
        content_type = capture.header("content-type")
        previous = self.store.last_capture(watch_id)
        changed = previous is None or previous.sha256 != capture.sha256
        if capture.status in GONE_STATUSES:
            analysis = _gone_analysis(watch.groups)
        elif previous and _same_input(previous, capture, content_type, chash):
            counts = _stored_counts(previous)  # unchanged page: a hash and a row
            analysis = Analysis("", counts, True)
        else:
            analysis = await self._analyse(capture.content, content_type, watch)

        row = _capture_row(watch_id, capture, chash, content_type)
        blob = (capture.body, capture.sha256)
        if not analysis.usable:
            row.update(outcome="unusable", reason=analysis.reason, message=analysis.note)
            check_id, _ = self.store.record_check(row, blob=blob)
            return CheckOutcome(watch, "unusable", changed, (), analysis.note, check_id)

        alerts: list[dict[str, Any]] = []
        if previous is not None:
            alerts = await self._alerts(watch, watch_id, previous, capture, analysis, chash)
        count_rows = [
            {"grp": c.group, "count": c.count, "aliases": json.dumps(dict(c.aliases))}
            for c in analysis.counts.values()
        ]
        check_id, alert_ids = self.store.record_check(
            row,
            blob=blob,
            counts=count_rows,
            alerts=alerts,
            compared=True,
            compared_with=previous.id if previous else None,
        )
        message = f"HTTP {capture.status}" + ("" if changed else ", unchanged")
        if capture.redirects:
            message += f", redirected to {capture.final_url}"
        if alert_ids:
            message += ", " + ", ".join(f"{a['kind']} {a['grp']}" for a in alerts)
        return CheckOutcome(watch, "capture", changed, tuple(alert_ids), message, check_id)

    async def _alerts(
        self,
        watch: Watch,
        watch_id: int,
        previous: CheckRow,
        capture: Capture,
        analysis: Analysis,
        chash: str,
    ) -> list[dict[str, Any]]:
        before: Analysis | None = None
        if previous.config_hash == chash:
            before_counts = previous.counts
        else:  # the phrases or selector changed since: count the old capture the new way
            before = await self._previous_analysis(previous, watch)
            before_counts = {g: c.count for g, c in before.counts.items()}
        page_gone = capture.status in GONE_STATUSES or (
            bool(capture.redirects) and capture.final_url != previous.final_url
        )
        findings = detect.compare(
            before_counts,
            {g: c.count for g, c in analysis.counts.items()},
            page_gone=page_gone,
            open_removals=self.store.open_removals(watch_id),
        )
        if not findings:
            return []
        if before is None:
            before = await self._previous_analysis(previous, watch)
        matcher = _matcher(watch.groups)
        rows = []
        for finding in findings:
            context = _context(matcher, finding, before.text, analysis.text)
            alias = context.alias if context else ""
            if not alias:
                alias = detect.alias_that_went(
                    dict(before.counts[finding.group].aliases),
                    dict(analysis.counts[finding.group].aliases),
                )
            parts = (
                {"segments": context.segments, "approximate": context.approximate}
                if context
                else {}
            )
            rows.append(
                {
                    "watch_id": watch_id,
                    "list": watch.list,
                    "url": watch.url,
                    "grp": finding.group,
                    "alias": alias,
                    "kind": finding.kind,
                    "count_before": finding.count_before,
                    "count_after": finding.count_after,
                    "last_seen_at": iso(previous.checked_at),
                    "first_missing_at": iso(capture.captured_at),
                    "check_before": previous.id,
                    "snapshot_before": previous.sha256,
                    "snapshot_after": capture.sha256,
                    "final_url": capture.final_url,
                    "context": context.render() if context else "",
                    "context_parts": json.dumps(parts, ensure_ascii=False),
                    "status": "new",
                    "created_at": iso(self.now()),
                }
            )
        return rows

    async def _previous_analysis(self, previous: CheckRow, watch: Watch) -> Analysis:
        if previous.status in GONE_STATUSES or previous.sha256 is None:
            return _gone_analysis(watch.groups)
        body = self.store.blobs.get(previous.sha256)
        content = _undo_encoding(body, self.store, previous.id)
        return await self._analyse(content, previous.content_type, watch)


def _same_input(previous: CheckRow, capture: Capture, content_type: str | None, chash: str) -> bool:
    return (
        previous.sha256 == capture.sha256
        and previous.status == capture.status
        and previous.content_type == content_type
        and previous.config_hash == chash
    )


def _stored_counts(previous: CheckRow) -> dict[str, GroupCount]:
    return {
        grp: GroupCount(grp, count, tuple(previous.alias_counts.get(grp, {}).items()))
        for grp, count in previous.counts.items()
    }


def _context(
    matcher: match.Matcher, finding: detect.Finding, before: str, after: str
) -> Context | None:
    spans_before = match.spans(matcher, finding.group, before)
    spans_after = match.spans(matcher, finding.group, after)
    if finding.kind != "restored":
        return diff.removal_context(before, after, spans_before, spans_after)
    # a restore is a removal seen backwards: what the later text has that the earlier lacked
    found = diff.removal_context(after, before, spans_after, spans_before)
    if found is None:
        return None
    flipped = {"-": "+", "+": "-", "=": "="}
    return Context(
        found.alias,
        tuple((flipped[op], text) for op, text in found.segments),
        found.approximate,
    )


def _undo_encoding(body: bytes, store: Store, check_id: int) -> bytes:
    """A stored raw body with its content-encoding undone, as extraction needs it."""
    row = store.db.execute("SELECT headers FROM checks WHERE id = ?", [check_id]).fetchone()
    headers: list[list[str]] = json.loads(row[0]) if row else []
    encoding = ", ".join(v for k, v in headers if k.lower() == "content-encoding")
    decoded = decode_content(body, encoding, FetchPolicy().max_decoded)
    return body if decoded is None else decoded


def _capture_row(
    watch_id: int, capture: Capture, chash: str, content_type: str | None
) -> dict[str, Any]:
    return {
        "watch_id": watch_id,
        "checked_at": iso(capture.captured_at),
        "outcome": "capture",
        "reason": "",
        "message": "",
        "status": capture.status,
        "final_url": capture.final_url,
        "redirects": _redirects_json(capture.redirects),
        "headers": json.dumps([list(h) for h in capture.headers], ensure_ascii=False),
        "sha256": capture.sha256,
        "content_type": content_type,
        "config_hash": chash,
        "source": "live",
    }


def _failed_row(watch_id: int, failed: FailedCheck, chash: str) -> dict[str, Any]:
    return {
        "watch_id": watch_id,
        "checked_at": iso(failed.checked_at),
        "outcome": "failed",
        "reason": failed.reason,
        "message": failed.message,
        "status": failed.status,
        "final_url": failed.final_url,
        "redirects": _redirects_json(failed.redirects),
        "headers": "[]",
        "sha256": None,
        "content_type": None,
        "config_hash": chash,
        "source": "live",
    }


def _redirects_json(redirects: Sequence[Any]) -> str:
    return json.dumps(
        [{"url": r.url, "status": r.status, "location": r.location} for r in redirects]
    )


def make_executor(watch_count: int) -> Executor | None:
    """A process pool for passes big enough to pay for one; None means a thread of this process.

    Workers are spawned (no fork of a process with an event loop and threads) and exit on their
    own when this process dies, even by SIGKILL, so a killed pass leaves no orphans behind.
    """
    workers = min(os.cpu_count() or 1, 4)
    if watch_count < POOL_THRESHOLD or workers < 2:
        return None
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
        initargs=(os.getpid(),),
    )


def _worker_init(parent: int) -> None:
    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch_parent, name="pagewatch-parent-watch", daemon=True).start()
