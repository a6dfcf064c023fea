"""The values that travel between pipeline stages. All frozen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

ALIAS_REGEX_PREFIX = "re:"

#: the message of a capture that a 304 answer stands for (the body is the previous capture's)
NOT_MODIFIED = "not modified (304)"

#: alert kinds that say a phrase went; `restored` says one came back
REMOVAL_KINDS = frozenset({"removed", "page_removed"})
#: the alert kinds detection decides from captures' counts (health alerts are not among them)
CHANGE_KINDS = REMOVAL_KINDS | {"restored"}
#: alert kinds about the watch itself, not a phrase: it met stand-in pages several checks in a
#: row (`blocked`), has had no successful capture for several intervals (`failing`), or
#: captures fine again after either (`restored_health`). Their group is "".
HEALTH_KINDS = frozenset({"blocked", "failing", "restored_health"})


@dataclass(frozen=True)
class PhraseGroup:
    """One concept and its spellings; an alias starting with ``re:`` is a regular expression."""

    name: str
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class Watch:
    """One URL of one watchlist, with the phrase groups counted on it."""

    url: str
    list: str  # the watchlist's name: its file stem
    every: int  # seconds between checks
    groups: tuple[PhraseGroup, ...]
    selector: str | None = None
    path: str | None = None  # the watchlist file it came from, for messages
    line: int | None = None  # the line of its [[watch]] header

    @property
    def key(self) -> tuple[str, str]:
        return (self.list, self.url)


def header(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    """The first value of a header, by case-insensitive name, or None."""
    name = name.lower()
    return next((value for key, value in headers if key.lower() == name), None)


@dataclass(frozen=True)
class Redirect:
    """One hop of a redirect chain."""

    url: str
    status: int
    location: str


@dataclass(frozen=True)
class Capture:
    """A successful fetch: the raw body exactly as received and everything needed to prove it."""

    url: str  # the watched URL as the watchlist has it
    final_url: str
    status: int
    headers: tuple[tuple[str, str], ...]  # response headers in received order
    body: bytes  # raw body bytes as received (content-encoding intact)
    sha256: str  # hex digest of body
    captured_at: datetime  # UTC, timezone-aware
    redirects: tuple[Redirect, ...] = ()
    decoded: bytes | None = None  # body with content-encoding undone; None when not encoded

    @property
    def content(self) -> bytes:
        """The body with any content-encoding undone: what extraction reads."""
        return self.body if self.decoded is None else self.decoded

    def header(self, name: str) -> str | None:
        return header(self.headers, name)


@dataclass(frozen=True)
class FailedCheck:
    """A fetch that produced no snapshot: recorded, never compared."""

    url: str
    reason: str  # a short class: "timeout", "connect", "http_503", "too_large", ...
    message: str  # one line for humans
    checked_at: datetime
    status: int | None = None
    final_url: str | None = None
    redirects: tuple[Redirect, ...] = ()


@dataclass(frozen=True)
class Extracted:
    """Visible text of a body, ready for matching and diffing."""

    text: str  # NFKC-normalised visible text; lines split by "\n"
    encoding: str  # the codec the body was read with
    readable: bool = True  # False: not text we can read (binary, unknown type)
    scope_found: bool = True  # False: a selector was given and matched nothing
    note: str = ""  # why it is not readable / not found, for history
    refresh: str = ""  # where a <meta http-equiv="refresh"> sends browsers at once, if it does


@dataclass(frozen=True)
class GroupCount:
    """How often one phrase group occurs in one snapshot, and through which aliases."""

    group: str
    count: int
    aliases: tuple[tuple[str, int], ...] = ()  # (alias as written, matches), aliases with 0 omitted


@dataclass(frozen=True)
class Span:
    """One match of a phrase group in a text, in the text's own coordinates."""

    start: int
    end: int
    alias: str


@dataclass(frozen=True)
class Context:
    """The removed passage: diff segments around the occurrence that went.

    ``segments`` are (op, text) pairs with op "=" (unchanged), "-" (removed) or "+" (inserted).
    """

    alias: str
    segments: tuple[tuple[str, str], ...]
    approximate: bool = False  # True when the diff could not pin the passage down

    def render(self) -> str:
        """wdiff-style text: removed text as [-...-], inserted text as {+...+}."""
        return "".join(mark(op, text) for op, text in self.segments)


def mark(op: str, text: str) -> str:
    """One diff segment in wdiff style, with its edge whitespace kept outside the marks."""
    if op == "=" or not text.strip():
        return text
    core = text.strip()
    lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]
    return f"{lead}[-{core}-]{trail}" if op == "-" else f"{lead}{{+{core}+}}{trail}"


@dataclass(frozen=True)
class StoredCapture:
    """One stored capture as an evidence bundle writes it (the body is read from its blob)."""

    capture_id: int
    list: str  # the watchlist the watch belongs to
    watch_url: str  # the watched URL as the watchlist has it
    target_uri: str  # the URL that answered (the final URL after redirects)
    status: int
    headers: tuple[tuple[str, str], ...]  # response headers in received order
    sha256: str  # hex digest of the raw body as stored
    captured_at: datetime  # UTC
    chain: str  # the workspace's tamper-evident chain value for this capture
    source: str  # "live", "import" or "wayback"
    redirects: tuple[Redirect, ...] = ()
    not_modified: bool = False  # a 304 answer standing for the previous body


@dataclass(frozen=True)
class ArchivedResponse:
    """A response read from an archive (a WARC/WACZ record or a Wayback capture), ready to store."""

    target_uri: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes  # payload as received: transfer-encoding undone, content-encoding intact
    captured_at: datetime  # UTC, timezone-aware
    origin: str  # where it came from, for messages: "bundle.warc.gz#1234" or a Wayback URL
    record_id: str = ""  # WARC-Record-ID when there is one
    pagewatch: dict[str, object] | None = None  # pagewatch's own entry for it, from its bundles

    def header(self, name: str) -> str | None:
        return header(self.headers, name)
