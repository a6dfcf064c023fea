"""Watchlists: the TOML files under ``watchlists/`` that say what to watch.

Reading turns one file into `Watch` values and rejects anything doubtful with a `WatchlistError`
that names the file and line. Editing (`add_watch`) appends a ``[[watch]]`` table and leaves every
byte above it as it was, because these files are written by people and kept under version control.
The format is described in docs/watchlists.md.
"""

from __future__ import annotations

import bisect
import contextlib
import difflib
import os
import re
import secrets
import stat
import tomllib
import unicodedata
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from . import extract, match
from .errors import WatchlistError, WorkspaceError
from .models import ALIAS_REGEX_PREFIX, PhraseGroup, Watch

DEFAULT_EVERY = "6h"
LIST_KEYS = ("every", "phrases", "watch")
WATCH_KEYS = ("url", "selector", "every", "phrases")
MAX_INTERVAL = 365 * 86400

_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_INTERVAL = re.compile(
    "".join(rf"(?:(\d+)\s*{unit}\s*)?" for unit, _ in _UNITS), re.IGNORECASE | re.ASCII
)
_LIST_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_GROUP_ITEM = re.compile(r"([\w-]+)\s*=(.*)", re.DOTALL)  # --phrase NAME=ALIAS[,ALIAS...]
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BARE_VALUE = re.compile(r"[^,\]}#\n]+")  # numbers, booleans, dates
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")  # \s: every character str.isspace() calls one
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")  # extraction drops these
_NUMBERED_REF = re.compile(r"(?<!\\)(?:\\\\)*\\[1-9]|\(\?\(\d")  # \1, (?(1)...)
_TOML_WHERE = re.compile(r" \(at (?:line (\d+), column (\d+)|end of document)\)$")

_Path = tuple[str | int, ...]


# Intervals ----------------------------------------------------------------------------------------


def parse_interval(text: str | int) -> int:
    """Seconds in an interval: "90s", "30m", "6h", "1d", "2w", "1h30m"; an int is seconds."""
    if isinstance(text, int) and not isinstance(text, bool):
        seconds = text
    elif isinstance(text, str) and re.fullmatch(r"\s*\d+\s*", text, re.ASCII):
        seconds = int(text)
    elif isinstance(text, str) and text.strip() and (match := _INTERVAL.fullmatch(text.strip())):
        seconds = sum(
            int(n) * size for n, (_, size) in zip(match.groups(), _UNITS, strict=True) if n
        )
    else:
        raise WatchlistError(f"bad interval {_quote(text)} (use e.g. 30m, 6h, 1d)")
    if seconds < 1:
        raise WatchlistError(f"bad interval {_quote(text)} (must be at least 1s)")
    if seconds > MAX_INTERVAL:
        raise WatchlistError(f"bad interval {_quote(text)} (at most 365d)")
    return seconds


def format_interval(seconds: int) -> str:
    """The shortest interval text for a number of seconds: 5400 -> "1h30m"."""
    if seconds < 0:
        raise ValueError(f"negative interval: {seconds}")
    parts = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _quote(value: object) -> str:
    """A value for a message, quoted as the user wrote it where that is unambiguous."""
    if isinstance(value, str) and "'" not in value and value.isprintable():
        return f"'{value}'"
    return repr(value)


# Checks shared by the reader and add_watch; each returns a message or None -----------------------


