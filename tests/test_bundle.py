"""Evidence bundles: written as WACZ and WARC, read back by warcio and the reference tools, read
back by pagewatch (other tools' WARCs too), and verified strictly against each kind of tampering."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import stat
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cdxj_indexer.main import CDXJIndexer
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pagewatch.bundle import (
    BundleSummary,
    ZipLimits,
    read_metadata,
    read_responses,
    verify,
    write_bundle,
)
from pagewatch.errors import BundleError, StoreError, UsageError
from pagewatch.models import Redirect, StoredCapture, header
from pagewatch.records import Digest
from pagewatch.warc import archival_headers, restore_headers

T0 = datetime(2020, 11, 2, 9, 0, 0, 250_000, tzinfo=UTC)
CREATED = datetime(2020, 12, 1, 12, 0, tzinfo=UTC)
PAGE = "https://vendor.example/docs/face-attributes"
CAPTURE = "WARC-Pagewatch-Capture"
CJK = "<html><body><main>民族：维吾尔 (Is it Uyghur?)</main></body></html>".encode()
GZIPPED = gzip.compress(b"<html><body>ethnic minority, Uighur</body></html>", mtime=0)
GONE = b"<html><body>Not found</body></html>"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


BLOBS = {sha(body): body for body in (CJK, GZIPPED, GONE)}
CAPTURES = (
    # chunked on the wire (httpx undid it), CJK text
    StoredCapture(
        1, "face", PAGE, PAGE, 200,
        (("Content-Type", "text/html; charset=utf-8"), ("Transfer-Encoding", "chunked"),
         ("X-Note", "caf\xe9")),  # a latin-1 byte, kept as it came
        sha(CJK), T0, "chain-1", "live",
    ),
    # gzip-encoded body, reached through a redirect
    StoredCapture(
        2, "face", "https://vendor.example/old", "https://vendor.example/new", 200,
        (("Content-Type", "text/html"), ("Content-Encoding", "gzip"),
         ("Content-Length", str(len(GZIPPED)))),
        sha(GZIPPED), T0 + timedelta(minutes=5), "chain-2", "live",
        redirects=(Redirect("https://vendor.example/old", 301, "https://vendor.example/new"),),
    ),
    # the first page unchanged an hour later: a revisit
    StoredCapture(
        3, "face", PAGE, PAGE, 200,
        (("Content-Type", "text/html; charset=utf-8"), ("transfer-encoding", "chunked")),
        sha(CJK), T0 + timedelta(hours=1), "chain-3", "live",
    ),
    # gone, with a Content-Length the stored bytes do not have
    StoredCapture(
        4, "face", "https://vendor.example/gone", "https://vendor.example/gone", 404,
        (("Content-Type", "text/html"), ("Content-Length", "999")),
        sha(GONE), T0 + timedelta(hours=2), "chain-4", "live",
    ),
    # a 304 standing for the redirect target's body
    StoredCapture(
        5, "face", "https://vendor.example/old", "https://vendor.example/new", 200,
        (("Content-Type", "text/html"), ("Content-Encoding", "gzip"),
         ("Content-Length", str(len(GZIPPED)))),
        sha(GZIPPED), T0 + timedelta(hours=3), "chain-5", "live", not_modified=True,
    ),
)  # fmt: skip
METADATA: dict[str, Any] = {
    "format": "pagewatch-bundle/1",
    "watches": [{"list": "face", "url": PAGE, "phrases": {"uyghur": ["Uyghur", "维吾尔"]}}],
    "captures": {
        str(c.capture_id): {"list": c.list, "watch_url": c.watch_url, "chain": c.chain}
        for c in CAPTURES
    },
    "alerts": [{"id": 1, "kind": "removed", "snapshot_before": 1, "snapshot_after": 4}],
}


@dataclass(frozen=True)
class Built:
    wacz: Path
    warc: Path
    summaries: dict[str, BundleSummary]
    progress: list[int]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    folder = tmp_path_factory.mktemp("bundles")
    calls: list[int] = []
    summaries = {}
    for name in ("evidence.wacz", "evidence.warc.gz"):
        summaries[name] = write_bundle(
            folder / name,
            iter(CAPTURES),
            BLOBS.__getitem__,
            METADATA,
            created=CREATED,
            progress=calls.append,
        )
    return Built(folder / "evidence.wacz", folder / "evidence.warc.gz", summaries, calls)


def warc_bytes(built: Built, kind: str) -> bytes:
    if kind == "warc":
        return built.warc.read_bytes()
    with zipfile.ZipFile(built.wacz) as package:
        return package.read("archive/data.warc.gz")


# --- what other tools read ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["wacz", "warc"])
def test_warcio_reads_every_record_and_checks_its_digests(built: Built, kind: str) -> None:
    seen = []
    for record in ArchiveIterator(io.BytesIO(warc_bytes(built, kind)), check_digests=True):
        fields = record.rec_headers
        payload = record.raw_stream.read()  # after the HTTP head; content-encoding untouched
        seen.append((record.rec_type, fields["WARC-Target-URI"], fields["WARC-Date"]))
        assert fields.protocol == "WARC/1.1"
        if record.rec_type != "revisit":
            assert record.digest_checker.passed is True, record.digest_checker.problems
        if record.rec_type == "response":
            capture = next(c for c in CAPTURES if str(c.capture_id) == fields[CAPTURE])
            assert payload == BLOBS[capture.sha256]
            assert fields["WARC-Payload-Digest"] == "sha256:" + capture.sha256
            assert record.http_headers.get_statuscode() == str(capture.status)
            encoding = header(capture.headers, "content-encoding")
            assert record.http_headers["Content-Encoding"] == encoding  # kept: still encoded
        if record.rec_type == "metadata":
            assert json.loads(payload) == METADATA
            assert fields["Content-Type"] == "application/json"
    assert seen == [
        ("warcinfo", None, "2020-12-01T12:00:00Z"),
        ("metadata", "urn:pagewatch:metadata", "2020-12-01T12:00:00Z"),
        ("response", PAGE, "2020-11-02T09:00:00.250000Z"),
        ("request", PAGE, "2020-11-02T09:00:00.250000Z"),
        ("response", "https://vendor.example/new", "2020-11-02T09:05:00.250000Z"),
        ("request", "https://vendor.example/new", "2020-11-02T09:05:00.250000Z"),
        ("revisit", PAGE, "2020-11-02T10:00:00.250000Z"),
        ("request", PAGE, "2020-11-02T10:00:00.250000Z"),
        ("response", "https://vendor.example/gone", "2020-11-02T11:00:00.250000Z"),
        ("request", "https://vendor.example/gone", "2020-11-02T11:00:00.250000Z"),
        ("revisit", "https://vendor.example/new", "2020-11-02T12:00:00.250000Z"),
        ("request", "https://vendor.example/new", "2020-11-02T12:00:00.250000Z"),
    ]


def test_records_keep_header_bytes_and_state_the_framing_rule(built: Built) -> None:
    text = gzip.decompress(built.warc.read_bytes())
    # chunked framing was undone by the client: the header is kept under another name
    assert b"\r\nX-Archive-Orig-Transfer-Encoding: chunked\r\n" in text
    assert b"\r\nTransfer-Encoding" not in text and b"\r\ntransfer-encoding" not in text
    assert b"\r\nX-Note: caf\xe9\r\n" in text  # byte for byte, not %-encoded
    assert b"\r\nX-Archive-Orig-Content-Length: 999\r\nContent-Length: 35\r\n" in text
    revisits = [r for r in records(text) if r.rec_type == "revisit"]
    first = next(r for r in records(text) if r.rec_headers[CAPTURE] == "1")
    assert revisits[0].rec_headers["WARC-Refers-To"] == first.rec_headers["WARC-Record-ID"]
    assert revisits[0].rec_headers["WARC-Refers-To-Date"] == "2020-11-02T09:00:00.250000Z"
    assert revisits[0].rec_headers["WARC-Profile"] == (
        "http://netpreserve.org/warc/1.1/revisit/identical-payload-digest"
    )
    assert revisits[1].rec_headers["WARC-Pagewatch-Not-Modified"] == "true"
    request = next(r for r in records(text) if r.rec_type == "request")
    assert "synthesised" in request.rec_headers["WARC-Pagewatch-Request"]
    assert first.rec_headers["WARC-Pagewatch-Chain"] == "chain-1"


def records(data: bytes) -> list[Any]:
    found = []
    for record in ArchiveIterator(io.BytesIO(data)):
        record.raw_stream.read()
        found.append(record)
    return found


def test_the_reference_wacz_validator_accepts_the_bundle_and_rejects_a_tampered_copy(
    built: Built, tmp_path: Path
) -> None:
    tampered = tmp_path / "tampered.wacz"
    edited = lambda m: m | {"pages/pages.jsonl": m["pages/pages.jsonl"].replace(b"All", b"Any")}  # noqa: E731
    rezip(built.wacz, tampered, edited)
    # `python -m wacz` exits 0 whatever it finds, so run its main() for the status it returns
    validate = (
        "import sys; from wacz.main import main; sys.exit(main(['validate', '-f', sys.argv[1]]))"
    )
    runs = {
        path: subprocess.Popen(
            [sys.executable, "-c", validate, str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for path in (built.wacz, tampered)
    }
    results = {path: (run.communicate(timeout=60)[0], run.returncode) for path, run in runs.items()}
    output, code = results[built.wacz]
    assert code == 0 and "Validation succeeded" in output, output
    output, code = results[tampered]  # so the run above did check hashes, and could fail
    assert code == 1 and "Validation failed" in output and "hash" in output, output


def test_the_index_is_what_the_reference_indexer_writes(built: Built, tmp_path: Path) -> None:
    warc = tmp_path / "data.warc.gz"
    warc.write_bytes(warc_bytes(built, "wacz"))
    reference = io.StringIO()
    CDXJIndexer(
        reference,
        [str(warc)],
        sort=True,
        post_append=True,  # as py-wacz runs it: requests joined, recordDigest included
        digest_records=True,
        records="response,revisit,resource,metadata",
    ).process_all()
    with zipfile.ZipFile(built.wacz) as package:
        ours = package.read("indexes/index.cdxj").decode()
        pages = [json.loads(line) for line in package.read("pages/pages.jsonl").splitlines()]
        manifest = json.loads(package.read("datapackage.json"))
        infos = {info.filename: info for info in package.infolist()}
    assert ours == reference.getvalue()
    assert len(ours.splitlines()) == 6  # metadata + 5 captures
    assert pages[0] == {"format": "json-pages-1.0", "id": "pages", "title": "All Pages"}
    assert [(p["url"], p["ts"]) for p in pages[1:]] == [
        (c.target_uri, c.captured_at.strftime("%Y-%m-%dT%H:%M:%SZ")) for c in CAPTURES
    ]
    assert manifest["wacz_version"] == "1.1.1" and manifest["profile"] == "data-package"
    assert manifest["created"] == "2020-12-01T12:00:00Z"
    assert [r["path"] for r in manifest["resources"]] == [
        "archive/data.warc.gz",
        "indexes/index.cdxj",
        "pages/pages.jsonl",
    ]
    assert infos["archive/data.warc.gz"].compress_type == zipfile.ZIP_STORED
    assert infos["indexes/index.cdxj"].compress_type == zipfile.ZIP_STORED


# --- reading back -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["wacz", "warc"])
def test_round_trip_gives_back_every_capture_as_it_was_stored(built: Built, kind: str) -> None:
    path = built.wacz if kind == "wacz" else built.warc
    responses = list(read_responses(path))
    assert len(responses) == len(CAPTURES)
    for capture, response in zip(CAPTURES, responses, strict=True):
        assert response.target_uri == capture.target_uri
        assert response.status == capture.status
        assert response.headers == capture.headers  # renames undone, order and bytes kept
        assert response.body == BLOBS[capture.sha256]
        assert response.captured_at == capture.captured_at
        assert response.captured_at.tzinfo is not None
        assert response.pagewatch == METADATA["captures"][str(capture.capture_id)]
        assert response.record_id.startswith("<urn:uuid:")
    origins = [r.origin for r in responses]
    prefix = "evidence.wacz!archive/data.warc.gz#" if kind == "wacz" else "evidence.warc.gz#"
    offsets = [
        it_offset
        for it_offset, record in offsets_of(warc_bytes(built, kind))
        if record.rec_type in ("response", "revisit")
    ]
    assert origins == [f"{prefix}{offset}" for offset in offsets]
    assert read_metadata(path) == METADATA


def offsets_of(data: bytes) -> list[tuple[int, Any]]:
    found = []
    iterator = ArchiveIterator(io.BytesIO(data))
    for record in iterator:
        record.raw_stream.read()
        found.append((iterator.get_record_offset(), record))
    return found


def test_summary_progress_and_accept_filter(built: Built) -> None:
    for path in (built.wacz, built.warc):
        summary = built.summaries[path.name]
        assert (summary.captures, summary.responses, summary.revisits) == (5, 3, 2)
        assert summary.bytes == path.stat().st_size
        assert summary.sha256 == sha(path.read_bytes())
    assert built.progress == [1, 2, 3, 4, 5] * 2
    only_gone = list(read_responses(built.wacz, accept=lambda uri: uri.endswith("/gone")))
    assert [r.status for r in only_gone] == [404]


def test_a_failed_write_leaves_no_bundle_and_no_temporary_file(tmp_path: Path) -> None:
    def failing(sha256: str) -> bytes:
        if sha256 == sha(GONE):
            raise StoreError(f"snapshot {sha256} is unreadable")
        return BLOBS[sha256]

    out = tmp_path / "half.wacz"
    with pytest.raises(StoreError, match="unreadable"):
        write_bundle(out, CAPTURES, failing, METADATA, created=CREATED)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(StoreError, match="capture 1 does not match its name"):
        write_bundle(out, CAPTURES, lambda _: b"tampered", METADATA, created=CREATED)
    with pytest.raises(UsageError, match=r"evidence\.zip"):
        write_bundle(tmp_path / "evidence.zip", CAPTURES, BLOBS.__getitem__, {}, created=CREATED)
    assert list(tmp_path.iterdir()) == []
    out.write_bytes(b"precious")
    with pytest.raises(UsageError, match="never overwritten"):
        write_bundle(out, CAPTURES, BLOBS.__getitem__, METADATA, created=CREATED)
    assert out.read_bytes() == b"precious"
    assert list(tmp_path.iterdir()) == [out]


# --- other tools' WARCs -------------------------------------------------------------------

CHUNKED = b"7\r\n<p>Is i\r\n10\r\nt Uyghur? ethnic\r\n4\r\n</p>\r\n0\r\n\r\n"
ENTITY = b"<p>Is it Uyghur? ethnic</p>"


def foreign_warc(path: Path, compress: bool) -> None:
    """A WARC/1.0 as wget or Heritrix write them: sha1 base32 digests, a dns record, chunked
    payloads (one digested as recorded, one as wget digests: de-chunked), a revisit without
    WARC-Refers-To."""
    url = "http://vendor.example/docs"
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=compress, warc_version="1.0")
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "Wget/1.21"}))
        dns = b"20201102090000\nvendor.example.\t300\tIN\tA\t192.0.2.1\n"
        writer.write_record(
            writer.create_warc_record(
                "dns:vendor.example", "resource", payload=io.BytesIO(dns), length=len(dns),
                warc_content_type="text/dns",
            )
        )  # fmt: skip
        for date, extra in (("2020-11-02T09:00:00Z", {}), ("2020-11-02T10:00:00Z", {"wget": 1})):
            fields = {"WARC-Date": date}
            if extra:
                fields["WARC-Payload-Digest"] = sha1_b32(ENTITY)
            http = StatusAndHeaders(
                "200 OK",
                [("Content-Type", "text/html"), ("Transfer-Encoding", "chunked")],
                protocol="HTTP/1.1",
            )
            response = writer.create_warc_record(
                url, "response", payload=io.BytesIO(CHUNKED), length=len(CHUNKED),
                http_headers=http, warc_headers_dict=fields,
            )  # fmt: skip
            request = writer.create_warc_record(
                url, "request", payload=io.BytesIO(b""), length=0,
                http_headers=StatusAndHeaders("GET /docs HTTP/1.0", [("Host", "vendor.example")],
                                              is_http_request=True),
            )  # fmt: skip
            writer.write_request_response_pair(request, response)
        revisit = writer.create_revisit_record(
            url,
            sha1_b32(CHUNKED),
            url,
            "2020-11-02T09:00:00Z",
            http_headers=StatusAndHeaders("200 OK", [("Content-Type", "text/html")], "HTTP/1.1"),
            warc_headers_dict={"WARC-Date": "2020-11-03T09:00:00Z"},
        )
        revisit.rec_headers.remove_header("WARC-Refers-To-Date")  # older Heritrix: digest only
        writer.write_record(revisit)


def sha1_b32(data: bytes) -> str:
    import base64

    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode()


@pytest.mark.parametrize("compress", [False, True], ids=["wget-uncompressed", "ia-gzip"])
def test_other_tools_warcs_are_read_and_verified(tmp_path: Path, compress: bool) -> None:
    path = tmp_path / ("crawl.warc.gz" if compress else "crawl.warc")
    foreign_warc(path, compress)
    responses = list(read_responses(path))
    assert [(r.status, r.body, r.captured_at.isoformat()) for r in responses] == [
        (200, ENTITY, "2020-11-02T09:00:00+00:00"),
        (200, ENTITY, "2020-11-02T10:00:00+00:00"),
        (200, ENTITY, "2020-11-03T09:00:00+00:00"),  # the revisit, given its original's body
    ]
    assert responses[0].headers == (("Content-Type", "text/html"), ("Transfer-Encoding", "chunked"))
    assert responses[2].headers == (("Content-Type", "text/html"),)
    assert all(r.pagewatch is None for r in responses)
    offsets = [o for o, r in offsets_of(path.read_bytes()) if r.rec_type in ("response", "revisit")]
    assert [r.origin for r in responses] == [f"{path.name}#{o}" for o in offsets]
    assert read_metadata(path) is None
    report = verify(path)
    assert report.ok, report.problems
    assert report.checked == 7


def test_a_wacz_made_by_the_reference_tool_is_read_and_verified(tmp_path: Path) -> None:
    warc = tmp_path / "crawl.warc.gz"
    foreign_warc(warc, compress=True)
    pages = tmp_path / "pages.jsonl"
    header = {"format": "json-pages-1.0", "id": "pages"}
    page = {"url": "http://vendor.example/docs", "ts": "2020-11-02T09:00:00Z"}
    pages.write_text(json.dumps(header) + "\n" + json.dumps(page) + "\n")
    package = tmp_path / "crawl.wacz"
    create = [sys.executable, "-m", "wacz", "create", "-o", str(package), "-p", str(pages)]
    subprocess.run([*create, str(warc)], check=True, capture_output=True, timeout=60)
    with zipfile.ZipFile(package) as opened:
        assert "indexes/index.cdx.gz" in opened.namelist()  # compressed index, unlike ours
    report = verify(package)
    assert report.ok, report.problems
    responses = list(read_responses(package))
    assert [(r.body, r.origin.split("#")[0]) for r in responses] == [
        (ENTITY, "crawl.wacz!archive/crawl.warc.gz")
    ] * 3
    assert read_metadata(package) is None


# --- tampering ----------------------------------------------------------------------------

Members = dict[str, bytes]


def rezip(source: Path, target: Path, change: Callable[[Members], Members]) -> None:
    with zipfile.ZipFile(source) as package:
        members = {info.filename: package.read(info) for info in package.infolist()}
    write_zip(target, list(change(members).items()))


def write_zip(target: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]]) -> None:
    with warnings.catch_warnings():
        # the duplicate-member case writes a name twice on purpose; zipfile warns about it
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
        with zipfile.ZipFile(target, "w") as package:
            for name, data in members:
                compression = zipfile.ZIP_DEFLATED if str(name).endswith(".bin") else None
                package.writestr(name, data, compress_type=compression)


def resign(members: Members, *names: str) -> Members:
    """Update datapackage.json and its digest for edited members: a tamperer covering tracks."""
    manifest = json.loads(members["datapackage.json"])
    for resource in manifest["resources"]:
        if resource["path"] in names:
            resource["hash"] = "sha256:" + sha(members[resource["path"]])
            resource["bytes"] = len(members[resource["path"]])
    members["datapackage.json"] = json.dumps(manifest).encode()
    digest = {"path": "datapackage.json", "hash": "sha256:" + sha(members["datapackage.json"])}
    members["datapackage-digest.json"] = json.dumps(digest).encode()
    return members


def edit_record(warc: bytes, capture_id: str, edit: Callable[[bytes], bytes]) -> bytes:
    """The WARC with one capture's response record edited (and recompressed in place)."""
    for offset, record in offsets_of(warc):
        if record.rec_headers[CAPTURE] == capture_id and record.rec_type == "response":
            end = offset + next(
                length
                for o, length in member_lengths(warc)
                if o == offset  # the record's gzip member
            )
            edited = gzip.compress(edit(gzip.decompress(warc[offset:end])), mtime=0)
            return warc[:offset] + edited + warc[end:]
    raise AssertionError(f"no response for capture {capture_id}")


