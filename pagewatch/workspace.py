"""A workspace as a whole: creating it, choosing its watches, and running one check pass."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from .check import CONFIRM_DELAY_S, Checker, CheckOutcome, PassSummary, make_executor
from .errors import UsageError
from .fetch import FetchPolicy, make_client
from .models import Watch
from .store import DB_NAME, Store, utcnow
from .watchlist import load_watchlists

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
        async with make_client(policy, max_connections=concurrency) as client:
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
