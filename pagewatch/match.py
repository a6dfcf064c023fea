"""Phrase counting: how often each phrase group occurs in a visible text, and where.

Text and aliases are compared folded: NFKC, casefolded, whitespace runs collapsed to one space.
A literal alias matches as a whole word at an end whose character belongs to a script that puts
spaces between words, and as a substring at an end in a script that does not (Chinese, Japanese,
Korean, Thai, Lao, Khmer, Myanmar). An alias starting with ``re:`` is a regular expression applied,
case-insensitively, to the folded text. Each group compiles to one alternation so that the matches
of all its aliases are counted once each, leftmost first, never overlapping.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import unicodedata
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from pagewatch.models import ALIAS_REGEX_PREFIX, GroupCount, PhraseGroup, Span

__all__ = ["Matcher", "compile_groups", "count", "fingerprint", "fold", "fold_alias", "spans"]

# Bump when the matching rules change, so that counts made under the old rules are not compared.
_RULES_VERSION = 1

# Scripts written without spaces between words: an alias ending in one matches as a substring.
# Korean is written with spaces, but particles attach to the word ("위구르족의"), so it is here too.
_SCRIPTIO_CONTINUA = (
    r"\u0e00-\u0eff"  # Thai, Lao
    r"\u1000-\u109f\ua9e0-\ua9ff\uaa60-\uaa7f"  # Myanmar
    r"\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7ff\uffa0-\uffdc"  # Hangul
    r"\u1780-\u17ff\u19e0-\u19ff"  # Khmer
    r"\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3038-\u303b"  # CJK radicals, ideographic marks
    r"\u3031-\u3035\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f\U0001b000-\U0001b16f"  # kana
    r"\u3100-\u312f\u31a0-\u31bf"  # Bopomofo
    r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"  # Han
)
# Invisible characters that extraction removes from texts, so they must not be in an alias either.
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
_GLOBAL_FLAGS = re.compile(r"\(\?([aiLmsux]+)\)")
_NUMBERED_GROUP_REF = re.compile(r"(?<!\\)(?:\\\\)*\\[1-9]|\(\?\(\d")
_CAPTURE_PREFIX = "_A"


@dataclass(frozen=True)
class _Group:
    name: str
    pattern: re.Pattern[str]
    # (key, alias as written) in the group's order. A match's key is its folded text for a literal
    # alias, or the name of the capture around a regex alias (uppercase: never a folded text).
    aliases: tuple[tuple[str, str], ...]
    literals: tuple[str, ...] | None  # the folded literals, when the group has no regex alias

    def key(self, match: re.Match[str]) -> str:
        return match.lastgroup or match.group()


@dataclass(frozen=True)
class Matcher:
    """Phrase groups compiled for counting; build it with `compile_groups`."""

    groups: tuple[_Group, ...]
    fingerprint: str  # `fingerprint` of the groups it was compiled from

    def group(self, name: str) -> _Group:
        for group in self.groups:
            if group.name == name:
                return group
        raise KeyError(name)


def fold(text: str) -> str:
    """Extracted (already NFKC) text as matching sees it: casefolded, whitespace as one space."""
    # Line by line: casefolding an ASCII line is much quicker, and most lines are ASCII.
    folded = " ".join(map(str.casefold, text.split("\n")))
    # Every whitespace character but the space is unprintable: a quick test for the usual case
    # of an extracted text, whose only whitespace is single spaces and line breaks.
    edges = folded[:1] + folded[-1:]
    if folded.isprintable() and "  " not in folded and " " not in edges:
        return folded
    return " ".join(folded.split())


def fold_alias(alias: str) -> str:
    """An alias as matching sees it: NFKC, casefolded, whitespace collapsed, invisibles gone."""
    return " ".join(unicodedata.normalize("NFKC", _INVISIBLE.sub("", alias)).casefold().split())


def compile_groups(groups: Sequence[PhraseGroup]) -> Matcher:
    """Compile phrase groups; ValueError naming the group and alias for an alias we cannot use."""
    names = [group.name for group in groups]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"phrase group {name!r} is defined twice")
    return Matcher(tuple(_compile_group(group) for group in groups), fingerprint(groups))


def count(matcher: Matcher, text: str) -> dict[str, GroupCount]:
    """Every group's number of non-overlapping matches in ``text``, and the aliases that matched."""
    folded = fold(text)
    counts = {}
    for group in matcher.groups:
        if group.literals is not None and not any(lit in folded for lit in group.literals):
            counts[group.name] = GroupCount(group.name, 0)
            continue
        tally = Counter(map(group.key, group.pattern.finditer(folded)))
        aliases = tuple((alias, tally[key]) for key, alias in group.aliases if tally[key])
        counts[group.name] = GroupCount(group.name, sum(tally.values()), aliases)
    return counts


def spans(matcher: Matcher, group: str, text: str) -> list[Span]:
    """The matches of ``group`` in ``text``, located in ``text``'s own coordinates.

    Agrees with `count`: the same matches, found in the same folded text, mapped back through
    casefolding (which may lengthen a character, ß -> ss) and whitespace collapsing.
    """
    compiled = matcher.group(group)
    folded, starts, ends = _fold_with_offsets(text)
    alias_of = dict(compiled.aliases)
    return [
        Span(starts[m.start()], ends[m.end() - 1], alias_of[compiled.key(m)])
        for m in compiled.pattern.finditer(folded)
    ]