def _url_problem(url: str) -> str | None:
    if _SPACE_OR_CONTROL.search(url):
        return f"bad URL {_quote(url)} (contains a space or control character)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError as exc:
        return f"bad URL {_quote(url)} ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        return f"bad URL {_quote(url)} (must start with http:// or https://)"
    if not parts.hostname:
        return f"bad URL {_quote(url)} (no host)"
    return None


def _selector_problem(selector: str) -> str | None:
    import cssselect  # only watchlists with selectors need it

    if not selector.strip():
        return f"bad selector {_quote(selector)} (empty)"
    try:
        cssselect.GenericTranslator().css_to_xpath(selector)
    except cssselect.SelectorError as exc:
        return f"bad selector {_quote(selector)} ({exc})"
    try:  # and as extraction will use it, with the HTML translator
        extract.check_selector(selector)
    except ValueError as exc:
        return f"bad selector {_quote(selector)} ({exc})"
    return None


def _alias_problem(alias: str, group: str) -> str | None:
    if not _INVISIBLE.sub("", alias).strip():
        return f"empty alias in phrase group {_quote(group)}"
    if not alias.startswith(ALIAS_REGEX_PREFIX):
        return None
    try:
        compiled = _compile(alias)
    except re.error as exc:
        return f"bad regex {_quote(alias)} in phrase group {_quote(group)}: {exc}"
    if _can_match_empty(compiled):
        return f"regex {_quote(alias)} in phrase group {_quote(group)} can match empty text"
    if _NUMBERED_REF.search(compiled.pattern):  # the group's aliases are joined into one pattern
        return (
            f"regex {_quote(alias)} in phrase group {_quote(group)} refers to a group by number;"
            " name it: (?P<x>...)(?P=x)"
        )
    return None


def _group_problem(group: str, aliases: Sequence[str]) -> tuple[int, str] | None:
    """The index of the first alias of a group that cannot be matched with, and why."""
    captures: set[str] = set()
    for index, alias in enumerate(aliases):
        problem = _alias_problem(alias, group)
        if problem:
            return index, problem
        if alias.startswith(ALIAS_REGEX_PREFIX):
            names = set(_compile(alias).groupindex)
            if names & captures:
                return index, (
                    f"regex {_quote(alias)} in phrase group {_quote(group)} reuses the group name"
                    f" {_quote(min(names & captures))} of another alias"
                )
            captures |= names
    try:  # the matcher has the last word: a list that loads must never fail at check time
        match.compile_groups([PhraseGroup(group, tuple(aliases))])
    except ValueError as exc:
        return 0, str(exc)
    return None


def _compile(alias: str) -> re.Pattern[str]:
    with warnings.catch_warnings():  # e.g. FutureWarning "Possible nested set"
        warnings.simplefilter("ignore")
        return re.compile(alias[len(ALIAS_REGEX_PREFIX) :], re.IGNORECASE)


def _can_match_empty(compiled: re.Pattern[str]) -> bool:
    """True when the pattern can match zero characters somewhere (``a*``, ``\\b``, ``(?=x)``)."""
    parser: Any = getattr(re, "_parser", None)  # the stdlib's own width analysis, when present
    if parser is not None:
        try:
            low, _ = parser.parse(compiled.pattern, compiled.flags).getwidth()
            return bool(low == 0)
        except Exception:  # a private API: fall back to probing
            pass
    probes = ("", " ", "a", "a b", "0", "维")
    return any(m.start() == m.end() for p in probes for m in compiled.finditer(p))


# Locating keys in the source ---------------------------------------------------------------------


class _Locator:
    """Line numbers of the tables, keys and array items of a TOML text tomllib has accepted.

    tomllib reports no positions, so this is a small scanner over the same text. Paths are those of
    the parsed data: ``("watch", 2, "phrases", "alarm", 0)`` is the first alias of group ``alarm``
    of the third ``[[watch]]``. Comments and strings are skipped, so a ``[[watch]]`` in either does
    not count.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.lines: dict[_Path, int] = {}
        self._newlines = [i for i, c in enumerate(text) if c == "\n"]
        self._arrays: dict[_Path, int] = {}  # array-of-tables path -> tables seen so far
        with contextlib.suppress(IndexError, ValueError):  # not on valid TOML; keep what was found
            self._document()

    def line(self, path: _Path) -> int:
        """The line of ``path``, else of its nearest located parent, else 1."""
        for n in range(len(path), 0, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return 1

    def _line_at(self, pos: int) -> int:
        return bisect.bisect_left(self._newlines, pos) + 1

    def _record(self, path: _Path, pos: int) -> None:
        line = self._line_at(pos)
        for n in range(1, len(path) + 1):
            self.lines.setdefault(path[:n], line)

    def _document(self) -> None:
        table: _Path = ()
        while True:
            self._skip(newlines=True)
            if self.pos >= len(self.text):
                return
            start = self.pos
            if self.text.startswith("[[", start):
                self.pos += 2
                keys = self._key()
                self._expect("]]")
                parent = (*self._resolve(keys[:-1]), keys[-1])
                index = self._arrays.get(parent, 0)
                self._arrays[parent] = index + 1
                table = (*parent, index)
                self._record(table, start)
            elif self.text[start] == "[":
                self.pos += 1
                keys = self._key()
                self._expect("]")
                table = self._resolve(keys)
                self._record(table, start)
            else:
                self._keyval(table)

    def _resolve(self, keys: list[str]) -> _Path:
        path: _Path = ()
        for key in keys:
            path = (*path, key)
            if path in self._arrays:
                path = (*path, self._arrays[path] - 1)
        return path

    def _keyval(self, base: _Path) -> None:
        start = self.pos
        path = base + tuple(self._key())
        self._record(path, start)
        self._expect("=")
        self._skip(newlines=False)
        self._value(path)

    def _value(self, path: _Path) -> None:
        char = self.text[self.pos]
        if char in "\"'":
            self._string()
        elif char in "[{":
            self.pos += 1
            close, index = ("]" if char == "[" else "}"), 0
            while True:
                self._skip(newlines=True)
                if self.text[self.pos] == close:
                    self.pos += 1
                    return
                if char == "[":
                    self._record((*path, index), self.pos)
                    self._value((*path, index))
                else:
                    self._keyval(path)
                self._skip(newlines=True)
                if self.text[self.pos] == ",":
                    self.pos += 1
                    index += 1
                elif self.text[self.pos] != close:
                    raise ValueError("unexpected character in array or inline table")
        else:
            match = _BARE_VALUE.match(self.text, self.pos)
            if match is None:
                raise ValueError("no value")
            self.pos = match.end()

    def _key(self) -> list[str]:
        keys = []
        while True:
            self._skip(newlines=False)
            if self.text[self.pos] in "\"'":
                keys.append(str(tomllib.loads(f"k = {self._string()}")["k"]))
            else:
                match = _BARE_KEY.match(self.text, self.pos)
                if match is None:
                    raise ValueError("no key")
                keys.append(match.group())
                self.pos = match.end()
            self._skip(newlines=False)
            if self.text[self.pos] != ".":
                return keys
            self.pos += 1

    def _string(self) -> str:
        """Skip one string, returning its source text."""
        text, start = self.text, self.pos
        quote = text[start]
        multiline = text.startswith(quote * 3, start)
        self.pos += 3 if multiline else 1
        while True:
            char = text[self.pos]
            if char == "\\" and quote == '"':
                self.pos += 2
            elif multiline and text.startswith(quote * 3, self.pos):
                self.pos += 3
                for _ in range(2):  # up to two more quotes belong to the content
                    if self.pos < len(text) and text[self.pos] == quote:
                        self.pos += 1
                return text[start : self.pos]
            else:
                self.pos += 1
                if char == quote and not multiline:
                    return text[start : self.pos]

    def _skip(self, newlines: bool) -> None:
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char in " \t\r" or (newlines and char == "\n"):
                self.pos += 1
            elif char == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                return

    def _expect(self, token: str) -> None:
        self._skip(newlines=False)
        if not self.text.startswith(token, self.pos):
            raise ValueError(f"expected {token!r}")
        self.pos += len(token)


# Reading -----------------------------------------------------------------------------------------


class _Reader:
    """Validates the parsed data of one file, pointing every error at its line."""

    def __init__(self, text: str, path: Path) -> None:
        self.path = path
        try:
            self.data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise _toml_error(exc, text, path) from None
        self.where = _Locator(text)

    def fail(self, message: str, at: _Path) -> NoReturn:
        raise WatchlistError(message, self.path, self.where.line(at))

    def read(self) -> tuple[dict[str, tuple[str, ...]], list[Watch]]:
        """The list's own phrase groups and its watches."""
        data = self.data
        self.check_keys(data, LIST_KEYS, (), "")
        default = self.interval(data.get("every", DEFAULT_EVERY), ("every",))
        list_groups = self.groups(data["phrases"], ("phrases",)) if "phrases" in data else {}
        entries = data.get("watch", [])
        if not isinstance(entries, list):
            self.fail("'watch' must be an array of tables: write each one as [[watch]]", ("watch",))
        watches: list[Watch] = []
        seen: dict[str, int] = {}
        for index, entry in enumerate(entries):
            at: _Path = ("watch", index)
            if not isinstance(entry, dict):
                self.fail("each watch must be a table: write it as [[watch]]", at)
            self.check_keys(entry, WATCH_KEYS, at, " in [[watch]]")
            if "url" not in entry:
                self.fail("watch has no url", at)
            url = self.url(entry["url"], (*at, "url"))
            if url in seen:
                self.fail(f"duplicate URL {_quote(url)} (first at line {seen[url]})", (*at, "url"))
            seen[url] = self.where.line((*at, "url"))
            every = self.interval(entry["every"], (*at, "every")) if "every" in entry else default
            selector = (
                self.selector(entry["selector"], (*at, "selector")) if "selector" in entry else None
            )
            own = self.groups(entry["phrases"], (*at, "phrases")) if "phrases" in entry else {}
            groups = {**list_groups, **own}  # a watch's group replaces the list's of that name
            if not groups:
                self.fail(
                    "watch has no phrase groups: add a [phrases] table to the list"
                    " or phrases = {...} to the watch",
                    at,
                )
            watches.append(
                Watch(
                    url=url,
                    list=self.path.stem,
                    every=every,
                    groups=tuple(PhraseGroup(name, aliases) for name, aliases in groups.items()),
                    selector=selector,
                    path=str(self.path),
                    line=self.where.line(at),
                )
            )
        return list_groups, watches

    def check_keys(
        self, table: dict[str, Any], allowed: tuple[str, ...], at: _Path, where: str
    ) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = (
                    f"did you mean {_quote(close[0])}?"
                    if close
                    else f"expected {', '.join(allowed)}"
                )
                self.fail(f"unknown key {_quote(key)}{where} ({hint})", (*at, key))

    def interval(self, value: object, at: _Path) -> int:
        if not isinstance(value, str | int):
            self.fail(f"bad interval {_quote(value)} (use e.g. 30m, 6h, 1d)", at)
        try:
            return parse_interval(value)
        except WatchlistError as exc:
            self.fail(exc.message, at)

    def url(self, value: object, at: _Path) -> str:
        if not isinstance(value, str):
            self.fail(f"url must be a string, not {_quote(value)}", at)
        problem = _url_problem(value)
        if problem:
            self.fail(problem, at)
        return value

    def selector(self, value: object, at: _Path) -> str:
        if not isinstance(value, str):
            self.fail(f"selector must be a string, not {_quote(value)}", at)
        problem = _selector_problem(value)
        if problem:
            self.fail(problem, at)
        return value

    def groups(self, value: object, at: _Path) -> dict[str, tuple[str, ...]]:
        if not isinstance(value, dict):
            self.fail('phrases must be a table of groups, e.g. uyghur = ["Uyghur", "Uighur"]', at)
        groups: dict[str, tuple[str, ...]] = {}
        for name, aliases in value.items():
            group_at: _Path = (*at, name)
            if not name.strip():
                self.fail("phrase group with an empty name", group_at)
            single = isinstance(aliases, str)
            if single:
                aliases = [aliases]
            if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                self.fail(f"phrase group {_quote(name)} must be a list of strings", group_at)
            if not aliases:
                self.fail(f"phrase group {_quote(name)} is empty", group_at)
            problem = _group_problem(name, aliases)
            if problem:
                self.fail(problem[1], group_at if single else (*group_at, problem[0]))
            groups[name] = tuple(aliases)
        return groups


def _toml_error(exc: tomllib.TOMLDecodeError, text: str, path: Path) -> WatchlistError:
    message = str(exc)
    match = _TOML_WHERE.search(message)
    if match is None:
        return WatchlistError(f"invalid TOML: {message}", path, 1)
    reason = message[: match.start()]
    reason = reason[:1].lower() + reason[1:]
    if match.group(1):
        line, where = int(match.group(1)), f"at column {match.group(2)}"
    else:
        line, where = max(1, len(text.rstrip().splitlines())), "at end of file"
    return WatchlistError(f"invalid TOML: {reason} {where}", path, line)


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start]
        raise WatchlistError(
            f"not UTF-8 text (byte 0x{bad:02x}); save it as UTF-8", path, line
        ) from None


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise WatchlistError(f"cannot read watchlist: {exc.strerror}", path) from None


