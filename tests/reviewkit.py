"""Workspaces with real removals for the review app's tests (`test_web`, `test_browser`).

Every alert here is made by the real pipeline: pages served by the replay server on 127.0.0.1,
checked with `check_pass` under a settable clock. Nothing is inserted by hand.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from conftest import Clock

from pagewatch.replay import Page, ReplayServer
from pagewatch.store import Store
from pagewatch.web.app import Settings
from pagewatch.web.server import BackgroundServer
from pagewatch.workspace import check_pass, init, select_watches

GUIDE_V1 = """<html><head><title>Face attributes · Vendor docs</title></head><body><main>
<h1>Face attributes</h1>
<p>Attributes: glasses, smile, ethnic minority.</p>
<p>Is it Uyghur: boolean, true when the face is Uyghur.</p>
<p>Limits: 100 faces per image.</p>
</main></body></html>"""
GUIDE_V2 = """<html><head><title>Face attributes · Vendor docs</title></head><body><main>
<h1>Face attributes</h1>
<p>Attributes: glasses, smile, ethnic minority.</p>
<p>Limits: 100 faces per image.</p>
</main></body></html>"""
GUIDE_V3 = """<html><head><title>Face attributes · Vendor docs</title></head><body><main>
<h1>Face attributes</h1>
<p>Attributes: glasses, smile.</p>
<p>Limits: 100 faces per image.</p>
</main></body></html>"""
FAQ_V1 = "<html><body><main><p>Does it detect Uyghur faces? No comment.</p></main></body></html>"

#: a vendor page that fights back: markup in its title and in the passage that goes, and a
#: script of its own. Every bit of it must stay text in the app.
HOSTILE_V1 = """<html><head>
<title>&lt;script&gt;window.__pwned = "title"; alert("title")&lt;/script&gt; {{7*7}} \
&lt;img src=x onerror=alert("title-img")&gt;</title>
<script>window.__pwned = "vendor script"; alert("vendor script");</script>
</head><body><main>
<p>Attributes: glasses.</p>
<p>Is it Uyghur &lt;script&gt;window.__pwned = "passage"; alert("passage")&lt;/script&gt; \
{{7*7}} &lt;img src=x onerror="window.__pwned = 'img'; alert('img')"&gt; ok</p>
<img src="x" onerror="window.__pwned = 'real img'; alert('real img')">
</main></body></html>"""
HOSTILE_V2 = """<html><head>
<title>&lt;script&gt;window.__pwned = "title"; alert("title")&lt;/script&gt; {{7*7}} \
&lt;img src=x onerror=alert("title-img")&gt;</title>
<script>window.__pwned = "vendor script"; alert("vendor script");</script></head><body><main>
<p>Attributes: glasses.</p>
</main></body></html>"""

WATCHLIST = """every = "1h"

[phrases]
uyghur = ["Uyghur", "Uighur"]
ethnicity = ["ethnic minority", "ethnicity"]

[[watch]]
url = "{url}"
selector = "main"
"""


def watch(root: Path, list_name: str, url: str) -> None:
    (root / "watchlists" / f"{list_name}.toml").write_text(
        WATCHLIST.format(url=url), encoding="utf-8"
    )


def check(root: Path, now: Callable[[], datetime]) -> list[int]:
    """One pass of the real pipeline over every watch; the ids of the alerts it raised."""
    store = Store(root)
    try:
        summary = asyncio.run(check_pass(store, select_watches(root), now=now, confirm_delay=0))
    finally:
        store.close()
    return summary.alert_ids


def replay(
    root: Path,
    server: ReplayServer,
    clock: Clock,
    steps: list[Mapping[str, Page]],
    hours: float = 24,
) -> list[int]:
    """Serve each step's pages, check, and move the clock on; the alerts raised, in order."""
    raised = []
    for pages in steps:
        for path, page in pages.items():
            server.set(path, page)
        raised += check(root, clock)
        clock.advance(hours=hours)
    return raised


def removal(root: Path, server: ReplayServer, clock: Clock) -> int:
    """A workspace whose one watch lost "Is it Uyghur"; the alert's id."""
    watch(root, "vendors", server.url("/guide"))
    [alert_id] = replay(
        root, server, clock, [{"/guide": Page.html(GUIDE_V1)}, {"/guide": Page.html(GUIDE_V2)}]
    )
    return alert_id


def hostile(root: Path, server: ReplayServer, clock: Clock) -> int:
    """A workspace whose page has markup in its title and in the passage that went."""
    watch(root, "hostile", server.url("/hostile"))
    [alert_id] = replay(
        root,
        server,
        clock,
        [{"/hostile": Page.html(HOSTILE_V1)}, {"/hostile": Page.html(HOSTILE_V2)}],
    )
    return alert_id


def three_alerts(root: Path, server: ReplayServer, clock: Clock) -> None:
    """Three alerts on two lists: uyghur went from the guide on day 1, ethnicity on day 2, and
    the FAQ (list "faq") answered 404 on day 4 (2020-11-06)."""
    watch(root, "vendors", server.url("/guide"))
    replay(root, server, clock, [{"/guide": Page.html(GUIDE_V1)}])  # 2020-11-02
    replay(root, server, clock, [{"/guide": Page.html(GUIDE_V2)}])  # 11-03: alert 1
    replay(root, server, clock, [{"/guide": Page.html(GUIDE_V3)}])  # 11-04: alert 2
    (root / "watchlists" / "faq.toml").write_text(
        '[phrases]\nuyghur = ["Uyghur"]\n\n[[watch]]\nurl = "' + server.url("/faq") + '"\n',
        encoding="utf-8",
    )
    replay(root, server, clock, [{"/faq": Page.html(FAQ_V1)}])  # 11-05
    replay(root, server, clock, [{"/faq": Page.html("<html><body>gone</body></html>", 404)}])


def built(base: Path) -> dict[str, Path]:
    """The workspaces the review tests read, made once: "three", "removal" and "hostile"."""
    made = {}
    with ReplayServer() as server:
        for name, make in (("three", three_alerts), ("removal", removal), ("hostile", hostile)):
            made[name] = base / name
            init(made[name])
            make(made[name], server, Clock())
    return made


def copy(workspace: Path, into: Path) -> Path:
    """A copy of a built workspace, for a test that changes it."""
    return Path(shutil.copytree(workspace, into / workspace.name))


def serving(root: Path, **settings: Any) -> BackgroundServer:
    return BackgroundServer(Settings(root=root, **settings))
