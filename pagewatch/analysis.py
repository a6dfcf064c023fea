"""The pure, CPU-heavy part of a check: a body's text and phrase counts, and an alert's passage,
and the process pool big passes run them in.

Pool workers are spawned processes: each imports the main script again (for the `pagewatch`
command that is `pagewatch.__main__`, which imports nothing until it runs) and then whatever
the jobs they are given need, which is this module. So it imports no more than extraction and
matching (and storing a new body, blobs.py) do: no HTTP client, no database, no CLI; a worker
starts in a fraction of the time.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import diff, extract, match
from .blobs import Blobs
from .models import Context, GroupCount, PhraseGroup

if TYPE_CHECKING:
    from .detect import Finding

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


@functools.lru_cache(maxsize=256)
def matcher(groups: tuple[PhraseGroup, ...]) -> match.Matcher:
    return match.compile_groups(groups)


def analyse(
    content: bytes, content_type: str | None, selector: str | None, groups: tuple[PhraseGroup, ...]
) -> Analysis:
    """Visible text and phrase counts of one body. Pure; runs in a worker process on big passes."""
    extracted = extract.visible_text(content, content_type, selector)
    if not extracted.readable:
        return Analysis("", {}, False, "unreadable", extracted.note)
    if not extracted.scope_found:
        return Analysis("", {}, False, "selector_missing", extracted.note)
    if extracted.refresh:  # a page that moved, browser-side: comparing it is no evidence
        why = f"the page sends browsers on to {extracted.refresh[:200]} (meta refresh)"
        return Analysis(extracted.text, {}, False, "suspect", why)
    if not extracted.text.strip():
        return Analysis("", {}, False, "empty", "the page has no visible text")
    return Analysis(extracted.text, match.count(matcher(groups), extracted.text), True)


def store_and_analyse(
    blobs: Blobs,
    body: bytes,
    sha256: str,
    content: bytes,
    content_type: str | None,
    selector: str | None,
    groups: tuple[PhraseGroup, ...],
) -> Analysis:
    """Store a new body, then `analyse` its ``content`` (the body with its content-encoding
    undone): one job, so that in the pool the body crosses to a worker once, and the process
    that fetches spends no time compressing it."""
    blobs.put(body, sha256)
    return analyse(content, content_type, selector, groups)


def gone_analysis(groups: Sequence[PhraseGroup]) -> Analysis:
    """A page that is gone (404, 410): every group counts zero."""
    return Analysis("", {g.name: GroupCount(g.name, 0) for g in groups}, True)


def contexts(
    before: str, after: str, groups: tuple[PhraseGroup, ...], findings: Sequence[Finding]
) -> list[Context | None]:
    """The passage of each finding. Pure and CPU-heavy on big pages: runs off the event loop."""
    compiled = matcher(groups)
    found = []
    for finding in findings:
        spans_before = match.spans(compiled, finding.group, before)
        spans_after = match.spans(compiled, finding.group, after)
        if finding.kind != "restored":
            found.append(diff.removal_context(before, after, spans_before, spans_after))
            continue
        # a restore is a removal seen backwards: what the later text has that the earlier lacked
        back = diff.removal_context(after, before, spans_after, spans_before)
        flip = {"-": "+", "+": "-", "=": "="}
        found.append(
            Context(back.alias, tuple((flip[op], t) for op, t in back.segments), back.approximate)
            if back
            else None
        )
    return found


def make_executor(watch_count: int) -> Executor | None:
    """A process pool for passes big enough to pay for one; None means a thread of this process.

    Workers are spawned (no fork of a process with an event loop and threads), ignore Ctrl-C
    (the parent decides when work stops) and exit on their own when the parent dies, even by
    SIGKILL, so a killed pass leaves no orphans behind.
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
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch_parent, name="pagewatch-parent-watch", daemon=True).start()
