"""Time evidence through the command line, as whole processes: import and export of a workspace.

    python benchmarks/evidence.py [--pages 100] [--captures 20] [--kb 40]

Writes a foreign-style WARC (warcio, as a crawler would) holding ``captures`` dated captures of
each of ``pages`` watched pages (``kb``-KB HTML; each page loses its flagged phrase once, half
way), then times:

1. ``pagewatch import crawl.warc.gz`` into a workspace that watches those pages (every response
   classified and counted, stored, then each watch's timeline decided again);
2. ``pagewatch export`` of that workspace to .wacz and to .warc.gz;
3. ``pagewatch verify`` of each bundle;
4. ``pagewatch import`` of the .wacz into an empty workspace (the round trip), and checks that it
   holds the same alerts with the same windows.

Prints captures/s for each, with CPU time and peak RSS. Nothing touches the network.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

sys.path.insert(0, str(Path(__file__).parent))
from bundle import page, vocabulary
from check_pass import timed

START = datetime(2020, 1, 1, tzinfo=UTC)


def crawl(path: Path, pages: int, captures: int, kb: int) -> list[str]:
    """A WARC of every page's captures, 6 h apart; returns the page URLs."""
    rng = random.Random(7)
    words = vocabulary(rng)
    urls = [f"https://vendor{n % 7}.example/docs/guide-{n}" for n in range(pages)]
    with path.open("wb") as raw:
        writer = WARCWriter(raw, gzip=True)
        for number, url in enumerate(urls):
            text = page(rng, words, kb * 1024)
            text = text[: text.rindex(b"</div>") + 6]  # whole elements only
            with_phrase = text + b"<p>Attribute: Is it Uyghur (boolean).</p></main></body></html>"
            without = text + b"</main></body></html>"
            for step in range(captures):
                body = with_phrase if step < captures // 2 else without
                moment = START + timedelta(hours=6 * step, minutes=number % 60)
                headers = StatusAndHeaders(
                    "200 OK",
                    [("Content-Type", "text/html; charset=utf-8"),
                     ("Content-Length", str(len(body)))],
                    protocol="HTTP/1.1",
                )  # fmt: skip
                record = writer.create_warc_record(
                    url,
                    "response",
                    payload=io.BytesIO(body),
                    http_headers=headers,
                    warc_headers_dict={"WARC-Date": moment.isoformat().replace("+00:00", "Z")},
                )
                writer.write_record(record)
    return urls


def pw(workspace: Path, *args: str) -> dict[str, float]:
    return timed(["pagewatch", "--workspace", str(workspace), *args])


def alerts(workspace: Path) -> list[tuple[str, str, str, str]]:
    out = subprocess.run(
        ["pagewatch", "--workspace", str(workspace), "alerts", "--json", "--status", "all"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return sorted((a["url"], a["kind"], a["last_seen_at"], a["first_missing_at"])
                  for a in json.loads(out))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--captures", type=int, default=20)
    parser.add_argument("--kb", type=int, default=40)
    args = parser.parse_args()
    total = args.pages * args.captures
    rows = []
    with tempfile.TemporaryDirectory(prefix="pagewatch-bench-evidence-") as tmp:
        base = Path(tmp)
        warc = base / "crawl.warc.gz"
        urls = crawl(warc, args.pages, args.captures, args.kb)
        workspace = base / "ws"
        subprocess.run(["pagewatch", "--workspace", str(workspace), "init"], check=True,
                       capture_output=True)  # fmt: skip
        lines = ['every = "6h"', "[phrases]", 'uyghur_attribute = ["Is it Uyghur"]']
        lines += [f'[[watch]]\nurl = "{url}"' for url in urls]
        (workspace / "watchlists" / "vendors.toml").write_text("\n".join(lines) + "\n")
        print(f"{total} captures of {args.pages} pages, {args.kb} KB each; WARC "
              f"{warc.stat().st_size / 1e6:.1f} MB", flush=True)  # fmt: skip

        rows.append(("import crawl.warc.gz (foreign WARC)", pw(workspace, "import", str(warc))))
        expected = alerts(workspace)
        assert len(expected) == args.pages, f"expected one removal per page: {len(expected)}"
        for name in ("all.wacz", "all.warc.gz"):
            figures = pw(workspace, "export", "--out", str(base / name))
            rows.append((f"export --out {name}", figures))
        for name in ("all.wacz", "all.warc.gz"):
            rows.append((f"verify {name}", pw(workspace, "verify", str(base / name))))
        fresh = base / "fresh"
        rows.append(("import all.wacz (round trip)", pw(fresh, "import", str(base / "all.wacz"))))
        assert alerts(fresh) == expected, "the round trip changed the alerts"
        size = (base / "all.wacz").stat().st_size / 1e6

    print(f"\n{'step':<38} {'wall s':>7} {'CPU s':>7} {'captures/s':>11} {'peak RSS':>9}")
    for label, figures in rows:
        print(f"{label:<38} {figures['wall']:7.2f} {figures['cpu']:7.2f}"
              f" {total / figures['wall']:11.0f} {figures['rss_mb']:7.0f} MB")  # fmt: skip
    print(f"\n.wacz: {size:.1f} MB for {total} captures; round trip: the same {len(expected)}"
          " alerts with the same windows")  # fmt: skip


if __name__ == "__main__":
    main()
