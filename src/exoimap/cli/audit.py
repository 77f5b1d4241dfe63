"""``exoimap audit``: verify, read, export and review the audit log."""

from __future__ import annotations

import contextlib
import enum
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from exoimap.audit.keys import load_audit_key
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
from exoimap.audit.report import ReportPolicy, build_report, format_report
from exoimap.audit.verify import verify_log
from exoimap.cli.app import EXIT_FAILURE
from exoimap.config import Paths, load_config
from exoimap.errors import ConfigError

app = typer.Typer(help="Verify, read, export and review the audit log.", no_args_is_help=True)


class TableOrJson(enum.StrEnum):
    table = "table"
    json = "json"


class ExportFormat(enum.StrEnum):
    jsonl = "jsonl"
    csv = "csv"


class ReportFormat(enum.StrEnum):
    text = "text"
    json = "json"


SinceOpt = Annotated[
    str | None, typer.Option("--since", help="From this time: 2026-11-28, 2026-11-28T07:00, 24h.")
]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Before this time (same forms).")]
AccountOpt = Annotated[str | None, typer.Option("--account", help="Only this account.")]
EventOpt = Annotated[
    str | None, typer.Option("--event", help="Only these events (a glob: token.*, imap.closed).")
]
OutcomeOpt = Annotated[
    str | None, typer.Option("--outcome", help="Only success, failure or denied.")
]


# For long-running commands (``exoimap sync --metrics-port``, later the console):
#     def sync(..., metrics_port: MetricsPortOpt = None) -> None:
#         with metrics_endpoint(metrics_port): ...
MetricsPortOpt = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        help="Serve Prometheus metrics on http://127.0.0.1:PORT/metrics while running "
        "(0 picks a free port).",
    ),
]


@contextlib.contextmanager
def metrics_endpoint(port: int | None) -> Iterator[str | None]:
    """Serve the process's metrics for the block when a port was asked for; yields the URL."""
    if port is None:
        yield None
        return
    from exoimap.audit.metrics import serve_metrics  # only commands that serve pay the import

    with serve_metrics(port) as server:
        typer.echo(f"metrics: {server.url}", err=True)
        yield server.url


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
def verify(
    no_key: Annotated[
        bool, typer.Option("--no-key", help="Check hashes and links only (weaker).")
    ] = False,
) -> None:
    """Check the hash chain and the keyed checkpoint. Exit 0 when intact, 1 otherwise."""
    paths = Paths.from_env()
    directory = paths.audit_dir
    if not audit_files(directory) and not (directory / "audit.checkpoint").exists():
        typer.echo(f"no audit log yet in {directory}")
        return
    key = None if no_key else load_audit_key(paths, create=False)
    result = verify_log(directory, key)
    for notice in result.notices:
        typer.echo(f"note: {notice}")
    if result.problem is not None:
        typer.echo(f"audit log NOT intact: {result.problem.describe()}", err=True)
        typer.echo(f"checked {result.records} good records before it", err=True)
        raise typer.Exit(EXIT_FAILURE)
    keyed = "hash chain and keyed checkpoint" if result.keyed else "hash chain only"
    typer.echo(
        f"audit log intact: {result.records} records in {result.files} file(s) ({keyed} verified)"
    )


@app.command("tail")
def tail(
    lines: Annotated[int, typer.Option("-n", "--lines", help="How many records.")] = 20,
    account: AccountOpt = None,
    event: EventOpt = None,
    output: Annotated[TableOrJson, typer.Option("--format")] = TableOrJson.table,
) -> None:
    """Show the latest records."""
    records = tail_records(_audit_dir(), lines, _filter(None, None, account, event))
    text = format_table(records) if output is TableOrJson.table else format_json(records)
    typer.echo(text, nl=False)


@app.command("query")
def query_cmd(
    *,
    since: SinceOpt = None,
    until: UntilOpt = None,
    account: AccountOpt = None,
    event: EventOpt = None,
    outcome: OutcomeOpt = None,
    output: Annotated[TableOrJson, typer.Option("--format")] = TableOrJson.table,
) -> None:
    """Find records by time, account, event and outcome."""
    where = _filter(since, until, account, event, outcome)
    records = list(query(_audit_dir(), where))
    text = format_table(records) if output is TableOrJson.table else format_json(records)
    typer.echo(text, nl=False)


@app.command("export")
def export(
    *,
    output_format: Annotated[ExportFormat, typer.Option("--format")] = ExportFormat.jsonl,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (0600) instead of stdout.")
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    account: AccountOpt = None,
    event: EventOpt = None,
    outcome: OutcomeOpt = None,
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
        typer.echo(data.decode("utf-8"), nl=False)
        return
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise ConfigError(f"cannot write the export: {exc.strerror}", path=str(output)) from None
    typer.echo(f"exported to {output}", err=True)


@app.command("report")
def report(
    since: SinceOpt = None,
    until: UntilOpt = None,
    output: Annotated[ReportFormat, typer.Option("--format")] = ReportFormat.text,
) -> None:
    """A summary for a review, with suspicious patterns flagged."""
    config = load_config()
    policy = ReportPolicy(office_hours=config.audit.office_hours)
    where = _filter(since, until)
    result = build_report(query(_audit_dir()), since=where.since, until=where.until, policy=policy)
    if output is ReportFormat.json:
        typer.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
    else:
        typer.echo(format_report(result), nl=False)
