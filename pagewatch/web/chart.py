"""Each phrase group's count over time on one watch, as geometry for an SVG chart.

Pure: the watch's checks in, numbers and labels out; the template draws them. A capture is a
point; the count holds until the next capture, so the line is a step. Failed checks are marked
on the time axis, and blind periods (checks that met a bot wall or a login wall) are shaded:
the page may have changed then, unseen.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from pagewatch.health import BLOCKING_REASONS

WIDTH, HEIGHT = 760, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 14, 50  # margins around the plot
X_TICKS = 5


@dataclass(frozen=True)
class Sample:
    """One check of the watch as the chart reads it."""

    at: datetime
    outcome: str  # capture | failed | unusable | superseded | unconfirmed
    reason: str
    counts: Mapping[str, int]


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    at: datetime
    count: int


@dataclass(frozen=True)
class Tick:
    pos: float  # x for the time axis, y for the count axis
    label: str


@dataclass(frozen=True)
class Marker:
    """A failed check (``x``) or a blind period (``x`` to ``x2``) on the time axis."""

    x: float
    x2: float
    label: str


@dataclass(frozen=True)
class Chart:
    group: str
    points: tuple[Point, ...]
    path: str  # the step line through the points, in SVG path syntax (numbers only)
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    failures: tuple[Marker, ...]
    blind: tuple[Marker, ...]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    right: int = WIDTH - RIGHT
    bottom: int = HEIGHT - BOTTOM
    x_label: str = "capture time (UTC)"

    @property
    def y_label(self) -> str:
        return f"matches of {self.group!r}"


def charts(samples: Sequence[Sample], groups: Sequence[str]) -> tuple[Chart, ...]:
    """One chart per group, all on the same time axis (the span of every check)."""
    if not samples:
        return ()
    ordered = sorted(samples, key=lambda s: s.at)
    start, end = ordered[0].at, ordered[-1].at
    if end - start < timedelta(minutes=1):
        start, end = start - timedelta(hours=1), end + timedelta(hours=1)
    pad = (end - start) * 0.02  # points off the axes
    start, end = start - pad, end + pad
    span = (end - start).total_seconds()

    def x(at: datetime) -> float:
        return round(LEFT + (at - start).total_seconds() / span * (WIDTH - LEFT - RIGHT), 2)

    moments = [start + (end - start) * i / (X_TICKS - 1) for i in range(X_TICKS)]
    x_ticks = tuple(Tick(x(at), _time_label(at, end - start)) for at in moments)
    failures = tuple(
        Marker(x(s.at), x(s.at), f"{s.at:%Y-%m-%d %H:%M} UTC: {s.outcome} ({s.reason})")
        for s in ordered
        if s.outcome in ("failed", "unusable") and s.reason not in BLOCKING_REASONS
    )
    blind = tuple(
        Marker(x(first.at), max(x(until.at), x(first.at) + 3), label)
        for first, until, label in _blind_runs(ordered)
    )
    return tuple(_chart(group, ordered, x, x_ticks, failures, blind) for group in groups)


def _chart(
    group: str,
    ordered: Sequence[Sample],
    x: Callable[[datetime], float],
    x_ticks: tuple[Tick, ...],
    failures: tuple[Marker, ...],
    blind: tuple[Marker, ...],
) -> Chart:
    captures = [s for s in ordered if s.outcome == "capture" and group in s.counts]
    top_count = max([s.counts[group] for s in captures], default=0)
    step = _nice_step(top_count)
    y_max = max(step, math.ceil(top_count / step) * step)
    plot_height = HEIGHT - TOP - BOTTOM

    def y(count: float) -> float:
        return round(TOP + plot_height * (1 - count / y_max), 2)

    points = tuple(Point(x(s.at), y(s.counts[group]), s.at, s.counts[group]) for s in captures)
    path = ""
    if points:
        path = f"M{points[0].x},{points[0].y}" + "".join(f" H{p.x} V{p.y}" for p in points[1:])
    y_ticks = tuple(Tick(y(v), str(v)) for v in range(0, y_max + 1, step))
    return Chart(group, points, path, x_ticks, y_ticks, failures, blind)


def _nice_step(top: int) -> int:
    """An integer tick step giving at most about five ticks: 1, 2, 5, 10, 20, 50, ..."""
    rough = max(top / 4, 1)
    magnitude = 10 ** math.floor(math.log10(rough))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= rough:
            return int(factor * magnitude)
    return int(10 * magnitude)  # pragma: no cover - the loop always returns


def _time_label(at: datetime, span: timedelta) -> str:
    return f"{at:%Y-%m-%d}" if span >= timedelta(days=3) else f"{at:%m-%d %H:%M}"


def _blind_runs(ordered: Sequence[Sample]) -> list[tuple[Sample, Sample, str]]:
    """Runs of checks that met a stand-in page: from the first of a run to the check after it
    (or its last, when nothing came after)."""
    runs: list[tuple[Sample, Sample, str]] = []
    first: Sample | None = None
    last: Sample | None = None
    for sample in ordered:
        blocked = sample.reason in BLOCKING_REASONS
        if blocked:
            first = first or sample
            last = sample
        elif first is not None:
            runs.append((first, sample, _blind_label(first, sample)))
            first = None
    if first is not None and last is not None:
        runs.append((first, last, _blind_label(first, last)))
    return runs


def _blind_label(first: Sample, until: Sample) -> str:
    return f"blind {first.at:%Y-%m-%d %H:%M} to {until.at:%Y-%m-%d %H:%M} UTC ({first.reason})"
