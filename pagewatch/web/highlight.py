"""Texts marked for reading: diff segments and flagged phrases as pieces, and two visible texts
side by side with their changed regions aligned. Pure: texts and spans in, pieces out.

The diff is pagewatch's own word diff (`pagewatch.diff.word_diff`); the flagged phrases are the
spans `pagewatch.match.spans` finds. Nothing here builds markup: templates render the pieces.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import zip_longest

from pagewatch.diff import DELETE, EQUAL, INSERT, word_diff
from pagewatch.models import Span

#: unchanged rows kept visible on each side of a change; longer unchanged runs are folded
CONTEXT_ROWS = 3
_SYMBOLS = {DELETE: "-", EQUAL: "=", INSERT: "+"}


@dataclass(frozen=True)
class Piece:
    """A run of text with one diff op ("=", "-" removed, "+" inserted) and, when it is a match
    of a flagged phrase, the name of the phrase group."""

    op: str
    text: str
    group: str = ""


@dataclass(frozen=True)
class Row:
    """One line of each text, side by side; a side is None where the other text has more lines."""

    left: tuple[Piece, ...] | None
    right: tuple[Piece, ...] | None
    left_no: int | None
    right_no: int | None
    changed: bool


@dataclass(frozen=True)
class Block:
    """Consecutive rows shown together; ``folded`` is a long unchanged stretch shown collapsed."""

    rows: tuple[Row, ...]
    changed: bool
    folded: bool = False


@dataclass(frozen=True)
class Flagged:
    """Where flagged phrases are in one text: non-overlapping (start, end, group), sorted."""

    intervals: tuple[tuple[int, int, str], ...]

    @classmethod
    def of(cls, spans: Mapping[str, Sequence[Span]]) -> Flagged:
        """From each group's spans; where two groups' matches overlap, the earlier one wins."""
        ordered = sorted(
            (span.start, span.end, group) for group, found in spans.items() for span in found
        )
        intervals = []
        reach = 0
        for start, end, group in ordered:
            start = max(start, reach)
            if start < end:
                intervals.append((start, end, group))
                reach = end
        return cls(tuple(intervals))

    def pieces(self, op: str, text: str, at: int) -> list[Piece]:
        """``text``, found at offset ``at`` of the text these intervals are in, cut at matches."""
        end = at + len(text)
        out: list[Piece] = []
        pos = at
        starts = [start for start, _, _ in self.intervals]
        index = max(bisect_right(starts, at) - 1, 0)
        for start, stop, group in self.intervals[index:]:
            if start >= end:
                break
            if stop <= pos:
                continue
            start, stop = max(start, pos), min(stop, end)
            if start > pos:
                out.append(Piece(op, text[pos - at : start - at]))
            out.append(Piece(op, text[start - at : stop - at], group))
            pos = stop
        if pos < end:
            out.append(Piece(op, text[pos - at :]))
        return out


NOTHING_FLAGGED = Flagged(())


def passage(
    segments: Iterable[tuple[str, str]], before: Flagged, after: Flagged
) -> tuple[Piece, ...]:
    """An alert's context segments (op, text) as pieces with flagged phrases cut out.

    ``before`` holds the matches in the passage as it read before (its "=" and "-" segments
    joined), ``after`` in the passage as it reads after ("=" and "+" joined).
    """
    out: list[Piece] = []
    at_before = at_after = 0
    for op, text in segments:
        if op == "+":
            out += after.pieces(op, text, at_after)
        else:
            out += before.pieces(op, text, at_before)
        if op != "+":
            at_before += len(text)
        if op != "-":
            at_after += len(text)
    return tuple(out)


def passage_texts(segments: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """The passage as it read before and as it reads after: what `passage` wants matched."""
    pairs = list(segments)
    before = "".join(text for op, text in pairs if op != "+")
    after = "".join(text for op, text in pairs if op != "-")
    return before, after


class _Side:
    """Lines of one text being built piece by piece."""

    def __init__(self, flagged: Flagged):
        self.flagged = flagged
        self.at = 0
        self.line: list[Piece] = []
        self.done: list[tuple[Piece, ...]] = []

    def add(self, op: str, text: str) -> None:
        lines = text.split("\n")
        for index, part in enumerate(lines):
            if part:
                self.line += self.flagged.pieces(op, part, self.at)
            self.at += len(part)
            if index < len(lines) - 1:
                self.end_line()
                self.at += 1

    def end_line(self) -> None:
        self.done.append(tuple(self.line))
        self.line = []


def side_by_side(
    before: str,
    after: str,
    flagged_before: Flagged = NOTHING_FLAGGED,
    flagged_after: Flagged = NOTHING_FLAGGED,
    *,
    timeout: float = 2.0,
    context: int = CONTEXT_ROWS,
) -> tuple[Block, ...]:
    """The two texts line by line, changed lines aligned between the unchanged ones around them.

    Lines between two line breaks the texts share are paired top to bottom, the shorter side
    padded; long unchanged stretches are folded but for ``context`` rows next to a change.
    """
    left, right = _Side(flagged_before), _Side(flagged_after)
    rows: list[Row] = []
    numbers = [0, 0]

    def flush() -> None:
        for old, new in _pair(left.done, right.done):
            changed = old is None or new is None or any(p.op != "=" for p in (*old, *new))
            if old is not None:
                numbers[0] += 1
            if new is not None:
                numbers[1] += 1
            rows.append(
                Row(
                    old,
                    new,
                    numbers[0] if old is not None else None,
                    numbers[1] if new is not None else None,
                    changed,
                )
            )
        left.done, right.done = [], []

    for code, text in word_diff(before, after, timeout):
        op = _SYMBOLS[code]
        if op == "-":
            left.add(op, text)
        elif op == "+":
            right.add(op, text)
        else:
            lines = text.split("\n")
            for index, part in enumerate(lines):
                left.add(op, part)
                right.add(op, part)
                if index < len(lines) - 1:  # a line break both texts share: a point to align at
                    left.end_line()
                    right.end_line()
                    left.at += 1
                    right.at += 1
                    flush()
    for side in (left, right):
        if side.line:  # the last line, when it has no line break after it
            side.end_line()
    flush()
    return _blocks(rows, context)


Line = tuple[Piece, ...]


def _pair(left: Sequence[Line], right: Sequence[Line]) -> Iterable[tuple[Line | None, Line | None]]:
    """Lines between two shared line breaks, paired: first lines together when both begin with
    shared text, last lines together when both end with it, the rest top to bottom."""
    if len(left) == len(right) or not left or not right:
        yield from zip_longest(left, right)
        return
    first = 1 if _shared(left[0][:1]) and _shared(right[0][:1]) else 0
    room = min(len(left), len(right)) > first  # a line of each side left to pair at the end
    last = 1 if room and _shared(left[-1][-1:]) and _shared(right[-1][-1:]) else 0
    if first:
        yield left[0], right[0]
    yield from zip_longest(left[first : len(left) - last], right[first : len(right) - last])
    if last:
        yield left[-1], right[-1]


def _shared(pieces: Sequence[Piece]) -> bool:
    return bool(pieces) and pieces[0].op == "=" and bool(pieces[0].text.strip())


def _blocks(rows: Sequence[Row], context: int) -> tuple[Block, ...]:
    """Runs of changed and unchanged rows; an unchanged run is folded but for its edges."""
    runs: list[tuple[bool, list[Row]]] = []
    for row in rows:
        if runs and runs[-1][0] == row.changed:
            runs[-1][1].append(row)
        else:
            runs.append((row.changed, [row]))
    blocks: list[Block] = []
    for index, (changed, run) in enumerate(runs):
        head = context if index > 0 else 0  # rows kept after the change before this run
        tail = context if index < len(runs) - 1 else 0  # rows kept before the next change
        if changed or len(run) <= head + tail + 2:
            blocks.append(Block(tuple(run), changed))
            continue
        if head:
            blocks.append(Block(tuple(run[:head]), False))
        blocks.append(Block(tuple(run[head : len(run) - tail]), False, folded=True))
        if tail:
            blocks.append(Block(tuple(run[len(run) - tail :]), False))
    return tuple(blocks)
