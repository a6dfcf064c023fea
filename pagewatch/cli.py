"""The `pagewatch` command: a thin shell over the library. Parse, one call, render."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from . import alerts as alerts_api
from . import workspace
from .check import CONFIRM_DELAY_S, CheckOutcome
from .errors import NotFound, PagewatchError, UsageError, WatchlistError
from .fetch import FetchPolicy
from .store import DB_NAME, Store, utcnow
from .watchlist import add_watch, format_interval, load_watchlist

ALERT_ID = click.IntRange(1, 2**63 - 1)


class _Failed(click.ClickException):
    exit_code = 1


class _BadInput(click.ClickException):
    exit_code = 2


class PagewatchGroup(click.Group):
    """Turns every PagewatchError into a one-line message and an exit code; never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WatchlistError as exc:
            raise _BadInput(_watchlist_message(exc)) from exc
        except UsageError as exc:
            raise _BadInput(str(exc)) from exc
        except NotFound as exc:
            raise _Failed(str(exc)) from exc
        except PagewatchError as exc:
            raise _Failed(str(exc)) from exc
        except sqlite3.Error as exc:
            raise _Failed(f"{_root(ctx) / DB_NAME}: database error: {exc}") from exc


def _watchlist_message(exc: WatchlistError) -> str:
    """The error with its file shown relative to the current folder where it is under it."""
    if exc.path is None:
        return str(exc)
    path = exc.path
    with contextlib.suppress(ValueError):
        path = path.relative_to(Path.cwd())  # watchlists/x.toml:7 reads better than /home/...
    return f"{path}:{exc.line}: {exc.message}" if exc.line else f"{path}: {exc.message}"


def _root(ctx: click.Context) -> Path:
    root: Path = ctx.obj["root"]
    return root


def _store(ctx: click.Context, readonly: bool = False) -> Store:
    return workspace.open_store(_root(ctx), readonly=readonly)


def _policy(deadline: float) -> FetchPolicy:
    """The fetch limits, with the total deadline given (the read timeout never outlasts it)."""
    defaults = FetchPolicy()
    return replace(
        defaults,
        deadline=deadline,
        connect_timeout=min(defaults.connect_timeout, deadline),
        read_timeout=min(defaults.read_timeout, deadline),
    )


def _known_list(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A --list that names a watchlist, or a list the workspace's history knows (one since
    renamed or removed); anything else is a typo, not an empty result."""
    if not value:
        return value
    root = _root(ctx)
    if (root / "watchlists" / f"{value}.toml").is_file() or not (root / DB_NAME).exists():
        return value
    store = workspace.open_store(root, readonly=True)
    try:
        known = value in store.list_names()
    finally:
        store.close()
    if not known:
        raise click.BadParameter(
            f"no watchlist named {value!r}, and none in this workspace's history"
        )
    return value


def _json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


@click.group(cls=PagewatchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--workspace",
    "root",
    envvar=workspace.ENV_VAR,
    type=click.Path(file_okay=False, path_type=Path),
    help="Workspace folder (default: $PAGEWATCH_WORKSPACE, else the current folder).",
)
@click.version_option(package_name="pagewatch")
@click.pass_context
def cli(ctx: click.Context, root: Path | None) -> None:
    """Watch web pages and prove, with evidence, when a flagged phrase was removed."""
    ctx.obj = {"root": workspace.resolve(root)}


@cli.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create the workspace skeleton (watchlists/, snapshots/, pagewatch.db). Idempotent."""
    root = _root(ctx)
    created = workspace.init(root)
    click.echo(f"{'Initialised' if created else 'Already a workspace:'} {root}")


