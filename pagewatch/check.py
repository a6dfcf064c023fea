"""One watch through the whole line: fetch, store, extract, count, compare, alert.

A capture is stored (blob, row and counts) before it is compared; the comparison and its alerts
are a second transaction that marks the capture compared. A crash between the two leaves a
capture the next check of the watch compares first, so no alert is lost and none is repeated.
`Checker.run_pass` checks many watches at once under a global and a per-host limit. The outside
world (client, clock, store, executor) is passed in.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from . import detect, extract, health, match
from .analysis import Analysis, analyse, contexts, gone_analysis, store_and_analyse
from .client import Client
from .errors import StoreError, WorkspaceError
from .fetch import GONE_STATUSES, FetchPolicy, decode_content, fetch
from .models import (
    NOT_MODIFIED,
    REMOVAL_KINDS,
    Capture,
    Context,
    FailedCheck,
    GroupCount,
    PhraseGroup,
    Watch,
)
from .store import CheckRow, Store, iso, parse_iso

log = logging.getLogger("pagewatch.check")

#: even with validators, the page is fetched in full when the last full fetch is this old
FULL_FETCH_EVERY = timedelta(hours=24)
#: a removal is confirmed by a second fetch this many seconds after the first (None: never)
CONFIRM_DELAY_S = 3.0
#: a pass warns when the clock reads more than this before the workspace's latest check
CLOCK_SLACK = timedelta(minutes=5)
#: watches whose latest captures a pass reads in one go, ahead of checking them
READ_AHEAD = 256
#: unchanged pages stored within this many seconds of each other share one commit
COMMIT_WINDOW_S = 0.005
#: threads that store new bodies and extract text when a pass has no process pool (not the
#: loop's default executor: name lookups wait in that one, and must not queue behind a slow
#: disk or a big page)
_WORK_THREADS = ThreadPoolExecutor(2, thread_name_prefix="pagewatch-work")


@dataclass(frozen=True)
class CheckOutcome:
    """What one check did, for progress lines and the pass summary."""

    watch: Watch
    outcome: str  # capture | unusable | superseded | failed | error
    changed: bool
    alert_ids: tuple[int, ...]
    message: str
    check_id: int | None
    reason: str = ""  # a failed check's reason (FailedCheck.reason)


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
        self.failed += outcome.outcome in ("failed", "error")
        self.unusable += outcome.outcome == "unusable"
        self.alert_ids.extend(outcome.alert_ids)

    def line(self) -> str:
        parts = [f"checked {self.checked}", f"changed {self.changed}", f"failed {self.failed}"]
        if self.unusable:
            parts.append(f"unusable {self.unusable}")
        parts.append(f"new alerts {len(self.alert_ids)}")
        return ", ".join(parts)


def config_hash(watch: Watch) -> str:
    """What the stored counts of a capture depend on besides its body."""
    return _config_hash(watch.groups, watch.selector)


@functools.lru_cache(maxsize=1024)  # a watchlist's watches share their groups: hashed once
def _config_hash(groups: tuple[PhraseGroup, ...], selector: str | None) -> str:
    key = f"{extract.RULES_VERSION}\n{match.fingerprint(groups)}\n{selector or ''}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def group_fingerprints(watch: Watch) -> dict[str, str]:
    return {g.name: match.fingerprint([g]) for g in watch.groups}


class Checker:
    """Checks watches against one workspace with one HTTP client."""

    def __init__(
        self,
        store: Store,
        client: Client,
        now: Callable[[], datetime],
        *,
        policy: FetchPolicy = FetchPolicy(),
        executor: Executor | None = None,
        concurrency: int = 16,
        per_host: int = 6,
        confirm_delay: float | None = CONFIRM_DELAY_S,
    ):
        self.store = store
        self.confirm_delay = confirm_delay
        self.client = client
        self.now = now
        self.policy = policy
        self.executor = executor
        self._concurrency = concurrency
        self._global = asyncio.Semaphore(concurrency)
        self._per_host_limit = per_host
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._rows: dict[tuple[str, str], tuple[int, int, str | None, str]] | None = None
        self._unsettled_ids: set[int] | None = None
        # one check of a watch at a time in this process (a reloaded schedule could start a
        # second): the latest capture read before a fetch must be the latest after it
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        # read ahead by run_pass: watch id -> (data_version then, latest capture, full fetch)
        self._ahead: dict[int, tuple[int, CheckRow | None, datetime | None]] = {}
        # unchanged pages' rows waiting for their shared commit (see _add_compared)
        self._compared: list[tuple[dict[str, Any], list[dict[str, Any]], asyncio.Future[int]]] = []

    async def run_pass(
        self,
        watches: Iterable[Watch],
        on_done: Callable[[CheckOutcome], None] | None = None,
    ) -> PassSummary:
        """Check every watch once, many at a time; a watch's failure never stops the others."""
        latest = self.store.latest_check_time()
        if latest is not None and self.now() < latest - CLOCK_SLACK:
            log.warning(
                "warning: the clock reads %s, before this workspace's latest check (%s): a"
                " capture taken now is older than that one, kept as superseded and never"
                " compared, until the clock passes it; set the clock right",
                iso(self.now()), iso(latest),
            )  # fmt: skip
        summary = PassSummary()
        queue = self._read_ahead(watches)

        async def worker() -> None:
            for watch in queue:
                outcome = await self.check(watch)
                summary.add(outcome)
                if on_done:
                    on_done(outcome)

        # a fixed number of workers, not a task per watch: memory stays flat as passes grow;
        # more workers than fetches at once, as a check may wait out its confirm delay
        await asyncio.gather(*(worker() for _ in range(4 * self._concurrency)))
        return summary

    def _read_ahead(self, watches: Iterable[Watch]) -> Iterator[Watch]:
        """The watches in order; the latest captures of each next few hundred are read in two
        queries rather than two per check (a check uses them only if nothing wrote since)."""
        self._ahead.clear()  # read by an earlier pass: this process may have written since
        remaining = iter(watches)
        while batch := list(itertools.islice(remaining, READ_AHEAD)):
            try:
                ids = self._watch_ids(batch)
                version = self.store.data_version()
                for watch_id, (row, full) in self.store.latest_captures(ids).items():
                    self._ahead[watch_id] = (version, row, full)
            except WorkspaceError:
                raise
            except Exception as exc:  # each check then reads for itself, and reports the trouble
                log.warning("cannot read ahead: %s", exc)
            yield from batch

    async def check(self, watch: Watch) -> CheckOutcome:
        """One check of one watch, stored before this returns.

        Anything unexpected is logged with the URL and reported as an ``error`` outcome, so one
        bad watch never stops a pass; a workspace that cannot be written (full disk, read-only)
        raises WorkspaceError, since every other check would fail the same way. The latest
        capture is read before the fetch (its validators) and read again after it only if
        another process has written since.
        """
        async with self._locks.setdefault(watch.key, asyncio.Lock()):
            return await self._check(watch)

    async def _check(self, watch: Watch) -> CheckOutcome:
        try:
            chash = config_hash(watch)
            watch_id = self._watch_id(watch)
            if watch_id in self._unsettled():  # what a crash left unraised after the last check
                self._unsettled().discard(watch_id)  # looked at once
                self._health(watch, watch_id)
            version = self.store.data_version()
            ahead = self._ahead.pop(watch_id, None)
            if ahead is None or ahead[0] != version:
                ahead = (version, *self.store.latest_captures([watch_id])[watch_id])
            _, previous, full = ahead
            validators = self._validators(watch, previous, chash, full)
        except WorkspaceError:
            raise
        except Exception as exc:  # one watch's trouble must not end the pass
            log.exception("error %s [%s]: %s", watch.url, watch.list, exc)
            return CheckOutcome(watch, "error", False, (), f"{type(exc).__name__}: {exc}", None)
        # a latest capture not compared yet awaits a later one to confirm it: this one
        confirming = previous is not None and not previous.compared
        result = await self._fetch(watch, validators, strict=confirming)
        try:
            basis = previous  # the capture the validators came from: what a 304 stands for
            if self.store.data_version() != version:  # another process wrote meanwhile
                previous = self.store.last_capture(watch_id)
            outcome = await self._record(watch, result, known=(watch_id, previous), basis=basis)
            if confirming and outcome.reason == "bad_length":
                notes = self._cut_short(watch_id, outcome.check_id)
                outcome = replace(outcome, message=", ".join([outcome.message, *notes]))
        except WorkspaceError:
            raise
        except Exception as exc:  # one watch's trouble must not end the pass
            log.exception("error %s [%s]: %s", watch.url, watch.list, exc)
            return CheckOutcome(watch, "error", False, (), f"{type(exc).__name__}: {exc}", None)
        raised = self._health(watch, watch_id, seeing=outcome.outcome == "capture")
        if raised:
            ids, note = raised
            outcome = replace(
                outcome, alert_ids=outcome.alert_ids + ids, message=f"{outcome.message}, {note}"
            )
        log.info("%s %s [%s] %s", outcome.outcome, watch.url, watch.list, outcome.message)
        return outcome

    def _health(
        self, watch: Watch, watch_id: int, seeing: bool = False
    ) -> tuple[tuple[int, ...], str] | None:
        """Raise the health alert the watch's latest check calls for, once a spell (see
        health.py); the alert's id and a note, or None. Never fails the check it follows.
        ``seeing``: the latest check is a capture, the usual case, which matters only when it
        ends a spell."""
        try:
            if seeing and not self.store.spell(watch_id):
                return None
            recent = self.store.health_checks(watch_id, health.BLIND_CHECKS)
            if not recent:
                return None
            latest, previous = recent[0], None
            spell = self.store.spell(watch_id)
            if latest["outcome"] == "capture":
                if not spell:
                    return None  # the usual case: seeing the page, and no spell to end
                previous, latest = self.store.spell_end(watch_id)
            good, first = self.store.health_marks(watch_id)
            assert first is not None  # the watch has checks
            verdict = health.health(
                watch,
                [health.RecentCheck(parse_iso(c["checked_at"]), c["outcome"], c["reason"],
                                    c["message"]) for c in recent],
                parse_iso(good["checked_at"]) if good else None,
                parse_iso(first["checked_at"]),
                parse_iso(latest["checked_at"]),  # as of that check, whenever this runs
            )  # fmt: skip
            kind = health.alert_kind(verdict, recent)
            if not kind or kind in spell or (kind == "restored_health" and previous is None):
                return None
            row = health.alert_row(kind, verdict, latest, previous, good or first)
            alert_id = self.store.raise_health(
                {**row, "watch_id": watch_id, "created_at": iso(self.now())}
            )
        except StoreError as exc:
            log.error("%s: watch health not recorded: %s", watch.url, exc)
            self._unsettled().add(watch_id)  # looked at again before the next check
            return None
        return ((alert_id,), f"{kind} (alert {alert_id})") if alert_id else None

    def _watch_id(self, watch: Watch) -> int:
        return self._watch_ids([watch])[0]

    def _watch_ids(self, watches: Sequence[Watch]) -> list[int]:
        """The watches' row ids, rows created or brought up to date if the watchlist changed
        them (in one transaction); the rows are read once per checker, not once per check."""
        if self._rows is None:
            self._rows = self.store.watch_rows()
        rows = self._rows
        wanted = [(w, (w.every, w.selector, config_hash(w))) for w in watches]
        stale = {w.key: (w, row) for w, row in wanted if rows.get(w.key, ())[1:] != row}.values()
        if stale:
            synced = self.store.sync_watches([(w, row[2]) for w, row in stale], self.now())
            for (w, row), watch_id in zip(stale, synced, strict=True):
                rows[w.key] = (watch_id, *row)
        return [rows[w.key][0] for w in watches]

    def _unsettled(self) -> set[int]:
        """Watches whose latest check may have left a health alert to raise (see health.py):
        it was no capture, or a spell is open. Read once per checker; a watch leaves it when
        its health is looked at, and comes back if that look could not be recorded."""
        if self._unsettled_ids is None:
            self._unsettled_ids = self.store.unsettled_watches()
        return self._unsettled_ids

    async def _fetch(
        self, watch: Watch, validators: dict[str, str], strict: bool = False
    ) -> Capture | FailedCheck:
        """``strict`` for a fetch whose capture may confirm a change (see fetch.fetch): a body
        cut short by a lying length must not confirm a removal."""
        host = urlsplit(watch.url).hostname or ""
        semaphore = self._hosts.setdefault(host, asyncio.Semaphore(self._per_host_limit))
        async with self._global, semaphore:
            return await fetch(self.client, watch.url, self.now, self.policy, validators, strict)

    def _validators(
        self, watch: Watch, previous: CheckRow | None, chash: str, full: datetime | None
    ) -> dict[str, str]:
        """If-None-Match / If-Modified-Since from the last capture, when a 304 could stand in
        for it: a plain 200 capture, compared, counted the way the watch counts now, and a
        capture came with its body (``full``, see `Store.latest_captures`) within a day."""
        if (
            previous is None
            or not previous.compared
            or previous.redirected
            or previous.status != 200
            or previous.config_hash != chash
        ):
            return {}
        if full is None or self.now() - full > FULL_FETCH_EVERY:
            return {}  # a server that answers 304 wrongly must not hide a change for long
        found = {}
        if (etag := previous.header("etag")) and _FIELD_VALUE.fullmatch(etag):
            found["If-None-Match"] = etag
        if (modified := previous.header("last-modified")) and _FIELD_VALUE.fullmatch(modified):
            found["If-Modified-Since"] = modified
        return found

    async def _record(
        self,
        watch: Watch,
        result: Capture | FailedCheck,
        compare: bool = True,
        known: tuple[int, CheckRow | None] | None = None,
        basis: CheckRow | None = None,
    ) -> CheckOutcome:
        """Store a fetch's result and, if ``compare``, compare it. ``known``: the watch's row id
        and latest capture, as the store has them now (else they are read here); ``basis``:
        the capture whose validators the fetch sent (default: the latest)."""
        chash = config_hash(watch)
        if known is None:
            watch_id = self._watch_id(watch)
            previous = self.store.last_capture(watch_id)
        else:
            watch_id, previous = known
        if isinstance(result, Capture) and result.status == 304:
            result = _as_before(result, basis or previous, chash)
        if isinstance(result, FailedCheck):
            check_id = self.store.add_check(_failed_row(watch_id, result, chash)).id
            return CheckOutcome(
                watch, "failed", False, (), result.message, check_id, reason=result.reason
            )

        capture = result
        not_modified = not capture.body and capture.decoded == b""  # see _as_before
        stands_for = (basis or previous) if not_modified else None  # the body a 304 confirms
        content_type = stands_for.content_type if stands_for else None
        content_type = content_type or capture.header("content-type")
        changed = previous is None or previous.sha256 != capture.sha256
        row = _capture_row(watch_id, capture, chash, content_type)
        if not_modified:  # whichever path stores it, it is no full fetch (see latest_captures)
            row["message"] = NOT_MODIFIED
        blob = None if not_modified else (capture.body, capture.sha256)
        analysis: Analysis | None = None
        if blob and not (previous and previous.sha256 == capture.sha256):
            # a new body is stored (add_check finds it there) before anything names it, off the
            # event loop; if it is to be read, in the same job
            if capture.status in GONE_STATUSES:
                await self._run(self.store.blobs.put, *blob)
            else:
                analysis = await self._run(
                    store_and_analyse, self.store.blobs, *blob, capture.content, content_type,
                    watch.selector, watch.groups,
                )  # fmt: skip
        if (
            compare
            and previous
            and previous.compared
            and _same_input(previous, capture, content_type, chash)
        ):
            # an unchanged page costs a hash and a row: nothing to extract, nothing to compare
            if blob:
                self.store.blobs.put(*blob)  # stored already, unless the file went missing
            counts = _count_rows(_stored_counts(previous), previous.fingerprints)
            check_id = await self._add_compared(row, counts)
            message = NOT_MODIFIED if not_modified else f"HTTP {capture.status}, unchanged"
            return CheckOutcome(watch, "capture", False, (), message, check_id)

        if analysis is not None:
            pass  # a new body, read as it was stored
        elif capture.status in GONE_STATUSES:
            analysis = gone_analysis(watch.groups)
        elif same := next(
            (
                r
                for r in (previous, stands_for)
                if r and _same_input(r, capture, content_type, chash)
            ),
            None,
        ):
            analysis = Analysis("", _stored_counts(same), True)
        else:
            analysis = await self._analyse(capture.content, content_type, watch)

        if analysis.usable and analysis.text and capture.status not in GONE_STATUSES:
            why = detect.suspect(
                analysis.text, capture.url, capture.final_url, bool(capture.redirects)
            )
            if why:
                analysis = Analysis(analysis.text, analysis.counts, False, "suspect", why)
        if not analysis.usable:
            row.update(outcome="unusable", reason=analysis.reason, message=analysis.note)
            check_id = self.store.add_check(row, blob=blob).id
            return CheckOutcome(watch, "unusable", changed, (), analysis.note, check_id)

        count_rows = _count_rows(analysis.counts, group_fingerprints(watch))
        stored = self.store.add_check(row, blob=blob, counts=count_rows, compare_first=compare)
        check_id, outcome = stored.id, stored.outcome
        if not compare:
            return CheckOutcome(watch, outcome, changed, (), f"HTTP {capture.status}", check_id)
        if outcome == "superseded":
            note = "a newer capture was stored meanwhile; kept, not compared"
            return CheckOutcome(watch, outcome, changed, (), note, check_id)
        alerts: list[int] = []
        notes: list[str] = []
        if not stored.compared:  # else it is the watch's first capture: nothing to compare
            analysed = {check_id: analysis} if analysis.text else {}
            alerts, notes = await self.compare_pending(watch, watch_id, analysed, confirm=check_id)
        message = f"HTTP {capture.status}" + ("" if changed else ", unchanged")
        if capture.redirects:
            message += f", redirected to {capture.final_url}"
        message += "".join(f", {note}" for note in notes)
        return CheckOutcome(watch, "capture", changed, tuple(alerts), message, check_id)

    async def _add_compared(self, row: dict[str, Any], counts: list[dict[str, Any]]) -> int:
        """Store a check that needs no comparison (its body is stored already), committed with
        the others stored within COMMIT_WINDOW_S: one transaction for a dozen unchanged pages,
        not one each. Stored when this returns, as with `Store.add_check`."""
        loop = asyncio.get_running_loop()
        stored: asyncio.Future[int] = loop.create_future()
        self._compared.append((row, counts, stored))
        if len(self._compared) == 1:
            loop.call_later(COMMIT_WINDOW_S, self._commit_compared)
        return await stored

    def _commit_compared(self) -> None:
        batch, self._compared = self._compared, []
        try:
            ids = self.store.add_compared([(row, counts) for row, counts, _ in batch])
        except Exception as exc:  # each check waiting on it fails as add_check would fail it
            for *_, stored in batch:
                if not stored.done():
                    stored.set_exception(exc)
            return
        for (*_, stored), check in zip(batch, ids, strict=True):
            if not stored.done():
                stored.set_result(check.id)

    async def compare_pending(
        self,
        watch: Watch,
        watch_id: int,
        known: dict[int, Analysis] | None = None,
        confirm: int | None = None,
    ) -> tuple[list[int], list[str]]:
        """Compare every stored, uncompared capture of a watch with the capture before it.

        A change (a removal, or a restore) is alerted only once a later capture agrees with it:
        a CDN serving two versions or a half-deployed page must not raise one. When capture
        ``confirm`` (the check just made) shows a change, the page is fetched again after a
        pause to be that later capture. If the later capture contradicts the change, the
        capture is kept as ``unconfirmed`` and never compared; if no usable later capture
        exists yet (the second fetch failed), the capture waits, still uncompared, for the next
        check to decide, and the window still starts at it. Captures a crash left uncompared
        are decided the same way. Returns the ids of the alerts raised and log notes.
        """
        raised: list[int] = []
        notes: list[str] = []
        looked = False
        pending = self.store.pending(watch_id)
        while pending:
            current = pending.pop(0)
            before = self.store.capture_before(current)
            rows = []
            if before is not None:
                rows = await self._alerts(watch, before, current, (known or {}).get(current.id))
            if rows and self.confirm_delay is not None:
                later = self.store.capture_after(current)
                if later is None and current.id == confirm and not looked:
                    looked = True
                    second = await self._second_look(watch, watch_id)
                    notes.append(f"second fetch {second.outcome} (#{second.check_id})")
                    if second.reason == "bad_length":
                        notes += self._cut_short(watch_id, second.check_id)
                        break
                    later = self.store.capture_after(current)
                    pending = self.store.pending(watch_id)[1:]  # now with the second fetch
                if later is None:
                    notes.append("change awaits confirmation by the next capture")
                    break  # it, and all after it, wait for a later capture
                if not await self._agrees(watch, later, rows):
                    self.store.mark_unconfirmed(current.id, f"check #{later.id} disagreed")
                    notes.append(f"change not confirmed by check #{later.id}")
                    continue
            ids = self.store.finish_compare(current.id, rows)
            raised += ids
            notes += [
                f"{r['kind']} {r['grp']} (alert {i})" for i, r in zip(ids, rows, strict=False)
            ]
        return raised, notes

    def _cut_short(self, watch_id: int, check_id: int | None) -> list[str]:
        """A fetch that could confirm a change found the body longer than its Content-Length:
        the captures awaiting confirmation may have been cut short by the same lie (read on a
        kept-alive connection, the rest came too late to be seen). Kept, never compared."""
        why = f"check #{check_id} found the body longer than its Content-Length: may be cut short"
        notes = []
        for row in self.store.pending(watch_id):
            self.store.mark_unconfirmed(row.id, why)
            notes.append(f"capture #{row.id} not confirmed: it may be cut short")
        return notes

    async def _second_look(self, watch: Watch, watch_id: int) -> CheckOutcome:
        """Fetch again after the confirm delay and store it, uncompared, as a check of its own."""
        await asyncio.sleep(self.confirm_delay or 0)
        basis, full = self.store.latest_captures([watch_id])[watch_id]
        validators = self._validators(watch, basis, config_hash(watch), full)
        result = await self._fetch(watch, validators, strict=True)
        outcome = await self._record(watch, result, compare=False, basis=basis)
        log.info("%s %s [%s] %s (confirming fetch)", outcome.outcome, watch.url, watch.list,
                 outcome.message)  # fmt: skip
        return outcome

    async def _agrees(self, watch: Watch, later: CheckRow, rows: list[dict[str, Any]]) -> bool:
        """Does a later capture still show each change: fewer for a removal, more for a restore?"""
        counts, _ = await self._counts_now(later, watch)
        for row in rows:
            count = counts.get(row["grp"])
            if count is None:
                return False
            if row["kind"] in REMOVAL_KINDS and not count < row["count_before"]:
                return False
            if row["kind"] == "restored" and not count > row["count_before"]:
                return False
        return True

    async def _alerts(
        self,
        watch: Watch,
        before: CheckRow,
        after: CheckRow,
        after_known: Analysis | None,
        open_removals: set[str] | None = None,
    ) -> list[dict[str, Any]]:
        """The alerts a change from ``before`` to ``after`` raises (not yet stored).
        ``open_removals``: as of ``after`` (default: as the store has them now).

        The same bytes from the same URL with the same status raise nothing, whatever their
        headers now say: a charset or content type that changed (or lies) is not the vendor
        removing a phrase."""
        if (before.sha256, before.status, before.final_url) == (
            after.sha256,
            after.status,
            after.final_url,
        ):
            return []
        before_counts, before_text = await self._counts_now(before, watch)
        after_counts, after_text = await self._counts_now(after, watch)
        if after_known is not None:
            after_text = after_known.text
        page_gone = after.status in GONE_STATUSES or (
            after.redirected and after.final_url != before.final_url
        )
        findings = detect.compare(
            before_counts,
            after_counts,
            page_gone=page_gone,
            open_removals=(
                self.store.open_removals(after.watch_id) if open_removals is None else open_removals
            ),
        )
        if not findings:
            return []
        if before_text is None:
            before_text = await self._text(before, watch)
        if after_text is None:
            after_text = await self._text(after, watch)
        found: list[Context | None] = [None] * len(findings)
        if before_text is not None and after_text is not None:
            found = await self._run(contexts, before_text, after_text, watch.groups, findings)
        sizes = {  # how much the page shrank (or grew): its visible text and its raw body
            "chars_before": None if before_text is None else len(before_text),
            "chars_after": None if after_text is None else len(after_text),
            "bytes_before": self.store.body_size(before.sha256),
            "bytes_after": self.store.body_size(after.sha256),
        }
        rows = []
        for finding, context in zip(findings, found, strict=True):
            alias = context.alias if context else ""
            if not alias:
                alias = detect.alias_that_went(
                    before.alias_counts.get(finding.group, {}),
                    after.alias_counts.get(finding.group, {}),
                )
            parts = (
                {"segments": context.segments, "approximate": context.approximate}
                if context
                else {}
            )
            rows.append(
                {
                    "watch_id": after.watch_id,
                    "list": watch.list,
                    "url": watch.url,
                    "grp": finding.group,
                    "alias": alias,
                    "kind": finding.kind,
                    "count_before": finding.count_before,
                    "count_after": finding.count_after,
                    "last_seen_at": iso(before.checked_at),
                    "first_missing_at": iso(after.checked_at),
                    "check_before": before.id,
                    "check_after": after.id,
                    "snapshot_before": before.sha256,
                    "snapshot_after": after.sha256,
                    "final_url": after.final_url,
                    "context": context.render() if context else "(passage unavailable)",
                    "context_parts": json.dumps(parts, ensure_ascii=False),
                    "status": "new",
                    "created_at": iso(self.now()),
                    "source": alert_source(before, after),
                    **sizes,
                }
            )
        return rows

    async def _counts_now(self, row: CheckRow, watch: Watch) -> tuple[dict[str, int], str | None]:
        """A capture's counts as the watch counts now, and its text if it had to be re-read.

        Counts stored under the same phrases and selector are used as they are. Otherwise the
        capture is counted again the new way; if it cannot be (the new selector finds nothing in
        the old page, its snapshot is gone), it has no counts to compare: its stored ones may be
        of another part of the page (a selector added or changed), and comparing those would
        accuse the vendor of what is only the watchlist's edit.
        """
        if row.config_hash == config_hash(watch):
            return _in_watch_order(row.counts, watch), None
        analysis = await self._analysis(row, watch)
        if analysis is not None and analysis.usable:
            return {g: c.count for g, c in analysis.counts.items()}, analysis.text
        return {}, None

    async def _text(self, row: CheckRow, watch: Watch) -> str | None:
        analysis = await self._analysis(row, watch)
        return analysis.text if analysis is not None and analysis.usable else None

    async def _analysis(self, row: CheckRow, watch: Watch) -> Analysis | None:
        """A stored capture analysed the watch's current way; None if its blob is unreadable."""
        if row.status in GONE_STATUSES or row.sha256 is None:
            return gone_analysis(watch.groups)
        try:
            body = self.store.blobs.get(row.sha256)
            encoding = row.header("content-encoding") or ""
            decoded = decode_content(body, encoding, self.policy.max_decoded)
        except (StoreError, ValueError) as exc:
            log.error("%s: capture #%d cannot be re-read: %s", watch.url, row.id, exc)
            return None
        content = body if decoded is None else decoded
        return await self._analyse(content, row.content_type, watch)

    async def _analyse(self, content: bytes, content_type: str | None, watch: Watch) -> Analysis:
        analysis: Analysis = await self._run(
            analyse, content, content_type, watch.selector, watch.groups
        )
        return analysis

    async def _run(self, job: Callable[..., Any], *args: Any) -> Any:
        """Run CPU-heavy or disk-bound work off the event loop: in the process pool if there is
        one, else in a thread (zlib, lxml and fsync let go of the GIL)."""
        loop = asyncio.get_running_loop()
        work = functools.partial(job, *args)
        try:
            return await loop.run_in_executor(self.executor or _WORK_THREADS, work)
        except BrokenProcessPool:
            log.warning("the extraction pool broke; extracting in this process from now on")
            self.executor = None
            return await loop.run_in_executor(_WORK_THREADS, work)


