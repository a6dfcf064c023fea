"""Fetching one URL into a `Capture` or a `FailedCheck`.

The body is read as raw bytes (content-encoding intact, which is what evidence keeps), under a
total wall-clock deadline and a size cap; the client's read timeout is per read, so a server that
trickles one byte at a time would otherwise never be cut off. Redirects are followed here, not by
the client (client.py), so every hop is recorded and checked before we connect to it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import socket
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import brotli
import httpx
import zstandard

from .client import Client, ClientError, ConnectError, Response, Timeout
from .models import Capture, FailedCheck, Redirect

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
GONE_STATUSES = frozenset({404, 410})
#: answers whose body is the page (204 and 205 have none: an empty page). Not 206 (a part of it,
#: sent with or without a Range asked for), 202 (not done yet) or 226 (a delta): each would
#: read like a page that lost its phrases
PAGE_STATUSES = frozenset({200, 203, 204, 205})
USER_AGENT = "pagewatch/0.1 (phrase-removal monitor; +https://github.com/pagewatch/pagewatch)"
#: every coding decode_content can undo, each under the decoded-size cap
ACCEPT_ENCODING = "gzip, deflate, br, zstd"


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for one fetch. The defaults suit vendor documentation pages."""

    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    deadline: float = 60.0  # whole fetch, all redirects included
    max_body: int = 20 * 1024 * 1024  # raw bytes as received
    max_decoded: int = 50 * 1024 * 1024  # after undoing content-encoding
    max_redirects: int = 10
    user_agent: str = USER_AGENT


def make_client(policy: FetchPolicy) -> Client:
    """The one client a pass shares; the caller owns and closes it."""
    return Client(
        connect_timeout=policy.connect_timeout,
        read_timeout=policy.read_timeout,
        headers={"Accept-Encoding": ACCEPT_ENCODING, "User-Agent": policy.user_agent},
    )


class _Failure(ValueError):
    def __init__(self, reason: str, message: str, status: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


async def fetch(
    client: Client,
    url: str,
    now: Callable[[], datetime],
    policy: FetchPolicy = FetchPolicy(),
    validators: Mapping[str, str] | None = None,
    strict: bool = False,
) -> Capture | FailedCheck:
    """GET ``url``, following redirects; never raises for anything the network or server does.

    ``validators`` (If-None-Match / If-Modified-Since) go with the first request only; a 304
    answer to them comes back as a Capture with status 304 and no body: "as before".
    ``strict`` (a fetch that confirms a change): each request on a connection of its own,
    and bytes the server sends a moment after the body still show it longer than its length.
    """
    started = now()
    hops: list[Redirect] = []
    current = url
    try:
        async with asyncio.timeout(policy.deadline):
            return await _fetch(client, url, now, policy, hops, validators or {}, strict)
    except TimeoutError:
        reason, message, status = "timeout", f"no complete answer within {policy.deadline:g}s", None
    except _Failure as failure:
        reason, message, status = failure.reason, failure.message, failure.status
    except Timeout as exc:
        reason, message, status = "timeout", str(exc), None
    except ConnectError as exc:
        reason, message, status = "connect", f"cannot connect: {exc}", None
    except ClientError as exc:
        reason, message, status = "network", str(exc), None
    except httpx.InvalidURL as exc:
        reason, message, status = "network", f"invalid URL: {exc}", None
    except (OSError, ValueError, UnicodeError) as exc:
        reason, message, status = "network", f"{type(exc).__name__}: {exc}", None
    if hops:
        current = hops[-1].location
    return FailedCheck(
        url=url,
        reason=reason,
        message=_one_line(message),
        checked_at=started,
        status=status,
        final_url=current,
        redirects=tuple(hops),
    )


async def _fetch(
    client: Client,
    url: str,
    now: Callable[[], datetime],
    policy: FetchPolicy,
    hops: list[Redirect],
    validators: Mapping[str, str],
    strict: bool,
) -> Capture | FailedCheck:
    target = _watched_url(url)
    seen = {str(target)}
    while True:
        async with client.stream(target, None if hops else validators, fresh=strict) as response:
            captured_at = now()
            status = response.status_code
            location = response.headers.utf8("location")
            if status in REDIRECT_STATUSES and location is not None:
                try:
                    next_url = _checked_url(target.join(location))
                except httpx.InvalidURL as exc:
                    raise _Failure(
                        "bad_redirect", f"redirect to an invalid URL {location!r}"
                    ) from exc
                await _check_resolved(next_url)
                hops.append(Redirect(url=str(target), status=status, location=str(next_url)))
                if str(next_url) in seen:
                    raise _Failure("redirect_loop", f"redirect loop back to {next_url}", status)
                if len(hops) > policy.max_redirects:
                    raise _Failure(
                        "too_many_redirects", f"more than {policy.max_redirects} redirects", status
                    )
                seen.add(str(next_url))
                target = next_url
                await _drain(response)  # so that the connection can serve the next hop
                continue
            not_modified = status == 304 and bool(validators) and not hops
            if not (status in PAGE_STATUSES or status in GONE_STATUSES or not_modified):
                message = _status_message(response)
                if 200 <= status < 300:
                    message += ": an answer that is not the page itself"
                raise _Failure(f"http_{status}", message, status)
            declared = response.headers.get("content-length")
            body = await read_capped(response.aiter_raw(), declared, policy.max_body)
            if strict:
                await response.linger()
            refuse_excess(response.extra, status, declared)
        headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw)
        decoded = decode_content(
            body, response.headers.get("content-encoding", "") or "", policy.max_decoded
        )
        return Capture(
            url=url,
            final_url=str(target),
            status=status,
            headers=headers,
            body=body,
            sha256=hashlib.sha256(body).hexdigest(),
            captured_at=captured_at,
            redirects=tuple(hops),
            decoded=decoded,
        )


