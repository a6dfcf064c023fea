"""The review app in a real headless Chromium (Debian's, driven by Playwright).

What a reviewer does: open the inbox, click into an alert, see the removed phrase highlighted,
acknowledge it and find it acknowledged after a reload; read a chart; open pages whose content
fights back and see it stay text. Outside CI these tests skip when no chromium is installed;
with PAGEWATCH_REQUIRE_BROWSER=1 (as .ci/run sets) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import Clock
from reviewkit import GUIDE_V1, GUIDE_V3, built, check, copy, removal, serving

from pagewatch.alerts import list_alerts
from pagewatch.replay import Page as Served
from pagewatch.replay import ReplayServer
from pagewatch.report import write_report
from pagewatch.store import Store, utcnow
from pagewatch.web.server import BackgroundServer, settings_for

HIGHLIGHT = "rgb(255, 229, 102)"  # mark.flag in app.css


def _chromium() -> str | None:
    named = os.environ.get("PAGEWATCH_CHROMIUM")
    if named:
        return named
    return next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
        None,
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    required = os.environ.get("PAGEWATCH_REQUIRE_BROWSER") == "1"
    path = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        path = None
    if path is None:
        why = "no chromium, or no Playwright (apt-get install chromium; pip install -e '.[test]')"
        if required:
            pytest.fail(f"PAGEWATCH_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path)
        yield launched
        launched.close()


@dataclass
class Tab:
    """A page with everything it tried to say: dialogs it opened, console errors."""

    page: Any
    dialogs: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


@pytest.fixture
def tab(browser: Any) -> Iterator[Tab]:
    # a time zone other than UTC, so "your time" must differ from the UTC shown
    context = browser.new_context(timezone_id="Europe/Berlin", locale="en-GB")
    page = context.new_page()
    opened = Tab(page)

    def dialog(d: Any) -> None:
        opened.dialogs.append(d.message)
        d.dismiss()

    def listen(page: Any) -> None:  # every page of the context, popups too
        page.on("dialog", dialog)
        page.on(
            "console",
            lambda m: opened.console_errors.append(m.text) if m.type == "error" else None,
        )

    listen(page)
    context.on("page", listen)
    yield opened
    context.close()


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("built")
    found: dict[str, Path] = in_thread(lambda: built(base))  # Playwright may be running already
    return found


def alerts_of(root: Path, status: str = "all") -> list[dict[str, Any]]:
    store = Store(root, readonly=True)
    try:
        return list_alerts(store, status)
    finally:
        store.close()


def in_thread(job: Any) -> Any:
    """Run the pipeline beside Playwright's own event loop, not inside it."""
    found: list[Any] = []
    worker = threading.Thread(target=lambda: found.append(job()))
    worker.start()
    worker.join(60)
    return found[0]


def test_triage_an_alert_from_the_inbox(
    tab: Tab, workspaces: dict[str, Path], tmp_path: Path
) -> None:
    root = copy(workspaces["removal"], tmp_path)
    [alert] = alerts_of(root)
    page = tab.page
    with serving(root) as app:
        page.goto(app.url)
        assert page.locator("tr.alert-row").count() == 1
        page.locator("tr.alert-row a.what").click()
        page.wait_for_url(f"{app.url}alerts/{alert['id']}")

        removed = page.locator("#passage del mark.flag")
        assert removed.all_inner_texts() == ["Uyghur", "Uyghur"]
        assert removed.first.is_visible()
        assert removed.first.evaluate("e => getComputedStyle(e).backgroundColor") == HIGHLIGHT
        assert page.locator("#last-seen time").inner_text() == "2020-11-02 09:00:00 UTC"
        assert page.locator("#first-missing time").inner_text() == "2020-11-03 09:00:00 UTC"
        assert "10:00:00 CET" in page.locator("#last-seen .local").inner_text()  # Berlin
        assert page.locator("code.sha256").all_inner_texts() == [
            alert["snapshot_before"],
            alert["snapshot_after"],
        ]

        page.locator("#status input[name=note]").fill("archived, sent to the editor")
        page.locator("#status button[type=submit]").click()
        page.wait_for_url(f"{app.url}alerts/{alert['id']}")
        page.reload()
        assert page.locator("#status-badge").inner_text() == "acknowledged"
        assert page.locator("#ack-note").inner_text() == "archived, sent to the editor"

        page.goto(app.url)
        assert page.locator("tr.alert-row").count() == 0
        assert page.locator("a.tab[data-status=acked] .count").inner_text() == "1"
    assert [(a["status"], a["note"]) for a in alerts_of(root)] == [
        ("acked", "archived, sent to the editor")
    ]
    assert tab.dialogs == [] and tab.console_errors == []


