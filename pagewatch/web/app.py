"""The Starlette application of `pagewatch serve`: routes, and the rules every request meets.

Security, in the order a request meets it (`Guard`):

- On a loopback bind, a Host header that is not a loopback name is refused, so a web page that
  rebinds its own hostname to 127.0.0.1 cannot read the app (DNS rebinding).
- With a token (required off loopback), every request carries it: ``Authorization: Bearer``, or
  the cookie that ``?token=`` sets. Compared in constant time.
- A state-changing request (POST) must come from a page of the app itself: Sec-Fetch-Site
  ``same-origin``, an Origin (or, lacking both, a Referer) naming this host; and its form must
  carry this process's form token. Requests with a bearer token are not forgeable by a browser
  and need neither.
- Every response carries a strict Content-Security-Policy (scripts and styles from the app's
  own files only). Captured bodies are served only as ``text/plain`` (or as a download) with
  ``Content-Security-Policy: sandbox`` and ``nosniff``: a vendor page is never rendered here.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pagewatch.errors import NotFound, PagewatchError, StoreError, UsageError
from pagewatch.store import Store, utcnow

from . import views
from .render import render

log = logging.getLogger("pagewatch.web")

TOKEN_COOKIE = "pagewatch_token"
MAX_FORM_BYTES = 64 * 1024
MAX_NOTE = 2000
APP_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: a captured body: no scripts, no plugins, no same-origin, nothing loaded, even if sniffed
CAPTURE_CSP = "sandbox; default-src 'none'"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Settings:
    """How one server runs: its workspace and its secrets."""

    root: Path
    token: str | None = None  # required on every request when set
    loopback: bool = True  # bound to loopback: only loopback Host headers are answered
    poll_seconds: float = 5.0  # how often an open inbox asks whether alerts changed
    form_token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _host_name(host: str) -> str:
    """The name part of a Host header: 127.0.0.1:8650 -> 127.0.0.1, [::1]:8650 -> ::1."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _loopback_host(host: str) -> bool:
    name = _host_name(host).lower().rstrip(".")
    return name in LOOPBACK_NAMES or (name.startswith("127.") and name.replace(".", "").isdigit())


