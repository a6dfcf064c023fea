"""A page's past from the Wayback Machine: the captures its CDX index lists, and each capture's
original bytes (the ``id_`` replay), as `ArchivedResponse` values ready to store.

Polite by construction: every request to one archive from one client waits its turn on one
`Pace`, and a 429, a 5xx or a dropped connection is retried with exponential backoff, honouring
Retry-After. Bodies are read the way fetch.py reads them: raw, under a size cap and a deadline.
What the archive sends is checked before it is believed: a capture must carry the archive's
Memento-Datetime for exactly the time its index gave, and its bytes are hashed against the index's
digest. The decisions (revisits, redirects, headers, encodings) are in docs/backfill.md.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import logging
import math
import re
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import unquote

import httpx

from .errors import ArchiveError, CaptureGone
from .fetch import ACCEPT_ENCODING, FetchPolicy, decode_content, read_capped, refuse_excess
from .models import ArchivedResponse

log = logging.getLogger("pagewatch.wayback")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]

#: the CDX fields asked for, in this order (``fl=``)
CDX_FIELDS = ("timestamp", "original", "mimetype", "statuscode", "digest", "length")
TIMESTAMP_FORMAT = "%Y%m%d%H%M%S"
#: how long a 429 without Retry-After makes us wait at least (capped by max_retry_after_s)
RATE_LIMITED_DELAY_S = 60.0
#: redirects the archive itself makes to the same capture (canonical URL forms) that we follow
MAX_ARCHIVE_HOPS = 3
#: the archive's prefix for the headers of the original response
ORIG_PREFIX = "x-archive-orig-"
#: original headers about how the bytes travelled, not what they are: they stay prefixed, since
#: the body we hold need not be framed or encoded as the original was
FRAMING_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "content-encoding", "connection", "keep-alive"}
)
#: added to a capture whose bytes do not hash to the archive's digest for it
NOT_ORIGINAL_HEADER = "X-Pagewatch-Not-Original"

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ARCHIVE_PATH = re.compile(r"/web/(\d{1,14})(?:[a-z]{2}_)?/(.+)$", re.DOTALL)
_BASE32_SHA1 = re.compile(r"[A-Z2-7]{32}")


@dataclass(frozen=True)
class WaybackPolicy:
    """How to talk to the archive. The defaults are polite to web.archive.org."""

    base_url: str = "https://web.archive.org"
    min_interval_s: float = 1.0  # at most one request per this many seconds to the archive
    retries: int = 5
    backoff_s: float = 2.0  # exponential base; Retry-After (seconds or HTTP date) wins, capped
    max_retry_after_s: float = 300.0  # also caps the backoff
    fetch: FetchPolicy = FetchPolicy()  # size caps and per-attempt deadline, CDX pages included
    page_size: int = 5000  # CDX rows per request (``limit=``), the rest via resumeKey
    max_captures: int = 200_000  # a listing longer than this is refused: narrow it by date


@dataclass(frozen=True)
class CdxRow:
    """One capture the archive's index lists."""

    timestamp: str  # 14-digit YYYYMMDDhhmmss (UTC) as the archive gives it
    original: str  # the URL that was captured
    mimetype: str  # "warc/revisit" for a revisit record
    statuscode: int | None  # None for a revisit ("-"): the status is learnt when fetched
    digest: str  # base32 SHA-1 of the payload as archived
    length: int | None

    @property
    def captured_at(self) -> datetime:
        """The archive's capture time, UTC aware."""
        return datetime.strptime(self.timestamp, TIMESTAMP_FORMAT).replace(tzinfo=UTC)


def capture_key(row: CdxRow) -> str:
    """A stable name of one capture, whatever the archive's base URL: ``<timestamp>id_/<url>``.

    The ``origin`` of its `ArchivedResponse` ends with ``/web/`` and this key.
    """
    return f"{row.timestamp}id_/{row.original}"


def capture_url(row: CdxRow, base_url: str) -> str:
    """Where the archive replays the capture's original bytes."""
    return f"{base_url.rstrip('/')}/web/{capture_key(row)}"