@cli.command()
@click.argument("url")
@click.option("--list", "list_name", required=True, help="Watchlist name: watchlists/NAME.toml.")
@click.option(
    "--phrase",
    "phrases",
    multiple=True,
    help="A phrase to flag: ALIAS, or GROUP=ALIAS[,ALIAS...]. Repeatable. "
    "Default: the list's [phrases].",
)
@click.option("--every", help="Check interval, e.g. 30m, 6h, 1d (default: the list's).")
@click.option("--selector", help="CSS selector that scopes the text, e.g. main.")
@click.pass_context
def add(
    ctx: click.Context,
    url: str,
    list_name: str,
    phrases: tuple[str, ...],
    every: str | None,
    selector: str | None,
) -> None:
    """Add a watch for URL to watchlists/NAME.toml, keeping the file's comments and layout."""
    root = _root(ctx)
    if not (root / DB_NAME).exists():
        raise _Failed(f"{root}: not a pagewatch workspace (no {DB_NAME}); run `pagewatch init`")
    folder = root / "watchlists"
    folder.mkdir(parents=True, exist_ok=True)
    list_name = list_name.removesuffix(".toml")
    path = add_watch(folder, list_name, url, phrases, every=every, selector=selector)
    [watch] = [w for w in load_watchlist(path) if w.url == url]
    click.echo(f"Watching {url} in {path}, every {format_interval(watch.every)}")
    for group in watch.groups:
        click.echo(f"  {group.name}: " + ", ".join(group.aliases))


@cli.command()
@click.argument("urls", nargs=-1)
@click.option("--list", "lists", multiple=True, help="Only this watchlist (repeatable).")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1000),
    default=16,
    show_default=True,
    help="Fetches in flight at once.",
)
@click.option(
    "--per-host",
    type=click.IntRange(1, 1000),
    default=6,
    show_default=True,
    help="Fetches in flight per host.",
)
@click.option(
    "--confirm-delay",
    type=click.FloatRange(min=0),
    default=CONFIRM_DELAY_S,
    show_default=True,
    help="Seconds before the second fetch that confirms a removal.",
)
@click.option(
    "--deadline",
    "--timeout",
    type=click.FloatRange(min=0.1, max=3600),
    default=FetchPolicy.deadline,
    show_default=True,
    help="Seconds one fetch may take in all (redirects included) before it counts as failed.",
)
@click.pass_context
def check(
    ctx: click.Context,
    urls: tuple[str, ...],
    lists: tuple[str, ...],
    concurrency: int,
    per_host: int,
    confirm_delay: float,
    deadline: float,
) -> None:
    """Check the chosen watches (default: all) once, now.

    Exits 0 when the pass ran, even if some fetches failed; the summary says how many.
    """
    root = _root(ctx)
    watches = workspace.select_watches(root, lists, urls)
    store = _store(ctx)
    show_bar = sys.stderr.isatty() and len(watches) > 1
    trouble: list[CheckOutcome] = []
    try:
        with click.progressbar(
            length=len(watches), label="Checking", file=sys.stderr, hidden=not show_bar
        ) as bar:

            def done(outcome: CheckOutcome) -> None:
                bar.update(1)
                if outcome.outcome in ("failed", "error", "unusable"):
                    trouble.append(outcome)
                if outcome.alert_ids:
                    bar.label = f"Checking ({outcome.watch.url}: new alert)"

            summary = asyncio.run(
                workspace.check_pass(
                    store,
                    watches,
                    on_done=done,
                    concurrency=concurrency,
                    per_host=per_host,
                    confirm_delay=confirm_delay,
                    policy=_policy(deadline),
                )
            )
    finally:
        store.close()
    click.echo(summary.line())
    for outcome in sorted(trouble, key=lambda o: o.watch.url):
        click.echo(f"  {outcome.outcome:<8} {outcome.watch.url}: {outcome.message}")
    if summary.alert_ids:
        click.echo(
            "New alerts: " + " ".join(str(i) for i in summary.alert_ids) + "  (pagewatch show ID)"
        )


@cli.command()
@click.option(
    "--reload-every",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds between watchlist re-reads.",
)
@click.pass_context
def run(ctx: click.Context, reload_every: float) -> None:
    """Check every watch on its interval until stopped (SIGINT/SIGTERM finish cleanly)."""
    from .schedule import Runner  # only `run` needs the scheduler

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S%z",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    asyncio.run(Runner(_root(ctx), reload_every=reload_every).run())