def load_watchlist(path: Path) -> list[Watch]:
    """The watches of one watchlist file, validated; the list's name is the file's stem."""
    return _Reader(_decode(_read_file(path), path), path).read()[1]


def load_watchlists(directory: Path, names: Sequence[str] | None = None) -> list[Watch]:
    """The watches of every ``*.toml`` in ``directory`` (or of the named lists), by file name.

    Raises the first `WatchlistError` met: one broken file stops the whole load.
    """
    files = sorted(
        (p for p in directory.glob("*.toml") if not p.name.startswith(".")), key=lambda p: p.name
    )
    for path in files:  # a list the analyst meant to keep is never skipped without a word
        if not path.is_file():
            what = (
                "a directory"
                if path.is_dir()
                else "not a file"
                if path.exists()
                else "a link to nothing"
            )
            raise WatchlistError(f"{what}, not a watchlist file", path)
    if names is not None:
        by_name = {p.stem: p for p in files}
        for name in names:
            if name not in by_name:
                raise WatchlistError(f"no watchlist named {_quote(name)}")
        files = [p for p in files if p.stem in set(names)]
    return [watch for path in files for watch in load_watchlist(path)]


# Editing -----------------------------------------------------------------------------------------


def add_watch(
    directory: Path,
    list_name: str,
    url: str,
    phrases: Sequence[str] = (),
    every: str | None = None,
    selector: str | None = None,
) -> Path:
    """Append a ``[[watch]]`` to ``directory/<list_name>.toml``, creating the file if needed.

    Each item of ``phrases`` is ``NAME=ALIAS[,ALIAS...]`` (a group) or a plain alias (a group named
    after it). Everything is checked before the file is touched; the bytes already in the file stay
    exactly as they were. Returns the file's path.
    """
    if not _LIST_NAME.fullmatch(list_name):
        raise WatchlistError(
            f"bad list name {_quote(list_name)} (use letters, digits, '.', '_' and '-';"
            " not starting with '.')"
        )
    for problem in (
        _url_problem(url),
        _selector_problem(selector) if selector is not None else None,
    ):
        if problem:
            raise WatchlistError(problem)
    if every is not None:
        parse_interval(every)
    groups = _phrase_options([phrases] if isinstance(phrases, str) else phrases)

    path = directory / f"{list_name}.toml"
    original = _read_file(path) if path.exists() else None
    if original is None:
        text = (
            f"# {list_name}: pages pagewatch watches for the removal of flagged phrases.\n"
            f"# The format is described in docs/watchlists.md.\n\n"
            f'every = "{DEFAULT_EVERY}"\n'
        )
        list_groups: dict[str, tuple[str, ...]] = {}
    else:
        text = _decode(original, path)
        list_groups, watches = _Reader(text, path).read()
        for watch in watches:
            if watch.url == url:
                raise WatchlistError(
                    f"{_quote(url)} is already watched in {path.name}", path, watch.line
                )
    if not groups and not list_groups:
        raise WatchlistError(
            f"no phrases to watch for: pass --phrase (e.g. --phrase 'uyghur=Uyghur,Uighur'),"
            f" or add a [phrases] table to {path}",
        )

    newline = "\r\n" if "\r\n" in text else "\n"
    addition = _watch_table(url, groups, every, selector).replace("\n", newline)
    if original is None:
        data = (text + "\n").encode() + addition.encode()
    else:
        sep = "" if not text or text.endswith(2 * newline) else newline
        if text and not text.endswith("\n"):
            sep = newline + sep
        data = original + (sep + addition).encode()

    try:  # the new text must read back before it goes to disk
        _Reader(_decode(data, path), path).read()
    except WatchlistError as exc:
        raise WatchlistError(
            f"cannot append a [[watch]] table to this file: {exc.message}; edit it by hand", path
        ) from None
    directory.mkdir(parents=True, exist_ok=True)
    _write_atomic(path, data)
    try:
        load_watchlist(path)
    except WatchlistError:
        if original is None:
            path.unlink(missing_ok=True)
        else:
            _write_atomic(path, original)
        raise
    return path


