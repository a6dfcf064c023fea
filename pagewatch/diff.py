"""Word-level diffs of two visible texts, and the removed passage in context.

diff-match-patch compares characters. Pages are compared by lines, then the lines that changed by
words: each distinct token (a line; a word, a run of whitespace, a punctuation mark, one CJK
character) is mapped to one character, those strings are diffed, and the result is mapped back,
the library's line-mode trick applied to words. Never character by character.
"""

from __future__ import annotations

import functools
import re
import sys
import time
import unicodedata
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import accumulate
from typing import NamedTuple

from pagewatch.models import Context, Span

DELETE, EQUAL, INSERT = -1, 0, 1
MAX_REMOVED = 600  # a removed passage up to this long is shown whole; longer ones around the match
ELLIPSIS = "…"

_MAX_TOKENS = sys.maxunicode  # distinct tokens that one character each can stand for (0 is unused)
_SYMBOLS = {DELETE: "-", EQUAL: "=", INSERT: "+"}
# Scripts written without spaces between words: every character is a token of its own.
_UNSPACED = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
    "\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3031-\u3035\u3038-\u303c"  # CJK radicals, marks
    "\u3040-\u31ff"  # kana, bopomofo, strokes
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"  # CJK ideographs
)
_UNSPACED_CHAR = re.compile(f"[{_UNSPACED}]")
_BLANK_LINES = re.compile(r"\n(?:[^\S\n]*\n){3,}")  # more than two blank lines


@functools.cache
def _token_pattern() -> re.Pattern[str]:
    # \w leaves out combining marks, which would cut Devanagari or Arabic words apart: add them.
    marks = [c for c in range(0x300, 0x10000) if unicodedata.category(chr(c)).startswith("M")]
    ranges = "".join(
        chr(first) if first == last else f"{chr(first)}-{chr(last)}" for first, last in _runs(marks)
    )
    return re.compile(rf"[{_UNSPACED}]|(?:[^\W{_UNSPACED}]|[{ranges}])+|\s+|.", re.DOTALL)


def _runs(codes: list[int]) -> Iterable[tuple[int, int]]:
    """Consecutive runs in ascending numbers, as (first, last)."""
    first = last = codes[0]
    for code in codes[1:]:
        if code != last + 1:
            yield first, last
            first = code
        last = code
    yield first, last


def word_diff(before: str, after: str, timeout: float = 2.0) -> list[tuple[int, str]]:
    """diff-match-patch diffs (op -1/0/1, text) at word granularity.

    ``timeout`` bounds the search in seconds; past it the rest is diffed coarsely (still a correct
    diff), and 0 or less allows no search beyond the cheap speed-ups.
    """
    return _Differ(timeout).diff(before, after)