@cli.command("alerts")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option(
    "--status",
    type=click.Choice(alerts_api.STATUSES),
    default="new",
    show_default=True,
    help="Which alerts: new (not yet acknowledged), acked, or all.",
)
@click.option("--list", "list_name", help="Only alerts of this watchlist.", callback=_known_list)
@click.pass_context
def alerts_cmd(ctx: click.Context, as_json: bool, status: str, list_name: str | None) -> None:
    """List alerts, oldest first."""
    store = _store(ctx, readonly=True)
    try:
        rows = alerts_api.list_alerts(store, status, list_name)
    finally:
        store.close()
    if as_json:
        _json(rows)
        return
    if not rows:
        click.echo(f"No {'' if status == 'all' else status + ' '}alerts.")
        return
    for a in rows:
        what = f"{a['group']:<14}  {a['alias']!r:<16}" if a["group"] else f"{'(the watch)':<32}"
        click.echo(
            f"{a['id']:>4}  {a['status']:<5}  {a['kind']:<12}  {what}  {a['url']}\n"
            f"{'':6}{alerts_api.window(a)}"
        )


@cli.command()
@click.argument("alert_id", type=ALERT_ID)
@click.option("--json", "as_json", is_flag=True, help="Print the alert as JSON.")
@click.pass_context
def show(ctx: click.Context, alert_id: int, as_json: bool) -> None:
    """Show one alert in full: the passage, the window, both snapshots."""
    store = _store(ctx, readonly=True)
    try:
        alert = alerts_api.get_alert(store, alert_id)
    finally:
        store.close()
    if as_json:
        _json(alert)
        return
    _echo_alert(alert)


@cli.command()
@click.argument("alert_ids", type=ALERT_ID, nargs=-1, required=True)
@click.option("--note", default="", help="A note kept with the acknowledgement.")
@click.pass_context
def ack(ctx: click.Context, alert_ids: tuple[int, ...], note: str) -> None:
    """Acknowledge alerts."""
    store = _store(ctx)
    try:
        alert_ids = tuple(dict.fromkeys(alert_ids))
        fresh = alerts_api.ack(store, alert_ids, utcnow(), note)
    finally:
        store.close()
    already = [i for i in alert_ids if i not in fresh]
    if fresh:
        click.echo("Acknowledged " + " ".join(str(i) for i in fresh))
    if already:
        noted = " (note replaced)" if note else ""
        click.echo("Already acknowledged " + " ".join(str(i) for i in already) + noted)


@cli.command()
@click.option("--list", "lists", multiple=True, help="Only this watchlist (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array, one object a watch.")
@click.pass_context
def status(ctx: click.Context, lists: tuple[str, ...], as_json: bool) -> None:
    """Each watch's health: ok, failing (no capture for 3 intervals), blind, or new."""
    watches = workspace.select_watches(_root(ctx), lists)
    store = _store(ctx, readonly=True)
    now = utcnow()
    try:
        items = alerts_api.status(store, watches, now)
    finally:
        store.close()
    if as_json:
        _json([alerts_api.status_json(item, now) for item in items])
        return
    click.echo(alerts_api.status_summary(items, now))
    for item in items:
        if item.state in ("failing", "blind"):
            click.echo(f"  {item.state:<8} {item.watch.url} [{item.watch.list}]  {item.why}")


