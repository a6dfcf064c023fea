"""pagewatch against urlwatch, timed as whole processes, in one run on one local page farm.

    python benchmarks/compare.py [--n 1000] [--curve 1000,2000,5000,10000] [--keep]

One farm of N vendor-style pages (farm.py: 30-80 KB HTML, one in ten Chinese) is served by nginx
on 127.0.0.1; nothing else is contacted. In turn, on the same farm:

  pagewatch check (seed)     urlwatch (first run)     every page new
  pagewatch check (steady)   urlwatch (steady run)    nothing changed
  -- the farm switches v1 -> v2: ~2% of pages change, half of those lose "Uyghur" --
  pagewatch check (switch)   urlwatch (after switch)

Each is one process, timed by the kernel: wall, CPU user+sys of the process and of its children
(os.wait4, so pagewatch's process-pool workers count), and peak RSS. ru_maxrss is the peak of the
*largest single* process, so the tree's memory (the sum over the process and its children,
PSS, sampled every 50 ms from /proc) is shown beside it. Then it checks that each tool found
exactly the changed pages: pagewatch's `alerts --json` removals are the pages that lost the
phrase; urlwatch's reported CHANGED jobs are all changed pages (and its first run reports every
page NEW, its steady run nothing).

pagewatch: this checkout, installed with pip (not editable) into its own virtualenv
(benchmarks/out/pagewatch/, made if missing, pagewatch reinstalled every run), so each tool runs
with its own dependencies only and the bytecode pip compiled, as a user's install does.

urlwatch: pinned to 2.29, installed from the package index with pip into its own virtualenv
(benchmarks/out/urlwatch-2.29/, made if missing; --venv to choose another). Every job is a plain
URL job with `filter: html2text`, the filter urlwatch's documentation gives for watching a page's
text; with no method given, 2.29 uses its built-in regex tag stripper ("re"), which needs no extra
package and is the cheapest text filter it has (the `pyhtml2text` and `bs4` methods are several
times slower), so urlwatch's figures are its best case for text. Its cache is a minidb SQLite file
in the run's temp dir, HOME and XDG_* point there too, and the only reporter is stdout (no colour,
diffs of changed pages only), redirected to a file and parsed for the NEW/CHANGED/ERROR lines.

pagewatch runs with its defaults, including the 3 s `--confirm-delay`: before a removal alert,
it fetches the page again after that pause (a CDN flapping between versions must not raise a false
alert). The switch pass therefore contains at least 3 s of deliberate waiting; the table says so
rather than hiding it. `--confirm-delay S` passes another value through (then it is printed too).

Storage: after each pagewatch pass, the bytes under the workspace's snapshots/ (apparent and
allocated) and the database, per capture, and what a steady pass added (should be 0 blob bytes).

--curve N1,N2,... : for each N, a fresh workspace over the first N pages of one farm (built once
at the largest N, v1 only unless the main farm is big enough), a seed pass and then a steady pass;
it prints the steady pass's CPU ms/page, pages/s and peak memory per N: is cost per page flat?
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from farm import Farm, Nginx, build, page, switch

URLWATCH_VERSION = "2.29"
HERE = Path(__file__).resolve().parent
DEFAULT_VENV = HERE / "out" / f"urlwatch-{URLWATCH_VERSION}"
PAGEWATCH_VENV = HERE / "out" / "pagewatch"
PHRASES = 'uyghur = ["Uyghur", "Uighur", "维吾尔"]'
SUMMARY = re.compile(r"checked (\d+), changed (\d+), failed (\d+), new alerts (\d+)")
UW_LINE = re.compile(r"^\d+\. (NEW|CHANGED|ERROR|UNCHANGED): (\S+)")


class BenchError(Exception):
    """A step failed; the message says which and where its output is."""


# --- timing whole processes ------------------------------------------------------------------


@dataclass
class Run:
    label: str
    wall: float
    cpu: float
    maxrss_mb: float  # the largest single process of the tree (kernel's ru_maxrss)
    tree_mb: float  # peak of the summed PSS of the process and its descendants (sampled)
    out: str
    extra: dict[str, object] = field(default_factory=dict)

    def per_page_ms(self, n: int) -> float:
        return 1000 * self.cpu / n


def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return pids


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class TreeSampler(threading.Thread):
    """Peak of the summed PSS of a process tree, read from /proc every `period` seconds."""

    def __init__(self, pid: int, period: float = 0.05):
        super().__init__(daemon=True)
        self.pid, self.period, self.peak_kb = pid, period, 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak_kb = max(self.peak_kb, sum(_pss_kb(p) for p in _tree(self.pid)))
            self.stop.wait(self.period)


def timed(label: str, args: list[str], logs: Path, env: dict[str, str] | None = None,
          timeout: float = 3600) -> Run:  # fmt: skip
    """Run a command to completion, output to files; its wall, CPU and memory as the kernel saw."""
    logs.mkdir(parents=True, exist_ok=True)
    out_path, err_path = logs / f"{label}.out", logs / f"{label}.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdout=out, stderr=err, env=env, start_new_session=True)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        killer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C: the child is in its own session, so end it here
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        finally:
            killer.cancel()
            sampler.stop.set()
            sampler.join()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        tail = err_path.read_text(errors="replace")[-2000:] or out_path.read_text()[-2000:]
        why = f"killed after {timeout:.0f} s" if wall >= timeout else f"exit {proc.returncode}"
        raise BenchError(f"{label}: {' '.join(args[:4])} ... failed ({why}); "
                         f"output in {logs}:\n{tail}")  # fmt: skip
    return Run(label, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024,
               sampler.peak_kb / 1024, out_path.read_text(errors="replace"))  # fmt: skip


# --- storage ---------------------------------------------------------------------------------


def disk(path: Path) -> tuple[int, int, int]:
    """Files, apparent bytes and allocated bytes under path."""
    files = apparent = allocated = 0
    for p in path.rglob("*"):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            files, apparent, allocated = (
                files + 1,
                apparent + st.st_size,
                allocated + 512 * st.st_blocks,
            )
    return files, apparent, allocated


def db_bytes(ws: Path) -> int:
    return sum(p.stat().st_size for p in ws.glob("pagewatch.db*") if p.is_file())


# --- the two tools ---------------------------------------------------------------------------


def ensure_urlwatch(venv: Path) -> Path:
    """The urlwatch executable of a virtualenv holding urlwatch==2.29; made with pip if missing."""
    exe = venv / "bin" / "urlwatch"

    def version() -> str | None:
        if not exe.exists():
            return None
        done = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
        return done.stdout.split()[-1] if done.returncode == 0 and done.stdout.split() else None

    if version() == URLWATCH_VERSION:
        return exe
    print(f"installing urlwatch=={URLWATCH_VERSION} into {venv} ...", flush=True)
    try:
        if not (venv / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                        f"urlwatch=={URLWATCH_VERSION}"], check=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BenchError(
            f"could not install urlwatch=={URLWATCH_VERSION} in {venv}: {exc}"
        ) from exc
    got = version()
    if got != URLWATCH_VERSION:
        raise BenchError(f"{exe} reports version {got!r}, wanted {URLWATCH_VERSION}")
    return exe


def ensure_pagewatch(venv: Path) -> Path:
    """The python of a virtualenv holding this checkout of pagewatch, installed (not editable)
    with pip as a user would, so it is timed with its own dependencies only and its compiled
    bytecode, as urlwatch is; reinstalled on every run so it is the code being measured."""
    python = venv / "bin" / "python"
    root = HERE.parent
    print(f"installing this checkout of pagewatch into {venv} ...", flush=True)
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", str(root)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps",
                        "--force-reinstall", str(root)], check=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        raise BenchError(f"could not install pagewatch in {venv}: {exc}") from exc
    return python


class Pagewatch:
    def __init__(self, python: Path, ws: Path, urls: list[str], confirm_delay: float | None):
        self.ws = ws
        self.cmd = [str(python), "-m", "pagewatch", "--workspace", str(ws)]
        self.check_args = ["check"]
        if confirm_delay is not None:
            self.check_args += ["--confirm-delay", str(confirm_delay)]
        done = subprocess.run([*self.cmd, "init"], capture_output=True, text=True)
        if done.returncode:
            raise BenchError(f"pagewatch init failed: {done.stderr or done.stdout}")
        lines = ['every = "1h"', "[phrases]", PHRASES, ""]
        lines += [f'[[watch]]\nurl = "{u}"\n' for u in urls]
        (ws / "watchlists" / "farm.toml").write_text("\n".join(lines), encoding="utf-8")
        self.n = len(urls)

    def check(self, label: str, logs: Path) -> Run:
        run = timed(f"pagewatch-{label}", [*self.cmd, *self.check_args], logs)
        m = SUMMARY.search(run.out)
        if not m:
            raise BenchError(f"pagewatch {label}: no summary line in its output:\n{run.out[:500]}")
        checked, changed, failed, new_alerts = map(int, m.groups())
        run.extra = {"summary": m.group(0), "checked": checked, "changed": changed,
                     "failed": failed, "new_alerts": new_alerts}  # fmt: skip
        if checked != self.n or failed:
            raise BenchError(
                f"pagewatch {label}: {m.group(0)} (expected {self.n} checked, 0 failed)"
            )
        files, apparent, allocated = disk(self.ws / "snapshots")
        run.extra.update(blob_files=files, blob_bytes=apparent, blob_alloc=allocated,
                         db_bytes=db_bytes(self.ws))  # fmt: skip
        return run

    def removals(self) -> list[str]:
        done = subprocess.run([*self.cmd, "alerts", "--json"], capture_output=True, text=True)
        if done.returncode:
            raise BenchError(f"pagewatch alerts --json failed: {done.stderr}")
        return sorted(a["url"] for a in json.loads(done.stdout) if a["kind"] == "removed")


class Urlwatch:
    def __init__(self, exe: Path, home: Path, urls: list[str]):
        self.exe, self.home, self.n = exe, home, len(urls)
        home.mkdir(parents=True, exist_ok=True)
        jobs = "---\n".join(f"url: {u}\nfilter: html2text\n" for u in urls)
        (home / "urls.yaml").write_text(jobs, encoding="utf-8")
        # Only the keys that differ from urlwatch's defaults: stdout without colour, the text
        # report without its footer, no empty diffs; every other reporter is off by default.
        (home / "urlwatch.yaml").write_text(
            "display: {new: true, error: true, unchanged: false, empty-diff: false}\n"
            "report:\n"
            "  text: {details: true, footer: false, minimal: false, separate: false}\n"
            "  stdout: {enabled: true, color: false}\n",
            encoding="utf-8",
        )
        (home / "hooks.py").write_text("", encoding="utf-8")
        self.cache = home / "cache.db"
        self.env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                    "XDG_CACHE_HOME": str(home / ".cache"), "NO_COLOR": "1"}  # fmt: skip

    def run(self, label: str, logs: Path) -> Run:
        args = [str(self.exe), "--urls", str(self.home / "urls.yaml"), "--config",
                str(self.home / "urlwatch.yaml"), "--hooks", str(self.home / "hooks.py"),
                "--cache", str(self.cache)]  # fmt: skip
        run = timed(f"urlwatch-{label}", args, logs, env=self.env)
        verbs: dict[str, set[str]] = {}
        for line in run.out.splitlines():
            m = UW_LINE.match(line)
            if m:
                verbs.setdefault(m.group(1), set()).add(m.group(2))
        run.extra = {"verbs": verbs, "cache_bytes": self.cache.stat().st_size,
                     "summary": ", ".join(f"{k.lower()} {len(v)}" for k, v in sorted(verbs.items()))
                     or "nothing reported"}  # fmt: skip
        return run


# --- the comparison --------------------------------------------------------------------------


def _median_run(runs: list[Run], label: str) -> Run:
    """The run of median wall time (a shared machine's noise spreads single runs widely), with
    the storage figures of the first run (what one pass added) and what every run reported:
    each run's summary, and for urlwatch the pages any run reported, so that a repeated pass
    that saw something is a mismatch."""
    middle = sorted(runs, key=lambda r: r.wall)[len(runs) // 2]
    extra = {**middle.extra, **runs[0].extra}
    extra["summary"] = " / ".join(dict.fromkeys(str(r.extra["summary"]) for r in runs))
    if "verbs" in extra:
        verbs: dict[str, set[str]] = {}
        for r in runs:
            for verb, pages in r.extra["verbs"].items():  # type: ignore[attr-defined]
                verbs.setdefault(verb, set()).update(pages)
        extra["verbs"] = verbs
    return replace(middle, label=label, extra=extra)


def _walls(walls: list[float]) -> str:
    return " ".join(f"{w:.2f}" for w in walls)


def compare(
    base: Path, farm: Farm, nginx: Nginx, opts: argparse.Namespace, uw_exe: Path, pw_python: Path
) -> bool:
    n = farm.n
    urls = [nginx.url(i) for i in range(n)]
    logs = base / "logs"
    pw = Pagewatch(pw_python, base / "ws", urls, opts.confirm_delay)
    uw = Urlwatch(uw_exe, base / "urlwatch", urls)
    # The fixed cost of a process that fetches nothing: interpreter, imports, argument parsing.
    pw_start = timed("pagewatch-startup", [*pw.cmd, "check", "--help"], logs)
    uw_start = timed("urlwatch-startup", [str(uw_exe), "--version"], logs, env=uw.env)
    pw_runs: list[Run] = []
    uw_runs: list[Run] = []
    steady_walls: dict[str, list[float]] = {"pagewatch": [], "urlwatch": []}
    for label in ("seed", "steady", "switch"):
        if label == "switch":
            switch(farm.root, 2)
        tries: list[tuple[Run, Run]] = []
        for attempt in range(opts.steady_runs if label == "steady" else 1):
            name = f"{label}{attempt + 1}" if attempt else label
            print(f"  pagewatch {name} ...", end=" ", flush=True)
            p = pw.check(name, logs)
            print(f"{p.wall:.1f} s; urlwatch {name} ...", end=" ", flush=True)
            u = uw.run(name, logs)
            print(f"{u.wall:.1f} s", flush=True)
            tries.append((p, u))
        if label == "steady":
            steady_walls = {"pagewatch": [p.wall for p, _ in tries],
                            "urlwatch": [u.wall for _, u in tries]}  # fmt: skip
        pw_runs.append(_median_run([p for p, _ in tries], label))
        uw_runs.append(_median_run([u for _, u in tries], label))
    removals = pw.removals()

    delay = "3 (default)" if opts.confirm_delay is None else f"{opts.confirm_delay:g}"
    where = f"nginx on 127.0.0.1, {os.cpu_count()} cores, Python {sys.version.split()[0]}"
    print(f"\npagewatch vs urlwatch {URLWATCH_VERSION}, N = {n} pages ({where})")
    head = (f"{'tool':<10}{'pass':<8}{'wall s':>8}{'CPU s':>8}{'CPU ms/page':>13}{'pages/s':>9}"
            f"{'max proc MB':>13}{'tree PSS MB':>13}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for tool, runs in (("pagewatch", pw_runs), ("urlwatch", uw_runs)):
        for r in runs:
            print(f"{tool:<10}{r.label.split('-')[-1]:<8}{r.wall:>8.2f}{r.cpu:>8.2f}"
                  f"{r.per_page_ms(n):>13.2f}{n / r.wall:>9.0f}{r.maxrss_mb:>13.0f}"
                  f"{r.tree_mb:>13.0f}")  # fmt: skip
    if len(steady_walls["pagewatch"]) > 1:
        repeats = len(steady_walls["pagewatch"])
        print(f"steady: the median of {repeats} steady passes each (wall s: pagewatch "
              f"{_walls(steady_walls['pagewatch'])}, urlwatch {_walls(steady_walls['urlwatch'])});"
              " storage below is the first's")  # fmt: skip
    print(f"start-up alone (no pages): pagewatch `check --help` {pw_start.wall:.2f} s wall, "
          f"{pw_start.cpu:.2f} s CPU; urlwatch `--version` {uw_start.wall:.2f} s wall, "
          f"{uw_start.cpu:.2f} s CPU (included in every row above)")  # fmt: skip
    print("\nratios, pagewatch against urlwatch (>1 = pagewatch better)")
    print(f"{'pass':<8}{'pages/s pw÷uw':>15}{'CPU/page uw÷pw':>16}{'tree PSS uw÷pw':>16}")
    for p, u in zip(pw_runs, uw_runs, strict=True):
        print(f"{p.label.split('-')[-1]:<8}{u.wall / p.wall:>15.2f}{u.cpu / p.cpu:>16.2f}"
              f"{u.tree_mb / p.tree_mb:>16.2f}")  # fmt: skip
    print("\nwhat each pass reported")
    for p, u in zip(pw_runs, uw_runs, strict=True):
        print(f"  {p.label.split('-')[-1]:<7} pagewatch: {p.extra['summary']}; "
              f"urlwatch: {u.extra['summary']}")  # fmt: skip
    print(
        f"  pagewatch --confirm-delay: {delay} s (switch pass: waits before re-fetching "
        f"pages that would raise a removal; included in its wall time)"
    )
    print(
        "  after the switch every file is new on disk, so nginx's ETag/Last-Modified change "
        "for all pages: both tools re-download all N bodies in the switch pass"
    )

    # storage
    print("\nstorage (pagewatch workspace; urlwatch cache.db for comparison)")
    print(f"{'after':<8}{'blob files':>11}{'blob bytes':>14}{'allocated':>14}{'db bytes':>13}"
          f"{'urlwatch db':>13}")  # fmt: skip
    for p, u in zip(pw_runs, uw_runs, strict=True):
        e = p.extra
        print(f"{p.label.split('-')[-1]:<8}{e['blob_files']:>11,}{e['blob_bytes']:>14,}"
              f"{e['blob_alloc']:>14,}{e['db_bytes']:>13,}"
              f"{u.extra['cache_bytes']:>13,}")  # fmt: skip
    seed, steady, sw = (r.extra for r in pw_runs)
    passes = 2 + opts.steady_runs
    captures = passes * n
    total = int(sw["blob_bytes"]) + int(sw["db_bytes"])
    print(f"  per capture over {passes} passes ({captures:,} captures): "
          f"{int(sw['blob_bytes']) / captures:,.0f} blob bytes, {total / captures:,.0f} "
          f"blob+db bytes; per distinct body stored: "
          f"{int(sw['blob_bytes']) / max(1, int(sw['blob_files'])):,.0f} bytes")  # fmt: skip
    grow_blob = int(steady["blob_bytes"]) - int(seed["blob_bytes"])
    grow_db = int(steady["db_bytes"]) - int(seed["db_bytes"])
    print(
        f"  growth of the steady pass: {grow_blob:,} blob bytes "
        f"({int(steady['blob_files']) - int(seed['blob_files'])} files), {grow_db:,} db bytes "
        f"({grow_db / n:,.0f} per page) -> {'OK' if grow_blob == 0 else 'NOT ZERO'}"
    )

    # correctness
    print("\ncorrectness")
    ok = True
    want_removed = sorted(nginx.url(i) for i in farm.removed if i in farm.flagged)
    good = removals == want_removed
    ok &= good
    print(
        f"  pagewatch removal alerts: {len(removals)} (expected {len(want_removed)}): "
        f"{'exactly the pages that lost the phrase' if good else 'MISMATCH'}"
    )
    if not good:
        print(f"    missing {sorted(set(want_removed) - set(removals))[:10]}")
        print(f"    extra   {sorted(set(removals) - set(want_removed))[:10]}")
    want = {
        "seed": {"NEW": set(urls)},
        "steady": {},
        "switch": {"CHANGED": {nginx.url(i) for i in farm.changed}},
    }
    for u in uw_runs:
        label = u.label.split("-")[-1]
        verbs = u.extra["verbs"]
        assert isinstance(verbs, dict)
        good = verbs == want[label]
        ok &= good
        expect = ", ".join(f"{k.lower()} {len(v)}" for k, v in want[label].items()) or "nothing"
        print(f"  urlwatch {label}: {u.extra['summary']} (expected {expect}): "
              f"{'exact' if good else 'MISMATCH'}")  # fmt: skip
        if not good:
            for verb in set(verbs) | set(want[label]):
                got, exp = verbs.get(verb, set()), want[label].get(verb, set())
                if got != exp:
                    print(
                        f"    {verb}: missing {sorted(exp - got)[:5]} extra {sorted(got - exp)[:5]}"
                    )

    # the targets, for orientation
    p_seed, p_steady, _ = pw_runs
    u_steady = uw_runs[1]
    print("\ntargets (issue 4)")
    checks = [
        ("steady >= 3x urlwatch pages/s", u_steady.wall / p_steady.wall, 3.0),
        ("steady >= 1000 pages/s", n / p_steady.wall, 1000.0),
        ("steady CPU <= 1 ms/page", 1.0 / max(1e-9, p_steady.per_page_ms(n)), 1.0),
        ("seed >= 500 pages/s", n / p_seed.wall, 500.0),
    ]
    for name, value, need in checks:
        shown = (f"{value:.2f}x" if "3x" in name else f"{1 / value:.2f} ms" if "ms" in name
                 else f"{value:.0f}/s")  # fmt: skip
        print(f"  {name:<32}{shown:>12}  {'met' if value >= need else 'NOT met'}")
    if n >= 10_000:
        peak = max(r.tree_mb for r in pw_runs)
        print(f"  {'peak memory <= 150 MB (tree)':<32}{peak:>9.0f} MB  "
              f"{'met' if peak <= 150 else 'NOT met'}")  # fmt: skip
    return ok


def build_v1(folder: Path, n: int, seed: int = 7) -> None:
    """Only v1 of a farm (the curve needs no switch): half the time of farm.build."""
    out = folder / "v1"
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (out / f"p{i}.html").write_text(page(i, 1, seed, i % 5 == 0, False), encoding="utf-8")
    switch(folder, 1)


def curve(
    base: Path,
    sizes: list[int],
    nginx: Nginx,
    confirm_delay: float | None,
    pw_python: Path,
    steady_runs: int = 1,
) -> None:
    rows = []
    for n in sizes:
        ws = base / f"curve-{n}"
        pw = Pagewatch(pw_python, ws, [nginx.url(i) for i in range(n)], confirm_delay)
        print(f"  curve N={n}: seed ...", end=" ", flush=True)
        seed = pw.check(f"curve{n}-seed", base / "logs")
        print(f"{seed.wall:.1f} s; steady ...", end=" ", flush=True)
        tries = [pw.check(f"curve{n}-steady{i + 1}", base / "logs") for i in range(steady_runs)]
        steady = _median_run(tries, "steady")
        print(f"{_walls([t.wall for t in tries])} s", flush=True)
        rows.append((n, seed, steady))
        shutil.rmtree(ws, ignore_errors=True)
    print("\npagewatch cost per page as N grows (fresh workspace per N: seed, then steady;"
          f" the median of {steady_runs} steady passes)")  # fmt: skip
    head = (f"{'N':>7}{'seed p/s':>10}{'seed ms/pg':>12}{'seed tree MB':>14}{'steady p/s':>12}"
            f"{'steady ms/pg':>14}{'max proc MB':>13}{'tree PSS MB':>13}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for n, s, t in rows:
        print(f"{n:>7}{n / s.wall:>10.0f}{s.per_page_ms(n):>12.2f}{s.tree_mb:>14.0f}"
              f"{n / t.wall:>12.0f}{t.per_page_ms(n):>14.2f}{t.maxrss_mb:>13.0f}"
              f"{t.tree_mb:>13.0f}")  # fmt: skip
    if len(rows) > 1:
        (n0, _, t0), (n1, _, t1) = rows[0], rows[-1]
        print(
            f"  steady CPU/page at N={n1} ÷ at N={n0}: "
            f"{t1.per_page_ms(n1) / t0.per_page_ms(n0):.2f} (1.00 = flat); "
            f"steady tree memory {t0.tree_mb:.0f} -> {t1.tree_mb:.0f} MB"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join((__doc__ or "").splitlines()[3:]),
    )
    parser.add_argument("--n", type=int, default=1000, help="pages in the farm (default 1000)")
    parser.add_argument("--curve", default="", help="comma-separated Ns for pagewatch's cost curve")
    parser.add_argument("--no-compare", action="store_true", help="only the curve")
    parser.add_argument("--confirm-delay", type=float, default=None,
                        help="pass to pagewatch check (default: pagewatch's own, 3 s)")  # fmt: skip
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="urlwatch's virtualenv")
    parser.add_argument("--pagewatch-venv", type=Path, default=PAGEWATCH_VENV,
                        help="the virtualenv this checkout is installed into")  # fmt: skip
    parser.add_argument("--steady-runs", type=int, default=3,
                        help="steady passes per tool, the median reported (default 3)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=1800, help="per process, seconds")
    parser.add_argument("--keep", action="store_true", help="keep the farm, workspaces and logs")
    opts = parser.parse_args()
    try:
        sizes = sorted({int(s) for s in opts.curve.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--curve wants numbers separated by commas, not {opts.curve!r}")
    if opts.steady_runs < 1:
        parser.error("--steady-runs must be at least 1")
    if opts.n < 50 or any(s < 1 for s in sizes):
        parser.error("--n must be at least 50 (2% of it must be a few pages); curve Ns >= 1")

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM too: stop nginx and the child, remove the temp dir

    signal.signal(signal.SIGTERM, stop)
    base = Path(tempfile.mkdtemp(prefix="pagewatch-compare-"))
    ok = True
    try:
        uw_exe = None if opts.no_compare else ensure_urlwatch(opts.venv)
        pw_python = ensure_pagewatch(opts.pagewatch_venv)
        if not opts.no_compare:
            assert uw_exe is not None
            print(f"building a farm of {opts.n} pages (v1 and v2) in {base} ...", flush=True)
            t = time.perf_counter()
            farm = build(base / "farm", opts.n)
            print(f"  built in {time.perf_counter() - t:.0f} s", flush=True)
            with Nginx(base / "farm") as nginx:
                ok = compare(base, farm, nginx, opts, uw_exe, pw_python)
        if sizes:
            root = base / "farm"
            if opts.no_compare or opts.n < sizes[-1]:
                root = base / "curve-farm"
                print(f"\nbuilding a v1 farm of {sizes[-1]} pages for the curve ...", flush=True)
                build_v1(root, sizes[-1])
            with Nginx(root) as nginx:
                curve(base, sizes, nginx, opts.confirm_delay, pw_python, opts.steady_runs)
    except BenchError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        ok = False
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        ok = False
    finally:
        if opts.keep:
            print(f"\nkept {base} (farm/, ws/, urlwatch/, logs/)")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
