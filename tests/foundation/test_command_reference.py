"""docs/commands.md is written from the click definitions: it names every command with
its options, exit codes and an example, and a change to the CLI fails here until the file
is written again (``python -m exoimap.cli.reference --write docs/commands.md``)."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from exoimap.cli import app
from exoimap.cli.reference import EXAMPLES, EXIT_CODES, command_names, render

DOC = Path(__file__).resolve().parents[2] / "docs" / "commands.md"


def test_the_file_is_what_the_commands_say() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/commands.md is stale: run "
        "`.venv/bin/python -m exoimap.cli.reference --write docs/commands.md`"
    )


def test_every_command_and_option_is_in_the_file() -> None:
    text = DOC.read_text(encoding="utf-8")
    names = command_names()
    assert {"account add", "login", "sync", "verify", "archive stats", "restore"} <= set(names)
    for name in names:
        assert f"## `exoimap {name}`" in text
    for option in ("--client-id", "--deep", "--include-deleted", "--metrics-port"):
        assert f"`{option}" in text
    assert "| 130 | interrupted (Ctrl-C)" in text


def _parses(words: list[str]) -> None:
    """Parse a command line the way the CLI would, down to the command (nothing runs)."""
    command: click.Command = app
    ctx = click.Context(app, info_name="exoimap")
    while isinstance(command, click.Group) and words and not words[0].startswith("-"):
        name, *words = words
        sub = command.get_command(ctx, name)
        assert sub is not None, name
        command, ctx = sub, click.Context(sub, info_name=name, parent=ctx)
    command.make_context(command.name or "", words, parent=ctx.parent)


def test_the_tables_name_real_commands_and_each_example_parses() -> None:
    names = set(command_names())
    assert set(EXAMPLES) == names, "every command has one example in exoimap.cli.reference"
    assert set(EXIT_CODES) <= names
    for name, example in EXAMPLES.items():
        words = shlex.split(example)
        assert words[0] == "exoimap"
        assert " ".join(words[1:]).startswith(name), example
        _parses(words[1:])
