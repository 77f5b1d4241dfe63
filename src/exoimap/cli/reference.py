"""``docs/commands.md``, written from the click definitions so that it cannot go stale.

Every command's description, arguments and options come from the commands themselves (what
``--help`` shows); the exit codes and one example per command come from the two tables
below. A command missing from the tables still gets a section (its usage as the example,
the common exit codes), and ``tests/foundation/test_command_reference.py`` fails until the
file is written again (and until the new command has its example here)::

    .venv/bin/python -m exoimap.cli.reference --write docs/commands.md
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from exoimap.cli import app
from exoimap.cli.app import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_SIGN_IN,
    EXIT_USAGE,
)

__all__ = ["EXAMPLES", "EXIT_CODES", "EXIT_CODE_MEANINGS", "command_names", "render"]

EXIT_CODE_MEANINGS: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_FAILURE: "failure (the message says what failed and what to do)",
    EXIT_USAGE: "usage or configuration error",
    EXIT_SIGN_IN: "sign-in needed (expired, revoked or missing sign-in)",
    EXIT_PARTIAL: "finished, but some items failed (listed on stderr)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); what was stored is kept",
}

_COMMON = (EXIT_OK, EXIT_FAILURE, EXIT_USAGE)
_SIGNS_IN = (*_COMMON, EXIT_SIGN_IN)

#: The codes a command can end with, beyond interruption (every command may be interrupted).
EXIT_CODES: dict[str, tuple[int, ...]] = {
    "login": _SIGNS_IN,
    "token show": _SIGNS_IN,
    "token print": _SIGNS_IN,
    "watch": _SIGNS_IN,
    "doctor": _COMMON,
    "sync": (*_SIGNS_IN, EXIT_PARTIAL),
    "verify": _SIGNS_IN,
    "restore": (*_SIGNS_IN, EXIT_PARTIAL),
    "migrate": (*_SIGNS_IN, EXIT_PARTIAL),
    "export": (*_COMMON, EXIT_PARTIAL),
    "console": _COMMON,
    "tenant discover": _SIGNS_IN,
    "tenant status": (*_COMMON, EXIT_PARTIAL),
    "tenant verify": (*_SIGNS_IN, EXIT_PARTIAL),
}

#: One example per command, as a user would type it.
EXAMPLES: dict[str, str] = {
    "config path": "exoimap config path",
    "config show": "exoimap config show",
    "account add": (
        "exoimap account add work --email you@contoso.com "
        "--client-id 00000000-0000-0000-0000-000000000000 --tenant contoso.com"
    ),
    "account list": "exoimap account list",
    "account set-secret": "exoimap account set-secret daemon",
    "login": "exoimap login work",
    "logout": "exoimap logout work",
    "token show": "exoimap token show work",
    "token print": "exoimap token print work --format xoauth2",
    "watch": "exoimap watch work --health-file ~/.cache/exoimap-watch.json",
    "doctor": "exoimap doctor --all",
    "schedule install": "exoimap schedule install --every 1h work",
    "schedule remove": "exoimap schedule remove",
    "schedule status": "exoimap schedule status",
    "vault create-key-file": "exoimap vault create-key-file",
    "vault status": "exoimap vault status",
    "sync": "exoimap sync work --folder INBOX --folder 'Sent*' --exclude 'Junk*'",
    "verify": "exoimap verify work --deep",
    "restore": "exoimap restore work --merge --include-deleted --dry-run",
    "migrate": "exoimap migrate old new --map 'Old Stuff=Archive/Old'",
    "archive stats": "exoimap archive stats work",
    "export": "exoimap export work --format mbox ~/mail-export",
    "audit verify": "exoimap audit verify",
    "audit query": "exoimap audit query --account work --since 2026-01-01",
    "audit tail": "exoimap audit tail --lines 20",
    "audit report": "exoimap audit report --since 2026-01-01",
    "audit export": "exoimap audit export --format csv --output audit.csv",
    "audit recover": "exoimap audit recover --reason 'restored the vault from a copy'",
    "tenant add": (
        "exoimap tenant add contoso --tenant contoso.com "
        "--client-id 00000000-0000-0000-0000-000000000000 --certificate app.pem "
        "--archive-root /srv/mail-archives --exclude '@test.contoso.com'"
    ),
    "tenant discover": "exoimap tenant discover contoso",
    "tenant backup": "exoimap tenant backup contoso",
    "tenant status": "exoimap tenant status contoso",
    "tenant verify": "exoimap tenant verify contoso --deep",
    "worker": "exoimap worker --concurrency 4",
    "agent start": "exoimap agent start",
    "agent stop": "exoimap agent stop",
    "agent status": "exoimap agent status",
    "agent serve": "exoimap agent serve",
    "console": "exoimap console --listen 127.0.0.1:8443",
    "proxy": "exoimap proxy --listen 127.0.0.1:1993",
    "proxy ca": "exoimap proxy ca",
    "proxy password add": "exoimap proxy password add thunderbird-laptop --account work",
    "proxy password list": "exoimap proxy password list",
    "proxy password revoke": "exoimap proxy password revoke thunderbird-laptop",
    "sandbox up": "exoimap sandbox up --state ./sandbox --messages 200",
    "sandbox info": "exoimap sandbox info --state ./sandbox",
    "sandbox approve": (
        "exoimap sandbox approve ABCD12345 --as alice@contoso.onmicrosoft.com --state ./sandbox"
    ),
    "sandbox seed-maildir": "exoimap sandbox seed-maildir ./Maildir --messages 500",
    "sandbox app add": (
        "exoimap sandbox app add my-app --redirect-uri http://localhost "
        "--delegated https://outlook.office.com/IMAP.AccessAsUser.All --admin-consent"
    ),
    "sandbox app cert": "exoimap sandbox app cert exoimap-daemon",
    "sandbox app role": "exoimap sandbox app role exoimap-console self auditor admin",
    "sandbox app assign": (
        "exoimap sandbox app assign exoimap-console alice@contoso.onmicrosoft.com self"
    ),
    "sandbox app grant": (
        "exoimap sandbox app grant exoimap-daemon "
        "--application https://outlook.office365.com/IMAP.AccessAsApp --admin-consent"
    ),
    "sandbox app redirect-uri": "exoimap sandbox app redirect-uri exoimap-public http://127.0.0.1",
    "sandbox app secret": "exoimap sandbox app secret exoimap-daemon --days 30",
    "sandbox clock advance": "exoimap sandbox clock advance 2h",
    "sandbox clock reset": "exoimap sandbox clock reset",
    "sandbox clock show": "exoimap sandbox clock show",
    "sandbox exchange faults": "exoimap sandbox exchange faults --delay 0.1",
    "sandbox exchange grant": (
        "exoimap sandbox exchange grant alice@contoso.onmicrosoft.com exoimap-daemon"
    ),
    "sandbox exchange register": "exoimap sandbox exchange register exoimap-daemon",
    "sandbox exchange revoke": (
        "exoimap sandbox exchange revoke alice@contoso.onmicrosoft.com exoimap-daemon"
    ),
    "sandbox fail-next": "exoimap sandbox fail-next 50076 --user alice@contoso.onmicrosoft.com",
    "sandbox settings": "exoimap sandbox settings --access-token-lifetime 300",
    "sandbox user add": "exoimap sandbox user add carol@contoso.onmicrosoft.com --mfa",
    "sandbox user revoke": "exoimap sandbox user revoke alice@contoso.onmicrosoft.com",
    "sandbox user set": "exoimap sandbox user set alice@contoso.onmicrosoft.com --blocked",
}


def _commands(
    command: click.Command, path: tuple[str, ...], ctx: click.Context
) -> Iterator[tuple[tuple[str, ...], click.Command, click.Context]]:
    """Every runnable command under ``command``, depth first, in the order --help lists them
    (a group that also runs on its own, like ``proxy``, comes before its sub-commands)."""
    if isinstance(command, click.Group) and command.invoke_without_command and path:
        yield path, command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            yield from _commands(sub, (*path, name), click.Context(sub, info_name=name, parent=ctx))
    else:
        yield path, command, ctx


def command_names() -> list[str]:
    """Every runnable command, e.g. ``"account add"``."""
    root = click.Context(app, info_name="exoimap")
    return [" ".join(path) for path, _, _ in _commands(app, (), root)]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _parameters(command: click.Command, ctx: click.Context) -> list[str]:
    rows = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None or getattr(param, "hidden", False) or "--help" in param.opts:
            continue
        names, text = record
        rows.append(f"| `{_cell(names)}` | {_cell(text)} |")
    if not rows:
        return []
    return ["| argument or option | meaning |", "|---|---|", *rows, ""]


def _help_text(command: click.Command) -> list[str]:
    """The command's help as --help prints it (``\\b`` blocks kept as code blocks)."""
    lines: list[str] = []
    for block in inspect.cleandoc(command.help or "").split("\n\n"):
        text = block.strip("\n")
        if text.startswith("\b"):
            body = "\n".join(line.rstrip() for line in text[1:].strip("\n").splitlines())
            lines += ["```text", body, "```", ""]
        else:
            lines += [" ".join(text.split()), ""]
    return lines