class Pace:
    """At most one request per interval to one archive, however many tasks share it."""

    def __init__(self) -> None:
        self._last: float | None = None
        self._lock = asyncio.Lock()

    async def wait(self, interval: float, clock: Clock, sleep: Sleep) -> None:
        """Return when a request may be sent, and count it as sent."""
        async with self._lock:
            now = clock()
            if self._last is not None and interval > 0:
                gap = min(self._last + interval - now, interval)  # a clock gone back waits once
                if gap > 0:
                    await sleep(gap)
                    now = max(clock(), self._last + interval)
            self._last = now


_paces: weakref.WeakKeyDictionary[httpx.AsyncClient, dict[str, Pace]] = weakref.WeakKeyDictionary()


def pace_for(client: httpx.AsyncClient, base_url: str) -> Pace:
    """The one `Pace` shared by every call with this client to this archive."""
    return _paces.setdefault(client, {}).setdefault(base_url.rstrip("/"), Pace())


@dataclass(frozen=True)
class _Talk:
    """Everything one conversation with the archive needs."""

    client: httpx.AsyncClient
    policy: WaybackPolicy
    pace: Pace
    clock: Clock
    sleep: Sleep

    @property
    def base(self) -> str:
        return self.policy.base_url.rstrip("/")


class _Retry(Exception):
    """A failure worth another attempt: a 429, a 5xx, a dropped connection, a timeout."""

    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


async def list_captures(
    client: httpx.AsyncClient,
    url: str,
    *,
    policy: WaybackPolicy,
    since: datetime | None,
    until: datetime | None,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.monotonic,
    pace: Pace | None = None,
) -> list[CdxRow]:
    """The captures of ``url`` from ``since`` to ``until`` (inclusive, to the second; naive
    datetimes are UTC), oldest first: the first and the last of each run of identical digests.

    Keeping each run's last capture as well as its first is what makes a removal's window tight:
    the last capture that still had the phrase, then the first that did not.
    Raises `ArchiveError` naming ``url`` when the archive fails after retries or answers nonsense.
    """
    talk = _Talk(client, policy, pace or pace_for(client, policy.base_url), clock, sleep)
    params = {
        "url": url,
        "output": "json",
        "fl": ",".join(CDX_FIELDS),
        "limit": str(policy.page_size),
        "showResumeKey": "true",
    }
    if since is not None:
        params["from"] = _stamp(since)
    if until is not None:
        params["to"] = _stamp(until)
    rows: list[CdxRow] = []
    keys: set[str] = set()
    resume: str | None = None
    what = f"listing captures of {url}"
    while True:
        query = {**params, "resumeKey": resume} if resume is not None else params
        page, resume = await _with_retries(
            talk, what, url, functools.partial(_cdx_page, talk, what, url, query)
        )
        rows.extend(page)
        if len(rows) > policy.max_captures:
            raise ArchiveError(
                f"{what}: more than {policy.max_captures:,} captures; narrow the dates", url
            )
        if resume is None:
            break
        if resume in keys:
            raise ArchiveError(f"{what}: the archive's paging loops (resume key repeated)", url)
        keys.add(resume)
    low, high = _stamp(since) if since else "", _stamp(until) if until else "99999999999999"
    found = collapse_runs([row for row in rows if low <= row.timestamp <= high])
    log.info("%s: %d captures listed, %d to fetch", url, len(rows), len(found))
    return found


def collapse_runs(rows: Sequence[CdxRow]) -> list[CdxRow]:
    """Rows by time, exact repeats dropped, each run of one digest cut to its first and last.

    A run is broken by another digest, or by a different known status with the same digest (two
    empty-bodied answers share a digest). A revisit ("-" status) joins the run of its digest.
    """
    ordered = sorted(dict.fromkeys(rows), key=lambda row: row.timestamp)
    kept: list[CdxRow] = []
    run: list[CdxRow] = []
    for row in ordered:
        if run and _same_payload(run[-1], row):
            run.append(row)
            continue
        kept.extend(_ends(run))
        run = [row]
    kept.extend(_ends(run))
    return kept


def _same_payload(a: CdxRow, b: CdxRow) -> bool:
    if not a.digest or a.digest == "-" or a.digest != b.digest:
        return False
    return a.statuscode is None or b.statuscode is None or a.statuscode == b.statuscode


def _ends(run: list[CdxRow]) -> list[CdxRow]:
    return run[:1] if len(run) < 2 else [run[0], run[-1]]


