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
from typing import Any

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
    ranges = _mark_ranges()
    # Literal characters, not \U escapes: the class is parsed each time a group is compiled.
    marks = "".join(chr(low) if low == high else f"{chr(low)}-{chr(high)}" for low, high in ranges)
    # Python's \w has letters and digits but not the combining marks that continue a word
    # (the vowel signs of Devanagari, for one).
    return f"(?:[^\\W{_SCRIPTIO_CONTINUA}]|[{marks}])"


def _mark_ranges() -> list[tuple[int, int]]:
    """The combining marks (category M) outside the scripts written without spaces, as ranges:
    from the table below when this Python's Unicode is the table's, else computed (walking
    every code point takes a tenth of a second, at every start)."""
    if unicodedata.unidata_version != _MARKS_UNICODE:
        return compute_mark_ranges()
    return [
        (int(low, 16), int(high or low, 16))
        for low, _, high in (pair.partition("-") for pair in _MARKS.split())
    ]


def compute_mark_ranges() -> list[tuple[int, int]]:
    cjk = re.compile(f"[{_SCRIPTIO_CONTINUA}]")
    ranges: list[tuple[int, int]] = []
    for code in (*range(0x300, 0x1F000), *range(0xE0100, 0xE01F0)):
        char = chr(code)
        if unicodedata.category(char)[0] != "M" or cjk.match(char):
            continue
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return ranges


