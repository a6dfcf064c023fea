"""`pagewatch demo`: a fictional vendor's face-attribute guide, replayed on 127.0.0.1.

The history follows the story pagewatch exists for: a guide that lists an "ethnic" attribute, an
"Is it Uyghur" row and a "Uighur alarm"; a later version with churned markup and a swapped
spelling (which must raise nothing); a server error (recorded, never compared); and the version
in which those references are gone. The real pipeline runs over it in a workspace of its own,
with a simulated clock so the window reads like the real events' dates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from .check import PassSummary
from .replay import Page, ReplayServer
from .store import Store
from .workspace import check_pass, init, select_watches

GUIDE = "/docs/vision/face-attributes"
GUIDE_ZH = "/zh-cn/docs/vision/face-attributes"

WATCHLIST = """\
# The demo's watchlist: a fictional vendor's face-attribute guide, in English and Chinese.
every = "6h"

[phrases]
uyghur = ["Uyghur", "Uighur", "Uygur", "维吾尔"]
ethnicity = ["ethnic", "ethnic minority", "ethnicity", "民族"]

[[watch]]
url = "{base}{guide}"
selector = "main"

[[watch]]
url = "{base}{guide_zh}"
"""


@dataclass(frozen=True)
class Step:
    at: datetime
    label: str
    guide: Page


def _page(name: str) -> bytes:
    return resources.files("pagewatch").joinpath("demo_site", name).read_bytes()


def history() -> list[Step]:
    def html(name: str) -> Page:
        return Page(_page(name), 200, {"Content-Type": "text/html; charset=utf-8"})

    day = datetime(2020, 11, 2, 9, 0, tzinfo=UTC)
    return [
        Step(
            day,
            "v1: the guide lists ethnic, Is it Uyghur, Uighur alarm",
            html("face-attributes.v1.html"),
        ),
        Step(
            day + timedelta(days=18),
            "v2: markup churn, new build id, 'Uighur alarm' respelt 'Uyghur alarm'",
            html("face-attributes.v2.html"),
        ),
        Step(
            datetime(2020, 12, 8, 6, 0, tzinfo=UTC),
            "the server answers 503 Service Unavailable",
            Page(b"<h1>Service Unavailable</h1>", 503, {"Content-Type": "text/html"}),
        ),
        Step(
            datetime(2020, 12, 8, 18, 0, tzinfo=UTC),
            "v4: the Uyghur row, the alarm and the ethnic attribute are gone",
            html("face-attributes.v4.html"),
        ),
    ]


class SimulatedClock:
    """A clock that stands at a step's time and ticks a millisecond per reading."""

    def __init__(self) -> None:
        self.at = datetime(2020, 1, 1, tzinfo=UTC)

    def set(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        self.at += timedelta(milliseconds=1)
        return self.at


def run_demo(root: Path, say: Callable[[str], None]) -> list[int]:
    """Replay the history into the workspace at ``root``; return the new alerts' ids."""
    init(root)
    clock = SimulatedClock()
    zh = Page(_page("face-attributes.zh.html"), 200, {"Content-Type": "text/html"})
    alert_ids: list[int] = []
    with ReplayServer() as server:
        (root / "watchlists" / "demo.toml").write_text(
            WATCHLIST.format(base=server.base_url, guide=GUIDE, guide_zh=GUIDE_ZH), encoding="utf-8"
        )
        watches = select_watches(root)
        say(f"Replaying a fictional vendor's face-attribute guide on {server.base_url}{GUIDE}")
        say("(and its Chinese edition, GB18030 declared only in <meta>), simulated clock.\n")
        store = Store(root)
        try:
            for step in history():
                server.replace({GUIDE: step.guide, GUIDE_ZH: zh})
                clock.set(step.at)
                summary: PassSummary = asyncio.run(check_pass(store, watches, now=clock))
                alert_ids += summary.alert_ids
                say(f"{step.at:%Y-%m-%d %H:%M} UTC  {step.label}")
                say(f"{'':22}check: {summary.line()}")
        finally:
            store.close()
    return alert_ids