class _Differ:
    """One diff: lines first, then the words of the lines that changed (diff-match-patch's line
    mode, with words where it uses characters), under one deadline that notes when it cut in."""

    def __init__(self, timeout: float) -> None:
        from diff_match_patch import diff_match_patch  # only a change needs it, not every start

        self.dmp = diff_match_patch()
        self.dmp.Diff_Timeout = max(timeout, 1e-9)  # positive: keeps the half-match speed-up
        self.deadline = time.time() + timeout if timeout > 0 else 0.0
        self.timed_out = False
        self._bisect = self.dmp.diff_bisect
        self.dmp.diff_bisect = self._bisect_noting_timeout
        # The semantic clean-up runs on tokens so that every edit stays whole words: on characters
        # its merge step would factor "U[-y-]{+i+}ghur" out of "Uyghur" -> "Uighur". Its lossless
        # step slides edits to line and word boundaries: it needs the text, and runs at the end.
        self._lossless = self.dmp.diff_cleanupSemanticLossless
        self.dmp.diff_cleanupSemanticLossless = lambda diffs: None

    def diff(self, before: str, after: str) -> list[tuple[int, str]]:
        diffs: list[tuple[int, str]] = []
        deleted = inserted = ""
        lines = self._tokens(*self.dmp.diff_linesToChars(before, after))
        for op, text in [*lines, (EQUAL, "")]:
            if op == DELETE:
                deleted += text
            elif op == INSERT:
                inserted += text
            else:
                if deleted and inserted:
                    diffs += self._words(deleted, inserted)
                else:
                    diffs += [(DELETE, deleted), (INSERT, inserted)]
                diffs.append((EQUAL, text))
                deleted = inserted = ""
        merged: list[tuple[int, str]] = []
        for op, text in diffs:
            if merged and merged[-1][0] == op:
                merged[-1] = (op, merged[-1][1] + text)
            elif text:
                merged.append((op, text))
        self._lossless(merged)
        return merged

    def _words(self, before: str, after: str) -> list[tuple[int, str]]:
        if time.time() > self.deadline:  # no time left to look closer than lines
            self.timed_out = True
            return [(DELETE, before), (INSERT, after)]
        encoded = _encode(before, after)
        if encoded is None:  # more distinct words than characters: keep the lines
            return [(DELETE, before), (INSERT, after)]
        return self._tokens(*encoded)

    def _tokens(self, chars1: str, chars2: str, tokens: list[str]) -> list[tuple[int, str]]:
        """Diff two texts given as one character per token (``tokens[ord(char)]``)."""
        diffs: list[tuple[int, str]] = self.dmp.diff_main(chars1, chars2, False, self.deadline)
        self.dmp.diff_cleanupSemantic(diffs)
        return [(op, "".join(map(tokens.__getitem__, map(ord, text)))) for op, text in diffs]

    def _bisect_noting_timeout(
        self, text1: str, text2: str, deadline: float
    ) -> list[tuple[int, str]]:
        diffs: list[tuple[int, str]] = self._bisect(text1, text2, deadline)
        if time.time() > deadline and diffs == [(DELETE, text1), (INSERT, text2)]:
            self.timed_out = True  # gave up: the whole stretch reads as deleted and reinserted
        return diffs


def _encode(before: str, after: str) -> tuple[str, str, list[str]] | None:
    """Both texts as one character per token, and the tokens; None if there are too many."""
    pattern = _token_pattern()
    tokens1, tokens2 = pattern.findall(before), pattern.findall(after)
    codes = {token: code for code, token in enumerate(dict.fromkeys(tokens1 + tokens2), 1)}
    if len(codes) > _MAX_TOKENS:
        return None
    chars1 = "".join(map(chr, map(codes.__getitem__, tokens1)))
    chars2 = "".join(map(chr, map(codes.__getitem__, tokens2)))
    return chars1, chars2, ["", *codes]


class _Op(NamedTuple):
    op: int
    text: str
    at: int  # offset in the before text (where an insertion goes)


class _Block(NamedTuple):
    """Edits between two equalities: before[start:end] went, after[new_start:new_end] came."""

    start: int
    end: int
    new_start: int
    new_end: int


def removal_context(
    before: str,
    after: str,
    spans_before: Sequence[Span],
    spans_after: Sequence[Span],
    width: int = 160,
    timeout: float = 2.0,
) -> Context | None:
    """The passage around the occurrence that went, as diff segments; None without any match.

    The occurrence is a match in ``before`` that overlaps a deletion, preferring one that did not
    reappear in the text that replaced it and whose alias fell the most. When no match overlaps a
    deletion (or the diff ran out of time) the first match of the alias that fell the most is shown
    with its surroundings and the context is marked approximate.
    """
    if not spans_before:
        return None
    falls = Counter(span.alias for span in spans_before)
    falls.subtract(span.alias for span in spans_after)
    differ = _Differ(timeout)
    ops, blocks = _index(differ.diff(before, after))
    found = _removed(before, ops, blocks, spans_before, spans_after, falls)
    if found is None or differ.timed_out:
        return _approximate(before, spans_before, falls, width)
    span, start, end = found
    return Context(span.alias, _segments(before, ops, span, start, end, width))


