"""A workspace as a whole: creating it, choosing its watches, and running one check pass."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .analysis import make_executor
from .check import CONFIRM_DELAY_S, Checker, CheckOutcome, PassSummary
from .errors import BundleError, UsageError, WatchlistError
from .fetch import FetchPolicy, make_client
from .models import ArchivedResponse, Watch
from .store import DB_NAME, Store, utcnow
from .watchlist import add_watch, load_watchlists

if TYPE_CHECKING:  # history comes in by import and backfill only: a check pass does without
    from .ingest import Ingested
    from .timeline import Redetected
    from .wayback import WaybackPolicy

ENV_VAR = "PAGEWATCH_WORKSPACE"

log = logging.getLogger("pagewatch.workspace")

GITIGNORE = """\
# pagewatch: the database and snapshots are evidence, not source; back them up separately
pagewatch.db
pagewatch.db-*
.pagewatch-run.lock
snapshots/
"""


def resolve(root: str | Path | None) -> Path:
    """The workspace folder: the given one, else $PAGEWATCH_WORKSPACE, else the current folder."""
    chosen = root or os.environ.get(ENV_VAR) or "."
    return Path(chosen).expanduser().resolve()


def init(root: Path) -> bool:
    """Create the workspace skeleton; idempotent. True if anything was created."""
    existed = (root / DB_NAME).exists() and (root / "watchlists").is_dir()
    Store(root, create=True).close()
    ignore = root / ".gitignore"
    if not ignore.exists():
        ignore.write_text(GITIGNORE, encoding="utf-8")
    return not existed


def open_store(root: Path, readonly: bool = False) -> Store:
    return Store(root, readonly=readonly)


def select_watches(root: Path, lists: Sequence[str] = (), urls: Sequence[str] = ()) -> list[Watch]:
    """The watches of the chosen lists (default all), narrowed to the given URLs if any."""
    watches = load_watchlists(root / "watchlists", names=list(lists) or None)
    if urls:
        wanted = set(urls)
        known = {w.url for w in watches}
        unknown = [u for u in urls if u not in known]
        if unknown:
            raise UsageError(f"not watched in the chosen lists: {', '.join(unknown)}")
        watches = [w for w in watches if w.url in wanted]
    return watches


async def check_pass(
    store: Store,
    watches: Sequence[Watch],
    *,
    now: Callable[[], datetime] = utcnow,
    on_done: Callable[[CheckOutcome], None] | None = None,
    policy: FetchPolicy = FetchPolicy(),
    concurrency: int = 16,
    per_host: int = 6,
    confirm_delay: float | None = CONFIRM_DELAY_S,
) -> PassSummary:
    """One pass over ``watches``: each is fetched, stored and compared once."""
    for url, old, new in store.adopt_moved(watches):
        log.info("%s moved from list %r to %r; its history moves with it", url, old, new)
    executor = make_executor(len(watches))
    try:
        async with make_client(policy) as client:
            checker = Checker(
                store,
                client,
                now,
                policy=policy,
                executor=executor,
                concurrency=concurrency,
                per_host=per_host,
                confirm_delay=confirm_delay,
            )
            return await checker.run_pass(watches, on_done)
    finally:
        if executor is not None:
            with contextlib.suppress(Exception):
                executor.shutdown(wait=True, cancel_futures=True)


async def redetect_watches(
    store: Store,
    watches: Sequence[Watch],
    *,
    now: Callable[[], datetime] = utcnow,
    policy: FetchPolicy = FetchPolicy(),
    on_done: Callable[[Redetected], None] | None = None,
) -> list[Redetected]:
    """Decide each watch's whole timeline again (after history was added to it)."""
    from .timeline import redetect

    executor = make_executor(len(watches))
    done = []
    try:
        async with make_client(policy) as client:  # re-detection reads; it never fetches
            checker = Checker(store, client, now, policy=policy, executor=executor)
            for watch in watches:
                result = await redetect(checker, watch)
                done.append(result)
                if on_done:
                    on_done(result)
    finally:
        if executor is not None:
            with contextlib.suppress(Exception):
                executor.shutdown(wait=True, cancel_futures=True)
    return done


