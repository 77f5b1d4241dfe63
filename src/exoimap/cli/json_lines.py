"""``--json`` for ``sync``, ``verify`` and ``archive stats``: one JSON object a line, one per
account (``docs/json-output.md`` describes each).

Every object has ``command``, ``account`` and ``ok``; an account that failed as a whole
has ``error`` (the one line the command prints on stderr too) and ``exit_code``. The
objects are ASCII (``json.dumps`` escapes the rest), so no control character a server
put in a folder name or an error text reaches a terminal.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from exoimap.cli.app import exit_code_for
from exoimap.config import AccountConfig
from exoimap.errors import ExoimapError
from exoimap.logs import redact

if TYPE_CHECKING:
    from exoimap.app.accounts import AccountResult
    from exoimap.app.checks import ArchiveStats
    from exoimap.app.operations import ArchiveCheck
    from exoimap.sync.report import SyncReport

__all__ = [
    "JSON_OPTION",
    "emit",
    "failure",
    "reporting_failures",
    "stats_document",
    "sync_document",
    "verify_document",
]

JSON_OPTION = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per account on stdout, for scripts and monitoring.",
)


def emit(document: dict[str, Any]) -> None:
    click.echo(json.dumps(document))


def failure(command: str, account: str, exc: ExoimapError) -> dict[str, Any]:
    """The object of an account that failed as a whole."""
    return {
        "command": command,
        "account": account,
        "ok": False,
        "error": redact(str(exc)),
        "exit_code": exit_code_for(exc),
    }


def reporting_failures(
    command: str, action: Callable[[AccountConfig], int]
) -> Callable[[AccountConfig], int]:
    """``action``, which also emits the failure object of an account it fails for (the
    error then goes on as without ``--json``: one line on stderr, the exit code)."""

    @functools.wraps(action)
    def reported(account: AccountConfig) -> int:
        try:
            return action(account)
        except ExoimapError as exc:
            emit(failure(command, account.name, exc))
            raise

    return reported


def _report_document(report: SyncReport) -> dict[str, Any]:
    return {
        "summary": report.summary(),
        "folders": [
            {
                "folder": f.source,
                "ok": f.ok,
                "new_folder": f.new_folder,
                "planned": f.planned,
                "planned_bytes": f.planned_bytes,
                "fetched": f.fetched,
                "bytes": f.bytes,
                "flags_changed": f.flags_changed,
                "gone": f.gone,
                "expunged": f.expunged,
                "refetched_missing": f.refetched_missing,
                "content_changed": list(f.content_changed),
                "errors": [redact(str(e)) for e in f.errors],
            }
            for f in report.folders
        ],
        "renamed": [list(pair) for pair in report.renamed],
        "folders_gone": list(report.folders_gone),
        "recovery_notes": list(report.recovery_notes),
        "errors": [redact(str(e)) for e in report.errors],
    }


def sync_document(result: AccountResult, throttled: tuple[int, float]) -> dict[str, Any]:
    """One account's ``sync``: what its report says, per folder and in sum."""
    if result.error is not None:
        return failure("sync", result.account, result.error) | {"archive": str(result.archive)}
    assert result.report is not None
    waits, waited = throttled
    return {
        "command": "sync",
        "account": result.account,
        "ok": result.ok,
        "archive": str(result.archive),
        "dry_run": result.report.plan_only,
        "seconds": round(result.seconds, 3),
        "throttled": waits,
        "throttled_seconds": round(waited, 3),
        **_report_document(result.report),
    }


_PROBLEMS = (
    "missing",
    "not_marked_gone",
    "duplicates",
    "size_mismatch",
    "date_mismatch",
    "hash_mismatch",
    "flag_mismatch",
)


def verify_document(
    account: str, report: ArchiveCheck, *, deep: bool, repair: bool
) -> dict[str, Any]:
    """One account's ``verify``: every difference, by folder and kind (server UIDs)."""
    files = report.files
    return {
        "command": "verify",
        "account": account,
        "ok": report.ok_after_repair if repair else report.ok,
        "differences_found": not report.ok,
        "deep": deep,
        "folders": len(report.folders),
        "messages": sum(f.checked for f in report.folders),
        "files_checked": files.checked,
        "folders_missing": list(report.folders_missing),
        "problems": [
            {"folder": f.source, "kind": kind, "uids": list(getattr(f, kind))}
            for f in report.folders
            for kind in _PROBLEMS
            if getattr(f, kind)
        ],
        "files_missing": [{"folder": name, "uid": uid} for name, uid in files.missing],
        "files_corrupt": [{"folder": name, "uid": uid} for name, uid in files.corrupt],
        "files_unindexed": [{"folder": name, "file": file} for name, file in files.unindexed],
        "repaired": None if report.repaired is None else _report_document(report.repaired),
    }


def stats_document(account: str, stats: ArchiveStats) -> dict[str, Any]:
    """One account's ``archive stats``."""
    return {
        "command": "archive stats",
        "account": account,
        "ok": True,
        "archive": str(stats.root),
        "messages": stats.messages,
        "bytes": stats.bytes,
        "folders": [
            {
                "folder": f.name,
                "messages": f.messages,
                "bytes": f.bytes,
                "gone": f.gone,
                "gone_folder": f.gone_folder,
            }
            for f in sorted(stats.folders, key=lambda f: f.name)
        ],
        "recovery_notes": list(stats.recovery_notes),
    }