#: a header value that can be sent back as it came (RFC 9110 field-value, ASCII); a stored ETag
#: with a control character (an imported WARC may carry one) is not sent, and the page is
#: fetched in full
_FIELD_VALUE = re.compile(r"[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*")


def alert_source(before: CheckRow, after: CheckRow) -> str:
    """Where an alert's evidence came from: ``live`` unless a capture was imported or
    backfilled (then that capture's source, the later one's first)."""
    return next((row.source for row in (after, before) if row.source != "live"), "live")


def _as_before(reply: Capture, previous: CheckRow | None, chash: str) -> Capture | FailedCheck:
    """A 304 answer as the capture it says is unchanged: the previous body's digest, status
    and headers (needed to read that body again), and no body of its own (``decoded=b""``
    marks it)."""
    if previous is None or previous.sha256 is None or previous.config_hash != chash:
        return FailedCheck(
            reply.url, "http_304", "304 Not Modified with no capture to stand for",
            reply.captured_at, 304, reply.final_url,
        )  # fmt: skip
    return replace(
        reply,
        status=previous.status or 200,
        final_url=previous.final_url or reply.final_url,
        headers=previous.headers,
        body=b"",
        sha256=previous.sha256,
        decoded=b"",
    )


def _count_rows(
    counts: dict[str, GroupCount], fingerprints: dict[str, str]
) -> list[dict[str, Any]]:
    return [
        {
            "grp": c.group,
            "count": c.count,
            "aliases": json.dumps(dict(c.aliases), ensure_ascii=False),
            "fingerprint": fingerprints.get(c.group, ""),
        }
        for c in counts.values()
    ]


def _in_watch_order(counts: dict[str, int], watch: Watch) -> dict[str, int]:
    """Counts in the order of the watch's groups, so alerts come in the watchlist's order."""
    return {g.name: counts[g.name] for g in watch.groups if g.name in counts}


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