async def _cdx_page(
    talk: _Talk, what: str, url: str, query: dict[str, str]
) -> tuple[list[CdxRow], str | None]:
    endpoint = f"{talk.base}/cdx/search/cdx"
    response, body = await _get(talk, endpoint, query, ACCEPT_ENCODING, what, url)
    status = response.status_code
    if status == 429 or status >= 500:
        raise _Retry(_status_text(response), status, retry_after(response))
    if status != 200:
        raise ArchiveError(f"{what}: {_status_text(response)}{_says(response, body)}", url, status)
    try:
        data = decode_content(body, _encoding_of(response), talk.policy.fetch.max_decoded)
    except ValueError as exc:
        raise ArchiveError(f"{what}: unreadable CDX answer: {exc}", url) from exc
    return parse_cdx(body if data is None else data, url)


def parse_cdx(data: bytes, url: str) -> tuple[list[CdxRow], str | None]:
    """One page of a JSON CDX answer: its rows, and the resume key when there is more.

    The first row names the fields; a resume key follows the rows as ``[]`` then ``[key]``.
    A row with an impossible timestamp (the index has a few, e.g. month 00) is skipped with a
    warning; anything else that is not this shape raises `ArchiveError`.
    """

    def bad(problem: str) -> ArchiveError:
        return ArchiveError(f"listing captures of {url}: unreadable CDX answer: {problem}", url)

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad("not UTF-8") from exc
    if not text.strip():
        return [], None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise bad(f"not JSON ({_clip(str(exc), 80)})") from exc
    if not isinstance(document, list):
        raise bad(f"expected a JSON array, got {type(document).__name__}")
    if not document:
        return [], None
    header, *items = document
    if not _strings(header) or not set(CDX_FIELDS) <= set(header):
        raise bad(f"the first row does not name the fields {','.join(CDX_FIELDS)}")
    resume = None
    if len(items) >= 2 and items[-2] == [] and _strings(items[-1]) and len(items[-1]) == 1:
        resume = items[-1][0]
        items = items[:-2]
    rows = []
    for number, item in enumerate(items, start=1):
        if not _strings(item) or len(item) != len(header):
            raise bad(f"row {number} is not {len(header)} strings: {_clip(repr(item), 80)}")
        row = _row(dict(zip(header, item, strict=True)))
        if row is None:
            log.warning("%s: skipping a CDX row with an impossible timestamp %r", url, item)
            continue
        rows.append(row)
    return rows, resume


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _row(fields: dict[str, str]) -> CdxRow | None:
    row = CdxRow(
        timestamp=fields["timestamp"],
        original=fields["original"],
        mimetype=fields["mimetype"],
        statuscode=_number(fields["statuscode"]),
        digest=fields["digest"],
        length=_number(fields["length"]),
    )
    return row if _valid_stamp(row.timestamp) else None


def _valid_stamp(stamp: str) -> bool:
    if len(stamp) != 14 or not stamp.isascii() or not stamp.isdigit():
        return False
    try:
        datetime.strptime(stamp, TIMESTAMP_FORMAT)
    except ValueError:
        return False
    return True


def _number(text: str) -> int | None:
    """An integer field; "-" (a revisit's status, an unknown length) is None."""
    return int(text) if text.isascii() and text.isdigit() else None


async def fetch_capture(
    client: httpx.AsyncClient,
    row: CdxRow,
    *,
    policy: WaybackPolicy,
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.monotonic,
    pace: Pace | None = None,
) -> ArchivedResponse:
    """The capture's original response: its status, its headers, its bytes, at its index time.

    An archived redirect, 404 or 5xx is returned as such, with its own status: that is what the
    page answered then. Raises `CaptureGone` when the archive lists the capture but no longer
    replays it (its replay answers 404, or sends us to another capture time), and `ArchiveError`
    for anything else that stays wrong after retries; both name the capture's URL.
    """
    talk = _Talk(client, policy, pace or pace_for(client, policy.base_url), clock, sleep)
    url = capture_url(row, talk.base)
    what = f"capture {url}"
    return await _with_retries(talk, what, url, functools.partial(_capture, talk, what, row, url))


