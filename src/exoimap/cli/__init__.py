"""The ``exoimap`` command. Thin: parsing, printing and exit codes; the work is in the library.

Exit codes: 0 success, 1 failure, 2 usage or configuration error, 3 sign-in needed,
4 finished but some items failed.
"""

from __future__ import annotations

import sys

import click
import typer

from exoimap.cli import account, audit, config_cmd, sandbox, signin, token_cmd, vault_cmd
from exoimap.cli.app import EXIT_FAILURE, EXIT_PARTIAL, EXIT_SIGN_IN, EXIT_USAGE, app, exit_code_for
from exoimap.errors import ExoimapError
from exoimap.logs import redact

__all__ = ["EXIT_FAILURE", "EXIT_PARTIAL", "EXIT_SIGN_IN", "EXIT_USAGE", "app", "main"]

# Sub-commands: one line each.
app.add_typer(config_cmd.app, name="config")
app.add_typer(audit.app, name="audit")
app.add_typer(account.app, name="account")
app.command("login")(signin.login)
app.command("logout")(signin.logout)
app.add_typer(token_cmd.app, name="token")
app.add_typer(vault_cmd.app, name="vault")
app.add_typer(sandbox.app, name="sandbox")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (the console script calls this)."""
    try:
        # With standalone_mode=False click returns (not raises) the code of `typer.Exit(n)`.
        result = app(args=argv, standalone_mode=False)
        if isinstance(result, int) and not isinstance(result, bool):
            return result
    except ExoimapError as exc:
        print(f"exoimap: error: {redact(str(exc))}", file=sys.stderr)
        return exit_code_for(exc)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        print("exoimap: aborted", file=sys.stderr)
        return EXIT_FAILURE
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except typer.TyperException as exc:  # usage errors (typer vendors click)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        return int(getattr(exc, "exit_code", EXIT_USAGE))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