def member_lengths(warc: bytes) -> list[tuple[int, int]]:
    iterator = ArchiveIterator(io.BytesIO(warc))
    found = []
    for record in iterator:
        record.raw_stream.read()
        found.append((iterator.get_record_offset(), iterator.get_record_length()))
    return found


def record_of(warc: bytes, capture_id: str) -> tuple[int, str]:
    offset, record = next(
        (o, r)
        for o, r in offsets_of(warc)
        if r.rec_headers[CAPTURE] == capture_id and r.rec_type == "response"
    )
    return offset, record.rec_headers["WARC-Record-ID"]


def flip_payload(block: bytes) -> bytes:
    return block.replace("维吾尔".encode(), "维吾児".encode(), 1)


def strip_block_digest(block: bytes) -> bytes:
    head, _, rest = block.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.startswith(b"WARC-Block-Digest")]
    return b"\r\n".join(lines) + b"\r\n\r\n" + rest


WARC = "archive/data.warc.gz"


def in_warc(edit: Callable[[bytes], bytes]) -> Callable[[Members], Members]:
    return lambda m: resign(m | {WARC: edit_record(m[WARC], "1", edit)}, WARC)


def with_index(change: Callable[[str], str]) -> Callable[[Members], Members]:
    def apply(members: Members) -> Members:
        index = change(members["indexes/index.cdxj"].decode()).encode()
        return resign(members | {"indexes/index.cdxj": index}, "indexes/index.cdxj")

    return apply