async def _capture(talk: _Talk, what: str, row: CdxRow, url: str) -> ArchivedResponse:
    target = url
    for _ in range(MAX_ARCHIVE_HOPS + 1):
        response, body = await _get(talk, target, None, "identity", what, url)
        status = response.status_code
        if "memento-datetime" in response.headers:
            return _archived(talk, what, row, url, response, body)
        # the archive speaking for itself, not a capture
        if status == 429 or status >= 500:
            raise _Retry(_status_text(response), status, retry_after(response))
        if status in _REDIRECTS and "location" in response.headers:
            target = _same_capture(talk, what, row, url, response)
            continue
        said = f"{_status_text(response)}{_says(response, body)}"
        if status in (404, 410):
            raise CaptureGone(
                f"{what}: listed but not replayed by the archive: {said}", url, status
            )
        raise ArchiveError(f"{what}: the archive answers {said}, not a capture", url, status)
    raise ArchiveError(f"{what}: more than {MAX_ARCHIVE_HOPS} redirects within the archive", url)


def _same_capture(talk: _Talk, what: str, row: CdxRow, url: str, response: httpx.Response) -> str:
    """The archive's redirect to another form of the same capture, or CaptureGone/ArchiveError."""
    location = response.headers["location"]
    try:
        target = response.url.join(location)
    except httpx.InvalidURL as exc:
        raise ArchiveError(f"{what}: the archive redirects to an invalid URL", url) from exc
    found = _ARCHIVE_PATH.search(str(target))
    if target.host != httpx.URL(talk.base).host or found is None:
        raise ArchiveError(
            f"{what}: the archive redirects out of the archive, to {_clip(str(target), 200)}", url
        )
    if found.group(1) != row.timestamp:
        raise CaptureGone(
            f"{what}: listed but not replayed by the archive, "
            f"which offers the capture of {found.group(1)} instead",
            url,
            response.status_code,
        )
    return str(target)


def _archived(
    talk: _Talk, what: str, row: CdxRow, url: str, response: httpx.Response, body: bytes
) -> ArchivedResponse:
    try:
        served_at = parsedate_to_datetime(response.headers["memento-datetime"])
    except (TypeError, ValueError) as exc:
        raise ArchiveError(f"{what}: unreadable Memento-Datetime", url) from exc
    if served_at.tzinfo is None:
        served_at = served_at.replace(tzinfo=UTC)
    if served_at != row.captured_at:
        raise CaptureGone(
            f"{what}: listed but the archive replays the capture of "
            f"{served_at:%Y%m%d%H%M%S} instead",
            url,
            response.status_code,
        )
    encoding = _body_encoding(talk, what, url, response, body)
    headers = original_headers(response, encoding)
    digest = row.digest.removeprefix("sha1:")
    if _BASE32_SHA1.fullmatch(digest):
        mine = payload_digest(body)
        if mine != digest:
            note = f"body SHA-1 {mine} is not the archive's digest {digest}"
            log.warning("%s: %s", response.url, note)
            headers += ((NOT_ORIGINAL_HEADER, note),)
    return ArchivedResponse(
        target_uri=row.original,
        status=response.status_code,
        headers=headers,
        body=body,
        captured_at=row.captured_at,
        origin=str(response.url),
    )


def _body_encoding(talk: _Talk, what: str, url: str, response: httpx.Response, body: bytes) -> str:
    """The content-coding of the bytes as received, checked by undoing it under the cap.

    We ask for ``Accept-Encoding: identity``, so the archive's Content-Encoding is the coding the
    bytes were archived with. The archive has been seen to send it blank or as ", gzip": a blank
    one over a gzip body (or over one the original said was gzip) is read as gzip.
    """
    if not body:
        return ""  # an empty body has no coding to undo
    declared = _encoding_of(response)
    sniffed = False
    if not declared and body[:2] == b"\x1f\x8b":
        orig = response.headers.get(ORIG_PREFIX + "content-encoding", "").lower()
        if "content-encoding" in response.headers or "gzip" in orig:
            declared, sniffed = "gzip", True
    if not declared:
        return ""
    try:
        decode_content(body, declared, talk.policy.fetch.max_decoded)
    except ValueError as exc:
        if sniffed:
            return ""
        raise ArchiveError(f"{what}: {exc}", url, response.status_code) from exc
    return declared