#: `compute_mark_ranges` under Unicode {_MARKS_UNICODE} (hexadecimal; tests/test_match.py
#: checks it against the computation, and prints the table anew if it differs)
_MARKS_UNICODE = "14.0.0"
_MARKS = (
    "300-36f 483-489 591-5bd 5bf 5c1-5c2 5c4-5c5 5c7 610-61a 64b-65f 670 6d6-6dc 6df-6e4 6e7-6e8 "
    "6ea-6ed 711 730-74a 7a6-7b0 7eb-7f3 7fd 816-819 81b-823 825-827 829-82d 859-85b 898-89f "
    "8ca-8e1 8e3-903 93a-93c 93e-94f 951-957 962-963 981-983 9bc 9be-9c4 9c7-9c8 9cb-9cd 9d7 "
    "9e2-9e3 9fe a01-a03 a3c a3e-a42 a47-a48 a4b-a4d a51 a70-a71 a75 a81-a83 abc abe-ac5 ac7-ac9 "
    "acb-acd ae2-ae3 afa-aff b01-b03 b3c b3e-b44 b47-b48 b4b-b4d b55-b57 b62-b63 b82 bbe-bc2 "
    "bc6-bc8 bca-bcd bd7 c00-c04 c3c c3e-c44 c46-c48 c4a-c4d c55-c56 c62-c63 c81-c83 cbc cbe-cc4 "
    "cc6-cc8 cca-ccd cd5-cd6 ce2-ce3 d00-d03 d3b-d3c d3e-d44 d46-d48 d4a-d4d d57 d62-d63 d81-d83 "
    "dca dcf-dd4 dd6 dd8-ddf df2-df3 f18-f19 f35 f37 f39 f3e-f3f f71-f84 f86-f87 f8d-f97 f99-fbc "
    "fc6 135d-135f 1712-1715 1732-1734 1752-1753 1772-1773 180b-180d 180f 1885-1886 18a9 "
    "1920-192b 1930-193b 1a17-1a1b 1a55-1a5e 1a60-1a7c 1a7f 1ab0-1ace 1b00-1b04 1b34-1b44 "
    "1b6b-1b73 1b80-1b82 1ba1-1bad 1be6-1bf3 1c24-1c37 1cd0-1cd2 1cd4-1ce8 1ced 1cf4 1cf7-1cf9 "
    "1dc0-1dff 20d0-20f0 2cef-2cf1 2d7f 2de0-2dff 302a-302f a66f-a672 a674-a67d a69e-a69f "
    "a6f0-a6f1 a802 a806 a80b a823-a827 a82c a880-a881 a8b4-a8c5 a8e0-a8f1 a8ff a926-a92d "
    "a947-a953 a980-a983 a9b3-a9c0 aa29-aa36 aa43 aa4c-aa4d aab0 aab2-aab4 aab7-aab8 aabe-aabf "
    "aac1 aaeb-aaef aaf5-aaf6 abe3-abea abec-abed fb1e fe00-fe0f fe20-fe2f 101fd 102e0 "
    "10376-1037a 10a01-10a03 10a05-10a06 10a0c-10a0f 10a38-10a3a 10a3f 10ae5-10ae6 10d24-10d27 "
    "10eab-10eac 10f46-10f50 10f82-10f85 11000-11002 11038-11046 11070 11073-11074 1107f-11082 "
    "110b0-110ba 110c2 11100-11102 11127-11134 11145-11146 11173 11180-11182 111b3-111c0 "
    "111c9-111cc 111ce-111cf 1122c-11237 1123e 112df-112ea 11300-11303 1133b-1133c 1133e-11344 "
    "11347-11348 1134b-1134d 11357 11362-11363 11366-1136c 11370-11374 11435-11446 1145e "
    "114b0-114c3 115af-115b5 115b8-115c0 115dc-115dd 11630-11640 116ab-116b7 1171d-1172b "
    "1182c-1183a 11930-11935 11937-11938 1193b-1193e 11940 11942-11943 119d1-119d7 119da-119e0 "
    "119e4 11a01-11a0a 11a33-11a39 11a3b-11a3e 11a47 11a51-11a5b 11a8a-11a99 11c2f-11c36 "
    "11c38-11c3f 11c92-11ca7 11ca9-11cb6 11d31-11d36 11d3a 11d3c-11d3d 11d3f-11d45 11d47 "
    "11d8a-11d8e 11d90-11d91 11d93-11d97 11ef3-11ef6 16af0-16af4 16b30-16b36 16f4f 16f51-16f87 "
    "16f8f-16f92 16fe4 16ff0-16ff1 1bc9d-1bc9e 1cf00-1cf2d 1cf30-1cf46 1d165-1d169 1d16d-1d172 "
    "1d17b-1d182 1d185-1d18b 1d1aa-1d1ad 1d242-1d244 1da00-1da36 1da3b-1da6c 1da75 1da84 "
    "1da9b-1da9f 1daa1-1daaf 1e000-1e006 1e008-1e018 1e01b-1e021 1e023-1e024 1e026-1e02a "
    "1e130-1e136 1e2ae 1e2ec-1e2ef 1e8d0-1e8d6 1e944-1e94a e0100-e01ef "
)


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
        if _nests_unbounded_repeats(source):
            raise ValueError(
                f"{where} repeats a repetition without bound, as (a+)+ does: on some pages that"
                " takes exponential time and stalls the pass; bound the outer one ({0,5}), or"
                " make the inner one possessive (a++) or atomic (?>a+)"
            )
    if _NUMBERED_GROUP_REF.search(source):
        raise ValueError(f"{where}: refer to groups by name, (?P<x>...)(?P=x), not by number")
    flags = "i"
    leading = _GLOBAL_FLAGS.match(source)
    if leading:  # global flags must lead the whole pattern: keep them to this alias instead
        flags += leading.group(1).replace("i", "")
        source = source[leading.end() :]
    newline = "\n" if "x" in flags else ""  # a verbose pattern may end in a comment
    return f"(?{flags}:{source}{newline})"


def _nests_unbounded_repeats(source: str) -> bool:
    """Does the pattern repeat without bound something that itself repeats without bound? The
    regex engine backtracks through every way to split a text between the two (catastrophic
    backtracking), and holds the GIL meanwhile. Possessive and atomic parts do not backtrack."""
    try:
        parser = importlib.import_module("re._parser")
        names = importlib.import_module("re._constants")
    except ImportError:  # pragma: no cover - a future Python without re._parser
        return False
    repeats = (names.MAX_REPEAT, names.MIN_REPEAT)

    def nested(items: Any, inside: bool) -> bool:
        for op, value in items:
            deeper = inside
            if op in repeats:
                unbounded = value[1] == names.MAXREPEAT
                if unbounded and inside:
                    return True
                children, deeper = [value[2]], inside or unbounded
            elif op == names.SUBPATTERN:
                children = [value[3]]
            elif op == names.BRANCH:
                children = value[1]
            elif op in (names.ASSERT, names.ASSERT_NOT):
                children = [value[1]]
            else:  # a literal, a class; or atomic and possessive parts, which never backtrack
                continue
            if any(nested(child.data, deeper) for child in children):
                return True
        return False

    return nested(parser.parse(source, re.IGNORECASE).data, False)


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
