from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pagewatch.replay import ReplayServer
from pagewatch.store import Store
from pagewatch.workspace import init


class Clock:
    """A settable clock: `now` passed into the pipeline instead of the wall clock."""

    def __init__(self, start: datetime = datetime(2020, 11, 2, 9, 0, tzinfo=UTC)):
        self.at = start

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as running:
        yield running


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    init(tmp_path)
    return tmp_path


@pytest.fixture
def store(root: Path) -> Iterator[Store]:
    opened = Store(root)
    yield opened
    opened.close()


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll ``condition`` until it holds (for tests that watch a real process work)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")