def _checked_url(url: str | httpx.URL) -> httpx.URL:
    """The URL if we may connect to it: http(s) only, never a link-local/metadata address."""
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https"):
        raise _Failure("bad_redirect", f"refusing non-HTTP URL {str(parsed)[:200]}")
    host = parsed.host.rstrip(".").lower()
    if host in _METADATA_HOSTS:
        raise _Failure("refused_address", f"refusing cloud metadata host {host}")
    address = _literal_address(host)
    if address is not None and _refused(address):
        raise _Failure("refused_address", f"refusing link-local/metadata address {host}")
    return parsed


#: a watched URL, parsed and checked once per process rather than at every check
_watched_url = functools.lru_cache(maxsize=16384)(_checked_url)


async def _check_resolved(url: httpx.URL) -> None:
    """Refuse a redirect to a host name that resolves to a link-local/metadata address.

    Only redirect targets are resolved here (the watched URL is the analyst's choice); a name
    that does not resolve is left to the connection attempt to report.
    """
    host = url.host
    if not host or _literal_address(host) is not None:
        return
    loop = asyncio.get_running_loop()
    try:
        found = await loop.getaddrinfo(host, url.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return
    for *_, sockaddr in found:
        address = _literal_address(str(sockaddr[0]).split("%")[0])
        if address is not None and _refused(address):
            raise _Failure(
                "refused_address", f"refusing {host}: it resolves to link-local address {address}"
            )


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally, including the forms getaddrinfo also reads as one
    (2852039166, 0xA9FEA9FE, 0251.0376.0251.0376, 169.254.43518); None for a host name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Link-local (169.254.0.0/16, fe80::/10: where cloud metadata services live) or a known
    metadata address, also when an IPv6 address carries one of them (::ffff:a.b.c.d, NAT64,
    6to4, the old IPv4-compatible ::a.b.c.d)."""
    if isinstance(address, ipaddress.IPv6Address):
        low = int(address) >> 32 == 0 or address in _NAT64  # the IPv4 address in its last bits
        embedded = (
            address.ipv4_mapped
            or address.sixtofour
            or (ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if low else None)
        )
        if embedded is not None:
            address = embedded
    return address.is_link_local or any(address in net for net in _METADATA_NETS)


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_METADATA_NETS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    ipaddress.IPv6Network("fd00:ec2::/64"),  # AWS IMDS over IPv6 (fd00:ec2::254)
    ipaddress.IPv4Network("100.100.100.200/32"),  # Alibaba Cloud metadata
)
_METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
     "instance-data.ec2.internal"}
)  # fmt: skip


def refuse_excess(extra: bytes, status: int, declared: str | None) -> None:
    """Fail a response whose server sent ``extra`` bytes past the body it declared.

    A body longer than its Content-Length (or data after the last chunk) means the length lies:
    the body we hold is cut short, and a cut page reads like a removal. (The connection is not
    used again: those bytes would be the next request's answer.) Raises ValueError.
    """
    if not extra.strip() or status in (204, 304):
        return  # a stray CRLF after the body; a body after a 304, which has none: ignored
    what = f"its Content-Length of {declared}" if declared else "the end of its last chunk"
    message = f"the server sent more than {what} ({len(extra):,} bytes more at least)"
    raise _Failure("bad_length", message + ": the body would be cut short")


async def read_capped(chunks: AsyncIterator[bytes], declared: str | None, limit: int) -> bytes:
    """A raw body read under the cap (refused up front when its declared length is over it).
    Raises ValueError."""
    if declared and declared.isdigit() and int(declared) > limit:
        raise _Failure("too_large", f"body of {int(declared):,} bytes is over the cap of {limit:,}")
    found, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise _Failure("too_large", f"body over the cap of {limit:,} bytes")
        found.append(chunk)
    return b"".join(found)


async def _drain(response: Response) -> None:
    """Read and drop a redirect's body if it is small; otherwise its connection is closed."""
    declared = response.headers.get("content-length", "") or ""
    if declared.isdigit() and int(declared) <= 64 * 1024:
        async for _ in response.aiter_raw():
            pass


def decode_content(body: bytes, encoding: str, limit: int) -> bytes | None:
    """Undo a Content-Encoding with a cap on the output; None if there is none to undo.

    Raises ValueError (a `_Failure`) for an unknown coding, a corrupt or truncated stream, or
    output over the cap: a body we cannot read whole is never read in part. Codings apply in
    the order listed ("gzip, br": gzip first), so they are undone last first, each stage under
    the cap, so a bomb in any layer stops at ``limit`` bytes of output.
    """
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return None
    data = body
    for coding in reversed(codings):
        if coding in ("gzip", "x-gzip"):
            data = _inflate(data, zlib.MAX_WBITS | 16, limit, members=True)
        elif coding == "deflate":
            try:
                data = _inflate(data, zlib.MAX_WBITS, limit)
            except _Failure as failure:
                if failure.reason == "too_large":
                    raise
                data = _inflate(data, -zlib.MAX_WBITS, limit)  # raw deflate, as some servers send
        elif coding == "br":
            data = _unbrotli(data, limit)
        elif coding == "zstd":
            data = _unzstd(data, limit)
        else:
            raise _Failure("bad_encoding", f"unsupported content-encoding {coding!r}")
    return data


def _inflate(data: bytes, wbits: int, limit: int, members: bool = False) -> bytes:
    """Inflate a whole stream (and, for gzip, every member of it) or fail; never a prefix."""
    out: list[bytes] = []
    size = 0
    rest = data
    while True:
        inflater = zlib.decompressobj(wbits)
        try:
            chunk = inflater.decompress(rest, limit + 1 - size)
        except zlib.error as exc:
            raise _Failure("bad_encoding", f"corrupt compressed body: {exc}") from exc
        size += len(chunk)
        out.append(chunk)
        if size > limit or inflater.unconsumed_tail:
            raise _Failure("too_large", f"decompressed body over the cap of {limit:,} bytes")
        if not inflater.eof:
            raise _Failure("bad_encoding", "truncated compressed body")
        rest = inflater.unused_data
        if not members or not rest.strip(b"\0"):
            return b"".join(out)


_STEP = 1024 * 1024  # decoded bytes asked for at a time from brotli and zstd


def _unbrotli(data: bytes, limit: int) -> bytes:
    """Decode a whole brotli stream or fail; the output is drawn a step at a time."""
    decoder = brotli.Decompressor()
    out: list[bytes] = []
    size = 0
    try:
        chunk = decoder.process(data, output_buffer_limit=_STEP)
        while True:
            size += len(chunk)
            if size > limit:
                raise _Failure("too_large", f"decompressed body over the cap of {limit:,} bytes")
            out.append(chunk)
            if decoder.can_accept_more_data():  # all input read and all output drawn
                break
            chunk = decoder.process(b"", output_buffer_limit=_STEP)
    except brotli.error as exc:
        raise _Failure("bad_encoding", f"corrupt brotli body: {exc}") from exc
    if not decoder.is_finished():
        raise _Failure("bad_encoding", "truncated compressed body")
    return b"".join(out)


#: the largest zstd window we decode (RFC 8878 advises decoders to support 8 MiB): a frame
#: asking for more would make us reserve that much memory before writing a byte
ZSTD_MAX_WINDOW = 8 * 1024 * 1024


def _unzstd(data: bytes, limit: int) -> bytes:
    """Decode every zstd frame of a body or fail; never a prefix."""
    decompressor = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
    out: list[bytes] = []
    size = 0
    try:
        with decompressor.stream_reader(data, read_across_frames=True) as reader:
            while chunk := reader.read(min(_STEP, limit + 1 - size)):
                size += len(chunk)
                if size > limit:
                    raise _Failure(
                        "too_large", f"decompressed body over the cap of {limit:,} bytes"
                    )
                out.append(chunk)
        # The reader stops quietly at a frame cut short: walk the frames to see each one end.
        # Each decompress() here makes no more than the reader made above, within the cap.
        rest = data
        while True:
            frame = decompressor.decompressobj()
            frame.decompress(rest)
            if not frame.eof:
                raise _Failure("bad_encoding", "truncated compressed body")
            rest = frame.unused_data
            if not rest:
                break
    except zstandard.ZstdError as exc:
        raise _Failure("bad_encoding", f"corrupt zstd body: {exc}") from exc
    return b"".join(out)


def _status_message(response: Response) -> str:
    phrase = response.reason_phrase or ""
    retry = response.headers.get("retry-after")
    suffix = f" (Retry-After: {retry})" if retry else ""
    return f"HTTP {response.status_code} {phrase}".strip() + suffix


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]
