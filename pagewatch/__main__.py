"""The `pagewatch` command, and `python -m pagewatch`.

The CLI is imported when the command runs, not when this module is: the extraction workers of a
big pass are spawned processes, which import the main script again (`multiprocessing` "spawn"),
and they need none of the CLI (see pagewatch/analysis.py).
"""

from __future__ import annotations


def main() -> None:
    from pagewatch.cli import main as cli

    cli()


if __name__ == "__main__":
    main()
