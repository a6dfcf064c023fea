"""The Jinja2 templates of `pagewatch serve` and `pagewatch report`, autoescaped.

Templates are files of this package, never built from anything a page said: titles, passages
and URLs taken from captures reach them only as values, and autoescaping escapes every one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from pagewatch.store import parse_iso
from pagewatch.watchlist import format_interval


def utc(moment: str | datetime | None) -> str:
    """A moment as people read it: 2020-12-08 18:00:00 UTC."""
    if moment is None or moment == "":
        return "never"
    at = parse_iso(moment) if isinstance(moment, str) else moment
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(moment: str | datetime | None) -> str:
    """A moment for a <time datetime=...> attribute."""
    if moment is None or moment == "":
        return ""
    at = parse_iso(moment) if isinstance(moment, str) else moment
    return at.astimezone(UTC).isoformat()


def http_url(url: str | None) -> str:
    """The URL if it may be a link (http or https), else "": a capture's final URL is the
    vendor's to choose, and a ``javascript:`` one must never become an href."""
    if not url:
        return ""
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return ""
    return url if scheme in ("http", "https") else ""


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("pagewatch.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        utc=utc,
        iso=iso,
        http_url=http_url,
        short=lambda sha: (sha or "")[:12],
        interval=format_interval,
    )
    return env


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)
