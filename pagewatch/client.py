"""The HTTP/1.1 client of check passes: h11 driven over asyncio streams, connections kept alive.

httpx does far more than a check needs, and pays for it on every request: on one keep-alive
connection to a local server, its pool, anyio and event plumbing cost 2-3 ms of CPU per
conditional GET, where h11 alone, the same parser httpx uses underneath, costs about 0.2 ms
(benchmarks/compare.py). A pass of thousands of unchanged pages is nearly all such requests.

So a check speaks HTTP/1.1 through h11 itself: the parsing, framing and its limits (a broken
status line, a chunk that lies; a response head over 100 KiB, as httpcore set it) are h11's, as
they were under httpx.
What this module adds is small: a connection per request taken from an idle pool per origin
(one the server closed, one idle for more than 5 s, or one with bytes nobody asked for is not
used again, and a request that finds its connection closed before a byte of answer came is
retried once on a fresh one: a GET is safe to repeat), timeouts per connect, write and read,
happy eyeballs between addresses, Basic authentication from a URL's user:password, and the
bytes a server sent after the end of its body, which a caller needs to see to know a body was
cut short. Redirects, caps and the deadline are the caller's (fetch.py).

The Wayback client (wayback.py) still uses httpx: it makes few requests, and no pass waits on it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import ssl
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field

import h11
import httpx

#: bytes asked of the socket at a time
READ_SIZE = 64 * 1024
#: idle connections kept per origin (the checker's per-host limit is lower), and in all
MAX_IDLE = 16
MAX_IDLE_TOTAL = 64
#: an idle connection older than this is not used again (httpx's default): a server, a NAT or
#: a firewall may have dropped it silently, and a request on it would wait out the read timeout
KEEPALIVE_EXPIRY_S = 5.0
#: a response head may be this long (h11's default is 16 KiB; httpcore's, which checks used
#: before, is 100 KiB)
MAX_HEAD = 100 * 1024
#: with several addresses for a name, the next is tried this long after the one before
#: (RFC 8305; anyio under httpx did the same)
HAPPY_EYEBALLS_DELAY_S = 0.25
#: after a body, a `Response.linger` waits at most this long for the server to close
LINGER_S = 1.0
#: and reads at most this much of what it sends meanwhile
LINGER_BYTES = 64 * 1024

Origin = tuple[str, str, int]  # scheme, host, port


class ClientError(Exception):
    """A request that got no usable answer; ``timeout`` tells a slow server from a broken one."""

    timeout = False


class ConnectError(ClientError):
    """No connection could be made."""


class Timeout(ClientError):
    """The server took longer than a timeout allows."""

    timeout = True


class ProtocolError(ClientError):
    """The server broke HTTP/1.1 (h11 says how)."""


class Headers:
    """A response's header fields: lookups by any case, the originals as sent in ``raw``.

    Repeated fields read as one value joined by ", ", as httpx reads them.
    """

    def __init__(self, raw: Iterable[tuple[bytes, bytes]]):
        self.raw = list(raw)
        self._joined: dict[str, str] = {}
        for name, value in self.raw:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            self._joined[key] = f"{self._joined[key]}, {text}" if key in self._joined else text

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._joined.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._joined[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._joined

    def utf8(self, name: str) -> str | None:
        """A field read as UTF-8 where its bytes are UTF-8 (as browsers read ``Location``: a raw
        "/维吾尔" is that path, not its bytes one by one), else as `get` reads it."""
        wanted = name.lower().encode("latin-1")
        values = [value for key, value in self.raw if key.lower() == wanted]
        try:
            return b", ".join(values).decode("utf-8") if values else None
        except UnicodeDecodeError:
            return self.get(name)


@dataclass
class _Connection:
    origin: Origin
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    h11: h11.Connection = field(
        default_factory=lambda: h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
    )
    used: bool = False  # has answered a request before (then it may have gone stale)
    received: int = 0  # bytes received for the current request
    idle_since: float = 0.0

    def is_usable(self, now: float) -> bool:
        """Fit to carry another request: open, not idle too long, and silent while idle.

        Anything a server sent on an idle connection (a stray 408, a late body) would be read
        as the next request's answer, so a connection with unread bytes is never used again.
        asyncio's StreamReader says how much it holds only in its ``_buffer``; without it, no
        connection is reused (slower, never wrong).
        """
        buffered = getattr(self.reader, "_buffer", None)
        return (
            buffered is not None
            and not buffered
            and not self.reader.at_eof()
            and not self.writer.transport.is_closing()
            and now - self.idle_since <= KEEPALIVE_EXPIRY_S
        )

    def close(self) -> None:
        self.writer.transport.abort()


@dataclass
class Response:
    """A response whose body is read as it arrives, raw (content-encoding intact)."""

    url: httpx.URL
    status_code: int
    reason_phrase: str
    headers: Headers
    _connection: _Connection
    _client: Client
    _done: bool = False
    _late: bytes = b""

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body's bytes as they come, each read under the read timeout."""
        while not self._done:
            event = await self._client._next_event(self._connection)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._done = True

    async def linger(self) -> None:
        """After the body of a ``fresh`` request, wait for the server to close its connection
        (up to LINGER_S), keeping what it sends meanwhile as `extra`: the rest of a body
        longer than its Content-Length may come a moment after the part the length covers."""
        late = bytearray()
        with contextlib.suppress(TimeoutError, OSError):
            async with asyncio.timeout(LINGER_S):
                while len(late) < LINGER_BYTES:
                    data = await self._connection.reader.read(READ_SIZE)
                    if not data:
                        break
                    late += data
        self._late = bytes(late)

    @property
    def extra(self) -> bytes:
        """What the server sent after the end of the body, as far as has been read (see
        `linger`): a body longer than its Content-Length, or data after the last chunk."""
        return self._connection.h11.trailing_data[0] + self._late if self._done else b""