def _index(diffs: list[tuple[int, str]]) -> tuple[list[_Op], list[_Block]]:
    """Diffs with their offsets in the before text, and the blocks of edits that delete text."""
    ops: list[_Op] = []
    blocks: list[_Block] = []
    at = new_at = 0
    block: _Block | None = None
    for op, text in diffs:
        ops.append(_Op(op, text, at))
        if op == EQUAL:
            if block is not None and block.end > block.start:
                blocks.append(block)
            block = None
        elif block is None:
            block = _Block(at, at, new_at, new_at)
        if op != INSERT:
            at += len(text)
        if op != DELETE:
            new_at += len(text)
        if block is not None:
            block = _Block(block.start, at, block.new_start, new_at)
    if block is not None and block.end > block.start:
        blocks.append(block)
    return ops, blocks


def _removed(
    before: str,
    ops: list[_Op],
    blocks: list[_Block],
    spans_before: Sequence[Span],
    spans_after: Sequence[Span],
    falls: Counter[str],
) -> tuple[Span, int, int] | None:
    """The match that went and the deleted stretch before[start:end] it overlaps, if any does."""
    block_ends = [block.end for block in blocks]
    block_starts = [block.start for block in blocks]
    after_spans = sorted(spans_after, key=lambda span: span.start)
    after_starts = [span.start for span in after_spans]
    after_reach = list(accumulate((span.end for span in after_spans), max))

    def matched_after(start: int, end: int) -> bool:
        i = bisect_left(after_starts, end) - 1
        return end > start and i >= 0 and after_reach[i] > start

    candidates = []
    for span in spans_before:
        first = bisect_right(block_ends, span.start)
        last = bisect_left(block_starts, max(span.end, span.start + 1))
        if first < last:
            hit = blocks[first:last]
            # Replaced by a match, e.g. another spelling of the group: not what went.
            replaced = any(matched_after(b.new_start, b.new_end) for b in hit)
            candidates.append((replaced, -falls[span.alias], span.start, span, hit))
    if not candidates:
        return None
    candidates.sort(key=lambda c: c[:3])
    inserted = "".join(op.text for op in ops if op.op == INSERT)
    for replaced, _, _, span, hit in candidates:
        deleted = before[hit[0].start : hit[-1].end].strip()
        if not replaced and deleted not in inserted:  # not moved elsewhere either
            return span, hit[0].start, hit[-1].end
    _, _, _, span, hit = candidates[0]
    return span, hit[0].start, hit[-1].end


def _segments(
    before: str, ops: list[_Op], span: Span, start: int, end: int, width: int
) -> tuple[tuple[str, str], ...]:
    """Segments showing before[start:end], the deleted stretch, with ``width`` around it."""
    length = len(before)
    left = _cut_start(before, max(0, start - width), start)
    right = _cut_end(before, min(length, end + width), end)
    if end - start <= MAX_REMOVED:
        ranges = [(left, right)]
        shown_start, shown_end = start, end
    else:  # a long deletion: the part around the match
        shown_start, shown_end = _around(before, span, start, end)
        ranges = [(left, start), (shown_start, shown_end), (end, right)]

    def visible(at: int) -> bool:  # an insertion's place
        return (
            at in (start, end)
            or any(lo < at < hi for lo, hi in ranges)
            or at == left == 0
            or at == right == length
        )

    pieces: list[tuple[int, str]] = []
    for op in _overlapping(ops, left, right):
        if op.op != INSERT:
            for lo, hi in ranges:
                lo, hi = max(lo, op.at), min(hi, op.at + len(op.text))
                if lo < hi:
                    text = before[lo:hi]
                    if lo == shown_start > start:
                        text = ELLIPSIS + text
                    if hi == shown_end < end:
                        text += ELLIPSIS
                    pieces.append((op.op, text))
        elif visible(op.at):
            limit = MAX_REMOVED if start <= op.at <= end else width
            text = _tail(op.text, limit) if op.at < start else _head(op.text, limit)
            pieces.append((op.op, text))
    if left > 0:  # cut short: "…" on the unchanged text it cuts, or on its own
        if pieces[0][0] == EQUAL:
            pieces[0] = (EQUAL, ELLIPSIS + pieces[0][1])
        else:
            pieces.insert(0, (EQUAL, ELLIPSIS))
    if right < length:
        if pieces[-1][0] == EQUAL:
            pieces[-1] = (EQUAL, pieces[-1][1] + ELLIPSIS)
        else:
            pieces.append((EQUAL, ELLIPSIS))
    return tuple((_SYMBOLS[op], _BLANK_LINES.sub("\n\n\n", text)) for op, text in pieces)


