"""Time evidence bundles: export (write), import (read back) and verify, on synthetic captures.

    python benchmarks/bundle.py [--n 2000] [--kb 40] [--unchanged 0.9]

Builds ``n`` captures of ``kb``-KB HTML pages (varied markup and text with the flagged phrases,
so it compresses like real pages), in memory, then times, for .wacz and .warc.gz: `write_bundle`,
`read_responses` (all bodies back, digests checked) and `verify`. Two histories: every capture
distinct (all response records), and one where a share of captures repeat the previous body of
their page (revisit records), as an unchanged vendor page does. Nothing touches the network.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pagewatch.bundle import read_responses, verify, write_bundle
from pagewatch.models import StoredCapture

PHRASES = ["Uyghur", "Uighur", "维吾尔", "ethnic minority", "face attributes", "glasses"]
TAGS = ["p", "li", "td", "span", "code"]


def vocabulary(rng: random.Random) -> list[str]:
    """English as the project writes it: the words of its README and docs."""
    root = Path(__file__).resolve().parent.parent
    text = " ".join(
        p.read_text(encoding="utf-8") for p in [root / "README.md", *root.glob("docs/*.md")]
    )
    words = [w for w in re.findall(r"[A-Za-z]{2,}", text)]
    rng.shuffle(words)
    return words + PHRASES


def page(rng: random.Random, words: list[str], size: int) -> bytes:
    """An HTML page of about ``size`` bytes: nested markup, classes, links and varied text."""
    parts = [
        '<!doctype html><html><head><meta charset="utf-8"><title>API guide</title>'
        '<link rel="stylesheet" href="/static/site.css"></head><body><main id="content">'
    ]
    length = sum(map(len, parts))
    while length < size:
        tag = rng.choice(TAGS)
        text = " ".join(rng.choices(words, k=rng.randint(8, 40)))
        href = f"/docs/{rng.choice(words)}/{rng.randint(1, 999)}"
        chunk = (
            f'<div class="section s{rng.randint(1, 40)}"><{tag} class="{rng.choice(words)}">'
            f'{text} <a href="{href}">{rng.choice(words)}</a></{tag}></div>\n'
        )
        parts.append(chunk)
        length += len(chunk.encode())
    return ("".join(parts) + "</main></body></html>").encode()[:size]


def history(n: int, kb: int, unchanged: float) -> tuple[list[StoredCapture], dict[str, bytes]]:
    rng = random.Random(7)
    words = vocabulary(rng)
    bodies: dict[str, bytes] = {}
    captures = []
    urls = [f"https://vendor{i % 50}.example/docs/page-{i}" for i in range(max(1, n // 20))]
    last: dict[str, str] = {}
    start = datetime(2020, 11, 2, tzinfo=UTC)
    for number in range(n):
        url = urls[number % len(urls)]
        if url in last and rng.random() < unchanged:
            digest = last[url]
        else:
            body = page(rng, words, kb * 1024)
            digest = hashlib.sha256(body).hexdigest()
            bodies[digest] = body
        last[url] = digest
        headers = (("Content-Type", "text/html; charset=utf-8"), ("Transfer-Encoding", "chunked"))
        captured = start + timedelta(minutes=number, microseconds=number)
        captures.append(
            StoredCapture(number + 1, "bench", url, url, 200, headers, digest, captured,
                          f"chain-{number}", "live")
        )  # fmt: skip
    return captures, bodies


def timed(action: Callable[[], Any]) -> tuple[tuple[float, float], Any]:
    """(wall seconds, CPU seconds of this process) and the result."""
    started, cpu = time.perf_counter(), time.process_time()
    result = action()
    return (time.perf_counter() - started, time.process_time() - cpu), result


def rate(n: int, seconds: tuple[float, float]) -> str:
    """Captures per wall second (per CPU second): the second holds on a busy machine."""
    wall, cpu = seconds
    return f"{n / wall:>6,.0f} ({n / max(cpu, 1e-9):>5,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--kb", type=int, default=40)
    parser.add_argument("--unchanged", type=float, default=0.9)
    opts = parser.parse_args()
    metadata: dict[str, Any] = {"format": "pagewatch-bundle/1", "captures": {}}
    print(f"{opts.n} captures of {opts.kb} KB pages; Python {sys.version.split()[0]}")
    print("captures per second of wall time (and of CPU time)")
    print(f"{'history':<20} {'format':<8} {'export':>14} {'import':>14} {'verify':>14} {'MB':>6}")
    for label, share in (
        ("every page distinct", 0.0),
        (f"{share_text(opts)} unchanged", opts.unchanged),
    ):
        captures, bodies = history(opts.n, opts.kb, share)
        raw_mb = sum(len(b) for b in bodies.values()) / 1e6
        with tempfile.TemporaryDirectory(prefix="pagewatch-bench-") as folder:
            for suffix in (".wacz", ".warc.gz"):
                out = Path(folder) / f"bench{suffix}"
                write_s, summary = timed(
                    lambda out=out, captures=captures, bodies=bodies: write_bundle(
                        out, captures, bodies.__getitem__, metadata,
                        created=datetime(2021, 1, 1, tzinfo=UTC),
                    )
                )  # fmt: skip
                read_s, count = timed(lambda out=out: sum(1 for _ in read_responses(out)))
                verify_s, report = timed(lambda out=out: verify(out))
                assert count == opts.n and report.ok, (count, report.problems[:3])
                print(
                    f"{label:<20} {suffix:<8} {rate(opts.n, write_s)} {rate(opts.n, read_s)}"
                    f" {rate(opts.n, verify_s)} {summary.bytes / 1e6:>6.1f}"
                    f"  ({summary.responses} responses, {summary.revisits} revisits,"
                    f" {raw_mb:.0f} MB of bodies)"
                )


def share_text(opts: argparse.Namespace) -> str:
    return f"{opts.unchanged:.0%}"


if __name__ == "__main__":
    main()
