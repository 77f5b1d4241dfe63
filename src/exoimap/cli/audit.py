"""``exoimap audit``: verify, read, export and review the audit log."""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from exoimap.audit.auditor import new_correlation_id, os_user
from exoimap.audit.log import audit_files
from exoimap.audit.query import (
    AuditFilter,
    format_csv,
    format_json,
    format_table,
    parse_when,
    query,
    raw_lines,
)
from exoimap.audit.query import tail as tail_records
from exoimap.audit.recover import recover_log
from exoimap.audit.report import ReportPolicy, build_report, format_report
from exoimap.audit.verify import verify_log
from exoimap.auth.audit_key import load_audit_key
from exoimap.cli.app import EXIT_FAILURE, PATH, Group
from exoimap.config import Paths, load_config
from exoimap.errors import ConfigError
from exoimap.words import plural

F = TypeVar("F", bound=Callable[..., Any])


@click.group("audit", cls=Group, no_args_is_help=True)
def app() -> None:
    """Verify, read, export and review the audit log."""


class TableOrJson(enum.StrEnum):
    table = "table"
    json = "json"


class ExportFormat(enum.StrEnum):
    jsonl = "jsonl"
    csv = "csv"


class ReportFormat(enum.StrEnum):
    text = "text"
    json = "json"


def _format_option(
    kind: type[enum.StrEnum], default: enum.StrEnum, *, into: str = "output"
) -> Callable[[F], F]:
    """``--format`` with the enum's values as choices; the command gets the enum member."""
    return click.option(
        "--format",
        into,
        type=click.Choice([member.value for member in kind]),
        default=default.value,
        callback=lambda _ctx, _param, value: kind(value),
    )


since_option = click.option("--since", help="From this time: 2026-11-28, 2026-11-28T07:00, 24h.")
until_option = click.option("--until", help="Before this time (same forms).")
account_option = click.option("--account", help="Only this account.")
event_option = click.option("--event", help="Only these events (a glob: token.*, imap.closed).")
outcome_option = click.option("--outcome", help="Only success, failure or denied.")


def _audit_dir() -> Path:
    return Paths.from_env().audit_dir


def _filter(
    since: str | None,
    until: str | None,
    account: str | None = None,
    event: str | None = None,
    outcome: str | None = None,
) -> AuditFilter:
    return AuditFilter(
        since=parse_when(since) if since else None,
        until=parse_when(until) if until else None,
        account=account,
        event=event,
        outcome=outcome,
    )


@app.command("verify")
@click.option("--no-key", is_flag=True, help="Check hashes and links only (weaker).")
def verify(no_key: bool) -> None:
    """Check the hash chain and the keyed checkpoint. Exit 0 when intact, 1 otherwise."""
    paths = Paths.from_env()
    directory = paths.audit_dir
    nothing = not audit_files(directory) and not (directory / "audit.checkpoint").exists()
    if nothing and not paths.audit_anchor.exists():  # with an anchor, a deleted log is not new
        click.echo(f"no audit log yet in {directory}")
        return
    key = None if no_key else load_audit_key(paths, create=False)
    result = verify_log(directory, key, anchor=None if no_key else paths.audit_anchor)
    for notice in result.notices:
        click.echo(f"note: {notice}")
    if result.problem is not None:
        click.echo(f"audit log NOT intact: {result.problem.describe()}", err=True)
        click.echo(f"checked {plural(result.records, 'good record')} before it.", err=True)
        raise click.exceptions.Exit(EXIT_FAILURE)
    keyed = "hash chain and keyed checkpoint" if result.keyed else "hash chain only"
    click.echo(
        f"audit log intact: {plural(result.records, 'record')} in "
        f"{plural(result.files, 'file')} ({keyed} verified)."
    )


@app.command("tail")
@click.option("-n", "--lines", default=20, help="How many records.")
@account_option
@event_option
@_format_option(TableOrJson, TableOrJson.table)
def tail(lines: int, account: str | None, event: str | None, output: TableOrJson) -> None:
    """Show the latest records."""
    records = tail_records(_audit_dir(), lines, _filter(None, None, account, event))
    text = format_table(records) if output is TableOrJson.table else format_json(records)
    click.echo(text, nl=False)


@app.command("query")
@since_option
@until_option
@account_option
@event_option
@outcome_option
@_format_option(TableOrJson, TableOrJson.table)
def query_cmd(
    *,
    since: str | None,
    until: str | None,
    account: str | None,
    event: str | None,
    outcome: str | None,
    output: TableOrJson,
) -> None:
    """Find records by time, account, event and outcome."""
    where = _filter(since, until, account, event, outcome)
    records = list(query(_audit_dir(), where))
    text = format_table(records) if output is TableOrJson.table else format_json(records)
    click.echo(text, nl=False)


@app.command("export")
@_format_option(ExportFormat, ExportFormat.jsonl, into="output_format")
@click.option("--output", "-o", type=PATH, help="Write here (0600) instead of stdout.")
@since_option
@until_option
@account_option
@event_option
@outcome_option
def export(
    *,
    output_format: ExportFormat,
    output: Path | None,
    since: str | None,
    until: str | None,
    account: str | None,
    event: str | None,
    outcome: str | None,
) -> None:
    """Export records. JSON lines are the original lines, so an unfiltered export verifies."""
    where = _filter(since, until, account, event, outcome)
    directory = _audit_dir()
    if output_format is ExportFormat.jsonl:
        chosen = [line for line, record in raw_lines(directory) if where.matches(record)]
        data = b"".join(line + b"\n" for line in chosen)
    else:
        data = format_csv(query(directory, where)).encode("utf-8")
    if output is None:
        click.echo(data.decode("utf-8"), nl=False)
        return
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise ConfigError(f"cannot write the export: {exc.strerror}", path=str(output)) from None
    click.echo(f"exported to {output}", err=True)


@app.command("report")
@since_option
@until_option
@_format_option(ReportFormat, ReportFormat.text)
def report(since: str | None, until: str | None, output: ReportFormat) -> None:
    """A summary for a review, with suspicious patterns flagged."""
    config = load_config()
    policy = ReportPolicy(office_hours=config.audit.office_hours)
    where = _filter(since, until)
    result = build_report(query(_audit_dir()), since=where.since, until=where.until, policy=policy)
    if output is ReportFormat.json:
        click.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(format_report(result), nl=False)


@app.command("recover")
@click.option("--reason", required=True, help="Why (recorded in the log): what happened, who.")
def recover(reason: str) -> None:
    """Keep a broken log and start a new segment linked to it, recording why.

    The old files move, unchanged, into a segment-NNNN folder; `audit verify` then checks
    both and reports the recovery. An intact log is left alone."""
    paths = Paths.from_env()
    key = load_audit_key(paths, create=False)
    done = recover_log(
        paths.audit_dir,
        key,
        reason,
        anchor=paths.audit_anchor,
        run=new_correlation_id(),
        os_user=os_user(),
    )
    if done is None:
        click.echo("the audit log is intact: nothing to recover")
        return
    click.echo(f"found: {done.problem.describe()}")
    click.echo(
        f"the old log is kept in {paths.audit_dir / done.segment}; the new segment starts at "
        f"record {done.first_record}, linked to record {done.linked_to}"
    )
