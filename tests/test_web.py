"""`pagewatch serve` over HTTP: a real uvicorn on 127.0.0.1 over workspaces the pipeline made.

What a reviewer relies on: the inbox shows and filters the alerts, an acknowledgement sticks, the
alert page shows the window, the hashes and the passage, captured bodies never run as pages,
and no other site can change anything.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from conftest import Clock
from lxml import html
from reviewkit import GUIDE_V3, built, check, copy, removal, serving

from pagewatch.alerts import history, list_alerts
from pagewatch.bundle import verify
from pagewatch.cli import cli
from pagewatch.errors import UsageError
from pagewatch.models import Span
from pagewatch.replay import Page, ReplayServer
from pagewatch.responses import read_metadata
from pagewatch.store import Store
from pagewatch.web.chart import Sample, charts
from pagewatch.web.highlight import Flagged, Piece, side_by_side
from pagewatch.web.server import BackgroundServer, settings_for


def alerts_of(root: Path, status: str = "all") -> list[dict[str, object]]:
    store = Store(root, readonly=True)
    try:
        return list_alerts(store, status)
    finally:
        store.close()


@pytest.fixture(scope="module")
def workspaces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return built(tmp_path_factory.mktemp("built"))


@pytest.fixture
def three(workspaces: dict[str, Path], tmp_path: Path) -> Path:
    """Three alerts on two lists (see reviewkit.three_alerts), a copy of its own."""
    return copy(workspaces["three"], tmp_path)


@pytest.fixture
def app(three: Path) -> Iterator[BackgroundServer]:
    with serving(three) as running:
        yield running


def doc(response: httpx.Response) -> html.HtmlElement:
    assert response.status_code == 200, response.text
    return html.fromstring(response.text)


def shown_ids(page: html.HtmlElement) -> list[int]:
    return [int(row.get("data-alert-id")) for row in page.cssselect("tr.alert-row")]


def form_token(page: html.HtmlElement) -> str:
    return str(page.cssselect("input[name=form_token]")[0].get("value"))


def same_origin(app: BackgroundServer) -> dict[str, str]:
    return {"Origin": app.url.rstrip("/"), "Sec-Fetch-Site": "same-origin"}


def test_inbox_lists_alerts_newest_first_with_counts(app: BackgroundServer, three: Path) -> None:
    alerts = alerts_of(three)
    assert [(a["kind"], a["group"], a["list"]) for a in alerts] == [
        ("removed", "uyghur", "vendors"),
        ("removed", "ethnicity", "vendors"),
        ("page_removed", "uyghur", "faq"),
    ]
    page = doc(httpx.get(app.url))
    assert shown_ids(page) == [3, 2, 1]
    counts = {
        tab.get("data-status"): int(tab.cssselect(".count")[0].text)
        for tab in page.cssselect("a.tab")
    }
    assert counts == {"new": 3, "acked": 0, "withdrawn": 0, "all": 3}


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ({"list": "faq"}, [3]),
        ({"kind": "page_removed"}, [3]),
        ({"kind": "removed", "group": "uyghur"}, [1]),
        ({"group": "ethnicity"}, [2]),
        ({"since": "2020-11-04"}, [3, 2]),
        ({"until": "2020-11-03"}, [1]),
        ({"since": "2020-11-04", "until": "2020-11-04"}, [2]),
        ({"status": "acked"}, []),
        ({"status": "all", "list": "vendors"}, [2, 1]),
    ],
    ids=["list", "kind", "kind-and-group", "group", "since", "until", "one-day", "acked", "all"],
)
def test_inbox_filters(app: BackgroundServer, query: dict[str, str], ids: list[int]) -> None:
    assert shown_ids(doc(httpx.get(app.url, params=query))) == ids


def test_inbox_refuses_a_bad_filter_in_one_line(app: BackgroundServer) -> None:
    response = httpx.get(app.url, params={"since": "yesterday"})
    assert response.status_code == 400
    page = html.fromstring(response.text)
    assert page.cssselect("p.error")[0].text == (
        "since must be a date like 2020-12-08, not 'yesterday'"
    )


def test_ack_many_with_a_note_then_unack_one(app: BackgroundServer, three: Path) -> None:
    token = form_token(doc(httpx.get(app.url)))
    acked = httpx.post(
        app.url + "alerts/ack",
        data={"form_token": token, "id": ["1", "3"], "note": "archived; sent to the editor"},
        headers=same_origin(app),
    )
    assert (acked.status_code, acked.headers["location"]) == (303, "/")
    state = {a["id"]: (a["status"], a["note"]) for a in alerts_of(three)}
    assert state == {
        1: ("acked", "archived; sent to the editor"),
        2: ("new", ""),
        3: ("acked", "archived; sent to the editor"),
    }
    page = doc(httpx.get(app.url))
    assert shown_ids(page) == [2]
    assert int(page.cssselect("a.tab[data-status=acked] .count")[0].text) == 2

    back = httpx.post(
        app.url + "alerts/unack",
        data={"form_token": token, "id": "3", "next": "/alerts/3"},
        headers=same_origin(app),
    )
    assert (back.status_code, back.headers["location"]) == (303, "/alerts/3")
    assert [(a["id"], a["status"]) for a in alerts_of(three, "new")] == [(2, "new"), (3, "new")]


def test_ack_of_an_unknown_alert_changes_nothing(app: BackgroundServer, three: Path) -> None:
    token = form_token(doc(httpx.get(app.url)))
    response = httpx.post(
        app.url + "alerts/ack",
        data={"form_token": token, "id": ["1", "99"]},
        headers=same_origin(app),
    )
    assert response.status_code == 404
    assert "no alert 99; nothing was acknowledged" in response.text
    assert {a["status"] for a in alerts_of(three)} == {"new"}


def test_next_never_leaves_the_app(app: BackgroundServer) -> None:
    token = form_token(doc(httpx.get(app.url)))
    response = httpx.post(
        app.url + "alerts/ack",
        data={"form_token": token, "id": "1", "next": "//evil.example/x"},
        headers=same_origin(app),
    )
    assert response.headers["location"] == "/"


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Origin": "http://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # another port of 127.0.0.1 is the same site
        {"Origin": "null"},  # a sandboxed page, e.g. a captured body if it ever ran
        {},  # neither Origin, Sec-Fetch-Site nor Referer
        {"Referer": "http://evil.example/page"},
    ],
    ids=["cross-site", "foreign-origin", "fetch-site", "same-site", "null", "bare", "referer"],
)
def test_cross_site_post_is_refused(
    app: BackgroundServer, three: Path, headers: dict[str, str]
) -> None:
    token = form_token(doc(httpx.get(app.url)))  # even with the right form token
    response = httpx.post(
        app.url + "alerts/ack", data={"form_token": token, "id": "1"}, headers=headers
    )
    assert response.status_code == 403
    assert response.text.startswith("refused: ")
    assert {a["status"] for a in alerts_of(three)} == {"new"}


def test_post_without_the_form_token_is_refused(app: BackgroundServer, three: Path) -> None:
    response = httpx.post(
        app.url + "alerts/ack",
        data={"form_token": "guessed", "id": "1"},
        headers=same_origin(app),
    )
    assert response.status_code == 403
    assert {a["status"] for a in alerts_of(three)} == {"new"}


def test_a_foreign_host_name_is_refused(app: BackgroundServer) -> None:
    """DNS rebinding: a page at evil.example re-pointed to 127.0.0.1 reads nothing."""
    response = httpx.get(app.url, headers={"Host": "evil.example"})
    assert response.status_code == 421
    assert httpx.get(app.url.replace("127.0.0.1", "localhost")).status_code == 200


def test_off_loopback_needs_a_token(three: Path) -> None:
    with pytest.raises(UsageError, match=r"listening on 0.0.0.0 .* give a token"):
        settings_for(three, "0.0.0.0", None)
    result = CliRunner().invoke(
        cli, ["--workspace", str(three), "serve", "--host", "0.0.0.0"], env={"PAGEWATCH_TOKEN": ""}
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: listening on 0.0.0.0 exposes the workspace")


def test_off_loopback_every_request_carries_the_token(three: Path) -> None:
    settings = settings_for(three, "0.0.0.0", "s3cret-token")
    with BackgroundServer(settings, host="0.0.0.0") as running:
        local = running.url.replace("0.0.0.0", "127.0.0.1")
        for path in ("", "alerts/1", "captures/1/text", "api/stamp", "static/app.css"):
            refused = httpx.get(local + path)
            assert refused.status_code == 401, path
            assert "needs its token" in refused.text
        wrong = httpx.get(local, headers={"Authorization": "Bearer s3cret-tokem"})
        assert wrong.status_code == 401
        assert httpx.get(local, headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        assert httpx.get(local, params={"token": "nope"}).status_code == 401

        with httpx.Client() as browser:
            entry = browser.get(local + "alerts/1", params={"token": "s3cret-token"})
            assert (entry.status_code, entry.headers["location"]) == (303, "/alerts/1")
            assert "HttpOnly" in entry.headers["set-cookie"]
            assert "SameSite=strict" in entry.headers["set-cookie"]
            assert browser.get(local + "alerts/1").status_code == 200  # by the cookie now

        api = httpx.post(  # a script with the bearer token needs no browser-only guards
            local + "alerts/ack",
            data={"id": "2", "note": "via API"},
            headers={"Authorization": "Bearer s3cret-token"},
        )
        assert api.status_code == 303
        assert [a["id"] for a in alerts_of(three, "acked")] == [2]


def test_alert_page_shows_window_hashes_and_marked_passage(workspaces: dict[str, Path]) -> None:
    root, alert_id = workspaces["removal"], 1
    [alert] = alerts_of(root)
    with serving(root) as running:
        page = doc(httpx.get(f"{running.url}alerts/{alert_id}"))
    assert page.cssselect("#last-seen time")[0].get("datetime") == "2020-11-02T09:00:00+00:00"
    assert page.cssselect("#first-missing time")[0].get("datetime") == "2020-11-03T09:00:00+00:00"
    assert page.cssselect("#last-seen time")[0].text == "2020-11-02 09:00:00 UTC"
    assert [c.text for c in page.cssselect("code.sha256")] == [
        alert["snapshot_before"],
        alert["snapshot_after"],
    ]
    removed = page.cssselect("#passage del")
    assert "".join(d.text_content() for d in removed).strip() == (
        "Is it Uyghur: boolean, true when the face is Uyghur."
    )
    assert [m.text for m in page.cssselect("#passage del mark.flag")] == ["Uyghur", "Uyghur"]
    assert page.cssselect("#page-title")[0].text == "Face attributes · Vendor docs"
    # side by side: the removed line against a gap, every flagged phrase marked on both sides
    changed = page.cssselect(".sbs-row.changed")
    assert [
        (r.cssselect(".left")[0].text_content(), r.cssselect(".right")[0].text_content())
        for r in changed
    ] == [("Is it Uyghur: boolean, true when the face is Uyghur.", "")]
    assert [m.text for m in page.cssselect(".sbs .left mark.flag")] == [
        "ethnic minority", "Uyghur", "Uyghur",
    ]  # fmt: skip
    assert [m.text for m in page.cssselect(".sbs .right mark.flag")] == ["ethnic minority"]


def test_captures_are_served_as_inert_text(workspaces: dict[str, Path]) -> None:
    root, alert_id = workspaces["hostile"], 1
    [alert] = alerts_of(root)
    with serving(root) as running:
        before = doc(httpx.get(f"{running.url}alerts/{alert_id}"))
        text_link, body_link = (a.get("href") for a in before.cssselect("#capture-1 a")[:2])
        text = httpx.get(running.url.rstrip("/") + text_link)
        body = httpx.get(running.url.rstrip("/") + body_link)
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert text.headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert text.headers["x-content-type-options"] == "nosniff"
    assert '<script>window.__pwned = "vendor script"' in text.text
    assert body.headers["content-type"] == "application/octet-stream"
    assert body.headers["content-disposition"].startswith("attachment;")
    assert hashlib.sha256(body.content).hexdigest() == alert["snapshot_before"]


def test_page_content_is_escaped_never_templated(workspaces: dict[str, Path]) -> None:
    root, alert_id = workspaces["hostile"], 1
    with serving(root) as running:
        response = httpx.get(f"{running.url}alerts/{alert_id}")
        watch_page = httpx.get(f"{running.url}watches/1")
    page = doc(response)
    assert [s.get("src") for s in page.iter("script")] == ["/static/app.js"]
    assert page.cssselect("img") == []
    assert page.cssselect("#page-title")[0].text == (
        '<script>window.__pwned = "title"; alert("title")</script> {{7*7}} '
        '<img src=x onerror=alert("title-img")>'
    )
    passage = page.cssselect("#passage")[0].text_content()
    assert '<script>window.__pwned = "passage"; alert("passage")</script> {{7*7}}' in passage
    assert "onerror=\"window.__pwned = 'img'; alert('img')\"" in passage
    assert "49" not in passage  # {{7*7}} was never evaluated
    assert "&lt;script&gt;" in response.text and "{{7*7}}" in response.text
    assert [s.get("src") for s in doc(watch_page).iter("script")] == ["/static/app.js"]


def test_every_app_page_has_a_strict_csp(app: BackgroundServer) -> None:
    for path in ("", "alerts/1", "watches", "watches/1", "api/stamp", "alerts/99"):
        response = httpx.get(app.url + path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp, path
        assert "unsafe-inline" not in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_unknown_things_are_404_in_one_line(app: BackgroundServer) -> None:
    for path, message in [
        ("alerts/99", "no alert 99"),
        ("watches/99", "no watch 99"),
        ("captures/999/text", "no capture 999"),
    ]:
        response = httpx.get(app.url + path)
        assert response.status_code == 404
        assert html.fromstring(response.text).cssselect("p.error")[0].text == message


def test_watch_page_charts_each_group(app: BackgroundServer, three: Path) -> None:
    store = Store(three, readonly=True)
    try:
        checks = history(store, store.watches()[0]["url"], "vendors")
    finally:
        store.close()
    captures = [c for c in checks if c["outcome"] == "capture"]
    # days 1 to 5, and the fetches that confirmed the removals of days 2 and 3
    assert len(captures) == 7
    page = doc(httpx.get(app.url + "watches/1"))
    figures = page.cssselect("figure.chart")
    assert [f.get("data-group") for f in figures] == ["uyghur", "ethnicity"]
    for figure in figures:
        points = figure.cssselect("circle.point")
        assert len(points) == len(captures)
        titles = [p.cssselect("title")[0].text for p in points]
        group = figure.get("data-group")
        assert titles == [
            f"{c['checked_at'][:10]} {c['checked_at'][11:19]} UTC: {c['counts'][group]}"
            for c in captures
        ]
        assert figure.cssselect("text.axis-label")[0].text == "capture time (UTC)"
    assert [len(page.cssselect(".timeline tbody tr"))] == [len(checks)]


def test_chart_marks_failures_and_blind_periods() -> None:
    from datetime import UTC, datetime, timedelta

    start = datetime(2020, 12, 1, tzinfo=UTC)
    samples = [
        Sample(start, "capture", "", {"g": 3}),
        Sample(start + timedelta(hours=1), "failed", "http_503", {}),
        Sample(start + timedelta(hours=2), "unusable", "suspect", {}),
        Sample(start + timedelta(hours=3), "failed", "http_403", {}),
        Sample(start + timedelta(hours=4), "capture", "", {"g": 0}),
    ]
    [chart] = charts(samples, ["g"])
    assert [p.count for p in chart.points] == [3, 0]
    assert [p.x for p in chart.points] == sorted(p.x for p in chart.points)
    assert chart.points[0].y < chart.points[1].y == chart.bottom  # 0 sits on the axis
    assert [t.label for t in chart.y_ticks] == ["0", "1", "2", "3"]
    assert len(chart.failures) == 1 and "http_503" in chart.failures[0].label
    [blind] = chart.blind
    assert chart.points[0].x < blind.x < blind.x2 == chart.points[1].x
    assert blind.label == "blind 2020-12-01 02:00 to 2020-12-01 04:00 UTC (suspect)"


def test_side_by_side_aligns_changed_lines() -> None:
    before = "Title\nkeep one\nIs it Uyghur: yes.\nold tail.\nkeep two"
    after = "Title\nkeep one\nnew tail.\nkeep two"
    at = before.index("Uyghur")
    blocks = side_by_side(before, after, Flagged.of({"u": [Span(at, at + 6, "Uyghur")]}))
    rows = [row for block in blocks for row in block.rows]

    def text(line: tuple[Piece, ...] | None) -> str | None:
        return None if line is None else "".join(p.text for p in line)

    assert [(r.left_no, text(r.left), r.right_no, text(r.right)) for r in rows] == [
        (1, "Title", 1, "Title"),
        (2, "keep one", 2, "keep one"),
        (3, "Is it Uyghur: yes.", None, None),
        (4, "old tail.", 3, "new tail."),  # the lines that share their ending line up
        (5, "keep two", 4, "keep two"),
    ]
    assert [p.group for p in rows[2].left or () if p.group] == ["u"]


def test_stamp_changes_when_an_alert_arrives(
    root: Path, server: ReplayServer, clock: Clock
) -> None:
    removal(root, server, clock)
    with serving(root) as running:
        first = httpx.get(running.url + "api/stamp").json()
        server.set("/guide", Page.html(GUIDE_V3))  # ethnicity goes too
        assert check(root, clock) == [2]
        second = httpx.get(running.url + "api/stamp").json()
    assert (first["latest"], first["new"]) == (1, 1)
    assert (second["latest"], second["new"]) == (2, 2)
    assert first["stamp"] != second["stamp"]


def test_workspace_page_lists_watches_with_health(app: BackgroundServer) -> None:
    page = doc(httpx.get(app.url + "watches"))
    rows = page.cssselect("table.watches tbody tr")
    assert [
        (r.cssselect(".state")[0].text, r.cssselect(".url")[0].text.rsplit("/", 1)[1]) for r in rows
    ] == [("ok", "faq"), ("ok", "guide")]  # watchlists in name order
    assert [r.cssselect("td")[6].text_content() for r in rows] == ["1", "2"]


def test_evidence_button_downloads_the_alerts_package(
    app: BackgroundServer, three: Path, tmp_path: Path
) -> None:
    [button] = doc(httpx.get(app.url + "alerts/2")).cssselect("#evidence")
    response = httpx.get(app.url.rstrip("/") + button.get("href"))
    assert response.status_code == 200
    assert 'filename="pagewatch-alert-2.wacz"' in response.headers["content-disposition"]
    bundle = tmp_path / "alert-2.wacz"
    bundle.write_bytes(response.content)
    assert verify(bundle).ok
    metadata = read_metadata(bundle)
    assert metadata is not None and [a["id"] for a in metadata["alerts"]] == [2]
    assert httpx.get(app.url + "alerts/99/evidence.wacz").status_code == 404


def test_report_is_self_contained(three: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["--workspace", str(three), "report", "--out", str(out)])
    assert (result.exit_code, result.stdout) == (0, f"Wrote {out}: 3 alerts\n")
    text = out.read_text(encoding="utf-8")
    page = html.fromstring(text)
    assert page.cssselect("meta[http-equiv=Content-Security-Policy]")[0].get("content") == (
        "default-src 'none'; style-src 'unsafe-inline'"
    )
    assert not re.search(r"<(?:script|link|img|iframe)\b|@import|url\(", text)
    assert not page.xpath("//@src")
    alerts = alerts_of(three)
    articles = page.cssselect("article")
    assert [a.get("id") for a in articles] == ["alert-1", "alert-2", "alert-3"]
    for article, alert in zip(articles, alerts, strict=True):
        assert [c.text for c in article.cssselect("code.sha256")] == [
            alert["snapshot_before"],
            alert["snapshot_after"],
        ]
        seen = article.cssselect("dd.last-seen")[0].text_content()
        assert seen.startswith(alert["last_seen_at"][:10] + " " + alert["last_seen_at"][11:19])
    assert [m.text for m in articles[0].cssselect(".passage del mark.flag")] == [
        "Uyghur", "Uyghur",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "ids"),
    [
        (["--since", "2020-11-04"], ["alert-2", "alert-3"]),
        (["--list", "faq"], ["alert-3"]),
        (["--since", "2020-11-05", "--list", "vendors"], []),
    ],
    ids=["since", "list", "none"],
)
def test_report_range(three: Path, tmp_path: Path, args: list[str], ids: list[str]) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(
        cli, ["--workspace", str(three), "report", "--out", str(out), *args]
    )
    assert result.exit_code == 0
    page = html.fromstring(out.read_text(encoding="utf-8"))
    assert [a.get("id") for a in page.cssselect("article")] == ids
    if not ids:
        assert "No alerts in this range." in page.text_content()


def test_report_into_a_missing_folder_is_one_line(three: Path, tmp_path: Path) -> None:
    out = tmp_path / "nowhere" / "r.html"
    result = CliRunner().invoke(cli, ["--workspace", str(three), "report", "--out", str(out)])
    assert result.exit_code == 1
    assert result.stderr == f"Error: cannot write {out}: No such file or directory\n"


def test_serve_refuses_a_taken_port(three: Path) -> None:
    with serving(three) as running:
        port = running.url.rsplit(":", 1)[1].strip("/")
        result = CliRunner().invoke(cli, ["--workspace", str(three), "serve", "--port", port])
    assert result.exit_code == 1
    assert (
        result.stderr == f"Error: port {port} on 127.0.0.1 is in use; choose another with --port\n"
    )


def test_dates_in_filters_are_days_utc() -> None:
    from pagewatch.web.views import InboxFilter

    chosen = InboxFilter.parse({"since": "2020-12-08", "until": "2020-12-08", "status": "all"})
    assert (chosen.since, chosen.until) == (date(2020, 12, 8), date(2020, 12, 8))
    assert chosen.query(page=2) == "?status=all&since=2020-12-08&until=2020-12-08&page=2"
    assert json.dumps(InboxFilter().query()) == '""'
