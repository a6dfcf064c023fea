"""Listening: the socket, the token rule for binds off loopback, and uvicorn.

The socket is bound here, before uvicorn starts, so a taken port is a one-line error and a test
can ask for port 0 and learn which one it got.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

from pagewatch.errors import ServeError, UsageError
from pagewatch.store import Store

from .app import Settings, create_app

TOKEN_ENV = "PAGEWATCH_TOKEN"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def settings_for(root: Path, host: str, token: str | None, poll_seconds: float = 5.0) -> Settings:
    """The server's settings; UsageError when it would listen off loopback without a token."""
    token = token or None
    if not is_loopback(host) and token is None:
        raise UsageError(
            f"listening on {host} exposes the workspace beyond this machine: give a token"
            f" (--token, or ${TOKEN_ENV}) that every request must carry"
        )
    return Settings(root=root, token=token, loopback=is_loopback(host), poll_seconds=poll_seconds)


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0 picks a free port)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {host}: {exc.strerror}") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ServeError(
                f"port {port} on {host} is in use; choose another with --port"
            ) from exc
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def url_of(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def _uvicorn(app: ASGIApp) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        proxy_headers=False,  # no X-Forwarded-* from anyone: the peer is who it is
        server_header=False,
        access_log=False,
    )
    return uvicorn.Server(config)


def serve(
    root: Path,
    host: str = "127.0.0.1",
    port: int = 8650,
    token: str | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the review app over the workspace at ``root`` until interrupted (Ctrl-C)."""
    settings = settings_for(root, host, token)
    Store(root).close()  # the workspace opens, and is brought up to date, before anything listens
    sock = listen(host, port)
    if on_ready:
        url = url_of(sock, host)
        on_ready(url + (f"?token={settings.token}" if settings.token else ""))
    with sock, contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled
        _uvicorn(create_app(settings)).run(sockets=[sock])


class BackgroundServer:
    """The app served from a thread of this process until the block ends: for tests and for
    embedding. ``url`` is where it listens."""

    def __init__(self, settings: Settings, host: str = "127.0.0.1", port: int = 0):
        self.sock = listen(host, port)
        self.url = url_of(self.sock, host)
        self._server = _uvicorn(create_app(settings))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ServeError("the review server did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self.sock.close()
