"""Golden page histories: each file under fixtures/histories/ is a page's life, step by step,
and the exact alerts it must raise. Replayed over real HTTP on 127.0.0.1, with a set clock."""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pagewatch.cli import cli
from pagewatch.replay import Page, ReplayServer
from pagewatch.store import Store, iso
from pagewatch.workspace import check_pass, redetect_watches, select_watches

HISTORIES = sorted((Path(__file__).parent / "fixtures" / "histories").glob("*.toml"))
PATH = "/docs/page"


def step_pages(step: dict[str, Any]) -> dict[str, Page]:
    """The pages the server serves during one step."""
    status = step.get("status", 200)
    charset = step.get("charset", "utf-8")
    content_type = step.get("content_type", f"text/html; charset={charset}")
    body = step.get("body", "").encode(charset)
    if "redirect_to" in step:
        return {
            PATH: Page.redirect(step["redirect_to"], step.get("redirect_status", 301)),
            step["redirect_to"]: Page(body, status, {"Content-Type": content_type}),
        }
    return {PATH: Page(body, status, {"Content-Type": content_type})}


def replay(history: dict[str, Any], root: Path, server: ReplayServer, clock: Any) -> list[Any]:
    """Run every step's check; return each step's capture time."""
    watch = history.get("watch", {})
    lines = ['every = "1h"', "[phrases]"]
    lines += [f"{name} = {json.dumps(aliases)}" for name, aliases in history["phrases"].items()]
    lines += ["[[watch]]", f'url = "{server.url(PATH)}"']
    if "selector" in watch:
        lines.append(f"selector = {json.dumps(watch['selector'])}")
    (root / "watchlists" / "golden.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    times = []
    store = Store(root)
    try:
        for step in history["step"]:
            server.replace(step_pages(step))
            if "phrases" in step:  # an analyst edits the watchlist between checks
                text = (root / "watchlists" / "golden.toml").read_text(encoding="utf-8")
                for name, aliases in step["phrases"].items():
                    old = f"{name} = {json.dumps(history['phrases'][name])}"
                    text = text.replace(old, f"{name} = {json.dumps(aliases)}")
                (root / "watchlists" / "golden.toml").write_text(text, encoding="utf-8")
            clock.advance(hours=1)
            times.append(clock())
            asyncio.run(check_pass(store, select_watches(root), now=clock, confirm_delay=0))
    finally:
        store.close()
    return times


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
def test_history(path: Path, root: Path, server: ReplayServer, clock: Any) -> None:
    history = tomllib.loads(path.read_text(encoding="utf-8"))
    times = replay(history, root, server, clock)

    result = CliRunner().invoke(
        cli, ["--workspace", str(root), "alerts", "--json", "--status", "all"]
    )
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)

    expected = history.get("expect", [])
    assert [(a["kind"], a["group"]) for a in got] == [(e["kind"], e["group"]) for e in expected]
    for alert, exp in zip(got, expected, strict=True):
        before, after = exp["between"]
        assert alert["last_seen_at"] == iso(times[before - 1])
        assert alert["first_missing_at"] == iso(times[after - 1])
        assert alert["count_before"] == exp["count_before"]
        assert alert["count_after"] == exp["count_after"]
        assert alert["url"] == server.url(PATH)
        if "alias" in exp:
            assert alert["alias"] == exp["alias"]
        for piece in exp.get("removed", []):
            removed = "".join(t for op, t in alert["context_segments"] if op == "-")
            assert piece in removed, alert["context"]
        if "context" in exp:
            assert exp["context"] in alert["context"]

    if "checks" in history:  # the outcome of every step, as `history --json` reports it
        result = CliRunner().invoke(
            cli, ["--workspace", str(root), "history", "--json", server.url(PATH)]
        )
        assert result.exit_code == 0, result.output
        outcomes = [(h["outcome"], h["status"]) for h in json.loads(result.stdout)]
        assert outcomes == [tuple(c) for c in history["checks"]]


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
def test_history_decided_again_as_a_whole(
    path: Path, root: Path, server: ReplayServer, clock: Any
) -> None:
    """Re-detection over the whole timeline (what import and backfill run) agrees with the
    check-by-check decisions: the same alerts, the same outcomes, nothing added or moved."""
    history = tomllib.loads(path.read_text(encoding="utf-8"))
    replay(history, root, server, clock)
    if any("phrases" in step for step in history["step"]):
        pytest.skip("live checks decided under earlier phrases; re-detection uses today's")
    store = Store(root)
    try:
        before_alerts = store.alerts(status="all")
        before_checks = store.checks(store.watch_id(server.url(PATH)))
        [result] = asyncio.run(redetect_watches(store, select_watches(root), now=clock))
        assert (result.added, result.moved, result.stale) == ((), (), ())
        assert store.alerts(status="all") == before_alerts
        assert store.checks(store.watch_id(server.url(PATH))) == before_checks
    finally:
        store.close()


def test_every_history_has_a_step_per_capture_time() -> None:
    """Guard the harness: a fixture whose expectation names a step that does not exist is broken."""
    for path in HISTORIES:
        history = tomllib.loads(path.read_text(encoding="utf-8"))
        assert set(history) <= {"phrases", "watch", "step", "expect", "checks"}, path.name
        for exp in history.get("expect", []):
            assert set(exp) <= {"kind", "group", "alias", "count_before", "count_after",
                                "between", "removed", "context"}, path.name  # fmt: skip
            assert 1 <= exp["between"][0] < exp["between"][1] <= len(history["step"]), path.name
    assert len(HISTORIES) >= 15
