"""The Wayback client against a fake archive on 127.0.0.1 (tests/fake_wayback.py): listing,
paging, replay of original bytes, politeness (pace, retries, Retry-After) and hostile answers.
Sleeps are recorded on a fake clock, never slept."""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from importlib import resources
from typing import Any, TypeVar

import httpx
import pytest
from fake_wayback import RESET, Canned, FakeWayback, Snapshot

from pagewatch import analysis, detect
from pagewatch.errors import ArchiveError, CaptureGone, PagewatchError
from pagewatch.fetch import GONE_STATUSES, FetchPolicy, decode_content
from pagewatch.models import ArchivedResponse, PhraseGroup
from pagewatch.wayback import (
    NOT_ORIGINAL_HEADER,
    CdxRow,
    Pace,
    WaybackPolicy,
    capture_key,
    collapse_runs,
    fetch_capture,
    list_captures,
    make_client,
    parse_cdx,
    payload_digest,
)

T = TypeVar("T")
PAGE = "https://vendor.example/docs/vision/face-attributes"


class FakeTime:
    """A monotonic clock that moves only when slept on; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def archive() -> Iterator[FakeWayback]:
    with FakeWayback() as running:
        yield running


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def policy(archive: FakeWayback, **changes: Any) -> WaybackPolicy:
    settings: dict[str, Any] = {
        "base_url": archive.base_url,
        "min_interval_s": 1.0,
        "retries": 3,
        "backoff_s": 0.5,
    }
    return WaybackPolicy(**(settings | changes))


def run(job: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    async def go() -> T:
        async with make_client(FetchPolicy()) as client:
            return await job(client)

    return asyncio.run(go())


def listing(
    archive: FakeWayback,
    clock: FakeTime,
    since: datetime | None = None,
    until: datetime | None = None,
    **changes: Any,
) -> list[CdxRow]:
    return run(
        lambda client: list_captures(
            client,
            PAGE,
            policy=policy(archive, **changes),
            since=since,
            until=until,
            sleep=clock.sleep,
            clock=clock.clock,
        )
    )


def fetching(
    archive: FakeWayback, clock: FakeTime, row: CdxRow, **changes: Any
) -> ArchivedResponse:
    return run(
        lambda client: fetch_capture(
            client, row, policy=policy(archive, **changes), sleep=clock.sleep, clock=clock.clock
        )
    )


def html(text: str) -> bytes:
    return f"<html><body><main>{text}</main></body></html>".encode()


def row_of(snapshot: Snapshot) -> CdxRow:
    return CdxRow(
        snapshot.timestamp, snapshot.url, "text/html", snapshot.status, snapshot.digest, 0
    )


def at(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=UTC)


A, B, C = html("<p>Is it Uyghur</p>"), html("<p>Glasses</p>"), html("<p>Hats</p>")


# -- listing ---------------------------------------------------------------------------------


def test_listing_asks_for_the_dates_and_keeps_the_first_and_last_of_each_run(
    archive: FakeWayback, fake_time: FakeTime
) -> None:
    archive.add(
        Snapshot("20190101000000", PAGE, body=A),  # before the range
        Snapshot("20200101000000", PAGE, body=A),
        Snapshot("20200201000000", "http://www.vendor.example/docs/vision/face-attributes", body=A),
        Snapshot("20200301000000", PAGE, body=A, revisit=True),
        Snapshot("20200401000000", PAGE, body=B),
        Snapshot("20200501000000", PAGE, body=A),  # A again, not adjacent: a change back
        Snapshot("20210101000000", PAGE, body=B),  # after the range
        Snapshot("20200601000000", "https://vendor.example/other", body=C),  # another URL
    )
    rows = listing(archive, fake_time, datetime(2020, 1, 1, tzinfo=UTC), datetime(2020, 12, 31))

    assert [(r.timestamp, r.digest) for r in rows] == [
        ("20200101000000", payload_digest(A)),
        ("20200301000000", payload_digest(A)),  # the last of the run: tight windows
        ("20200401000000", payload_digest(B)),
        ("20200501000000", payload_digest(A)),
    ]
    assert rows[1] == CdxRow(
        "20200301000000", PAGE, "warc/revisit", None, payload_digest(A), len(A) + 300
    )
    assert rows[0].captured_at == datetime(2020, 1, 1, tzinfo=UTC)
    (seen,) = archive.seen("cdx")
    assert seen.query == {
        "url": [PAGE],
        "output": ["json"],
        "fl": ["timestamp,original,mimetype,statuscode,digest,length"],
        "limit": ["5000"],
        "showResumeKey": ["true"],
        "from": ["20200101000000"],
        "to": ["20201231000000"],
    }


def test_an_empty_listing_is_no_captures(archive: FakeWayback, fake_time: FakeTime) -> None:
    assert listing(archive, fake_time) == []
    assert archive.seen("cdx")[0].param("from") is None


def test_the_fake_archive_collapses_adjacent_digests_as_the_real_one_does(
    archive: FakeWayback,
) -> None:
    archive.add(
        *(Snapshot(f"2020010{n + 1}000000", PAGE, body=b) for n, b in enumerate([A, A, B, A]))
    )
    answer = httpx.get(
        f"{archive.base_url}/cdx/search/cdx",
        params={"url": PAGE, "output": "json", "collapse": "digest", "fl": "timestamp"},
    )
    assert answer.json() == [
        ["timestamp"],
        ["20200101000000"],
        ["20200103000000"],
        ["20200104000000"],
    ]


def test_listing_follows_resume_keys_to_the_end(archive: FakeWayback, fake_time: FakeTime) -> None:
    bodies = [A, B, C, A, B]
    archive.add(*(Snapshot(f"2020010{n + 1}000000", PAGE, body=b) for n, b in enumerate(bodies)))
    rows = listing(archive, fake_time, page_size=2)

    assert [r.timestamp[:8] for r in rows] == [f"2020010{n}" for n in range(1, 6)]
    pages = archive.seen("cdx")
    assert [p.param("resumeKey") for p in pages] == [
        None,
        "example%2Cvendor%29%2Fdocs%2Fvision%2Fface-attributes+20200102000000%21",
        "example%2Cvendor%29%2Fdocs%2Fvision%2Fface-attributes+20200104000000%21",
    ]  # passed back exactly as the archive printed them
    assert all(p.param("limit") == "2" for p in pages)


def test_the_collapse_holds_across_pages(archive: FakeWayback, fake_time: FakeTime) -> None:
    archive.add(*(Snapshot(f"2020010{n + 1}000000", PAGE, body=A) for n in range(5)))
    rows = listing(archive, fake_time, page_size=2)
    assert [r.timestamp for r in rows] == ["20200101000000", "20200105000000"]


def test_rows_with_impossible_timestamps_are_skipped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    header = ["timestamp", "original", "mimetype", "statuscode", "digest", "length"]
    good = ["20200101000000", PAGE, "text/html", "200", "X", "-"]
    bad = ["20000008241731", PAGE, "text/html", "200", "Y", "12"]
    with caplog.at_level(logging.WARNING, "pagewatch.wayback"):
        rows, resume = parse_cdx(f"[{header}, {bad}, {good}]".replace("'", '"').encode(), PAGE)
    assert [r.timestamp for r in rows] == ["20200101000000"]
    assert rows[0].length is None and resume is None
    assert "20000008241731" in caplog.text


def test_collapse_runs_breaks_on_a_different_status_with_the_same_digest() -> None:
    empty = payload_digest(b"")
    rows = [
        CdxRow("20200101000000", PAGE, "text/html", 301, empty, 0),
        CdxRow("20200101000000", PAGE, "text/html", 301, empty, 0),  # an exact repeat
        CdxRow("20200102000000", PAGE, "text/html", 302, empty, 0),
        CdxRow("20200103000000", PAGE, "warc/revisit", None, empty, 0),
        CdxRow("20200104000000", PAGE, "text/html", 302, empty, 0),
    ]
    kept = collapse_runs(list(reversed(rows)))
    assert [(r.timestamp, r.statuscode) for r in kept] == [
        ("20200101000000", 301),
        ("20200102000000", 302),
        ("20200104000000", 302),
    ]


def test_capture_key_is_the_tail_of_the_origin(archive: FakeWayback, fake_time: FakeTime) -> None:
    snapshot = Snapshot("20201102090000", PAGE + "?lang=en&v=2", body=A)
    archive.add(snapshot)
    got = fetching(archive, fake_time, row_of(snapshot))
    assert capture_key(row_of(snapshot)) == f"20201102090000id_/{PAGE}?lang=en&v=2"
    assert got.origin == f"{archive.base_url}/web/{capture_key(row_of(snapshot))}"
    assert got.target_uri == PAGE + "?lang=en&v=2"


# -- replay ----------------------------------------------------------------------------------


def test_a_capture_is_the_original_bytes_headers_status_and_time(
    archive: FakeWayback, fake_time: FakeTime
) -> None:
    original = (
        ("Date", "Mon, 02 Nov 2020 09:00:00 GMT"),
        ("Server", "vendor-edge"),
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(A))),
        ("Set-Cookie", "vendor=1"),
        ("ETag", '"v1"'),
    )
    snapshot = Snapshot("20201102090000", PAGE, headers=original, body=A)
    archive.add(snapshot)
    got = fetching(archive, fake_time, row_of(snapshot))

    assert got == ArchivedResponse(
        target_uri=PAGE,
        status=200,
        headers=(
            ("Date", "Mon, 02 Nov 2020 09:00:00 GMT"),
            ("Server", "vendor-edge"),
            ("Content-Type", "text/html; charset=utf-8"),
            ("X-Archive-Orig-Content-Length", str(len(A))),
            ("Set-Cookie", "vendor=1"),
            ("ETag", '"v1"'),
        ),
        body=A,
        captured_at=datetime(2020, 11, 2, 9, 0, tzinfo=UTC),
        origin=f"{archive.base_url}/web/20201102090000id_/{PAGE}",
    )
    (seen,) = archive.seen("web")
    assert seen.headers["Accept-Encoding"] == "identity"


def test_a_gzip_capture_keeps_its_encoded_bytes_and_says_so(
    archive: FakeWayback, fake_time: FakeTime
) -> None:
    packed = gzip.compress(A, mtime=0)
    headers = (("Content-Type", "text/html"), ("Content-Encoding", "gzip"))
    snapshot = Snapshot("20201102090000", PAGE, headers=headers, body=packed)
    archive.add(snapshot)
    got = fetching(archive, fake_time, row_of(snapshot))

    assert got.body == packed
    assert got.headers == (("Content-Type", "text/html"), ("Content-Encoding", "gzip"))
    assert decode_content(got.body, got.header("content-encoding") or "", 10**6) == A


def test_a_blank_content_encoding_over_gzip_bytes_reads_as_gzip(
    archive: FakeWayback, fake_time: FakeTime
) -> None:
    packed = gzip.compress(A, mtime=0)
    headers = (("Content-Type", "text/html"), ("Content-Encoding", "gzip"))
    snapshot = Snapshot("20201102090000", PAGE, headers=headers, body=packed, served_encoding="")
    archive.add(snapshot)
    got = fetching(archive, fake_time, row_of(snapshot))
    assert got.header("content-encoding") == "gzip"
    assert got.header(NOT_ORIGINAL_HEADER) is None


def test_bytes_that_are_not_the_archived_payload_are_marked(
    archive: FakeWayback, fake_time: FakeTime
) -> None:
    packed = gzip.compress(A, mtime=0)
    headers = (("Content-Type", "text/html"), ("Content-Encoding", "gzip"))
    decoded_by_archive = Snapshot(
        "20201102090000", PAGE, headers=headers, body=packed, served=A, served_encoding=""
    )
    archive.add(decoded_by_archive)
    got = fetching(archive, fake_time, row_of(decoded_by_archive))

    assert got.body == A
    assert got.header("content-encoding") is None
    assert got.header(NOT_ORIGINAL_HEADER) == (
        f"body SHA-1 {payload_digest(A)} is not the archive's digest {payload_digest(packed)}"
    )


def test_an_archived_redirect_is_recorded_with_its_original_target_not_followed(
    archive: FakeWayback, fake_time: FakeTime
) -> None:
    moved = Snapshot("20201201000000", PAGE, 301, (("Location", "/docs/v2/face"),))
    archive.add(moved, Snapshot("20201201000005", "https://vendor.example/docs/v2/face", body=A))
    got = fetching(archive, fake_time, row_of(moved))

    assert (got.status, got.body) == (301, b"")
    assert got.headers == (("Location", "https://vendor.example/docs/v2/face"),)
    assert len(archive.seen("web")) == 1


def test_an_archived_404_is_a_capture_of_a_gone_page(
    archive: FakeWayback, fake_time: FakeTime
) -> None:
    gone = Snapshot("20201208180000", PAGE, 404, body=html("Not Found"))
    archive.add(gone)
    got = fetching(archive, fake_time, row_of(gone))
    assert (got.status, got.body, got.captured_at) == (404, gone.body, at(gone.timestamp))


def test_a_listed_capture_the_archive_no_longer_replays_is_gone(
    archive: FakeWayback, fake_time: FakeTime
) -> None:
    lost = Snapshot("20201102090000", PAGE, body=A, gone=True)
    archive.add(lost, Snapshot("20201103090000", PAGE, body=A))
    with pytest.raises(CaptureGone) as raised:
        fetching(archive, fake_time, row_of(lost))
    url = f"{archive.base_url}/web/20201102090000id_/{PAGE}"
    assert str(raised.value) == (
        f"capture {url}: listed but not replayed by the archive: HTTP 404 Not Found "
        f"(ResourceNotInArchiveException: {PAGE})"
    )
    assert (raised.value.url, raised.value.status) == (url, 404)
    assert len(archive.seen("web")) == 1  # a 404 is not retried


def test_a_capture_the_archive_sends_elsewhen_is_gone(
    archive: FakeWayback, fake_time: FakeTime
) -> None:
    archive.add(Snapshot("20201103090000", PAGE, body=A))
    missing = CdxRow("20201102090000", PAGE, "text/html", 200, payload_digest(A), None)
    with pytest.raises(CaptureGone, match="offers the capture of 20201103090000 instead"):
        fetching(archive, fake_time, missing)


# -- politeness ------------------------------------------------------------------------------


def test_retries_honour_retry_after_in_seconds_and_as_a_date_then_back_off(
    archive: FakeWayback, fake_time: FakeTime
) -> None:
    archive.add(Snapshot("20200101000000", PAGE, body=A))
    date = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    archive.fail(
        "cdx",
        Canned(429, (("Retry-After", "7"),)),
        Canned(
            503,
            (
                ("Date", format_datetime(date, usegmt=True)),
                ("Retry-After", format_datetime(date.replace(second=12), usegmt=True)),
            ),
        ),
        RESET,
        Canned(502),
    )
    rows = listing(archive, fake_time, retries=4)

    assert [r.timestamp for r in rows] == ["20200101000000"]
    assert fake_time.sleeps == [7.0, 12.0, 0.5 * 2**2, 0.5 * 2**3]  # no wait added by the pace
    assert len(archive.seen("cdx")) == 5


def test_a_429_without_retry_after_waits_a_minute_and_retry_after_is_capped(
    archive: FakeWayback, fake_time: FakeTime
) -> None:
    archive.add(Snapshot("20200101000000", PAGE, body=A))
    archive.fail("web", Canned(429), Canned(503, (("Retry-After", "86400"),)))
    got = fetching(archive, fake_time, row_of(archive.history[0]), max_retry_after_s=120.0)
    assert got.body == A
    assert fake_time.sleeps == [60.0, 120.0]


def test_requests_keep_the_minimum_interval(archive: FakeWayback, fake_time: FakeTime) -> None:
    archive.add(*(Snapshot(f"2020010{n + 1}000000", PAGE, body=b) for n, b in enumerate([A, B, C])))
    sent: list[float] = []  # the fake clock as each request leaves

    async def note(request: httpx.Request) -> None:
        sent.append(fake_time.now)

    async def job(client: httpx.AsyncClient) -> list[ArchivedResponse]:
        client.event_hooks["request"] = [note]
        rules = policy(archive, min_interval_s=2.5)
        rows = await list_captures(
            client,
            PAGE,
            policy=rules,
            since=None,
            until=None,
            sleep=fake_time.sleep,
            clock=fake_time.clock,
        )
        fake_time.now += 1.0  # time spent elsewhere counts towards the interval
        return await asyncio.gather(
            *(
                fetch_capture(
                    client, row, policy=rules, sleep=fake_time.sleep, clock=fake_time.clock
                )
                for row in rows
            )
        )

    got = run(job)
    assert [g.body for g in got] == [A, B, C]
    assert fake_time.sleeps == [1.5, 2.5, 2.5]
    assert sent == [1000.0, 1002.5, 1005.0, 1007.5]


def test_one_pace_is_shared_by_calls_with_the_same_client_and_archive(
    archive: FakeWayback, fake_time: FakeTime
) -> None:
    snapshot = Snapshot("20200101000000", PAGE, body=A)
    archive.add(snapshot)

    async def job(client: httpx.AsyncClient) -> None:
        for _ in range(2):
            await fetch_capture(
                client,
                row_of(snapshot),
                policy=policy(archive),
                sleep=fake_time.sleep,
                clock=fake_time.clock,
            )
        own = Pace()  # a pace of one's own is not shared
        await fetch_capture(
            client,
            row_of(snapshot),
            policy=policy(archive),
            sleep=fake_time.sleep,
            clock=fake_time.clock,
            pace=own,
        )

    run(job)
    assert fake_time.sleeps == [1.0]


def test_a_permanent_failure_gives_up_with_one_clear_line(
    archive: FakeWayback, fake_time: FakeTime
) -> None:
    archive.fail("cdx", *[Canned(503, body=b"Service Unavailable")] * 4)
    with pytest.raises(ArchiveError) as raised:
        listing(archive, fake_time, backoff_s=1.0)
    assert str(raised.value) == (
        f"listing captures of {PAGE}: HTTP 503 Service Unavailable (gave up after 4 attempts)"
    )
    assert (raised.value.url, raised.value.status) == (PAGE, 503)
    assert fake_time.sleeps == [1.0, 2.0, 4.0]


def test_connection_resets_are_retried_then_given_up(
    archive: FakeWayback, fake_time: FakeTime
) -> None:
    snapshot = Snapshot("20200101000000", PAGE, body=A)
    archive.add(snapshot)
    archive.fail("web", *[RESET] * 4)
    with pytest.raises(
        ArchiveError,
        match=r"^capture http://127\.0\.0\.1:\d+/web/2020.*"
        r"\(gave up after 4 attempts\)$",
    ):
        fetching(archive, fake_time, row_of(snapshot))
    assert len(archive.seen("web")) == 4


def test_a_slow_archive_is_cut_off_by_the_deadline_and_retried(
    archive: FakeWayback, fake_time: FakeTime
) -> None:
    snapshot = Snapshot("20200101000000", PAGE, body=A)
    archive.add(snapshot)
    archive.fail("web", Canned(200, body=b"late", delay=0.5))
    got = fetching(archive, fake_time, row_of(snapshot), fetch=FetchPolicy(deadline=0.1))
    assert got.body == A
    assert fake_time.sleeps == [0.5, 0.5]  # the backoff, then the pace's 1 s interval


def test_a_refusal_is_not_retried_and_says_why(archive: FakeWayback, fake_time: FakeTime) -> None:
    archive.fail(
        "cdx",
        Canned(
            403,
            (("Content-Type", "text/plain"),),
            b"org.archive.wayback.exception.RobotAccessControlException: Blocked By Robots\n",
        ),
    )
    with pytest.raises(ArchiveError) as raised:
        listing(archive, fake_time)
    assert str(raised.value) == (
        f"listing captures of {PAGE}: HTTP 403 Forbidden (org.archive.wayback.exception."
        "RobotAccessControlException: Blocked By Robots)"
    )
    assert fake_time.sleeps == []


# -- hostile answers -------------------------------------------------------------------------

JSON = (("Content-Type", "application/json"),)
HEADER = b'[["timestamp","original","mimetype","statuscode","digest","length"]'


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (Canned(200, JSON, b"<html>busy</html>"), "not JSON"),
        (Canned(200, JSON, b"[" * 50_000), "not JSON (maximum recursion depth"),
        (Canned(200, JSON, b'{"rows": []}'), "expected a JSON array, got dict"),
        (Canned(200, JSON, b'[["timestamp"],["20200101000000"]]'), "does not name the fields"),
        (Canned(200, JSON, HEADER + b',["20200101000000"]]'), "row 1 is not 6 strings"),
        (Canned(200, JSON, HEADER + b",[1,2,3,4,5,6]]"), "row 1 is not 6 strings"),
        (Canned(200, JSON, b"\xff\xfe[]"), "not UTF-8"),
        (Canned(200, (("Content-Encoding", "gzip"),), b"not gzip"), "corrupt compressed body"),
        (Canned(200, JSON, b" " * 100_001), "over the cap of 100,000"),
        (
            Canned(200, (("Content-Encoding", "gzip"),), gzip.compress(b" " * 300_000)),
            "decompressed body over the cap of 200,000",
        ),
    ],
    ids=[
        "html",
        "nested-too-deep",
        "object",
        "header-lacks-fields",
        "short-row",
        "numbers",
        "not-utf8",
        "corrupt-gzip",
        "over-cap",
        "gzip-bomb",
    ],
)
def test_garbage_from_the_cdx_endpoint_is_a_clear_error(
    archive: FakeWayback, fake_time: FakeTime, answer: Canned, problem: str
) -> None:
    archive.fail("cdx", answer)
    with pytest.raises(ArchiveError) as raised:
        listing(archive, fake_time, fetch=FetchPolicy(max_body=100_000, max_decoded=200_000))
    message = str(raised.value)
    assert message.startswith(f"listing captures of {PAGE}: ")
    assert problem in message
    assert "\n" not in message and len(message) < 400
    assert len(archive.seen("cdx")) == 1  # garbage is not retried


def test_a_paging_loop_is_refused(archive: FakeWayback, fake_time: FakeTime) -> None:
    looping = HEADER + b',["20200101000000","u","text/html","200","D","1"],[],["again"]]'
    archive.fail("cdx", Canned(200, JSON, looping), Canned(200, JSON, looping))
    with pytest.raises(ArchiveError, match=r"paging loops \(resume key repeated\)$"):
        listing(archive, fake_time)


def test_too_many_captures_is_refused(archive: FakeWayback, fake_time: FakeTime) -> None:
    archive.add(*(Snapshot(f"2020010{n + 1}000000", PAGE, body=A) for n in range(4)))
    with pytest.raises(ArchiveError, match="more than 3 captures; narrow the dates"):
        listing(archive, fake_time, max_captures=3)


def memento(status: int = 200, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return (("Memento-Datetime", "Wed, 01 Jan 2020 00:00:00 GMT"), *extra)


@pytest.mark.parametrize(
    ("answer", "error", "problem"),
    [
        (Canned(200, memento(), b"x" * 5000), ArchiveError, "over the cap of 1,000"),
        (
            Canned(200, memento(200, ("Content-Encoding", "gzip")), b"\x1f\x8bnot really"),
            ArchiveError,
            "corrupt compressed body",
        ),
        (
            Canned(200, memento(200, ("Content-Encoding", "compress")), b"abc"),
            ArchiveError,
            "unsupported content-encoding 'compress'",
        ),
        (
            Canned(200, (("Memento-Datetime", "yesterday"),), b"x"),
            ArchiveError,
            "unreadable Memento-Datetime",
        ),
        (
            Canned(200, (("Memento-Datetime", "Thu, 02 Jan 2020 00:00:00 GMT"),), b"x"),
            CaptureGone,
            "replays the capture of 20200102000000 instead",
        ),
        (
            Canned(200, memento(200, ("Content-Length", "3")), b"abc and more"),
            ArchiveError,
            "the server sent more than its Content-Length of 3",
        ),
        (Canned(200, (), b"<html>a banner</html>"), ArchiveError, "archive answers HTTP 200 OK ("),
        (
            Canned(302, (("Location", "https://elsewhere.example/web/20200101000000id_/x"),)),
            ArchiveError,
            "redirects out of the archive",
        ),
    ],
    ids=[
        "over-cap",
        "corrupt-gzip",
        "unknown-coding",
        "bad-memento-date",
        "other-time",
        "longer-than-declared",
        "no-memento",
        "off-site-redirect",
    ],
)
def test_hostile_replays_are_clear_errors(
    archive: FakeWayback,
    fake_time: FakeTime,
    answer: Canned,
    error: type[ArchiveError],
    problem: str,
) -> None:
    row = CdxRow("20200101000000", PAGE, "text/html", 200, payload_digest(A), None)
    archive.fail("web", answer)
    with pytest.raises(error) as raised:
        fetching(archive, fake_time, row, fetch=FetchPolicy(max_body=1000))
    message = str(raised.value)
    assert message.startswith(f"capture {archive.base_url}/web/20200101000000id_/{PAGE}: ")
    assert problem in message
    assert "\n" not in message
    assert isinstance(raised.value, PagewatchError)


def test_the_archives_own_redirect_to_the_same_capture_is_followed(
    archive: FakeWayback, fake_time: FakeTime
) -> None:
    snapshot = Snapshot("20200101000000", PAGE, body=A)
    archive.add(snapshot)
    canonical = f"{archive.base_url}/web/20200101000000id_/{PAGE}"
    archive.fail("web", Canned(301, (("Location", canonical),)))
    row = CdxRow(
        "20200101000000",
        PAGE.replace("https://", "http://"),
        "text/html",
        200,
        snapshot.digest,
        None,
    )
    got = fetching(archive, fake_time, row)
    assert (got.body, got.origin) == (A, canonical)


# -- the whole point -------------------------------------------------------------------------

GROUPS = (
    PhraseGroup("uyghur", ("Uyghur", "Uighur", "Uygur", "维吾尔")),
    PhraseGroup("ethnicity", ("ethnic", "ethnic minority", "ethnicity", "民族")),
)


def guide(version: str) -> bytes:
    return (
        resources.files("pagewatch")
        .joinpath("demo_site", f"face-attributes.{version}.html")
        .read_bytes()
    )


def test_a_backfilled_history_in_which_the_phrases_go_gives_the_alert_and_its_tight_window(
    archive: FakeWayback, fake_time: FakeTime
) -> None:
    v1, v2, v4 = guide("v1"), guide("v2"), guide("v4")
    archive.add(
        Snapshot("20201102090000", PAGE, body=v1),
        Snapshot("20201110090000", PAGE, body=v1),
        Snapshot("20201120090000", PAGE, body=v2),  # a respelling: not a removal
        Snapshot("20201125090000", PAGE, body=v2),
        Snapshot("20201201090000", PAGE, body=v2, revisit=True),  # the last seen with them
        Snapshot("20201208060000", PAGE, 503, body=b"<h1>Service Unavailable</h1>"),
        Snapshot("20201208180000", PAGE, body=v4),  # the first without them
        Snapshot("20201220090000", PAGE, body=v4),
    )

    async def backfill(client: httpx.AsyncClient) -> list[ArchivedResponse]:
        rules = policy(archive)
        rows = await list_captures(
            client,
            PAGE,
            policy=rules,
            since=datetime(2020, 11, 1),
            until=None,
            sleep=fake_time.sleep,
            clock=fake_time.clock,
        )
        return [
            await fetch_capture(
                client, r, policy=rules, sleep=fake_time.sleep, clock=fake_time.clock
            )
            for r in rows
        ]

    captures = run(backfill)
    assert len(archive.seen("web")) == 7  # the archived 503 is a capture: not retried
    assert [c.captured_at.strftime("%m%d") for c in captures] == [
        "1102",
        "1110",
        "1120",
        "1201",
        "1208",
        "1208",
        "1220",
    ]
    alerts = []
    before: tuple[datetime, dict[str, int]] | None = None
    for capture in captures:
        if not (200 <= capture.status < 300 or capture.status in GONE_STATUSES):
            continue  # a failed check: never compared
        content = decode_content(capture.body, capture.header("content-encoding") or "", 10**7)
        analysed = analysis.analyse(
            content or capture.body, capture.header("content-type"), None, GROUPS
        )
        counts = {name: found.count for name, found in analysed.counts.items()}
        if before is not None:
            for finding in detect.compare(
                before[1], counts, page_gone=capture.status in GONE_STATUSES
            ):
                alerts.append((finding.group, finding.kind, before[0], capture.captured_at))
        before = (capture.captured_at, counts)

    assert alerts == [
        ("uyghur", "removed", at("20201201090000"), at("20201208180000")),
        ("ethnicity", "removed", at("20201201090000"), at("20201208180000")),
    ]
