"""The root typer app, global options and exit codes."""

from __future__ import annotations

from typing import Annotated

import typer

from exoimap.config import Paths, load_config
from exoimap.errors import AuthError, ConfigError, ExoimapError
from exoimap.logs import setup_logging

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_SIGN_IN = 3
EXIT_PARTIAL = 4

app = typer.Typer(
    name="exoimap",
    help="OAuth2 + IMAP for Microsoft 365 / Exchange Online: sign in, back up, verify, audit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def exit_code_for(exc: ExoimapError) -> int:
    """The documented exit code for an error that ended a command."""
    if isinstance(exc, ConfigError):
        return EXIT_USAGE
    if isinstance(exc, AuthError) and not exc.retryable:
        return EXIT_SIGN_IN
    return EXIT_FAILURE


def _version(value: bool) -> None:
    if value:
        import exoimap

        typer.echo(f"exoimap {exoimap.__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More output (-vv for debug).")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Errors only.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Global options; the log file goes under the data directory."""
    paths = Paths.from_env()
    level = -1 if quiet else verbose
    log_file = paths.log_dir / "exoimap.log"
    try:
        configured = load_config(paths).logging.file
    except ConfigError:
        configured = None  # the command itself reports the config error
    setup_logging(level, configured or log_file)
