"""Fetching one URL into a `Capture` or a `FailedCheck`.

The body is read as raw bytes (content-encoding intact, which is what evidence keeps), under a
total wall-clock deadline and a size cap; httpx's read timeout is per chunk, so a server that
trickles one byte at a time would otherwise never be cut off. Redirects are followed here, not by
httpx, so every hop is recorded and checked before we connect to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

import httpx

from .models import Capture, FailedCheck, Redirect

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
GONE_STATUSES = frozenset({404, 410})
USER_AGENT = "pagewatch/0.1 (phrase-removal monitor; +https://github.com/pagewatch/pagewatch)"


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


def make_client(policy: FetchPolicy, max_connections: int = 32) -> httpx.AsyncClient:
    """The one client a pass shares; the caller owns and closes it."""
    timeout = httpx.Timeout(
        connect=policy.connect_timeout,
        read=policy.read_timeout,
        write=policy.read_timeout,
        pool=policy.deadline,
    )
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return httpx.AsyncClient(
        timeout=timeout,
        limits=limits,
        follow_redirects=False,
        headers={"User-Agent": policy.user_agent, "Accept-Encoding": "gzip, deflate"},
        trust_env=False,
    )


class _Failure(ValueError):
    def __init__(self, reason: str, message: str, status: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    now: Callable[[], datetime],
    policy: FetchPolicy = FetchPolicy(),
    validators: Mapping[str, str] | None = None,
) -> Capture | FailedCheck:
    """GET ``url``, following redirects; never raises for anything the network or server does.

    ``validators`` (If-None-Match / If-Modified-Since) go with the first request only; a 304
    answer to them comes back as a Capture with status 304 and no body: "as before".
    """
    started = now()
    hops: list[Redirect] = []
    current = url
    try:
        async with asyncio.timeout(policy.deadline):
            return await _fetch(client, url, now, policy, hops, validators or {})
    except TimeoutError:
        reason, message, status = "timeout", f"no complete answer within {policy.deadline:g}s", None
    except _Failure as failure:
        reason, message, status = failure.reason, failure.message, failure.status
    except httpx.TimeoutException as exc:
        reason, message, status = "timeout", f"{type(exc).__name__}: {exc}".rstrip(": "), None
    except httpx.ConnectError as exc:
        reason, message, status = "connect", f"cannot connect: {exc}", None
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
        reason, message, status = "network", f"{type(exc).__name__}: {exc}".rstrip(": "), None
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
    client: httpx.AsyncClient,
    url: str,
    now: Callable[[], datetime],
    policy: FetchPolicy,
    hops: list[Redirect],
    validators: Mapping[str, str],
) -> Capture | FailedCheck:
    target = _checked_url(url)
    seen = {str(target)}
    while True:
        request = client.build_request("GET", target, headers=None if hops else validators)
        response = await client.send(request, stream=True)
        try:
            captured_at = now()
            status = response.status_code
            if status in REDIRECT_STATUSES and "location" in response.headers:
                location = response.headers["location"]
                try:
                    next_url = _checked_url(response.url.join(location))
                except httpx.InvalidURL as exc:
                    raise _Failure(
                        "bad_redirect", f"redirect to an invalid URL {location!r}"
                    ) from exc
                hops.append(Redirect(url=str(target), status=status, location=str(next_url)))
                if str(next_url) in seen:
                    raise _Failure("redirect_loop", f"redirect loop back to {next_url}", status)
                if len(hops) > policy.max_redirects:
                    raise _Failure(
                        "too_many_redirects", f"more than {policy.max_redirects} redirects", status
                    )
                seen.add(str(next_url))
                target = next_url
                continue
            not_modified = status == 304 and bool(validators) and not hops
            if not (200 <= status < 300 or status in GONE_STATUSES or not_modified):
                raise _Failure(f"http_{status}", _status_message(response), status)
            body = await _read_capped(response, policy.max_body)
        finally:
            await response.aclose()
        headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw)
        decoded = decode_content(
            body, response.headers.get("content-encoding", ""), policy.max_decoded
        )
        return Capture(
            url=url,
            final_url=str(response.url),
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
    host = parsed.host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return parsed
    if address.is_link_local or address in _METADATA_V6:
        raise _Failure("refused_address", f"refusing link-local/metadata address {host}")
    return parsed


_METADATA_V6 = ipaddress.ip_network("fd00:ec2::/64")


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _Failure("too_large", f"body of {int(declared):,} bytes is over the cap of {limit:,}")
    chunks, size = [], 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > limit:
            raise _Failure("too_large", f"body over the cap of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_content(body: bytes, encoding: str, limit: int) -> bytes | None:
    """Undo a Content-Encoding with a cap on the output; None if there is none to undo.

    Raises ValueError (a `_Failure`) for an unknown coding, a corrupt or truncated stream, or
    output over the cap: a body we cannot read whole is never read in part.
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


def _status_message(response: httpx.Response) -> str:
    phrase = response.reason_phrase or ""
    retry = response.headers.get("retry-after")
    suffix = f" (Retry-After: {retry})" if retry else ""
    return f"HTTP {response.status_code} {phrase}".strip() + suffix


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]