@cli.command()
@click.argument("url")
@click.option("--list", "list_name", help="The watchlist, when the URL is in several.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def history(ctx: click.Context, url: str, list_name: str | None, as_json: bool) -> None:
    """Every check of one watch: time, outcome, status, snapshot and phrase counts."""
    store = _store(ctx, readonly=True)
    try:
        entries = alerts_api.history(store, url, list_name)
    finally:
        store.close()
    if as_json:
        _json(entries)
        return
    several = len({e["list"] for e in entries}) > 1
    for entry in entries:
        click.echo(alerts_api.history_line(entry, with_list=several))


def _moment(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """A date or date-time in ISO 8601; without an offset it is UTC. A bare date that ends a
    range (--until, --to) means the end of that day, so the day is in the range."""
    if value is None:
        return None
    text = value.strip()
    try:
        moment = datetime.fromisoformat(text)
        if param.name in ("until", "to") and len(text) == 10:  # YYYY-MM-DD: the whole day
            moment += timedelta(days=1, microseconds=-1)
    except (ValueError, OverflowError):
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date such as 2020-12-08 or 2020-12-08T18:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@cli.command()
@click.option(
    "--around", "moment", metavar="DATE", required=True, callback=_moment,
    help="The date to look around (ISO 8601; UTC unless it says otherwise).",
)  # fmt: skip
@click.option(
    "--days",
    type=click.FloatRange(min=0, max=36500),
    default=7,
    show_default=True,
    help="Days either side of the date.",
)
@click.option("--list", "list_name", help="Only removals of this watchlist.", callback=_known_list)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of alerts.")
@click.pass_context
def changes(
    ctx: click.Context, moment: datetime, days: float, list_name: str | None, as_json: bool
) -> None:
    """Every removal whose window overlaps the days around a date (a report's publication, say)."""
    from .timeline import changes_around

    store = _store(ctx, readonly=True)
    try:
        rows = [alerts_api.alert_json(r) for r in changes_around(store, moment, days, list_name)]
    finally:
        store.close()
    if as_json:
        _json(rows)
        return
    start, end = moment - timedelta(days=days), moment + timedelta(days=days)  # checked above
    span = f"{start.isoformat(timespec='minutes')} .. {end.isoformat(timespec='minutes')}"
    if not rows:
        click.echo(f"No removals with a window overlapping {span}.")
        return
    click.echo(f"Removals with a window overlapping {span}:")
    for a in rows:
        click.echo(
            f"{a['id']:>4}  {a['kind']:<12}  {a['group']:<14}  {a['alias']!r:<16}  {a['url']}\n"
            f"{'':6}{alerts_api.window(a)}"
            + (f"  [{a['source']}]" if a["source"] != "live" else "")
        )


@cli.command()
@click.argument("phrase")
@click.option("--list", "lists", multiple=True, help="Only this watchlist (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array, one object a page.")
@click.pass_context
def timeline(ctx: click.Context, phrase: str, lists: tuple[str, ...], as_json: bool) -> None:
    """When a phrase group (by name or alias) was on each watched page, from all captures."""
    from .timeline import presence_by_watch

    watches = workspace.select_watches(_root(ctx), lists)
    store = _store(ctx, readonly=True)
    try:
        group, pages = presence_by_watch(store, watches, phrase)
    finally:
        store.close()
    if as_json:
        _json([page.as_json() for page in pages])
        return
    click.echo(f"Phrase group {group!r}:")
    for page in pages:
        click.echo(f"  {page.watch.url} [{page.watch.list}]")
        if not page.spans:
            click.echo("      never seen in a capture")
        for span in page.spans:
            click.echo(f"      {span.line()}")


@cli.command()
@click.pass_context
def fsck(ctx: click.Context) -> None:
    """Check the workspace: database integrity, every snapshot against its SHA-256, and the
    chain of captures. Exits 1 naming each problem found."""
    from .fsck import fsck as check_workspace

    store = _store(ctx, readonly=True)
    show_bar = sys.stderr.isatty()
    try:
        with click.progressbar(
            length=1, label="Checking snapshots", file=sys.stderr, hidden=not show_bar
        ) as bar:

            def progress(done: int, total: int) -> None:
                bar.length = total
                bar.update(done - bar.pos)

            report = check_workspace(store, progress)
    finally:
        store.close()
    for note in report.notes:
        click.echo(f"note: {note}")
    click.echo(
        f"{report.captures} captures, {report.snapshots} snapshots checked:"
        f" {'ok' if report.ok else f'{len(report.problems)} problems'}"
    )
    if not report.ok:
        for problem in report.problems:
            click.echo(f"  {problem}")
        raise _Failed(f"{_root(ctx)}: the workspace failed its check")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8650, show_default=True, help="Port."
)
@click.option(
    "--token",
    envvar="PAGEWATCH_TOKEN",
    help="Secret every request must carry (default: $PAGEWATCH_TOKEN); required off loopback.",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, token: str | None) -> None:
    """Review alerts in a local web app: inbox, alert pages, watch histories (Ctrl-C stops)."""
    from .web.server import serve as serve_app  # only `serve` needs the web stack

    def ready(url: str) -> None:
        click.echo(f"Serving {_root(ctx)} at {url}  (Ctrl-C stops)")

    serve_app(_root(ctx), host=host, port=port, token=token, on_ready=ready)


@cli.command()
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    required=True,
    help="The HTML file to write.",
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Only alerts whose phrase was first missing on or after this day (UTC), YYYY-MM-DD.",
)
@click.option("--list", "list_name", help="Only alerts of this watchlist.", callback=_known_list)
@click.pass_context
def report(ctx: click.Context, out: Path, since: datetime | None, list_name: str | None) -> None:
    """Write the alerts as one self-contained HTML file that opens offline, anywhere."""
    from .report import write_report

    made = write_report(_root(ctx), out, since.date() if since else None, list_name, utcnow())
    count = len(made.entries)
    click.echo(f"Wrote {out}: {count} alert{'' if count == 1 else 's'}")