def no_hash(members: Members) -> Members:
    manifest = json.loads(members["datapackage.json"])
    del manifest["resources"][1]["hash"]
    return resign(members | {"datapackage.json": json.dumps(manifest).encode()})


def link(members: Members) -> list[tuple[str | zipfile.ZipInfo, bytes]]:
    info = zipfile.ZipInfo("archive/link.warc")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return [*members.items(), (info, b"/etc/passwd")]


# (id, change to the members, text each expected problem line holds: the culprit named)
WACZ_TAMPERING: list[tuple[str, Callable[[Members], Any], list[str]]] = [
    ("flipped-byte-in-record", in_warc(flip_payload), ["{record}: WARC-Payload-Digest mismatch"]),
    ("flipped-byte-not-resigned",
     lambda m: m | {WARC: edit_record(m[WARC], "1", flip_payload)},
     ["archive/data.warc.gz: hash mismatch", "{record}: WARC-Block-Digest mismatch"]),
    ("stripped-digest", in_warc(strip_block_digest), ["{record}: no WARC-Block-Digest"]),
    ("edited-datapackage",
     lambda m: m | {"datapackage.json": m["datapackage.json"].replace(b"evidence", b"evidenc3")},
     ["datapackage.json: does not match the hash in datapackage-digest.json"]),
    ("hash-dropped-from-datapackage", no_hash, ["indexes/index.cdxj: no hash in datapackage.json"]),
    ("removed-file", lambda m: {k: v for k, v in m.items() if k != "pages/pages.jsonl"},
     ["pages/pages.jsonl: listed in datapackage.json but missing"]),
    ("added-file", lambda m: m | {"notes/added.txt": b"hello"},
     ["notes/added.txt: not listed in datapackage.json"]),
    ("missing-datapackage-digest",
     lambda m: {k: v for k, v in m.items() if k != "datapackage-digest.json"},
     ["datapackage-digest.json: missing"]),
    ("missing-datapackage", lambda m: {k: v for k, v in m.items() if k != "datapackage.json"},
     ["datapackage.json: missing", "archive/data.warc.gz: not listed in datapackage.json"]),
    ("dotdot-member", lambda m: m | {"../evil.txt": b"x"}, ["../evil.txt: path escapes"]),
    ("dotdot-inside-member", lambda m: m | {"pages/../../evil.txt": b"x"},
     ["pages/../../evil.txt: path escapes"]),
    ("absolute-member", lambda m: m | {"/tmp/evil.txt": b"x"}, ["/tmp/evil.txt: absolute path"]),
    ("backslash-member", lambda m: m | {"..\\evil.txt": b"x"},
     ["..\\evil.txt: backslash in member name"]),
    ("drive-letter-member", lambda m: m | {"C:/evil.txt": b"x"}, ["C:/evil.txt: absolute path"]),
    ("duplicate-member", lambda m: [*m.items(), ("pages/pages.jsonl", b"{}")],
     ["pages/pages.jsonl: duplicate member"]),
    ("symlink-member", link, ["archive/link.warc: symbolic link"]),
    ("zip-bomb", lambda m: m | {"bomb.bin": bytes(8 * 1024 * 1024)},
     ["bomb.bin: compression ratio", "(zip bomb?)"]),
    ("index-points-nowhere",
     with_index(lambda text: text.replace('"offset": "', '"offset": "1', 1)),
     ["indexes/index.cdxj:1: offset 1"]),
    ("index-unsorted",
     with_index(lambda text: "\n".join(reversed(text.splitlines())) + "\n"),
     ["indexes/index.cdxj:2: not sorted"]),
    ("pages-not-json", lambda m: resign(m | {"pages/pages.jsonl": b"{}\nnope\n"},
                                        "pages/pages.jsonl"),
     ["pages/pages.jsonl:1: lacks format or id", "pages/pages.jsonl:2: not JSON"]),
    ("pages-line-too-long", lambda m: resign(
        m | {"pages/pages.jsonl": m["pages/pages.jsonl"] + b" " * (2 * 1024 * 1024) + b"\n"},
        "pages/pages.jsonl"),
     ["pages/pages.jsonl: unreadable", "longer than 1,048,576 bytes"]),
]  # fmt: skip


