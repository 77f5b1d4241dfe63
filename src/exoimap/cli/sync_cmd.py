"""``exoimap sync NAME...`` (or ``--all``): a thin wrapper over :mod:`exoimap.app` (which
does the work) that prints and picks the exit code.

Every line printed here goes through :func:`exoimap.untrusted.shown`: folder names and
error texts come from the server."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from exoimap.app import resident
from exoimap.app.accounts import AccountResult, SyncOptions, sync_accounts
from exoimap.app.operations import planned_folders
from exoimap.audit import auditing
from exoimap.auth.audit_key import audit_key_for
from exoimap.cli.account_names import account_names, select_accounts
from exoimap.cli.app import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    exit_code_for,
)
from exoimap.cli.json_lines import (
    JSON_OPTION,
    emit,
    sync_document,
)
from exoimap.cli.metrics import metrics_endpoint, metrics_listeners, metrics_port_option
from exoimap.cli.output import echo
from exoimap.cli.progress import SyncDisplay
from exoimap.cli.provider import account_provider
from exoimap.config import Paths, load_config
from exoimap.words import byte_size, first_few, plural, sentence

if TYPE_CHECKING:
    from exoimap.sync.report import SyncReport

__all__ = ["sync"]


def _print_preview(result: AccountResult) -> None:
    report = result.report
    assert report is not None
    echo(f"{result.account}: dry run, nothing changed (archive {result.archive})")
    for old, new in report.renamed:
        echo(f"  would rename folder {old} to {new}")
    for name in report.folders_gone:
        echo(f"  would mark folder {name} gone (deleted on the server)")
    for name in report.folders_deleted:
        echo(f"  would delete folder {name}")
    for p in planned_folders(report):
        new = " (new folder)" if p.new_folder else ""
        deleted = f"mark {p.gone} gone" if not p.expunged else f"delete {p.expunged}"
        echo(
            f"  would sync {p.source}{new}: fetch {p.planned} ({byte_size(p.planned_bytes)}), "
            f"update flags of {p.flags_changed}, {deleted}"
        )
    for p in report.folders:
        for error in p.errors:
            echo(f"  {p.source}: cannot plan: {error}", err=True)
    fetch = sum(p.planned for p in report.folders)
    size = sum(p.planned_bytes for p in report.folders)
    echo(
        f"{result.account}: would fetch {plural(fetch, 'message')} ({byte_size(size)}) "
        f"in {plural(len(report.folders), 'folder')}."
    )


def _print_result(result: AccountResult, display: SyncDisplay) -> None:
    if result.error is not None:
        echo(sentence(f"{result.account}: failed: {result.error}"), err=True)
        return
    report = result.report
    assert report is not None
    if report.plan_only:
        _print_preview(result)
        return
    summary = report.summary()
    waits, waited = display.throttle_summary(result.account)
    throttled = f", throttled {plural(waits, 'time')} ({waited:.1f} s waited)" if waits else ""
    echo(
        f"{result.account}: fetched {plural(summary['fetched'], 'message')} "
        f"({byte_size(summary['bytes'])}) in {plural(summary['folders'], 'folder')}, "
        f"{plural(summary['flags_changed'], 'flag change')}, "
        f"{summary['gone'] + summary['expunged']} deleted on the server, "
        f"{plural(summary['failed_folders'], 'failed folder')} "
        f"in {result.seconds:.1f} s{throttled}."
    )
    for name in report.folders_gone:
        echo(f"{result.account}: folder {name} was deleted on the server (kept in the archive).")
    for note in report.recovery_notes:
        echo(sentence(f"{result.account}: archive repaired: {note}"))
    if summary["refetched_missing"]:
        missing = summary["refetched_missing"]
        echo(
            f"{result.account}: fetched again {plural(missing, 'message')} whose "
            f"{'file was' if missing == 1 else 'files were'} missing."
        )
    _print_content_changes(result.account, report)


def _print_content_changes(account: str, report: SyncReport) -> None:
    """A warning per folder where the server holds other content under UIDs already
    backed up (what a server that lost its store shows)."""
    for f in report.folders:
        if f.content_changed:
            uids = first_few(f.content_changed)
            echo(
                f"{account}: warning: {f.source}: the server holds other content under "
                f"{plural(len(f.content_changed), 'UID')} already backed up (server UIDs "
                f"{uids}); fetched again, the old copies are kept in the archive marked gone.",
                err=True,
            )


def _exit_code(results: list[AccountResult]) -> int:
    failed = [r for r in results if not r.ok]
    if not failed:
        return EXIT_OK
    if len(failed) == len(results) and all(r.error is not None for r in failed):
        error = failed[0].error
        assert error is not None
        return exit_code_for(error)
    return EXIT_PARTIAL


@click.command("sync")
@account_names("back up")
@click.option("--folder", multiple=True, help="Only folders matching this glob (repeatable).")
@click.option("--exclude", multiple=True, help="Leave out folders matching this glob (repeatable).")
@click.option("--dry-run", is_flag=True, help="Show what would be fetched; change nothing.")
@click.option(
    "--mirror", is_flag=True, help="Delete from the archive what was deleted on the server."
)
@metrics_port_option
@JSON_OPTION
@click.option(
    "--no-agent",
    is_flag=True,
    help="Run in this process even when an `exoimap agent` is running.",
)
def sync(
    *,
    names: tuple[str, ...],
    all_accounts: bool,
    folder: tuple[str, ...],
    exclude: tuple[str, ...],
    dry_run: bool,
    mirror: bool,
    metrics_port: int | None,
    as_json: bool,
    no_agent: bool,
) -> None:
    """Back up accounts into their local archives (incremental; safe to interrupt).

    When an `exoimap agent` is running, the sync runs in it (see `exoimap agent`).
    """
    del no_agent  # acted on before the CLI is loaded (exoimap.agent.client)
    kept: resident.Resident | None = click.get_current_context().find_object(resident.Resident)
    paths = Paths.from_env()
    config = load_config(paths)
    accounts = select_accounts(config, names, all_accounts)
    options = SyncOptions(
        folders=folder,
        exclude=exclude,
        dry_run=dry_run,
        mirror=mirror,
    )
    with (
        auditing(
            paths,
            config.audit,
            key=audit_key_for(paths),
            listeners=metrics_listeners(metrics_port),
        ),
        metrics_endpoint(metrics_port),
    ):
        try:
            with SyncDisplay(quiet=as_json) as display:
                results = resident.run(
                    sync_accounts(
                        accounts,
                        paths,
                        account_provider,
                        options,
                        on_progress=display.progress,
                        on_net_event=display.net_event,
                        kept=kept,
                    ),
                    kept,
                )
        except KeyboardInterrupt:
            # each batch commits atomically: what was stored stays, the next run goes on
            echo(
                "exoimap: interrupted; what was stored is kept. Run the same command again "
                "to go on.",
                err=True,
            )
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        for result in results:
            if as_json:
                emit(sync_document(result, display.throttle_summary(result.account)))
                if result.error is not None:  # the one line, as without --json
                    echo(sentence(f"{result.account}: failed: {result.error}"), err=True)
            else:
                _print_result(result, display)
    code = _exit_code(results)
    if code == EXIT_PARTIAL:
        echo("Some items failed:", err=True)
        for result in results:
            for line in result.failures():
                echo(f"  {line}", err=True)
    raise click.exceptions.Exit(code)