def fingerprint(groups: Sequence[PhraseGroup]) -> str:
    """A short stable hash of the groups' names and aliases (and of the matching rules)."""
    canonical = sorted([group.name, list(group.aliases)] for group in groups)
    payload = json.dumps([_RULES_VERSION, canonical], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def _compile_group(group: PhraseGroup) -> _Group:
    if not group.aliases:
        raise ValueError(f"phrase group {group.name!r} has no aliases")
    keys: list[tuple[str, str]] = []
    literals: list[str] = []
    regexes: list[str] = []
    for index, alias in enumerate(group.aliases):
        if alias.startswith(ALIAS_REGEX_PREFIX):
            key = f"{_CAPTURE_PREFIX}{index}"
            regexes.append(f"(?P<{key}>{_check_regex(group.name, alias)})")
        else:
            key = fold_alias(alias)
            if not key:
                raise ValueError(f"phrase group {group.name!r}: alias {alias!r} is empty")
            if key in literals:
                continue  # a second spelling of the same alias: the first one counts
            literals.append(key)
        keys.append((key, alias))

    # Longest literal first, so that of two aliases matching at one place the longer one counts.
    # Literal branches carry no capture: a pattern whose branches all start with a literal
    # character lets the regex engine skip ahead to candidate positions.
    branches = [_literal_pattern(lit) for lit in sorted(literals, key=len, reverse=True)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FutureWarning "possible nested set" and the like
            pattern = re.compile("|".join(branches + regexes))
    except re.error as exc:
        raise ValueError(
            f"phrase group {group.name!r}: its regular expressions clash: {exc}"
        ) from None
    return _Group(group.name, pattern, tuple(keys), None if regexes else tuple(literals))


def _literal_pattern(folded: str) -> str:
    """A literal alias, whole-word at each end whose character is part of a space-delimited word.

    The check before the alias is a look-behind placed after it, so it runs only where the
    alias was found.
    """
    word = _word_char()
    escaped = re.escape(folded)
    before = f"(?<!{word}{escaped})" if re.fullmatch(word, folded[0]) else ""
    after = f"(?!{word})" if re.fullmatch(word, folded[-1]) else ""
    return escaped + before + after


@cache
def _word_char() -> str:
    """A pattern for one character of a word in a space-delimited script: letter, digit, mark."""
    cjk = re.compile(f"[{_SCRIPTIO_CONTINUA}]")
    ranges: list[list[int]] = []
    for code in (*range(0x300, 0x1F000), *range(0xE0100, 0xE01F0)):
        char = chr(code)
        if unicodedata.category(char)[0] != "M" or cjk.match(char):
            continue
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    marks = "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in ranges)
    # Python's \w has letters and digits but not the combining marks that continue a word
    # (the vowel signs of Devanagari, for one).
    return f"(?:[^\\W{_SCRIPTIO_CONTINUA}]|[{marks}])"


def _check_regex(group: str, alias: str) -> str:
    """Validate a ``re:`` alias and return it as a branch that keeps its flags to itself."""
    where = f"phrase group {group!r}: alias {alias!r}"
    source = alias[len(ALIAS_REGEX_PREFIX) :]
    if not source.strip():
        raise ValueError(f"{where} is an empty regular expression")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FutureWarning "possible nested set" and the like
        try:
            re.compile(source, re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"{where} is not a regular expression: {exc}") from None
        if _can_match_empty(source):
            raise ValueError(f"{where} can match the empty string")
    if _NUMBERED_GROUP_REF.search(source):
        raise ValueError(f"{where}: refer to groups by name, (?P<x>...)(?P=x), not by number")
    flags = "i"
    leading = _GLOBAL_FLAGS.match(source)
    if leading:  # global flags must lead the whole pattern: keep them to this alias instead
        flags += leading.group(1).replace("i", "")
        source = source[leading.end() :]
    newline = "\n" if "x" in flags else ""  # a verbose pattern may end in a comment
    return f"(?{flags}:{source}{newline})"


def _can_match_empty(source: str) -> bool:
    try:
        parser = importlib.import_module("re._parser")
        low = parser.parse(source, re.IGNORECASE).getwidth()[0]
        return bool(low == 0)
    except (ImportError, AttributeError):  # pragma: no cover - a future Python without re._parser
        compiled = re.compile(source, re.IGNORECASE)
        probes = ("", " ", "a", "a b", "0", "维")
        return any(m.end() == m.start() for p in probes for m in compiled.finditer(p))


def _fold_with_offsets(text: str) -> tuple[str, list[int], list[int]]:
    """`fold` of ``text``, with the start and end in ``text`` of each folded character."""
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pending_space = -1  # where the current whitespace run began, -1 outside a run
    for index, char in enumerate(text):
        if char.isspace():
            if pending_space < 0:
                pending_space = index
            continue
        if pending_space >= 0:
            if chars:  # whitespace at either end of the text folds away
                chars.append(" ")
                starts.append(pending_space)
                ends.append(index)
            pending_space = -1
        for folded in char.casefold():
            chars.append(folded)
            starts.append(index)
            ends.append(index + 1)
    return "".join(chars), starts, ends