def _encoding_of(response: httpx.Response) -> str:
    """The Content-Encoding the response declares, normalised: ", gzip" reads "gzip"."""
    codings = [
        coding.strip().lower()
        for value in response.headers.get_list("content-encoding")
        for coding in value.split(",")
    ]
    return ", ".join(c for c in codings if c and c != "identity")


def original_headers(response: httpx.Response, encoding: str) -> tuple[tuple[str, str], ...]:
    """The headers of the original response, in the order the archive sent them.

    ``X-Archive-Orig-<Name>`` becomes ``<Name>``, except the framing headers (Content-Length,
    Transfer-Encoding, Content-Encoding, Connection, Keep-Alive), which keep the prefix.
    The archive passes Content-Type and Location unprefixed: they are kept (Location turned back
    into the original target), unless a prefixed original of the same name came too. Content-
    Encoding is ``encoding``: the coding of the body we hold. Every other header is the
    archive's own (Memento-Datetime, Link, Server, Date, Set-Cookie, X-Archive-Src, ...) and is
    dropped.
    """
    raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw]
    prefixed = {n.lower()[len(ORIG_PREFIX) :] for n, _ in raw if n.lower().startswith(ORIG_PREFIX)}
    kept: list[tuple[str, str]] = []
    encoded = not encoding
    for name, value in raw:
        lower = name.lower()
        if lower.startswith(ORIG_PREFIX) and len(lower) > len(ORIG_PREFIX):
            original = name[len(ORIG_PREFIX) :]
            kept.append((name if original.lower() in FRAMING_HEADERS else original, value))
        elif lower == "content-type" and lower not in prefixed:
            kept.append((name, value))
        elif lower == "location" and lower not in prefixed:
            kept.append((name, unwrap(str(response.url.join(value)))))
        elif lower == "content-encoding" and not encoded:
            kept.append((name, encoding))
            encoded = True
    if not encoded:
        kept.append(("Content-Encoding", encoding))
    return tuple(kept)


def unwrap(archive_url: str) -> str:
    """The original URL inside an archive URL (``.../web/<ts>[mode_]/<url>``), else as given."""
    found = _ARCHIVE_PATH.search(archive_url)
    if found is None:
        return archive_url
    inner = found.group(2)
    if inner.lower().startswith(("http%3a", "https%3a")):
        inner = unquote(inner)
    return inner


def payload_digest(body: bytes) -> str:
    """The archive's digest of a payload: base32 of its SHA-1."""
    return base64.b32encode(hashlib.sha1(body).digest()).decode("ascii")


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (delta or HTTP date, the latter against the answer's own Date), or
    None when absent or unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        reference = _server_date(response) or datetime.now(UTC)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - reference).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _server_date(response: httpx.Response) -> datetime | None:
    dates = response.headers.get_list("date")
    try:
        date = parsedate_to_datetime(dates[0] if dates else "")
    except (TypeError, ValueError):
        return None
    return date if date.tzinfo is not None else date.replace(tzinfo=UTC)


async def _with_retries(
    talk: _Talk, what: str, subject: str, attempt: Callable[[], Awaitable[T]]
) -> T:
    """``attempt()`` until it does not ask for a retry, at most 1 + retries times."""
    policy = talk.policy
    for number in range(policy.retries + 1):
        try:
            return await attempt()
        except _Retry as retry:
            failure = retry
        if number == policy.retries:
            break
        delay = _delay(number, failure, policy)
        log.info(
            "%s: %s; retry %d of %d in %.1fs",
            what,
            failure.reason,
            number + 1,
            policy.retries,
            delay,
        )
        await talk.sleep(delay)
    raise ArchiveError(
        f"{what}: {failure.reason} (gave up after {policy.retries + 1} attempts)",
        subject,
        failure.status,
    )


def _delay(number: int, failure: _Retry, policy: WaybackPolicy) -> float:
    """Seconds before retry ``number + 1``: Retry-After when given, else exponential backoff
    (at least RATE_LIMITED_DELAY_S after a 429); capped by max_retry_after_s."""
    if failure.retry_after is not None:
        return min(failure.retry_after, policy.max_retry_after_s)
    delay = policy.backoff_s * 2.0**number
    if failure.status == 429:
        delay = max(delay, RATE_LIMITED_DELAY_S)
    return min(delay, policy.max_retry_after_s)


