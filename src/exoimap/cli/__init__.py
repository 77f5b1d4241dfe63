"""The ``exoimap`` command. Thin: parsing, printing and exit codes; the work is in the library.

Exit codes: 0 success, 1 failure, 2 usage or configuration error, 3 sign-in needed,
4 finished but some items failed, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from exoimap.cli.app import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_PARTIAL,
    EXIT_SIGN_IN,
    EXIT_USAGE,
    app,
    exit_code_for,
)
from exoimap.errors import ExoimapError
from exoimap.logs import redact
from exoimap.untrusted import shown
from exoimap.words import sentence

if TYPE_CHECKING:
    from exoimap.app.resident import Resident

__all__ = ["COMMANDS", "EXIT_FAILURE", "EXIT_PARTIAL", "EXIT_SIGN_IN", "EXIT_USAGE", "app", "main"]

# Sub-commands, one line each: name -> (module, attribute holding the click command or group).
# Only the module of the command being run is imported (a no-change `exoimap sync` must not
# pay for msal, the web sandbox or the audit report); `--help` imports them all.
COMMANDS: dict[str, tuple[str, str]] = {
    "config": ("exoimap.cli.config_cmd", "app"),
    "account": ("exoimap.cli.account", "app"),
    "login": ("exoimap.cli.signin", "login"),
    "logout": ("exoimap.cli.signin", "logout"),
    "token": ("exoimap.cli.token_cmd", "app"),
    "vault": ("exoimap.cli.vault_cmd", "app"),
    "sync": ("exoimap.cli.sync_cmd", "sync"),
    "verify": ("exoimap.cli.sync_cmd", "verify"),
    "restore": ("exoimap.cli.restore_cmd", "restore"),
    "migrate": ("exoimap.cli.migrate_cmd", "migrate"),
    "archive": ("exoimap.cli.archive_cmd", "app"),
    "export": ("exoimap.cli.export_cmd", "export"),
    "audit": ("exoimap.cli.audit", "app"),
    "sandbox": ("exoimap.cli.sandbox", "app"),
    "agent": ("exoimap.cli.agent_cmd", "app"),
    "proxy": ("exoimap.cli.proxy_cmd", "app"),
}
app.lazy_commands = COMMANDS


def main(argv: list[str] | None = None, *, kept: Resident | None = None) -> int:
    """Run the CLI and return its exit code (the console script calls this; an agent
    passes its resident state as ``kept``, for the commands that reuse connections)."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        with app.make_context("exoimap", args, obj=kept) as ctx:
            result = app.invoke(ctx)
        if isinstance(result, int) and not isinstance(result, bool):
            return result
    except ExoimapError as exc:
        print(f"exoimap: error: {shown(redact(sentence(str(exc))))}", file=sys.stderr)
        return exit_code_for(exc)
    except click.exceptions.Exit as exc:  # --help, --version, and commands that pick a code
        return int(exc.exit_code)
    except click.ClickException as exc:  # usage errors: bad option, missing argument, ...
        exc.show()
        return EXIT_USAGE
    except (click.Abort, EOFError) as exc:  # e.g. end of input at a prompt
        if isinstance(exc, EOFError):
            print(file=sys.stderr)  # end the prompt's line
        print("exoimap: aborted.", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:  # e.g. Ctrl-C while a device-code sign-in waits
        print("exoimap: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