REFUSED_UNREAD = {
    "dotdot-member", "dotdot-inside-member", "absolute-member", "backslash-member",
    "drive-letter-member", "duplicate-member", "symlink-member", "zip-bomb",
}  # fmt: skip


def unreadable(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a member was opened")


@pytest.mark.parametrize(
    ("change", "expected"),
    [pytest.param(change, expected, id=name) for name, change, expected in WACZ_TAMPERING],
)
def test_verify_fails_on_each_tampered_wacz_naming_the_culprit(
    built: Built,
    tmp_path: Path,
    change: Callable[[Members], Any],
    expected: list[str],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert verify(built.wacz).ok  # the untouched bundle passes
    tampered = tmp_path / "tampered.wacz"
    with zipfile.ZipFile(built.wacz) as package:
        members = {info.filename: package.read(info) for info in package.infolist()}
    changed = change(dict(members))
    write_zip(tampered, list(changed.items()) if isinstance(changed, dict) else changed)
    offset, record_id = record_of(dict(members)[WARC], "1")
    report = verify(tampered)
    assert not report.ok
    if request.node.callspec.id in REFUSED_UNREAD:  # refused from the zip directory alone
        monkeypatch.setattr(zipfile.ZipFile, "open", unreadable)
        assert verify(tampered).problems == report.problems
        assert report.checked == 0
    for text in expected:
        text = text.format(record=f"{WARC}#{offset} {record_id} {PAGE}")
        assert any(text in problem for problem in report.problems), (text, report.problems)
    assert all("\n" not in problem for problem in report.problems)


# (id, change to the file, the problem line's start, whether import refuses the file too)
WARC_TAMPERING: list[tuple[str, Callable[[bytes], bytes], str, bool]] = [
    ("flipped-byte-in-record", lambda w: edit_record(w, "1", flip_payload),
     "{record}: WARC-Payload-Digest mismatch", True),
    ("stripped-digest", lambda w: edit_record(w, "1", strip_block_digest),
     "{record}: no WARC-Block-Digest", False),  # other tools' WARCs may lack digests
    ("flipped-compressed-byte", lambda w: flip_at(w, record_of(w, "1")[0] + 200),
     "evidence.warc.gz#{offset}: malformed", True),
    ("truncated", lambda w: w[: record_of(w, "1")[0] + 100],
     "evidence.warc.gz#{offset}: truncated", True),
    ("truncated-in-payload", lambda w: w[: end_of(w, "1") - 12],
     "{record}: truncated: ", True),
]  # fmt: skip


def end_of(warc: bytes, capture_id: str) -> int:
    offset = record_of(warc, capture_id)[0]
    return next(o + length for o, length in member_lengths(warc) if o == offset)


def flip_at(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x20]) + data[index + 1 :]


@pytest.mark.parametrize(
    ("change", "expected", "refused"),
    [pytest.param(*case, id=name) for name, *case in WARC_TAMPERING],
)
def test_verify_fails_on_each_tampered_warc_naming_the_record(
    built: Built, tmp_path: Path, change: Callable[[bytes], bytes], expected: str, refused: bool
) -> None:
    original = built.warc.read_bytes()
    assert verify(built.warc).ok
    tampered = tmp_path / "evidence.warc.gz"
    tampered.write_bytes(change(original))
    offset, record_id = record_of(original, "1")
    report = verify(tampered)
    text = expected.format(record=f"evidence.warc.gz#{offset} {record_id} {PAGE}", offset=offset)
    assert any(problem.startswith(text) for problem in report.problems), (text, report.problems)
    if refused:  # import refuses it too, naming file and offset
        with pytest.raises(BundleError, match=rf"evidence\.warc\.gz#{offset}: "):
            list(read_responses(tampered))


def test_declared_size_and_member_count_caps(built: Built) -> None:
    report = verify(built.wacz, ZipLimits(max_total=1000))
    assert not report.ok and "over the cap of 1,000 (zip bomb?)" in report.problems[0]
    report = verify(built.wacz, ZipLimits(max_members=3))
    assert report.problems == ("5 members, over the cap of 3 (zip bomb?)",)


def test_import_refuses_an_unsafe_package_before_reading_it(built: Built, tmp_path: Path) -> None:
    unsafe = tmp_path / "unsafe.wacz"
    rezip(built.wacz, unsafe, lambda m: m | {"../../evil.txt": b"x"})
    with pytest.raises(BundleError, match=r"unsafe\.wacz: refused: \.\./\.\./evil\.txt: path"):
        list(read_responses(unsafe))
    with pytest.raises(BundleError, match="refused"):
        read_metadata(unsafe)


def test_what_cannot_be_opened_at_all_raises_one_line(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"missing\.wacz: cannot open"):
        verify(tmp_path / "missing.wacz")
    text = tmp_path / "notes.warc"
    text.write_text("just some text\n")
    with pytest.raises(BundleError, match=r"notes\.warc: not a WARC or WACZ file"):
        verify(text)
    with pytest.raises(BundleError, match=r"notes\.warc#0: malformed WARC: Unknown archive format"):
        list(read_responses(text))


# --- the pieces ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        (("Content-Type", "text/html"), ("Transfer-Encoding", "chunked")),
        (("content-length", "12"), ("X-Archive-Orig-Transfer-Encoding", "from the server")),
        (("Content-Length", "5"), ("Vary", "Accept-Encoding"), ("Content-Length", "5")),
    ],
    ids=["chunked", "lying-length-and-odd-header", "double-length"],
)
def test_the_framing_rule_is_undone_exactly(headers: tuple[tuple[str, str], ...]) -> None:
    archived, renamed = archival_headers(headers, 5)
    assert not any(name.lower() == "transfer-encoding" for name, _ in archived)
    assert [v for n, v in archived if n.lower() == "content-length"] in ([], ["5"], ["5", "5"])
    assert restore_headers(archived, ", ".join(renamed)) == headers


