"""`pagewatch run`: every watch checked on its interval until stopped.

Due times come from the database (the last check of each watch), so a restart after downtime runs
one catch-up check per overdue watch: not zero, not one per missed interval. Watchlists are
re-read when they change; SIGINT/SIGTERM let in-flight checks finish and then exit. One `run` per
workspace: a second one refuses to start.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import logging
import os
import random
import signal
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from .analysis import make_executor
from .blobs import workspace_error
from .check import Checker
from .errors import PagewatchError, WorkspaceLocked
from .fetch import FetchPolicy, make_client
from .models import Watch
from .store import Store, utcnow
from .watchlist import load_watchlists

log = logging.getLogger("pagewatch.run")

LOCK_NAME = ".pagewatch-run.lock"
MAX_JITTER_S = 300.0  # at most 5 minutes, and at most a tenth of the interval
CATCH_UP_SPREAD_S = 10.0  # overdue watches start within this many seconds, not all at once


@contextlib.contextmanager
def run_lock(root: Path) -> Iterator[None]:
    """Hold the workspace's run lock, or raise WorkspaceLocked naming the holder."""
    path = root / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:  # a read-only workspace; the lock's name taken by a directory
        raise workspace_error(exc, path) from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise WorkspaceLocked(
                f"{root}: `pagewatch run` is already running here (pid {holder})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


def jitter(every: int) -> float:
    return min(every / 10, MAX_JITTER_S)


def first_due(every: int, last: datetime | None, now: datetime) -> datetime:
    """When a watch should next be checked, from its last recorded check."""
    if last is None or last + timedelta(seconds=every) <= now:
        return now + timedelta(seconds=random.uniform(0, min(CATCH_UP_SPREAD_S, jitter(every))))
    return last + timedelta(seconds=every)


class Runner:
    """The scheduler loop over one workspace."""

    def __init__(
        self,
        root: Path,
        *,
        now: Callable[[], datetime] = utcnow,
        policy: FetchPolicy = FetchPolicy(),
        reload_every: float = 5.0,
    ):
        self.root = root
        self.now = now
        self.policy = policy
        self.reload_every = reload_every
        self.watches: dict[str, Watch] = {}
        self.stopping = asyncio.Event()
        self._inflight: set[asyncio.Task[object]] = set()
        self._signature: tuple[tuple[str, int, int], ...] = ()

    def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        store = Store(self.root)  # first: a folder that is no workspace says so, lock or not
        try:
            with run_lock(self.root):
                await self._run(store)
        finally:
            store.close()

    async def _run(self, store: Store) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        watches = self._load()  # a broken watchlist at start-up stops us: raise it
        executor = make_executor(len(watches))
        scheduler = AsyncIOScheduler(timezone="UTC")
        try:
            async with make_client(self.policy) as client:
                self.checker = Checker(
                    store, client, self.now, policy=self.policy, executor=executor
                )
                self._sync_jobs(scheduler, store, watches)
                scheduler.start()
                log.info("watching %d pages from %s", len(self.watches), self.root / "watchlists")
                while not self.stopping.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stopping.wait(), self.reload_every)
                    if not self.stopping.is_set():
                        self._reload(scheduler, store)
                log.info("stopping: waiting for %d check(s) in flight", len(self._inflight))
                scheduler.pause()  # no new checks; those in flight finish and are stored
                while self._inflight:
                    await asyncio.gather(*self._inflight, return_exceptions=True)
                await asyncio.sleep(0)  # let the job wrappers see their checks finish
                scheduler.shutdown(wait=False)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            if executor is not None:
                executor.shutdown(wait=True, cancel_futures=True)
        log.info("stopped")

    def _watchlist_signature(self) -> tuple[tuple[str, int, int], ...]:
        folder = self.root / "watchlists"
        entries = []
        for path in sorted(folder.glob("*.toml")):
            with contextlib.suppress(OSError):
                st = path.stat()
                entries.append((path.name, st.st_mtime_ns, st.st_size))
        return tuple(entries)

    def _load(self) -> list[Watch]:
        self._signature = self._watchlist_signature()
        return load_watchlists(self.root / "watchlists")

    def _reload(self, scheduler: AsyncIOScheduler, store: Store) -> None:
        if self._watchlist_signature() == self._signature:
            return
        try:
            watches = self._load()
        except PagewatchError as exc:
            log.error("watchlists not reloaded, keeping the previous ones: %s", exc)
            return
        self._sync_jobs(scheduler, store, watches)
        log.info("watchlists reloaded: watching %d pages", len(self.watches))

    def _sync_jobs(self, scheduler: AsyncIOScheduler, store: Store, watches: list[Watch]) -> None:
        """Make the scheduled jobs match ``watches``: add new, drop gone, re-time changed."""
        for url, was, now_in in store.adopt_moved(watches):
            log.info("%s moved from list %r to %r; its history moves with it", url, was, now_in)
        wanted = {_job_id(w): w for w in watches}
        for job_id in list(self.watches):
            if job_id not in wanted:
                scheduler.remove_job(job_id)
                del self.watches[job_id]
        last = store.last_checked()
        now = self.now()
        for job_id, watch in wanted.items():
            old = self.watches.get(job_id)
            self.watches[job_id] = watch  # phrase or selector edits apply at the next check
            if old is not None and old.every == watch.every:
                continue
            due = first_due(watch.every, last.get(watch.key), now)
            trigger = IntervalTrigger(
                seconds=watch.every, start_date=due, jitter=jitter(watch.every), timezone="UTC"
            )
            if old is not None:
                scheduler.remove_job(job_id)
            scheduler.add_job(
                self._check,
                trigger,
                args=[job_id],
                id=job_id,
                name=watch.url,
                next_run_time=due,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=None,
            )

    async def _check(self, job_id: str) -> None:
        watch = self.watches.get(job_id)
        if watch is None or self.stopping.is_set():
            return
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(
            self.checker.check(watch)
        )
        self._inflight.add(task)
        task.add_done_callback(functools.partial(self._finished, watch))
        # shielded: stopping the scheduler cancels this wrapper, never the check itself
        await asyncio.shield(task)

    def _finished(self, watch: Watch, task: asyncio.Task[object]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("check of %s failed: %s", watch.url, task.exception())


def _job_id(watch: Watch) -> str:
    return f"{watch.list}\t{watch.url}"