def adopt_bundle_watches(root: Path, metadata: dict[str, object] | None) -> list[str]:
    """Add to the watchlists the watches a pagewatch bundle carries and the workspace lacks, so
    its history can be imported into an empty workspace. Returns one line per watch added or
    not addable."""
    entries = metadata.get("watches") if metadata else None
    if not isinstance(entries, list):
        return []
    have = {w.key for w in load_watchlists(root / "watchlists")}
    lines = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        key = (str(entry.get("list", "")), str(entry.get("url", "")))
        phrases = entry.get("phrases")
        if key in have or not isinstance(phrases, dict):
            continue
        if not phrases:
            lines.append(f"not added: {key[1]} [{key[0]}]: the bundle does not say its phrases")
            continue
        groups = [f"{name}={','.join(aliases)}" for name, aliases in phrases.items()]
        try:
            path = add_watch(
                root / "watchlists",
                key[0],
                key[1],
                groups,
                every=str(entry.get("every") or "") or None,
                selector=entry.get("selector") or None,
            )
        except WatchlistError as exc:
            lines.append(f"not added: {key[1]} [{key[0]}]: {exc}")
            continue
        have.add(key)
        lines.append(f"added {key[1]} to {path.name}")
    return lines


def import_bundle(
    root: Path,
    path: Path,
    *,
    now: Callable[[], datetime] = utcnow,
    add_watches: bool = True,
    force: bool = False,
    on_response: Callable[[ArchivedResponse, str], None] | None = None,
) -> tuple[Ingested, list[Redetected], list[str]]:
    """Import a WARC/WACZ's responses for watched URLs, then decide the affected watches again.

    The bundle is verified first, whole, and refused if anything fails (``force``: imported
    anyway, pagewatch's metadata trusted only if it agrees with the records); the workspace is
    created if need be only then. Watches touched are decided again even if the import stops
    half-way, so no stored capture is left undecided.
    """
    from .ingest import Ingested, carry_watching, ingest, normal_url
    from .provenance import check_bundle  # warcio and surt: only for bundles
    from .responses import read_responses

    checked = check_bundle(path)
    if not checked.ok and not force:
        count = len(checked.problems)
        raise BundleError(
            f"fails verification ({count} problem{'s' * (count != 1)}; the first:"
            f" {checked.problems[0]}); `pagewatch verify` lists them; --force imports anyway",
            path,
        )
    metadata = checked.metadata
    notes = [f"Initialised {root}"] if init(root) else []
    notes += adopt_bundle_watches(root, metadata) if add_watches else []
    watches = load_watchlists(root / "watchlists")
    watched = {normal_url(w.url) for w in watches}
    accept = None if metadata else (lambda uri: normal_url(uri) in watched)
    summary = Ingested()
    store = open_store(root)
    try:
        try:
            ingest(store, watches, read_responses(path, accept=accept), "import",
                   on_response=on_response, summary=summary)  # fmt: skip
        finally:
            redone = asyncio.run(redetect_watches(store, list(summary.watches.values()), now=now))
        if metadata:
            carried = carry_watching(store, watches, metadata)
            if carried:
                notes.append(f"{carried} health alerts carried over (blocked, failing, restored)")
    finally:
        store.close()
    return summary, redone, notes


async def backfill_watches(
    store: Store,
    watches: Sequence[Watch],
    policy: WaybackPolicy,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    now: Callable[[], datetime] = utcnow,
    on_event: Callable[[Watch, str, int, int], None] | None = None,
) -> tuple[Ingested, list[Redetected]]:
    """Backfill each watch from the Wayback Machine, then decide the affected watches again."""
    from .ingest import backfill
    from .wayback import make_client as archive_client

    async with archive_client(policy.fetch) as client:
        summary = await backfill(
            store, client, watches, policy, since=since, until=until, on_event=on_event
        )
    redone = await redetect_watches(store, list(summary.watches.values()), now=now)
    return summary, redone