def _overlapping(ops: list[_Op], left: int, right: int) -> Iterable[_Op]:
    """The diff ops that touch before[left:right], insertions at its edges included."""
    first = max(bisect_left([op.at for op in ops], left) - 1, 0)
    for op in ops[first:]:
        if op.at > right:
            break
        if op.at + (0 if op.op == INSERT else len(op.text)) >= left:
            yield op


def _around(before: str, span: Span, start: int, end: int) -> tuple[int, int]:
    """About MAX_REMOVED characters of before[start:end] around the match, cut between words."""
    match_start = max(span.start, start)
    match_end = min(span.end, end, match_start + MAX_REMOVED)
    room = MAX_REMOVED - (match_end - match_start)
    lo = max(start, match_start - room // 2)
    hi = min(end, match_end + room - (match_start - lo))
    lo = max(start, min(lo, match_start - (room - (hi - match_end))))
    return _cut_start(before, lo, match_start), _cut_end(before, hi, match_end)


def _approximate(
    before: str, spans_before: Sequence[Span], falls: Counter[str], width: int
) -> Context:
    """The first match of the alias that fell the most, with ``width`` around it."""
    firsts: dict[str, Span] = {}
    for span in sorted(spans_before, key=lambda span: span.start):
        firsts.setdefault(span.alias, span)
    span = max(firsts.values(), key=lambda span: (falls[span.alias], -span.start))
    left = _cut_start(before, max(0, span.start - width), span.start)
    right = _cut_end(before, min(len(before), span.end + width), span.end)
    pieces = [
        ("=", (ELLIPSIS if left > 0 else "") + before[left : span.start]),
        ("-", before[span.start : span.end]),
        ("=", before[span.end : right] + (ELLIPSIS if right < len(before) else "")),
    ]
    segments = tuple((op, _BLANK_LINES.sub("\n\n\n", text)) for op, text in pieces if text)
    return Context(span.alias, segments, approximate=True)


def _head(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: _cut_end(text, limit, 0) or limit] + ELLIPSIS


def _tail(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    start = _cut_start(text, len(text) - limit, len(text))
    return ELLIPSIS + text[start if start < len(text) else len(text) - limit :]


def _cut_start(text: str, pos: int, limit: int) -> int:
    """Where a passage ending at ``limit`` may start, at or after ``pos``: a word's first letter."""
    if pos <= 0:
        return 0
    while pos < limit and not _at_boundary(text, pos):
        pos += 1
    while pos < limit and text[pos].isspace():
        pos += 1
    return pos


def _cut_end(text: str, pos: int, limit: int) -> int:
    """Where a passage starting at ``limit`` may end, at or before ``pos``: after a word."""
    if pos >= len(text):
        return len(text)
    while pos > limit and not _at_boundary(text, pos):
        pos -= 1
    while pos > limit and text[pos - 1].isspace():
        pos -= 1
    return pos


def _at_boundary(text: str, pos: int) -> bool:
    return not (_in_word(text[pos - 1]) and _in_word(text[pos]))


def _in_word(char: str) -> bool:
    if _UNSPACED_CHAR.match(char):
        return False
    return char.isalnum() or char == "_" or unicodedata.category(char).startswith("M")