@cli.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The folder to write the copy into: new, or empty.",
)
@click.pass_context
def backup(ctx: click.Context, out: Path) -> None:
    """Copy the workspace (database, snapshots, watchlists) into a new folder, consistently,
    even while `pagewatch run` writes to it; the copy is then checked whole."""
    from .backup import backup as copy_workspace

    show_bar = sys.stderr.isatty()
    with click.progressbar(
        length=1, label="Copying snapshots", file=sys.stderr, hidden=not show_bar
    ) as bar:

        def progress(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        made = copy_workspace(_root(ctx), out, progress)
    click.echo(
        f"Backed up {_root(ctx)} to {made.target}: {made.captures} captures,"
        f" {made.snapshots} snapshots ({made.snapshot_bytes:,} bytes copied),"
        f" {made.watchlists} watchlists"
    )
    if not made.ok:
        for problem in made.problems:
            click.echo(f"  {problem}")
        raise _Failed(f"{made.target}: the copy failed its check ({len(made.problems)} problems)")


def _bar(label: str, total: int) -> Any:
    """A progress bar on stderr, shown only to a person at a terminal."""
    return click.progressbar(
        length=max(total, 1), label=label, file=sys.stderr, hidden=not sys.stderr.isatty()
    )


@cli.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bundle to write: NAME.wacz (WACZ 1.1) or NAME.warc.gz (WARC 1.1).",
)
@click.option("--list", "list_name", help="Only captures of this watchlist.", callback=_known_list)
@click.option("--url", help="Only captures of this watched URL.")
@click.option("--since", metavar="DATE", callback=_moment, help="Only captures from this date.")
@click.option("--until", metavar="DATE", callback=_moment, help="Only captures up to this date.")
@click.option("--alert", "alert_id", type=ALERT_ID, help="One alert's evidence package instead.")
@click.pass_context
def export(
    ctx: click.Context,
    out: Path,
    list_name: str | None,
    url: str | None,
    since: datetime | None,
    until: datetime | None,
    alert_id: int | None,
) -> None:
    """Write captures, with their metadata and alerts, to a dated WACZ or WARC bundle."""
    from .export import Selection
    from .export import export as write

    if alert_id is not None and (list_name or url or since or until):
        raise UsageError("--alert takes no --list, --url, --since or --until")
    if out.exists():
        raise UsageError(f"{out}: exists already; bundles are never overwritten")
    selection = Selection(list_name, url, since, until, alert_id)
    root = _root(ctx)
    watches = workspace.select_watches(root)
    store = _store(ctx, readonly=True)
    try:
        with _bar("Exporting", 1) as bar:

            def progress(done: int, total: int) -> None:
                bar.length = total
                bar.update(done - bar.pos)

            summary = write(store, watches, out, selection, now=utcnow(), progress=progress)
    finally:
        store.close()
    click.echo(
        f"Wrote {summary.path}: {summary.captures} captures ({summary.responses} responses,"
        f" {summary.revisits} revisits), {summary.bytes:,} bytes"
    )
    click.echo(f"sha256 {summary.sha256}")