class Guard:
    """Host, token and cross-site checks on every request; security headers on every answer."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refusal(request)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", APP_CSP)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
                headers.setdefault("Cache-Control", "no-store")
            await send(message)

        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _refusal(self, request: Request) -> Response | None:
        host = request.headers.get("host", "")
        if self.settings.loopback and not _loopback_host(host):
            return PlainTextResponse(
                f"refused: this server answers only to loopback names, not {host!r}\n", 421
            )
        bearer = False
        token = self.settings.token
        if token is not None:
            bearer, refusal = self._token_refusal(request, token)
            if refusal is not None:
                return refusal
            request.state.bearer = bearer  # the form token is for browsers; see _form
        if request.method not in SAFE_METHODS and not bearer:
            why = _cross_site(request)
            if why:
                log.warning("refused %s %s: %s", request.method, request.url.path, why)
                return PlainTextResponse(f"refused: {why}\n", 403)
        return None

    def _token_refusal(self, request: Request, token: str) -> tuple[bool, Response | None]:
        """(whether a bearer token authorised it, the refusal or None)."""
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer " and _same(auth[7:].strip(), token):
            return True, None
        given = request.query_params.get("token")
        if given is not None and request.method in SAFE_METHODS:
            if not _same(given, token):
                return False, PlainTextResponse("refused: wrong token\n", 401)
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + ("?" + urlencode(rest) if rest else "")
            response = RedirectResponse(target, 303)
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
            return False, response
        if _same(request.cookies.get(TOKEN_COOKIE, ""), token):
            return False, None
        return False, PlainTextResponse(
            "refused: this server needs its token (open the URL it printed, with ?token=...,"
            " or send Authorization: Bearer TOKEN)\n",
            401,
        )


def _cross_site(request: Request) -> str:
    """Why a state-changing request may come from another site ("" when it comes from ours)."""
    host = request.headers.get("host", "")
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return f"cross-site request (Sec-Fetch-Site: {fetch_site})"
    origin = request.headers.get("origin")
    if origin is not None:
        if origin == "null" or urlsplit(origin).netloc != host:
            return f"cross-origin request (Origin: {origin})"
        return ""
    if fetch_site is not None:
        return ""
    referer = request.headers.get("referer", "")
    if not referer or urlsplit(referer).netloc != host:
        return "request with no Origin nor Referer of this app"
    return ""


# -- the pages ------------------------------------------------------------------------------


def create_app(settings: Settings) -> Starlette:
    """The app over one workspace."""
    root = settings.root

    def reading(job: Callable[[Store], Any]) -> Any:
        store = Store(root, readonly=True)
        try:
            return job(store)
        finally:
            store.close()

    def writing(job: Callable[[Store], Any]) -> Any:
        store = Store(root)
        try:
            return job(store)
        finally:
            store.close()

    def page(request: Request, template: str, code: int = 200, **context: Any) -> HTMLResponse:
        html = render(
            template,
            request_path=request.url.path,
            form_token=settings.form_token,
            poll_ms=int(settings.poll_seconds * 1000),
            **context,
        )
        return HTMLResponse(html, code)

    def inbox(request: Request) -> Response:
        chosen = views.InboxFilter.parse(request.query_params)
        found = reading(lambda store: views.inbox(store, chosen))
        here = request.url.path + (("?" + request.url.query) if request.url.query else "")
        return page(request, "inbox.html", inbox=found, nav="inbox", here=here)

    def stamp(request: Request) -> Response:
        latest, new = reading(lambda store: store.alert_stamp())
        return JSONResponse({"stamp": f"{latest}:{new}", "latest": latest, "new": new})

    def alert(request: Request) -> Response:
        alert_id = request.path_params["alert_id"]
        found = reading(lambda store: views.alert_page(store, root, alert_id, True))
        return page(request, "alert.html", view=found, nav="inbox", here=request.url.path)

    def watch(request: Request) -> Response:
        watch_id = request.path_params["watch_id"]
        found = reading(lambda store: views.watch_page(store, root, watch_id, utcnow()))
        return page(request, "watch.html", view=found, nav="watches")

    def watches(request: Request) -> Response:
        now = utcnow()
        found = reading(lambda store: views.workspace_page(store, root, now))
        return page(request, "watches.html", view=found, now=now, nav="watches")

    def capture_text(request: Request) -> Response:
        raw = reading(lambda store: views.raw_capture(store, request.path_params["check_id"]))
        return Response(
            raw.text.encode("utf-8"),
            media_type="text/plain; charset=utf-8",
            headers={
                "Content-Security-Policy": CAPTURE_CSP,
                "Content-Disposition": f'inline; filename="{raw.sha256}.txt"',
            },
        )

    def capture_body(request: Request) -> Response:
        raw = reading(lambda store: views.raw_capture(store, request.path_params["check_id"]))
        return Response(
            raw.body,
            media_type="application/octet-stream",
            headers={
                "Content-Security-Policy": CAPTURE_CSP,
                "Content-Disposition": f'attachment; filename="{raw.sha256}.body"',
            },
        )

    def evidence(request: Request) -> Response:
        from pagewatch.export import export_alert  # warcio and the bundle writer, when asked

        alert_id = request.path_params["alert_id"]
        reading(lambda store: store.alert(alert_id))  # NotFound before any work
        folder = Path(tempfile.mkdtemp(prefix="pagewatch-evidence-"))
        out = folder / f"pagewatch-alert-{alert_id}.wacz"
        try:
            export_alert(root, alert_id, out)
            if not out.is_file():
                raise StoreError(f"the export of alert {alert_id} wrote no file")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return FileResponse(
            out,
            media_type="application/zip",
            filename=out.name,
            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
        )

    async def acknowledge(request: Request) -> Response:
        form = await _form(request, settings)
        ids = _ids(form)
        note = (form.get("note") or [""])[0].strip()
        if len(note) > MAX_NOTE:
            raise UsageError(f"the note is longer than {MAX_NOTE} characters")
        now = utcnow()
        await run_in_threadpool(writing, lambda store: store.ack(ids, now, note))
        return RedirectResponse(_next(form), 303)

    async def unacknowledge(request: Request) -> Response:
        form = await _form(request, settings)
        ids = _ids(form)
        await run_in_threadpool(writing, lambda store: store.unack(ids))
        return RedirectResponse(_next(form), 303)

    def failure(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handle(request: Request, exc: Exception) -> Response:
            message = exc.detail if isinstance(exc, HTTPException) else str(exc)
            return page(request, "error.html", status, status=status, message=message, nav="")

        return handle

    routes = [
        Route("/", inbox),
        Route("/api/stamp", stamp),
        Route("/alerts/ack", acknowledge, methods=["POST"]),
        Route("/alerts/unack", unacknowledge, methods=["POST"]),
        Route("/alerts/{alert_id:int}", alert),
        Route("/alerts/{alert_id:int}/evidence.wacz", evidence),
        Route("/captures/{check_id:int}/text", capture_text),
        Route("/captures/{check_id:int}/body", capture_body),
        Route("/watches", watches),
        Route("/watches/{watch_id:int}", watch),
        Mount("/static", StaticFiles(packages=[("pagewatch.web", "static")]), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            NotFound: failure(404),
            UsageError: failure(400),
            _Forbidden: failure(403),
            PagewatchError: failure(500),
            404: failure(404),
            405: failure(405),
        },
    )
    app.add_middleware(Guard, settings=settings)
    return app


class _Forbidden(PagewatchError, PermissionError):
    """A form without this server's form token."""


async def _form(request: Request, settings: Settings) -> dict[str, list[str]]:
    """A urlencoded form whose token is this server's; _Forbidden when it is not."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise UsageError("send the form urlencoded (application/x-www-form-urlencoded)")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise UsageError("the form is too large")
    form = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    bearer = getattr(request.state, "bearer", False)
    if not bearer and not _same((form.get("form_token") or [""])[0], settings.form_token):
        raise _Forbidden(
            "the form is out of date or did not come from this app; reload the page and retry"
        )
    return form


def _ids(form: dict[str, list[str]]) -> list[int]:
    values = form.get("id") or []
    if not values:
        raise UsageError("choose at least one alert")
    if not all(v.isdigit() and 0 < int(v) < 2**63 for v in values):
        raise UsageError("alert ids are whole numbers")
    return list(dict.fromkeys(int(v) for v in values))


def _next(form: dict[str, list[str]]) -> str:
    """Where to go after a form: a path of this app (never another site), else the inbox."""
    target = (form.get("next") or ["/"])[0]
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target if "\\" not in target else "/"
