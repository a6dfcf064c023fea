"""The `pagewatch` command: a thin shell over the library. Parse, one call, render."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from . import alerts as alerts_api
from . import workspace
from .check import CONFIRM_DELAY_S, CheckOutcome
from .errors import NotFound, PagewatchError, UsageError, WatchlistError
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
    folder = _root(ctx) / "watchlists"
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
@click.pass_context
def check(
    ctx: click.Context,
    urls: tuple[str, ...],
    lists: tuple[str, ...],
    concurrency: int,
    per_host: int,
    confirm_delay: float,
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
@click.option("--list", "list_name", help="Only alerts of this watchlist.")
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
        click.echo(
            f"{a['id']:>4}  {a['status']:<5}  {a['kind']:<12}  {a['group']:<14}  "
            f"{a['alias']!r:<16}  {a['url']}\n"
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
        click.echo("Already acknowledged " + " ".join(str(i) for i in already))


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