async def _get(
    talk: _Talk,
    url: str,
    params: dict[str, str] | None,
    accept_encoding: str,
    what: str,
    subject: str,
) -> tuple[httpx.Response, bytes]:
    """One paced GET, redirects not followed, the raw body read under the cap and the deadline.

    Transport failures and timeouts raise `_Retry`; anything that retrying cannot mend raises
    `ArchiveError` (``what: problem``, about ``subject``). The response comes back closed.
    """
    limits = talk.policy.fetch
    try:
        request = talk.client.build_request(
            "GET", url, params=params, headers={"Accept-Encoding": accept_encoding}
        )
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise ArchiveError(f"{what}: cannot ask the archive at {url} ({exc})", subject) from exc
    await talk.pace.wait(talk.policy.min_interval_s, talk.clock, talk.sleep)
    log.debug("GET %s", request.url)
    try:
        async with asyncio.timeout(limits.deadline):
            response = await talk.client.send(request, stream=True, follow_redirects=False)
            try:
                body = await read_body(response, limits.max_body)
            finally:
                await response.aclose()
    except TimeoutError as exc:
        raise _Retry(f"no complete answer within {limits.deadline:g}s") from exc
    except httpx.UnsupportedProtocol as exc:
        raise ArchiveError(f"{what}: cannot ask the archive at {url} ({exc})", subject) from exc
    except httpx.TransportError as exc:
        raise _Retry(_clip(f"{type(exc).__name__}: {exc}".rstrip(": "), 200)) from exc
    except httpx.HTTPError as exc:
        raise ArchiveError(_clip(f"{what}: {type(exc).__name__}: {exc}", 400), subject) from exc
    except ValueError as exc:  # over the size cap, or more than the declared length
        raise ArchiveError(f"{what}: {exc}", subject) from exc
    return response, body


def _status_text(response: httpx.Response) -> str:
    return f"HTTP {response.status_code} {response.reason_phrase or ''}".strip()


def _says(response: httpx.Response, body: bytes) -> str:
    """What the archive said about its refusal: its runtime-error header, else its text."""
    said = response.headers.get("x-archive-wayback-runtime-error", "")
    if not said and body and "html" not in response.headers.get("content-type", ""):
        said = body[:300].decode("utf-8", "replace")
    said = _clip(said, 160)
    return f" ({said})" if said else ""


def _clip(text: str, limit: int) -> str:
    one_line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _stamp(moment: datetime) -> str:
    """A datetime as the archive's 14 digits, in UTC (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


# --- HTTP: the archive is asked through httpx, which checks do not use (see client.py) --------


def make_client(policy: FetchPolicy) -> httpx.AsyncClient:
    """The client of a backfill: two connections, redirects not followed (they are checked)."""
    timeout = httpx.Timeout(
        connect=policy.connect_timeout,
        read=policy.read_timeout,
        write=policy.read_timeout,
        pool=policy.deadline,
    )
    return httpx.AsyncClient(
        timeout=timeout,
        limits=httpx.Limits(max_connections=2, max_keepalive_connections=2),
        follow_redirects=False,
        headers={"User-Agent": policy.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
        trust_env=False,
    )


async def read_body(response: httpx.Response, limit: int) -> bytes:
    """The raw body under the cap, refused when the server sends more than it declared (as
    fetch.py reads it). Raises ValueError."""
    declared = response.headers.get("content-length")
    body = await read_capped(response.aiter_raw(), declared, limit)
    refuse_excess(await _trailing(response), response.status_code, declared)
    return body


async def _trailing(response: httpx.Response) -> bytes:
    """What the server sent after the body, as far as read. h11 keeps such bytes for a response
    nobody asked for; httpx has no public way to see them, so this looks through httpcore's
    private attributes (finding nothing should they change) and closes the connection, which
    would otherwise hand those bytes to the next request as its answer."""
    connection: object = response.stream
    for name in ("_stream", "_httpcore_stream", "_stream", "_connection"):
        connection = getattr(connection, name, None)
    trailing = getattr(getattr(connection, "_h11_state", None), "trailing_data", None)
    if not (isinstance(trailing, tuple) and trailing and isinstance(trailing[0], bytes)):
        return b""
    if trailing[0]:
        close = getattr(connection, "aclose", None)
        if close is not None:
            await close()
    return trailing[0]
