"""Time `pagewatch check` passes, as whole processes, over a farm of local pages.

    python benchmarks/check_pass.py [--n 1000] [--keep]

Prints wall time, CPU time, peak RSS and pages/s for: the first pass (seed), a pass with nothing
changed (steady), and the pass after ~2% of pages changed (switch); and checks that exactly the
pages whose phrase went raised a removal. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from farm import Nginx, build, switch


def timed(args: list[str]) -> dict[str, float]:
    """Run a command; return its wall, CPU (user+sys) and peak RSS, as the kernel counted them."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{err}")
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
            "out": out.strip()}  # type: ignore[dict-item]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="keep the farm and workspace")
    opts = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="pagewatch-bench-"))
    print(f"building a farm of {opts.n} pages in {base} ...", flush=True)
    farm = build(base / "farm", opts.n)
    ws = base / "ws"
    pw = [sys.executable, "-m", "pagewatch", "--workspace", str(ws)]
    subprocess.run([*pw, "init"], check=True, capture_output=True)
    with Nginx(base / "farm") as nginx:
        lines = ['every = "1h"', "[phrases]", 'uyghur = ["Uyghur", "Uighur", "维吾尔"]', ""]
        lines += [f'[[watch]]\nurl = "{nginx.url(i)}"\n' for i in range(opts.n)]
        (ws / "watchlists" / "farm.toml").write_text("\n".join(lines), encoding="utf-8")
        rows = []
        for label in ("seed", "steady", "switch"):
            if label == "switch":
                switch(base / "farm", 2)
            result = timed([*pw, "check"])
            rows.append((label, result))
        alerts = json.loads(subprocess.run([*pw, "alerts", "--json"], check=True,
                                           capture_output=True, text=True).stdout)  # fmt: skip
    blobs = sum(p.stat().st_size for p in (ws / "snapshots").rglob("*.gz"))
    captures = opts.n * 3

    print(f"\npagewatch check over {opts.n} pages (nginx on 127.0.0.1, {os.cpu_count()} cores)")
    print(
        f"{'pass':<8}{'wall s':>9}{'CPU s':>9}{'ms CPU/page':>13}{'pages/s':>10}{'peak RSS MB':>13}"
    )
    for label, r in rows:
        print(f"{label:<8}{r['wall']:>9.2f}{r['cpu']:>9.2f}{1000 * r['cpu'] / opts.n:>13.2f}"
              f"{opts.n / r['wall']:>10.0f}{r['rss_mb']:>13.0f}")  # fmt: skip
    for label, r in rows:
        print(f"  {label}: {r['out'].splitlines()[0]}")
    print(f"snapshot bytes on disk: {blobs:,} ({blobs / captures:,.0f} per capture over 3 passes)")

    expected = sorted(nginx.url(i) for i in farm.removed if i in farm.flagged)
    found = sorted(a["url"] for a in alerts if a["kind"] == "removed")
    verdict = "exactly the changed pages" if found == expected else "MISMATCH"
    print(f"removal alerts: {len(found)} (expected {len(expected)}): {verdict}")
    if not opts.keep:
        import shutil

        shutil.rmtree(base, ignore_errors=True)
    if found != expected:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
