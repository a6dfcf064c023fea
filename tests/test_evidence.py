"""Evidence end to end through the command line: a workspace's history exported to WACZ and
WARC, verified, checked against its workspace, and imported into an empty workspace, which must
then hold the same captures, digests and alerts with the same windows."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import sqlite3
import tomllib
import zlib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from test_histories import HISTORIES, PATH, replay

from pagewatch.cli import cli
from pagewatch.replay import ReplayServer

#: what must survive a round trip, per alert (ids and acknowledgements are the workspace's own)
SAME = ("url", "list", "group", "alias", "kind", "count_before", "count_after",
        "last_seen_at", "first_missing_at", "snapshot_before", "snapshot_after", "context",
        "final_url")  # fmt: skip


def pw(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--workspace", str(root), *args])


def alerts(root: Path) -> list[dict[str, Any]]:
    """The workspace's alerts, in the order of their windows (an import decides change alerts
    first and carries health alerts after)."""
    result = pw(root, "alerts", "--json", "--status", "all")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    return sorted(found, key=lambda a: (a["first_missing_at"], a["last_seen_at"], a["kind"]))


def checks_of(root: Path, url: str) -> list[tuple[Any, ...]]:
    result = pw(root, "history", "--json", url)
    assert result.exit_code == 0, result.output
    return [(h["checked_at"], h["outcome"], h["status"], h["reason"]) for h in
            json.loads(result.stdout)]  # fmt: skip


def captures(root: Path) -> list[tuple[Any, ...]]:
    """Every stored capture: watch, time, digest, status, URL, headers, source-free."""
    with sqlite3.connect(root / "pagewatch.db") as conn:
        return conn.execute(
            "SELECT w.list, w.url, c.checked_at, c.sha256, c.status, c.final_url, c.headers"
            " FROM checks c JOIN watches w ON w.id = c.watch_id WHERE c.sha256 IS NOT NULL"
            " ORDER BY c.checked_at, c.id"
        ).fetchall()


@pytest.mark.parametrize(
    ("path", "formats"),
    [(p, ("bundle.wacz", "bundle.warc.gz")[n % 2 :][:1] if n else ("bundle.wacz", "bundle.warc.gz"))
     for n, p in enumerate(HISTORIES)],
    ids=[p.stem for p in HISTORIES],
)  # fmt: skip
def test_round_trip_through_both_formats(
    path: Path, formats: tuple[str, ...], tmp_path: Path, root: Path, server: ReplayServer,
    clock: Any,
) -> None:  # fmt: skip
    """Every history through one format (both for the first), alternating, to keep it quick."""
    history = tomllib.loads(path.read_text(encoding="utf-8"))
    if any("phrases" in step for step in history["step"]):
        pytest.skip("alerts decided under earlier phrases cannot be re-derived from today's")
    replay(history, root, server, clock)
    original = alerts(root)
    assert pw(root, "fsck").exit_code == 0
    for name in formats:
        bundle = tmp_path / name
        exported = pw(root, "export", "--out", str(bundle))
        assert exported.exit_code == 0, exported.output
        checked = pw(root, "verify", "--against-workspace", str(bundle))
        assert checked.exit_code == 0, checked.output

        fresh = tmp_path / f"fresh-{name}"
        imported = pw(fresh, "import", str(bundle))
        assert imported.exit_code == 0, imported.output
        assert captures(fresh) == captures(root)
        got = alerts(fresh)
        assert [{k: a[k] for k in SAME} for a in got] == [{k: a[k] for k in SAME} for a in original]
        assert {a["source"] for a in got} <= {"import"}
        assert checks_of(fresh, server.url(PATH)) == checks_of(root, server.url(PATH))
        assert pw(fresh, "fsck").exit_code == 0

        again = pw(fresh, "import", str(bundle))
        assert again.exit_code == 0, again.output
        assert "0 captures added" in again.output and "No new alerts." in again.output
        assert alerts(fresh) == got
    assert server.url(PATH)  # the replay server served every step


@pytest.fixture
def removal(root: Path, server: ReplayServer, clock: Any) -> Path:
    history = tomllib.loads((HISTORIES[0].parent / "comment-out.toml").read_text("utf-8"))
    replay(history, root, server, clock)
    assert [a["kind"] for a in alerts(root)] == ["removed"]
    return root


def test_one_alerts_evidence_package(removal: Path, tmp_path: Path) -> None:
    [alert] = alerts(removal)
    bundle = tmp_path / "alert.wacz"
    result = pw(removal, "export", "--alert", str(alert["id"]), "--out", str(bundle))
    assert result.exit_code == 0, result.output
    assert pw(removal, "verify", str(bundle)).exit_code == 0

    fresh = tmp_path / "fresh"
    assert pw(fresh, "import", str(bundle)).exit_code == 0
    [again] = alerts(fresh)
    assert {k: again[k] for k in SAME} == {k: alert[k] for k in SAME}


def test_the_bundle_carries_pagewatch_metadata(removal: Path, tmp_path: Path) -> None:
    from pagewatch.responses import read_metadata

    bundle = tmp_path / "all.warc.gz"
    assert pw(removal, "export", "--out", str(bundle)).exit_code == 0
    metadata = read_metadata(bundle)
    assert metadata is not None
    [alert] = alerts(removal)
    [carried] = metadata["alerts"]
    assert (carried["id"], carried["context"]) == (alert["id"], alert["context"])
    [watch] = metadata["watches"]
    assert watch["phrases"] and watch["url"] == alert["url"]
    entry = metadata["captures"][str(alert["capture_after"])]
    assert entry["sha256"] == alert["snapshot_after"]
    assert entry["counts"] == {alert["group"]: alert["count_after"]}


def test_a_bundle_from_another_workspace_fails_the_workspace_check(
    removal: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "all.wacz"
    assert pw(removal, "export", "--out", str(bundle)).exit_code == 0
    other = tmp_path / "other"
    assert pw(other, "init").exit_code == 0
    result = pw(other, "verify", "--against-workspace", str(bundle))
    assert result.exit_code == 1
    assert "capture 1: not in this workspace" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "x.zip"], "must end in .wacz or .warc.gz"),
        (["--out", "x.wacz", "--list", "nosuch"], "no watchlist named 'nosuch'"),
        (["--out", "x.wacz", "--since", "2099-01-01"], "nothing to export"),
        (["--out", "x.wacz", "--alert", "99"], "no alert 99"),
        (["--out", "x.wacz", "--alert", "1", "--list", "golden"], "--alert takes no"),
        (["--out", "x.wacz", "--since", "yesterday"], "not an ISO 8601 date"),
    ],
    ids=["suffix", "unknown-list", "empty", "unknown-alert", "alert-and-list", "bad-date"],
)
def test_export_refuses_bad_requests_in_one_line(
    removal: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    args = [str(tmp_path / a) if a.startswith("x.") else a for a in args]
    result = pw(removal, "export", *args)
    assert result.exit_code in (1, 2)
    assert message in result.output
    assert isinstance(result.exception, (SystemExit, type(None)))  # no traceback
    assert not list(tmp_path.glob("x.*"))


def test_export_never_overwrites(removal: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b.wacz"
    bundle.write_bytes(b"precious")
    result = pw(removal, "export", "--out", str(bundle))
    assert result.exit_code == 2 and "exists already" in result.output
    assert bundle.read_bytes() == b"precious"


def test_importing_something_that_is_no_bundle(removal: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.warc.gz"
    junk.write_bytes(b"\x1f\x8b not really")
    result = pw(removal, "import", str(junk))
    assert result.exit_code == 1
    assert "junk.warc.gz" in result.output
    assert isinstance(result.exception, (SystemExit, type(None)))  # a one-line error, no traceback


# -- forgeries that digests alone do not catch ---------------------------------------------------


def members(path: Path) -> list[bytes]:
    """The records of a .warc.gz, one gzip member each, decompressed."""
    data, found, at = path.read_bytes(), [], 0
    while at < len(data):
        inflate = zlib.decompressobj(31)
        found.append(inflate.decompress(data[at:]))
        at = len(data) - len(inflate.unused_data)
    return found


def reseal(head: bytes, block: bytes) -> bytes:
    """A record with its block (and, for metadata, payload) digest and length recomputed: what
    a forger who knows the format does."""
    text = head.decode("latin-1")
    digest = "sha256:" + hashlib.sha256(block).hexdigest()
    text = re.sub(r"WARC-Block-Digest: .*", "WARC-Block-Digest: " + digest, text)
    if "WARC-Type: metadata" in text:
        text = re.sub(r"WARC-Payload-Digest: .*", "WARC-Payload-Digest: " + digest, text)
    text = re.sub(r"Content-Length: \d+", f"Content-Length: {len(block)}", text)
    return text.encode("latin-1") + b"\r\n\r\n" + block + b"\r\n\r\n"


def split(record: bytes) -> tuple[bytes, bytes, bytes]:
    """WARC head, HTTP head (with its blank line) and body of a response record."""
    head, rest = record.split(b"\r\n\r\n", 1)
    http, body = rest[:-4].split(b"\r\n\r\n", 1)
    return head, http + b"\r\n\r\n", body


def _move_a_date(records: list[bytes]) -> str:
    at = next(i for i, r in enumerate(records) if b"WARC-Type: response" in r)
    records[at] = re.sub(rb"WARC-Date: \S+", b"WARC-Date: 2001-01-01T00:00:00.000000Z",
                         records[at], count=1)  # fmt: skip
    return "is not the capture time"


def _swap_a_body(records: list[bytes]) -> str:
    responses = [i for i, r in enumerate(records) if b"WARC-Type: response" in r]
    first, last = responses[0], responses[-1]
    head, http, _ = split(records[first])
    body = split(records[last])[2]
    head = re.sub(rb"WARC-Payload-Digest: .*",
                  b"WARC-Payload-Digest: sha256:" + hashlib.sha256(body).hexdigest().encode(),
                  head)  # fmt: skip
    records[first] = reseal(head, http + body)
    return "its body is not the one the metadata names"


def _refile_a_capture(records: list[bytes]) -> str:
    at = next(i for i, r in enumerate(records) if b"urn:pagewatch:metadata" in r)
    head, rest = records[at].split(b"\r\n\r\n", 1)
    metadata = json.loads(rest[:-4])
    entry = next(iter(metadata["captures"].values()))
    entry["watch_url"] = "https://elsewhere.example/"
    records[at] = reseal(head, json.dumps(metadata).encode())
    return "which neither is its URL nor redirects to it"


def _drop_a_record(records: list[bytes]) -> str:
    at = next(i for i, r in enumerate(records) if b"WARC-Type: response" in r)
    del records[at]
    return "its record is not in the bundle"


def _add_a_record(records: list[bytes]) -> str:
    """A response for the watched URL that pagewatch never captured, digests all in order."""
    at = next(i for i, r in enumerate(records) if b"WARC-Type: response" in r)
    head, http, body = split(records[at])
    head = re.sub(rb"WARC-Pagewatch-Capture: \d+\r\n", b"", head)
    head = re.sub(rb"WARC-Record-ID: <[^>]+>", b"WARC-Record-ID: <urn:uuid:forged>", head)
    body = body.replace(b"Uyghur", b"Uygur")
    head = re.sub(rb"WARC-Payload-Digest: .*",
                  b"WARC-Payload-Digest: sha256:" + hashlib.sha256(body).hexdigest().encode(),
                  head)  # fmt: skip
    records.append(reseal(head, http + body))
    return "a response that is none of the bundle's captures"


@pytest.mark.parametrize(
    "forge",
    [_move_a_date, _swap_a_body, _refile_a_capture, _drop_a_record, _add_a_record],
    ids=lambda f: f.__name__.strip("_"),
)
def test_a_forged_bundle_fails_verify_and_is_not_imported(
    removal: Path, tmp_path: Path, forge: Any
) -> None:
    bundle, forged = tmp_path / "b.warc.gz", tmp_path / "forged.warc.gz"
    assert pw(removal, "export", "--out", str(bundle)).exit_code == 0
    records = members(bundle)
    culprit = forge(records)
    forged.write_bytes(b"".join(gzip.compress(r) for r in records))

    checked = pw(removal, "verify", str(forged))
    assert checked.exit_code == 1, checked.output
    assert culprit in checked.output

    fresh = tmp_path / "fresh"
    imported = pw(fresh, "import", str(forged))
    assert imported.exit_code == 1
    assert "fails verification" in imported.output and culprit in imported.output
    assert not (fresh / "pagewatch.db").exists()  # refused before anything was written


def test_export_until_a_bare_date_includes_that_day(removal: Path, tmp_path: Path) -> None:
    [alert] = alerts(removal)
    day = alert["first_missing_at"][:10]
    bundle = tmp_path / "day.warc.gz"
    result = pw(removal, "export", "--out", str(bundle), "--since", day, "--until", day)
    assert result.exit_code == 0, result.output
    from pagewatch.responses import read_metadata

    metadata = read_metadata(bundle)
    assert metadata is not None
    assert str(alert["capture_after"]) in metadata["captures"]
