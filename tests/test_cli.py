"""The command line contract (DESIGN.md): commands, JSON fields, exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pagewatch.cli import cli
from pagewatch.replay import Page, ReplayServer

CONTRACT_FIELDS = {
    "id", "url", "list", "group", "alias", "kind", "count_before", "count_after",
    "last_seen_at", "first_missing_at", "snapshot_before", "snapshot_after", "context", "status",
}  # fmt: skip

BEFORE = (
    "<html><body><main><p>Attributes: glasses, smile.</p>"
    "<p>Is it Uyghur: boolean.</p></main></body></html>"
)
AFTER = "<html><body><main><p>Attributes: glasses, smile.</p></main></body></html>"


def pw(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--workspace", str(root), *args])


@pytest.fixture
def removal(tmp_path: Path, server: ReplayServer) -> tuple[Path, str]:
    """A workspace whose one watch lost "Is it Uyghur" between two checks."""
    url = server.url("/guide")
    assert pw(tmp_path, "init").exit_code == 0
    added = pw(
        tmp_path,
        "add",
        url,
        "--list",
        "vendors",
        "--phrase",
        "uyghur=Uyghur,Uighur",
        "--every",
        "1h",
    )
    assert added.exit_code == 0, added.output
    server.set("/guide", Page.html(BEFORE))
    assert pw(tmp_path, "check").exit_code == 0
    server.set("/guide", Page.html(AFTER))
    checked = pw(tmp_path, "check", "--confirm-delay", "0")
    assert checked.exit_code == 0, checked.output
    assert checked.stdout.splitlines()[0] == "checked 1, changed 1, failed 0, new alerts 1"
    return tmp_path, url


def test_init_is_idempotent(tmp_path: Path) -> None:
    first = pw(tmp_path, "init")
    second = pw(tmp_path, "init")
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert second.stdout.startswith("Already a workspace:")
    assert (tmp_path / "watchlists").is_dir() and (tmp_path / "snapshots").is_dir()
    assert (tmp_path / "pagewatch.db").is_file()


def test_workspace_from_environment(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init"], env={"PAGEWATCH_WORKSPACE": str(tmp_path)})
    assert result.exit_code == 0
    assert (tmp_path / "pagewatch.db").is_file()


def test_alerts_json_contract(removal: tuple[Path, str]) -> None:
    root, url = removal
    result = pw(root, "alerts", "--json")
    assert result.exit_code == 0
    [alert] = json.loads(result.stdout)
    assert alert.keys() >= CONTRACT_FIELDS
    assert (alert["kind"], alert["group"], alert["alias"], alert["list"], alert["url"]) == (
        "removed", "uyghur", "Uyghur", "vendors", url,
    )  # fmt: skip
    assert (alert["count_before"], alert["count_after"], alert["status"]) == (1, 0, "new")
    seen, missing = (datetime.fromisoformat(alert[k]) for k in ("last_seen_at", "first_missing_at"))
    assert seen.utcoffset() is not None and seen.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert seen < missing
    assert re.fullmatch(r"[0-9a-f]{64}", alert["snapshot_before"])
    assert re.fullmatch(r"[0-9a-f]{64}", alert["snapshot_after"])
    assert alert["snapshot_before"] != alert["snapshot_after"]
    assert "[-Is it Uyghur: boolean.-]" in alert["context"]


def test_history_window_matches_alert(removal: tuple[Path, str]) -> None:
    root, url = removal
    [alert] = json.loads(pw(root, "alerts", "--json").stdout)
    history = json.loads(pw(root, "history", url, "--json").stdout)
    assert [(h["outcome"], h["status"], h["counts"]) for h in history] == [
        ("capture", 200, {"uyghur": 1}),
        ("capture", 200, {"uyghur": 0}),
        ("capture", 200, {"uyghur": 0}),  # the second fetch that confirmed the removal
    ]
    assert (history[0]["checked_at"], history[1]["checked_at"]) == (
        alert["last_seen_at"], alert["first_missing_at"],
    )  # fmt: skip
    assert (history[0]["sha256"], history[1]["sha256"]) == (
        alert["snapshot_before"], alert["snapshot_after"],
    )  # fmt: skip


def test_show_prints_passage_window_and_hashes(removal: tuple[Path, str]) -> None:
    root, _ = removal
    [alert] = json.loads(pw(root, "alerts", "--json").stdout)
    result = pw(root, "show", str(alert["id"]))
    assert result.exit_code == 0
    assert "[-Is it Uyghur: boolean.-]" in result.stdout
    assert (
        f"last seen at   {alert['last_seen_at']}  snapshot {alert['snapshot_before']}"
        in result.stdout
    )
    assert (
        f"first missing  {alert['first_missing_at']}  snapshot {alert['snapshot_after']}"
        in result.stdout
    )


def test_ack_moves_alert_out_of_new(removal: tuple[Path, str]) -> None:
    root, _ = removal
    [alert] = json.loads(pw(root, "alerts", "--json").stdout)
    acked = pw(root, "ack", str(alert["id"]), "--note", "seen, archived")
    assert acked.exit_code == 0 and acked.stdout == f"Acknowledged {alert['id']}\n"
    assert json.loads(pw(root, "alerts", "--json").stdout) == []
    [again] = json.loads(pw(root, "alerts", "--json", "--status", "acked").stdout)
    assert (again["id"], again["status"], again["note"]) == (alert["id"], "acked", "seen, archived")
    assert len(json.loads(pw(root, "alerts", "--json", "--status", "all").stdout)) == 1
    assert pw(root, "alerts", "--json", "--list", "other").exit_code == 2  # no such list


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "999"], "Error: no alert 999\n"),
        (["ack", "1", "999"], "Error: no alert 999; nothing was acknowledged\n"),
        (
            ["history", "http://127.0.0.1:9/nothing"],
            "Error: no history for http://127.0.0.1:9/nothing\n",
        ),
    ],
    ids=["show-unknown", "ack-unknown", "history-unknown"],
)
def test_unknown_things_exit_1(removal: tuple[Path, str], args: list[str], message: str) -> None:
    root, _ = removal
    result = pw(root, *args)
    assert (result.exit_code, result.stderr) == (1, message)


def test_ack_of_unknown_id_changes_nothing(removal: tuple[Path, str]) -> None:
    root, _ = removal
    pw(root, "ack", "1", "999")
    assert [a["status"] for a in json.loads(pw(root, "alerts", "--json").stdout)] == ["new"]


def test_broken_watchlist_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    pw(tmp_path, "init")
    path = tmp_path / "watchlists" / "bad.toml"
    path.write_text(
        '[phrases]\nx = ["a"]\n\n[[watch]]\nurl = "ftp://vendor.example/"\n', encoding="utf-8"
    )
    result = pw(tmp_path, "check")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {path}:5: ")
    assert len(result.stderr.splitlines()) == 1
    assert isinstance(result.exception, (SystemExit, type(None)))  # no traceback


def test_check_outside_a_workspace_says_so(tmp_path: Path) -> None:
    (tmp_path / "watchlists").mkdir()
    (tmp_path / "watchlists" / "a.toml").write_text(
        '[phrases]\nx = ["a"]\n[[watch]]\nurl = "http://127.0.0.1:9/"\n', encoding="utf-8"
    )
    result = pw(tmp_path, "check")
    assert result.exit_code == 1
    assert "run `pagewatch init` there" in result.stderr


def test_check_of_an_unwatched_url_is_bad_usage(removal: tuple[Path, str]) -> None:
    root, _ = removal
    result = pw(root, "check", "http://elsewhere.example/")
    assert result.exit_code == 2
    assert result.stderr == "Error: not watched in the chosen lists: http://elsewhere.example/\n"


def test_failed_fetch_is_not_a_failed_command(tmp_path: Path, server: ReplayServer) -> None:
    pw(tmp_path, "init")
    pw(tmp_path, "add", server.url("/down"), "--list", "l", "--phrase", "Uyghur")
    server.set("/down", Page(b"busy", 503))
    result = pw(tmp_path, "check")
    assert result.exit_code == 0
    assert result.stdout == (
        "checked 1, changed 0, failed 1, new alerts 0\n"
        f"  failed   {server.url('/down')}: HTTP 503 Service Unavailable\n"
    )
    [entry] = json.loads(pw(tmp_path, "history", server.url("/down"), "--json").stdout)
    assert (entry["outcome"], entry["reason"], entry["status"], entry["sha256"]) == (
        "failed", "http_503", 503, None,
    )  # fmt: skip


def test_demo_shows_the_removal(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--into", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "check: checked 2, changed 0, failed 1, new alerts 0" in out
    assert "Alert 1: removed · group 'uyghur'" in out
    assert "[-" in out and "Is it Uyghur" in out
    assert "last seen at   2020-11-20T09:00:00.00" in out
    assert "first missing  2020-12-08T18:00:00.00" in out
    alerts = json.loads(pw(tmp_path / "demo", "alerts", "--json").stdout)
    assert [(a["kind"], a["group"]) for a in alerts] == [
        ("removed", "uyghur"),
        ("removed", "ethnicity"),
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["check", "--concurrency", "0"],
        ["check", "--per-host", "-1"],
        ["show", "99999999999999999999"],
        ["ack", "abc"],
        ["run", "--reload-every", "0"],
    ],
    ids=["concurrency-0", "per-host-negative", "id-overflow", "id-not-a-number", "reload-0"],
)
def test_bad_numbers_are_bad_usage(removal: tuple[Path, str], args: list[str]) -> None:
    root, _ = removal
    result = pw(root, *args)
    assert result.exit_code == 2
    assert (
        isinstance(result.exception, (SystemExit, type(None)))
        and "Error: Invalid value" in result.stderr
    )


def test_corrupt_database_is_one_line(removal: tuple[Path, str]) -> None:
    root, _ = removal
    db = root / "pagewatch.db"
    for wal in root.glob("pagewatch.db-*"):
        wal.unlink()
    data = bytearray(db.read_bytes())
    data[4096:8192] = b"\xff" * 4096  # trash the second page
    db.write_bytes(bytes(data))
    result = pw(root, "alerts", "--json")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {db}")
    assert len(result.stderr.splitlines()) == 1


def test_run_outside_a_workspace_says_so(tmp_path: Path) -> None:
    result = pw(tmp_path / "nowhere", "run")
    assert result.exit_code == 1
    assert "not a pagewatch workspace" in result.stderr


def test_watchlist_errors_show_paths_relative_to_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pw(tmp_path, "init")
    (tmp_path / "watchlists" / "typo.toml").write_text('every = "6x"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["check"])
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: watchlists/typo.toml:1: bad interval '6x' (use e.g. 30m, 6h, 1d)\n"
    )


def test_add_outside_a_workspace_says_so_and_writes_nothing(tmp_path: Path) -> None:
    result = pw(tmp_path, "add", "https://v.example/d", "--list", "v", "--phrase", "Uyghur")
    assert result.exit_code == 1
    assert "not a pagewatch workspace" in result.output and "pagewatch init" in result.output
    assert not (tmp_path / "watchlists").exists()


@pytest.mark.parametrize(
    "args",
    [["alerts", "--list", "nosuch"], ["changes", "--around", "2020-12-08", "--list", "nosuch"],
     ["report", "--out", "r.html", "--list", "nosuch"], ["export", "--out", "x.wacz", "--list",
     "nosuch"]],
    ids=["alerts", "changes", "report", "export"],
)  # fmt: skip
def test_an_unknown_list_is_bad_usage_not_an_empty_result(
    removal: tuple[Path, str], args: list[str]
) -> None:
    root, _ = removal
    result = pw(root, *args)
    assert result.exit_code == 2
    assert "no watchlist named 'nosuch'" in result.output
    assert pw(root, "alerts", "--list", "vendors").exit_code == 0  # a real one still works


def test_a_note_for_an_acknowledged_alert_replaces_its_note(removal: tuple[Path, str]) -> None:
    root, _ = removal
    assert pw(root, "ack", "1", "--note", "first").exit_code == 0
    [before] = json.loads(pw(root, "alerts", "--json", "--status", "acked").stdout)
    again = pw(root, "ack", "1", "--note", "sent to legal")
    assert again.stdout == "Already acknowledged 1 (note replaced)\n"
    [after] = json.loads(pw(root, "alerts", "--json", "--status", "acked").stdout)
    assert (after["note"], after["acked_at"]) == ("sent to legal", before["acked_at"])


def test_start_up_leaves_what_a_steady_check_does_not_use_unimported() -> None:
    """Every command pays for what the CLI imports at start: parsers, the differ, the Wayback
    client and the migrations wait until a command needs them."""
    code = (
        "import sys, pagewatch.cli\n"
        "heavy = ['lxml', 'cssselect', 'diff_match_patch', 'sqlite_utils', 'tomlkit',"
        " 'pagewatch.wayback', 'pagewatch.ingest', 'pagewatch.schema']\n"
        "print(' '.join(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
