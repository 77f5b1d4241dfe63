"""The ``exoimap`` command. Thin: parsing, printing and exit codes; the work is in the library.

Exit codes: 0 success, 1 failure, 2 usage or configuration error, 3 sign-in needed,
4 finished but some items failed, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import contextlib
import errno
import os
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
from exoimap.errors import DiskFull, ExoimapError, StoreError, disk_of
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
    "watch": ("exoimap.cli.watch_cmd", "watch"),
    "doctor": ("exoimap.cli.doctor_cmd", "doctor"),
    "schedule": ("exoimap.cli.schedule_cmd", "app"),
    "verify": ("exoimap.cli.verify_cmd", "verify"),
    "restore": ("exoimap.cli.restore_cmd", "restore"),
    "migrate": ("exoimap.cli.migrate_cmd", "migrate"),
    "archive": ("exoimap.cli.archive_cmd", "app"),
    "export": ("exoimap.cli.export_cmd", "export"),
    "audit": ("exoimap.cli.audit", "app"),
    "sandbox": ("exoimap.cli.sandbox", "app"),
    "agent": ("exoimap.cli.agent_cmd", "app"),
    "console": ("exoimap.cli.console_cmd", "console"),
    "tenant": ("exoimap.cli.tenant_cmd", "app"),
    "worker": ("exoimap.cli.worker_cmd", "worker"),
    "proxy": ("exoimap.cli.proxy_cmd", "app"),
}
app.lazy_commands = COMMANDS


def main(argv: list[str] | None = None, *, kept: Resident | None = None) -> int:
    """Run the CLI and return its exit code (the console script calls this; an agent
    passes its resident state as ``kept``, for the commands that reuse connections)."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        return _run(args, kept)
    except (Exception, BaseExceptionGroup) as exc:
        cause = _known_cause(exc)
        if cause is None:
            raise  # a bug: the traceback is what a report needs
        return _ended_by(cause)


def _run(args: list[str], kept: Resident | None) -> int:
    try:
        with app.make_context("exoimap", args, obj=kept) as ctx:
            result = app.invoke(ctx)
        if isinstance(result, int) and not isinstance(result, bool):
            return result
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


def _known_cause(exc: BaseException) -> ExoimapError | BrokenPipeError | None:
    """The error with a one-line report that ended the command: ``exc`` itself, the first
    such error in a group from concurrent work, or a file-system failure that escaped the
    mapping of its layer (a full disk, a read-only file system), as its exoimap error."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _known_cause(inner)) is not None:
                return found
        return None
    if isinstance(exc, ExoimapError | BrokenPipeError):
        return exc
    full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if full or (type(exc).__module__ == "sqlite3" and "full" in str(exc)):
        filename = exc.filename if isinstance(exc, OSError) else None
        return DiskFull(
            f"no space left on {disk_of(filename)}; everything stored before is intact. "
            "Free some space and run again."
        )
    if isinstance(exc, OSError) and exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        where = f": {exc.filename}" if exc.filename else ""
        return StoreError(f"{exc.strerror}{where}")
    return None


def _ended_by(exc: ExoimapError | BrokenPipeError) -> int:
    """One line on stderr for the error that ended the command, and its exit code."""
    if isinstance(exc, BrokenPipeError):
        # whoever read the output (`exoimap ... | head`) stopped; writing more is pointless
        with contextlib.suppress(OSError, ValueError):  # no file descriptor (captured)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        print("exoimap: stopped: the output was closed (broken pipe).", file=sys.stderr)
        return EXIT_FAILURE
    print(f"exoimap: error: {shown(redact(sentence(str(exc))))}", file=sys.stderr)
    return exit_code_for(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