def _phrase_options(items: Sequence[str]) -> dict[str, list[str]]:
    """Phrase groups from ``--phrase`` items, checked; items naming the same group merge."""
    groups: dict[str, list[str]] = {}
    for item in items:
        match = _GROUP_ITEM.fullmatch(item)
        if match and not item.startswith(ALIAS_REGEX_PREFIX):
            name, aliases = match.group(1), [a.strip() for a in match.group(2).split(",")]
        else:
            name, aliases = _slug(item), [item.strip()]
        group = groups.setdefault(name, [])
        group.extend(a for a in aliases if a not in group)
        problem = _group_problem(name, group)
        if problem:
            raise WatchlistError(f"{problem[1]} (from --phrase {_quote(item)})")
    return groups


def _slug(alias: str) -> str:
    """A group name for a plain alias: "Is it Uyghur" -> "is-it-uyghur"."""
    text = unicodedata.normalize("NFKC", alias.removeprefix(ALIAS_REGEX_PREFIX)).casefold()
    return re.sub(r"[\W_]+", "-", text).strip("-") or "phrase"


def _watch_table(
    url: str, groups: dict[str, list[str]], every: str | None, selector: str | None
) -> str:
    import tomlkit  # only `add` writes TOML

    table = tomlkit.table()
    table.add("url", url)
    if selector is not None:
        table.add("selector", selector)
    if every is not None:
        table.add("every", every.strip())
    if groups:
        inline = tomlkit.inline_table()
        for name, aliases in groups.items():
            inline.add(name, aliases)
        table.add("phrases", inline)
    tables = tomlkit.aot()
    tables.append(table)
    document = tomlkit.document()
    document.add("watch", tables)
    return tomlkit.dumps(document)


def _write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step, keeping its permissions."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if mode is not None:
            os.chmod(temp, mode)
        os.replace(temp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # a read-only place may not even let it be removed
            temp.unlink(missing_ok=True)
        raise WorkspaceError(f"{path}: cannot write: {exc.strerror or exc}") from exc