def _section(path: tuple[str, ...], command: click.Command, ctx: click.Context) -> list[str]:
    name = " ".join(path)
    usage = " ".join(["exoimap", *path, *command.collect_usage_pieces(ctx)])
    codes = (*EXIT_CODES.get(name, _COMMON), EXIT_INTERRUPTED)
    example = EXAMPLES.get(name, usage.replace(" [OPTIONS]", ""))
    return [
        f"## `exoimap {name}`",
        "",
        "```text",
        usage,
        "```",
        "",
        *_help_text(command),
        *_parameters(command, ctx),
        f"Exit codes: {', '.join(map(str, codes))} (see [Exit codes](#exit-codes)).",
        "",
        "Example:",
        "",
        "```sh",
        example,
        "```",
        "",
    ]


def render() -> str:
    """The whole of ``docs/commands.md``."""
    root = click.Context(app, info_name="exoimap")
    commands = list(_commands(app, (), root))
    out = [
        "# Commands",
        "",
        "<!-- Written by `python -m exoimap.cli.reference --write docs/commands.md` from the",
        "     click definitions; a test fails when this file and the commands disagree. -->",
        "",
        "Global options (before the command): `-v`/`-vv` more output, `-q` errors only, "
        "`--version`.",
        "",
        "## Exit codes",
        "",
        "| code | meaning |",
        "|---|---|",
        *(f"| {code} | {meaning} |" for code, meaning in EXIT_CODE_MEANINGS.items()),
        "",
        "## Contents",
        "",
        *(f"- `exoimap {' '.join(path)}`" for path, _, _ in commands),
        "",
    ]
    for path, command, ctx in commands:
        out += _section(path, command, ctx)
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write docs/commands.md from the CLI.")
    parser.add_argument("--write", type=Path, help="write here instead of to stdout")
    args = parser.parse_args(argv)
    text = render()
    if args.write is None:
        sys.stdout.write(text)
    else:
        args.write.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
