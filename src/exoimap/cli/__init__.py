"""The ``exoimap`` command. Thin: parsing, printing and exit codes; the work is in the library.

Exit codes: 0 success, 1 failure, 2 usage or configuration error, 3 sign-in needed,
4 finished but some items failed.
"""

from __future__ import annotations

import sys

import typer

from exoimap.cli.account import app as account_app
from exoimap.cli.app import EXIT_FAILURE, EXIT_PARTIAL, EXIT_SIGN_IN, EXIT_USAGE, app, exit_code_for
from exoimap.cli.archive_cmd import app as archive_app
from exoimap.cli.audit import app as audit_app
from exoimap.cli.config_cmd import app as config_app
from exoimap.cli.sandbox import app as sandbox_app
from exoimap.cli.signin import login, logout
from exoimap.cli.sync_cmd import sync, verify
from exoimap.cli.token_cmd import app as token_app
from exoimap.cli.vault_cmd import app as vault_app
from exoimap.errors import ExoimapError
from exoimap.logs import redact

__all__ = ["EXIT_FAILURE", "EXIT_PARTIAL", "EXIT_SIGN_IN", "EXIT_USAGE", "app", "main"]

# Sub-commands: one line each (one import line each, so parallel work merges cleanly).
app.add_typer(config_app, name="config")
app.add_typer(account_app, name="account")
app.command("login")(login)
app.command("logout")(logout)
app.add_typer(token_app, name="token")
app.add_typer(vault_app, name="vault")
app.add_typer(audit_app, name="audit")
app.add_typer(sandbox_app, name="sandbox")
app.command("sync")(sync)
app.command("verify")(verify)
app.add_typer(archive_app, name="archive")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (the console script calls this)."""
    try:
        # With standalone_mode=False the code of `typer.Exit(n)` is returned, not raised.
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
    except typer.TyperException as exc:  # usage errors: typer raises its own vendored click's
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:  # pragma: no cover - every vendored usage error has show()
            print(f"exoimap: error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # e.g. Ctrl-C while a device-code sign-in waits
        print("exoimap: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