def test_chart_has_a_point_per_capture(tab: Tab, workspaces: dict[str, Path]) -> None:
    root = workspaces["three"]
    store = Store(root, readonly=True)
    try:
        guide = next(w for w in store.watches() if w["list"] == "vendors")
        captures = [c for c in store.checks([guide["id"]]) if c["outcome"] == "capture"]
    finally:
        store.close()
    assert len(captures) == 7
    with serving(root) as app:
        tab.page.goto(f"{app.url}watches/{guide['id']}")
        for group in ("uyghur", "ethnicity"):
            chart = tab.page.locator(f"figure.chart[data-group={group}] svg")
            assert chart.locator("circle.point").count() == len(captures)
            box = chart.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 100
            assert chart.locator("text.axis-label").all_text_contents() == [
                "capture time (UTC)",
                f"matches of '{group}'",
            ]
            # the step line falls to 0 at the capture that lost the phrase
            ys = chart.locator("circle.point").evaluate_all(
                "cs => cs.map(c => Number(c.getAttribute('cy')))"
            )
            assert ys[-1] == max(ys)
    assert tab.console_errors == []


def test_hostile_page_content_stays_text(tab: Tab, workspaces: dict[str, Path]) -> None:
    root = workspaces["hostile"]
    [alert] = alerts_of(root)
    page = tab.page
    with serving(root) as app:
        for path in ("", f"alerts/{alert['id']}", "watches/1", "watches"):
            page.goto(app.url + path)
            page.wait_for_load_state("load")
        page.goto(f"{app.url}alerts/{alert['id']}")
        assert page.locator("#page-title").inner_text() == (
            '<script>window.__pwned = "title"; alert("title")</script> {{7*7}} '
            '<img src=x onerror=alert("title-img")>'
        )
        passage = page.locator("#passage").inner_text()
        assert '<script>window.__pwned = "passage"; alert("passage")</script> {{7*7}}' in passage
        assert "onerror=\"window.__pwned = 'img'; alert('img')\"" in passage
        assert page.locator("main img, main script, main iframe").count() == 0
        assert page.evaluate("typeof window.__pwned") == "undefined"

        with page.context.expect_page() as opened:
            page.locator("#capture-1 a", has_text="raw capture as text").click()
        raw = opened.value
        raw.wait_for_load_state("load")
        assert raw.evaluate("document.contentType") == "text/plain"
        assert '<script>window.__pwned = "vendor script"' in raw.locator("body").inner_text()
        assert raw.evaluate("typeof window.__pwned") == "undefined"
    assert tab.dialogs == []
    assert tab.console_errors == []  # not even a script the CSP had to refuse


