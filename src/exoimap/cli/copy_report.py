"""What a restore or a migration says when it ends: skipped and failed messages on stderr,
one summary line, and the exit code (4 when anything was skipped or failed)."""

from __future__ import annotations

import click

from exoimap.app.accounts import AccountResult
from exoimap.cli.app import EXIT_OK, EXIT_PARTIAL, exit_code_for
from exoimap.cli.output import echo
from exoimap.errors import MessageError
from exoimap.sync.report import SyncReport
from exoimap.words import byte_size, plural, sentence

__all__ = ["copy_exit_code", "print_copy"]


def print_copy(name: str, what: str, destination: str, report: SyncReport, seconds: float) -> int:
    """Print the outcome of copying ``what`` ("restore", "migrate") from ``name`` to
    ``destination``; return the exit code."""
    for folder in report.folders:
        for uid, reason in folder.skipped:
            echo(f"  {folder.source}: source UID {uid} skipped: {reason}", err=True)
        for error in folder.errors:
            which = (
                f"source UID {error.uid}: "
                if isinstance(error, MessageError) and error.uid is not None
                else ""
            )
            echo(f"  {folder.source}: {which}{error}", err=True)
        for uid, keywords in folder.keywords_dropped:
            kept = ", ".join(keywords)
            echo(f"  {folder.source}: source UID {uid}: the target cannot keep {kept}", err=True)
    if report.plan_only:
        count = sum(f.planned for f in report.folders)
        size = sum(f.planned_bytes for f in report.folders)
        verb = f"would {what}"
    else:
        count, size, verb = report.fetched, report.bytes, f"{what}d"
    flags = sum(f.flags_changed for f in report.folders)
    created = f", {plural(len(report.created), 'folder')} created" if report.created else ""
    click.echo(
        f"{name}: {verb} {plural(count, 'message')} ({byte_size(size)}) to {destination}, "
        f"{plural(flags, 'flag change')}{created} in {seconds:.1f} s."
    )
    for note in report.recovery_notes:
        echo(f"{name}: {note}")
    return EXIT_OK if report.ok else EXIT_PARTIAL


def copy_exit_code(name: str, what: str, destination: str, result: AccountResult) -> int:
    """Print how a restore or migration ended (its error, or :func:`print_copy`); return
    the exit code."""
    if result.error is not None:
        echo(sentence(f"{name}: failed: {result.error}"), err=True)
        return exit_code_for(result.error)
    assert result.report is not None
    return print_copy(name, what, destination, result.report, result.seconds)