@pytest.mark.parametrize(
    "text",
    [
        "sha256:" + sha(b"x"),
        "sha256:" + sha(b"x").upper(),
        "SHA-256:" + __import__("base64").b32encode(hashlib.sha256(b"x").digest()).decode(),
        "sha256:" + __import__("base64").b64encode(hashlib.sha256(b"x").digest()).decode(),
    ],
    ids=["hex", "upper-hex", "base32", "base64"],
)
def test_digests_are_read_in_every_encoding(text: str) -> None:
    assert Digest.parse(text).matches(b"x") and not Digest.parse(text).matches(b"y")


def test_unreadable_digests_are_refused() -> None:
    for text in ("sha256:nothex", "crc32:abcd", "no-colon"):
        with pytest.raises(ValueError):
            Digest.parse(text)


def test_every_flipped_bit_of_a_wacz_fails_verify_in_one_line_or_leaves_its_content_intact(
    built: Built, tmp_path: Path
) -> None:
    """A corrupted package never makes verify crash, whatever byte was hit; where it passes,
    only the zip's own bookkeeping was hit, never what the manifest hashes."""
    original = built.wacz.read_bytes()
    copy = tmp_path / "flipped.wacz"
    for offset in range(0, len(original), max(1, len(original) // 600)):
        data = bytearray(original)
        data[offset] ^= 0x10
        copy.write_bytes(bytes(data))
        try:
            report = verify(copy)
        except BundleError:
            continue  # not a zip any more: one line, from the CLI
        if report.ok:
            with zipfile.ZipFile(copy) as flipped, zipfile.ZipFile(built.wacz) as intact:
                for name in intact.namelist():
                    assert flipped.read(name) == intact.read(name), (offset, name)
