"""The ``exoimap`` command. Thin: parsing, printing and exit codes; the work is in the library.

Exit codes: 0 success, 1 failure, 2 usage or configuration error, 3 sign-in needed,
4 finished but some items failed.
"""

from __future__ import annotations

import importlib
import sys

import typer

from exoimap.cli.app import EXIT_FAILURE, EXIT_PARTIAL, EXIT_SIGN_IN, EXIT_USAGE, app, exit_code_for
from exoimap.errors import ExoimapError
from exoimap.logs import redact

__all__ = ["EXIT_FAILURE", "EXIT_PARTIAL", "EXIT_SIGN_IN", "EXIT_USAGE", "app", "main"]

# Sub-commands, one line each: name -> (module, attribute, whether it is a group).
# Only the module of the command being run is imported (a no-change `exoimap sync` must not
# pay for msal, the web sandbox or the audit report); `--help` imports them all.
COMMANDS: dict[str, tuple[str, str, bool]] = {
    "config": ("exoimap.cli.config_cmd", "app", True),
    "account": ("exoimap.cli.account", "app", True),
    "login": ("exoimap.cli.signin", "login", False),
    "logout": ("exoimap.cli.signin", "logout", False),
    "token": ("exoimap.cli.token_cmd", "app", True),
    "vault": ("exoimap.cli.vault_cmd", "app", True),
    "sync": ("exoimap.cli.sync_cmd", "sync", False),
    "verify": ("exoimap.cli.sync_cmd", "verify", False),
    "archive": ("exoimap.cli.archive_cmd", "app", True),
    "audit": ("exoimap.cli.audit", "app", True),
    "sandbox": ("exoimap.cli.sandbox", "app", True),
}
_registered: set[str] = set()


def register_commands(names: list[str] | None = None) -> None:
    """Attach sub-commands to ``app`` (all of them when ``names`` is None)."""
    for name in COMMANDS if names is None else names:
        if name in _registered:
            continue
        module, attribute, group = COMMANDS[name]
        target = getattr(importlib.import_module(module), attribute)
        if group:
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)
        _registered.add(name)


def _command_named_in(argv: list[str]) -> list[str] | None:
    """The sub-command ``argv`` runs, when it names one we know (global options take no
    value, so the first word that is not an option is the command)."""
    for word in argv:
        if not word.startswith("-"):
            return [word] if word in COMMANDS else None
        if word in ("--help", "-h"):
            return None
    return [] if argv else None  # options only (--version): no command; nothing: help


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (the console script calls this)."""
    args = sys.argv[1:] if argv is None else argv
    register_commands(_command_named_in(args))
    try:
        # With standalone_mode=False the code of `typer.Exit(n)` is returned, not raised.
        result = app(args=args, standalone_mode=False)
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