@cli.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--against-workspace",
    is_flag=True,
    help="Also check the bundle's captures against this workspace's digests and chain.",
)
@click.pass_context
def verify(ctx: click.Context, path: Path, against_workspace: bool) -> None:
    """Recompute every digest in a WACZ or WARC bundle; exit 1 naming each failure.

    Strict: a missing digest or manifest, an extra, missing or duplicate file, or a path leaving
    the package fails; a zip bomb or a zip-slip path is refused before anything is extracted.
    """
    from .provenance import check_bundle

    store = _store(ctx, readonly=True) if against_workspace else None
    try:
        checked = check_bundle(path, store)
    finally:
        if store is not None:
            store.close()
    for problem in checked.problems:
        click.echo(problem)
    if not checked.ok:
        count = len(checked.problems)
        raise _Failed(f"{path}: FAILED verification ({count} problem{'s' * (count != 1)})")
    captures = len(checked.metadata["captures"]) if checked.metadata else 0
    click.echo(
        f"{path}: OK ({checked.checked} records and files verified"
        + (
            f", {captures} pagewatch captures agree with their records and chain"
            if captures
            else ""
        )
        + (", matching this workspace" if against_workspace else "")
        + ")"
    )


@cli.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--no-add-watches",
    is_flag=True,
    help="Do not add to the watchlists the watches a pagewatch bundle carries.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Import even if the bundle fails verification (e.g. an old WARC without digests).",
)
@click.pass_context
def import_cmd(ctx: click.Context, path: Path, no_add_watches: bool, force: bool) -> None:
    """Add a WARC or WACZ's captures of watched URLs, with their original times; then decide
    each affected watch's whole timeline again. Importing twice adds nothing.

    The bundle is verified first and refused if anything fails. A pagewatch bundle's watches are
    added to the watchlists if missing, so it can be imported into a new, empty workspace
    (created if need be).
    """
    with _bar("Importing", 0) as bar:

        def seen(response: Any, what: str) -> None:
            bar.update(1)

        summary, redone, notes = workspace.import_bundle(
            _root(ctx), path, add_watches=not no_add_watches, force=force, on_response=seen
        )
    for note in notes:
        click.echo(note)
    click.echo(f"{path}: {summary.line()}")
    _echo_redone(redone)


