"""The root click group, global options, exit codes, and the click classes every command uses.

Sub-commands are imported only when used: the root group looks them up in a registry
(``exoimap.cli.COMMANDS``), so a no-change ``exoimap sync`` does not pay for msal, the web
sandbox or the audit report, while ``--help`` lists (and so imports) them all.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

import click

from exoimap.errors import ConfigError, exit_code_for

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_SIGN_IN",
    "EXIT_USAGE",
    "PATH",
    "Group",
    "LazyGroup",
    "app",
    "exit_code_for",  # lives in exoimap.errors (the agent needs it too); CLI code takes it here
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_SIGN_IN = 3
EXIT_PARTIAL = 4
#: Interrupted (Ctrl-C, SIGINT): 128 + the signal's number, as shells report it.
EXIT_INTERRUPTED = 130

# Option values that name files or folders arrive as pathlib.Path.
PATH = click.Path(path_type=Path)


class Group(click.Group):
    """A command group; run with no arguments it prints its help and exits with 2."""

    group_class = type  # sub-groups are of this class too

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Done here rather than left to click, whose versions differ in where the help
        # goes and which code they exit with.
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            click.echo(ctx.get_help(), color=ctx.color)
            ctx.exit(EXIT_USAGE)
        return super().parse_args(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # As click's, but each command's first sentence is shown whole, never cut at "...".
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=1_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class LazyGroup(Group):
    """The root group: sub-commands registered as (module, attribute) are imported on use."""

    lazy_commands: Mapping[str, tuple[str, str]] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            module, attribute = self.lazy_commands[cmd_name]
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):  # pragma: no cover - a registry typo
                raise TypeError(f"{module}.{attribute} is not a click command")
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        import exoimap

        click.echo(f"exoimap {exoimap.__version__}")
        ctx.exit(EXIT_OK)


@click.group(
    name="exoimap",
    cls=LazyGroup,
    help="OAuth2 + IMAP for Microsoft 365 / Exchange Online: sign in, back up, verify, audit.",
    no_args_is_help=True,
    context_settings={"show_default": True},
)
@click.option("--verbose", "-v", count=True, help="More output (-vv for debug).")
@click.option("--quiet", "-q", is_flag=True, help="Errors only.")
@click.option(
    "--version",
    is_flag=True,
    callback=_version,
    is_eager=True,
    expose_value=False,
    help="Print the version.",
)
def app(verbose: int, quiet: bool) -> None:
    """Global options; the log file goes under the data directory."""
    from exoimap.config import Paths, load_config  # not needed by --version and --help
    from exoimap.logs import setup_logging

    paths = Paths.from_env()
    level = -1 if quiet else verbose
    log_file = paths.log_dir / "exoimap.log"
    try:
        configured = load_config(paths).logging.file
    except ConfigError:
        configured = None  # the command itself reports the config error
    setup_logging(level, configured or log_file)