def test_cross_site_post_is_refused(
    tab: Tab, workspaces: dict[str, Path], tmp_path: Path, server: ReplayServer
) -> None:
    root = copy(workspaces["removal"], tmp_path)
    with serving(root) as app:
        target = f"{app.url}alerts/ack"
        server.set(
            "/attack",
            Served.html(
                f'<form id="f" method="post" action="{target}"><input name="id" value="1">'
                '<input name="note" value="pwned"><input name="form_token" value="guess"></form>'
                "<script>document.getElementById('f').submit()</script>"
            ),
        )
        server.set(
            "/quiet",
            Served.html(
                "<script>fetch(" + repr(target) + ", {method: 'POST', mode: 'no-cors',"
                " credentials: 'include', body: new URLSearchParams({id: '1', note: 'pwned'})})"
                ".then(() => { document.title = 'sent' }, () => { document.title = 'sent' })"
                "</script>"
            ),
        )
        tab.page.goto(app.url)  # a reviewer with the app open in another tab
        attack = tab.page.context.new_page()
        attack.goto(server.url("/attack"))
        attack.wait_for_url(target)
        assert attack.locator("body").inner_text().startswith("refused: cross-site request")
        attack.goto(server.url("/quiet"))
        attack.wait_for_function("document.title === 'sent'")
    assert [(a["status"], a["note"]) for a in alerts_of(root)] == [("new", "")]


def test_off_loopback_a_request_without_the_token_is_refused(
    tab: Tab, workspaces: dict[str, Path]
) -> None:
    settings = settings_for(workspaces["removal"], "0.0.0.0", "correct-horse")
    with BackgroundServer(settings, host="0.0.0.0") as app:
        url = app.url.replace("0.0.0.0", "127.0.0.1")
        refused = tab.page.goto(url + "alerts/1")
        assert refused is not None and refused.status == 401
        assert "needs its token" in tab.page.locator("body").inner_text()
        tab.page.goto(url + "?token=correct-horse")
        assert tab.page.url == url  # the token left the address bar for a cookie
        assert tab.page.locator("tr.alert-row").count() == 1
        shown = tab.page.goto(url + "alerts/1")
        assert shown is not None and shown.status == 200


def test_inbox_refreshes_itself_when_alerts_arrive(
    tab: Tab, root: Path, server: ReplayServer, clock: Clock
) -> None:
    in_thread(lambda: removal(root, server, clock))
    page = tab.page
    with serving(root, poll_seconds=0.25) as app:
        page.goto(app.url)
        assert page.locator("tr.alert-row").count() == 1
        server.set("/guide", Served.html(GUIDE_V3))  # `pagewatch run` finds ethnicity gone
        assert in_thread(lambda: check(root, clock)) == [2]
        page.wait_for_selector("tr[data-alert-id='2']", timeout=10_000)

        # mid-selection the page does not reload under the reviewer: it says so instead
        page.locator("tr[data-alert-id='1'] input[name=id]").check()
        clock.advance(hours=24)
        server.set("/guide", Served.html(GUIDE_V1))  # both come back: two `restored`
        assert len(in_thread(lambda: check(root, clock))) == 2
        page.wait_for_selector("#refresh-banner:not([hidden])", timeout=10_000)
        assert page.locator("tr[data-alert-id='1'] input[name=id]").is_checked()
        assert page.locator("tr.alert-row").count() == 2


def test_report_opens_offline(tab: Tab, workspaces: dict[str, Path], tmp_path: Path) -> None:
    root = workspaces["three"]
    out = tmp_path / "report.html"
    write_report(root, out, None, None, utcnow())
    alerts = alerts_of(root)
    outside: list[str] = []

    def route(request: Any) -> None:
        if request.request.url.startswith("file://"):
            request.continue_()
        else:
            outside.append(request.request.url)
            request.abort()

    tab.page.route("**/*", route)
    tab.page.goto(out.as_uri())
    assert outside == []
    articles = tab.page.locator("article")
    assert articles.count() == len(alerts) == 3
    first = articles.nth(0)
    assert first.locator(".passage del mark.flag").all_inner_texts() == ["Uyghur", "Uyghur"]
    assert (
        first.locator(".passage del mark.flag").first.evaluate(
            "e => getComputedStyle(e).backgroundColor"
        )
        == HIGHLIGHT
    )
    assert first.locator("code.sha256").all_inner_texts() == [
        alerts[0]["snapshot_before"],
        alerts[0]["snapshot_after"],
    ]
    assert first.locator("dd.first-missing").inner_text().startswith("2020-11-03 09:00:00 UTC")