@cli.command()
@click.argument("urls", nargs=-1)
@click.option("--list", "lists", multiple=True, help="Only this watchlist (repeatable).")
@click.option("--from", "since", metavar="DATE", callback=_moment, help="Earliest capture date.")
@click.option("--to", "until", metavar="DATE", callback=_moment, help="Latest capture date.")
@click.option(
    "--wayback-url",
    default="https://web.archive.org",
    show_default=True,
    help="The archive's base URL (its CDX API and id_ replays).",
)
@click.option(
    "--min-interval",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Seconds between requests to the archive.",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 20),
    default=5,
    show_default=True,
    help="Retries of a failed request (429, 5xx, dropped connection), backing off each time.",
)
@click.option(
    "--backoff",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Seconds of the first backoff (doubling after; the archive's Retry-After wins).",
)
@click.pass_context
def backfill(
    ctx: click.Context,
    urls: tuple[str, ...],
    lists: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    wayback_url: str,
    min_interval: float,
    retries: int,
    backoff: float,
) -> None:
    """Bring in each watch's history from the Wayback Machine (source `wayback`), then decide
    its whole timeline again. Resumable: captures already stored are not fetched again."""
    from .wayback import WaybackPolicy

    if not wayback_url.startswith(("http://", "https://")):
        raise UsageError(f"--wayback-url {wayback_url!r}: not an http(s) URL")
    root = _root(ctx)
    watches = workspace.select_watches(root, lists, urls)
    policy = WaybackPolicy(
        base_url=wayback_url.rstrip("/"),
        min_interval_s=min_interval,
        retries=retries,
        backoff_s=backoff,
    )
    store = _store(ctx)
    try:

        def event(watch: Any, what: str, done: int, total: int) -> None:
            if what == "listed":
                click.echo(f"{watch.url}: {total} captures to fetch", err=True)
            elif what == "failed" and total == 0:
                click.echo(f"{watch.url}: the archive's index could not be read", err=True)
            elif total and (done == total or done % 10 == 0):
                click.echo(f"  {done}/{total}", err=True)

        summary, redone = asyncio.run(
            workspace.backfill_watches(
                store, watches, policy, since=since, until=until, on_event=event
            )
        )
    finally:
        store.close()
    click.echo(f"Backfill: {summary.line()}")
    for failure in summary.failed:
        click.echo(f"  failed: {failure}")
    _echo_redone(redone)
    if summary.unlisted:
        raise _Failed(f"the archive's index could not be read for {summary.unlisted} of"
                      f" {len(watches)} watches")  # fmt: skip


def _echo_redone(redone: Any) -> None:
    added = [i for r in redone for i in r.added]
    moved = [i for r in redone for i in r.moved]
    if added:
        click.echo("New alerts: " + " ".join(map(str, added)) + "  (pagewatch show ID)")
    if moved:
        click.echo("Alerts whose window the new captures narrowed: " + " ".join(map(str, moved)))
    stale = [i for r in redone for i in r.stale]
    if stale:
        kept = " ".join(map(str, stale))
        click.echo(f"Withdrawn (the timeline no longer supports them; kept): {kept}")
    if not (added or moved):
        click.echo("No new alerts.")


@cli.command()
@click.option(
    "--into",
    type=click.Path(file_okay=False, path_type=Path),
    help="Workspace folder for the demo (default: a new temporary folder, kept).",
)
def demo(into: Path | None) -> None:
    """Replay a vendor page history on a local server and show the removal alert."""
    from .demo import run_demo

    root = into.resolve() if into else Path(tempfile.mkdtemp(prefix="pagewatch-demo-"))
    if into and (root / "watchlists").exists() and any((root / "watchlists").iterdir()):
        raise UsageError(f"{root}: not empty; give --into a new folder")
    alert_ids = run_demo(root, click.echo)
    store = Store(root)
    try:
        shown = [alerts_api.get_alert(store, alert_id) for alert_id in alert_ids]
    finally:
        store.close()
    click.echo(DEMO_STORY)
    for alert in shown:
        click.echo(f"\n$ pagewatch show {alert['id']}")
        _echo_alert(alert)
    click.echo(f"\nThe demo workspace is kept at {root}. Its replay server has stopped, so")
    click.echo("`check` there would now fail; alerts, show and history work offline:")
    click.echo(f"  pagewatch --workspace {root} alerts")
    if shown:
        click.echo(f"  pagewatch --workspace {root} history {shown[0]['url']}")


DEMO_STORY = """
What happened: v2's respelling ("Uighur alarm" -> "Uyghur alarm") and markup churn left every
phrase count as it was, so they raised nothing. The 503 was recorded as a failed check and never
compared: the window runs from the last capture that had the phrases (v2) to the first capture
without them (v4). The Chinese edition, read as GB18030 from its <meta> alone, kept its phrases
throughout: no alert there."""

_COLOURS: dict[str, dict[str, Any]] = {"-": {"fg": "red", "bold": True}, "+": {"fg": "green"}}


def _echo_alert(alert: dict[str, Any]) -> None:
    for line in alerts_api.show_lines(alert, lambda text, op: click.style(text, **_COLOURS[op])):
        click.echo(line)


def main() -> None:
    cli(prog_name="pagewatch")
