"""Docs that cannot drift: generated CLI help, every command documented, README commands true."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pagewatch.cli import cli

ROOT = Path(__file__).parent.parent


def test_cli_reference_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cogapp", "--check", "docs/cli.md"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, (
        "docs/cli.md is stale: run `cog -r docs/cli.md`\n" + result.stderr
    )


@pytest.mark.parametrize("name", sorted(cli.commands), ids=sorted(cli.commands))
def test_every_command_is_documented_and_has_help(name: str) -> None:
    command = cli.commands[name]
    assert command.help and command.help.strip()
    assert f"\n## pagewatch {name}\n" in (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for param in command.params:
        if param.param_type_name == "option":
            assert getattr(param, "help", None), f"{name} {param.opts} has no help"


def test_readme_quick_start_is_the_contract() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install -e . && pagewatch demo" in readme
    assert "pip install -e '.[test]' && pytest" in readme
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install -e '.[test]' && pytest" in ci