class Client:
    """One client per pass: a pool of keep-alive connections, closed with the client.

    ``headers`` go with every request (User-Agent, Accept-Encoding); ``request`` adds its own.
    """

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        headers: Mapping[str, str],
        max_idle: int = MAX_IDLE,
    ):
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.headers = [("Accept", "*/*"), *headers.items()]
        self.max_idle = max_idle
        self._idle: dict[Origin, list[_Connection]] = {}
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    @contextlib.asynccontextmanager
    async def stream(
        self, url: httpx.URL, headers: Mapping[str, str] | None = None, *, fresh: bool = False
    ) -> AsyncIterator[Response]:
        """GET ``url``; the response's head is read, its body is the caller's to read.

        The connection goes back to the pool only if the body was read to its end and nothing
        followed it; otherwise (an error, a cancellation, bytes after the body) it is closed.
        ``fresh``: on a new connection that is closed after it (``Connection: close``), so no
        byte another request left unread can be taken for this one's answer.
        """
        origin = _origin(url)
        request = self._request(
            url, {**(headers or {}), **({"Connection": "close"} if fresh else {})}
        )
        if fresh:
            connection = await self._connect(origin)
            try:
                response = await self._exchange(connection, url, request)
            except BaseException:
                connection.close()
                raise
        else:
            connection, response = await self._send(origin, url, request)
        try:
            yield response
        except BaseException:
            connection.close()
            raise
        self._release(connection, response)

    def _request(self, url: httpx.URL, headers: Mapping[str, str]) -> h11.Request:
        host = url.raw_host.decode("ascii")
        if ":" in host:
            host = f"[{host}]"
        if url.port is not None:
            host = f"{host}:{url.port}"
        fields = [("Host", host), *self.headers, *headers.items()]
        if url.userinfo:  # user:password@ in the URL: Basic authentication, as httpx sent it
            secret = f"{url.username}:{url.password}".encode()
            fields.append(("Authorization", "Basic " + base64.b64encode(secret).decode("ascii")))
        try:
            return h11.Request(method="GET", target=url.raw_path, headers=fields)
        except (h11.LocalProtocolError, UnicodeError) as exc:
            raise ProtocolError(f"cannot send this request: {exc}") from None

    async def _send(
        self, origin: Origin, url: httpx.URL, request: h11.Request
    ) -> tuple[_Connection, Response]:
        """Send on an idle connection, or a new one; a reused connection that turns out closed
        before any answer came is replaced once."""
        connection = self._take(origin) or await self._connect(origin)
        try:
            return connection, await self._exchange(connection, url, request)
        except BaseException as exc:  # a cancellation (the deadline) too: never left open
            connection.close()
            if not (isinstance(exc, OSError | ClientError) and _unanswered(connection, exc)):
                raise
        connection = await self._connect(origin)
        try:
            return connection, await self._exchange(connection, url, request)
        except BaseException:
            connection.close()
            raise

    async def _exchange(
        self, connection: _Connection, url: httpx.URL, request: h11.Request
    ) -> Response:
        data = connection.h11.send(request) + connection.h11.send(h11.EndOfMessage())
        connection.received = 0
        connection.writer.write(data)
        if connection.writer.transport.get_write_buffer_size():  # not all sent at once
            try:
                async with asyncio.timeout(self.read_timeout):
                    await connection.writer.drain()
            except TimeoutError:
                raise Timeout(f"could not send the request within {self.read_timeout:g}s") from None
        while True:
            event = await self._next_event(connection)
            if isinstance(event, h11.Response):
                break
            # an InformationalResponse (100 Continue, 103 Early Hints): the answer follows
        return Response(
            url=url,
            status_code=event.status_code,
            reason_phrase=event.reason.decode("latin-1"),
            headers=Headers(event.headers.raw_items()),
            _connection=connection,
            _client=self,
        )

    async def _next_event(self, connection: _Connection) -> h11.Event:
        """The next event from the server, reading as much as it takes, each read timed."""
        machine = connection.h11
        while True:
            try:
                event = machine.next_event()
            except h11.RemoteProtocolError as exc:
                raise ProtocolError(_broken(exc)) from None
            if event is not h11.NEED_DATA:
                if isinstance(event, h11.ConnectionClosed):
                    raise ProtocolError("the server closed the connection without an answer")
                return event  # type: ignore[return-value]
            try:
                async with asyncio.timeout(self.read_timeout):
                    data = await connection.reader.read(READ_SIZE)
            except TimeoutError:
                raise Timeout(f"no data from the server for {self.read_timeout:g}s") from None
            connection.received += len(data)
            try:
                machine.receive_data(data)
            except h11.RemoteProtocolError as exc:
                raise ProtocolError(_broken(exc)) from None

    async def _connect(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        context = self._context() if scheme == "https" else None
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    host.strip("[]"),
                    port,
                    ssl=context,
                    server_hostname=host if context else None,
                    limit=READ_SIZE,
                    happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY_S,
                )
        except TimeoutError:
            raise Timeout(f"no connection within {self.connect_timeout:g}s") from None
        except ssl.SSLError as exc:
            raise ConnectError(f"TLS failed: {exc}") from exc
        except OSError as exc:
            raise ConnectError(exc.strerror or str(exc)) from exc
        return _Connection(origin, reader, writer)

    def _context(self) -> ssl.SSLContext:
        """The TLS context, made on first use (loading the CA bundle costs a tenth of a
        second): certifi's bundle, as httpx verifies with, else the system's."""
        if self._ssl is None:
            try:
                import certifi

                self._ssl = ssl.create_default_context(cafile=certifi.where())
            except ImportError:
                self._ssl = ssl.create_default_context()
        return self._ssl

    def _take(self, origin: Origin) -> _Connection | None:
        idle = self._idle.pop(origin, [])
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.is_usable(now):
                if idle:
                    self._idle[origin] = idle
                return connection
            connection.close()
        return None

    def _release(self, connection: _Connection, response: Response) -> None:
        machine = connection.h11
        reusable = (
            not self._closed
            and response._done
            and machine.our_state is h11.DONE
            and machine.their_state is h11.DONE
            and not machine.trailing_data[0]
        )
        idle = self._idle.get(connection.origin, [])
        if reusable and len(idle) < self.max_idle and self._room():
            machine.start_next_cycle()
            connection.used = True
            connection.idle_since = time.monotonic()
            self._idle.setdefault(connection.origin, []).append(connection)
        else:
            connection.close()

    def _room(self) -> bool:
        """Is there room for one more idle connection? Past the cap, the ones no longer fit
        for use are closed first (so a pass over many hosts holds few open files). Origins
        with no idle connection have no entry, so this counts at most the cap's worth."""
        if sum(map(len, self._idle.values())) < MAX_IDLE_TOTAL:
            return True
        now = time.monotonic()
        for origin, idle in list(self._idle.items()):
            for connection in [c for c in idle if not c.is_usable(now)]:
                connection.close()
                idle.remove(connection)
            if not idle:
                del self._idle[origin]
        return sum(map(len, self._idle.values())) < MAX_IDLE_TOTAL


def _origin(url: httpx.URL) -> Origin:
    scheme = url.scheme
    if scheme not in ("http", "https"):
        raise ConnectError(f"cannot fetch {scheme}: URLs")
    port = url.port or (443 if scheme == "https" else 80)
    return scheme, url.raw_host.decode("ascii"), port


def _broken(exc: h11.RemoteProtocolError) -> str:
    """h11's complaint in words a history line can use: "the server closed the connection"
    rather than its state machine's, bytes as b'...' rather than bytearray(b'...')."""
    if "ConnectionClosed" in str(exc) or "unexpectedly closed" in str(exc):
        return "the server closed the connection before its answer was complete"
    if "_SWITCH" in str(exc):
        return "the server switched protocols (101), which no GET of ours asked for"
    return _BYTEARRAY.sub(r"\1", str(exc)) or "the server broke HTTP/1.1"


_BYTEARRAY = re.compile(r"bytearray\((b'.*?'|b\".*?\")\)")


def _unanswered(connection: _Connection, exc: BaseException) -> bool:
    """Did a reused connection fail before a byte of the answer came? The server had closed it
    while it sat idle, and the request never reached anyone who acted on it."""
    if not connection.used:
        return False
    return not isinstance(exc, Timeout) and connection.received == 0
