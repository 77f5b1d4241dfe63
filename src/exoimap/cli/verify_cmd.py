"""``exoimap verify NAME...`` (or ``--all``): compare the archive with the server and its
index, optionally repair; or, with ``--restore``, check the last restore. A thin wrapper over
:mod:`exoimap.app` that prints and picks the exit code.

Every line printed here goes through :func:`exoimap.untrusted.shown` (by
:func:`exoimap.cli.output.echo`): folder names come from the server."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import click

from exoimap.app.checks import verify_account
from exoimap.audit import auditing
from exoimap.auth.audit_key import audit_key_for
from exoimap.cli.account_names import account_names, for_each_account, select_accounts
from exoimap.cli.app import EXIT_FAILURE, EXIT_OK
from exoimap.cli.json_lines import JSON_OPTION, emit, reporting_failures, verify_document
from exoimap.cli.output import echo
from exoimap.cli.provider import account_provider
from exoimap.cli.restore_check import check_restore
from exoimap.config import AccountConfig, Paths, load_config
from exoimap.errors import ConfigError
from exoimap.words import byte_size, first_few, plural

if TYPE_CHECKING:
    from exoimap.app.operations import ArchiveCheck
    from exoimap.sync.report import SyncReport

__all__ = ["verify"]


def _print_verify(name: str, report: ArchiveCheck, deep: bool) -> None:
    kind = "deep (SHA-256 of every message)" if deep else "shallow (UIDs, sizes, flags)"
    checked = sum(f.checked for f in report.folders)
    for missing in report.folders_missing:
        echo(f"  folder {missing}: not in the archive")
    for f in report.folders:
        problems = [
            (what, uids)
            for what, uids in (
                ("missing from the archive", f.missing),
                ("deleted on the server but not marked gone", f.not_marked_gone),
                ("stored more than once", f.duplicates),
                ("size differs", f.size_mismatch),
                ("internal date differs", f.date_mismatch),
                ("content differs (SHA-256)", f.hash_mismatch),
                ("flags differ", f.flag_mismatch),
            )
            if uids
        ]
        for what, uids in problems:
            echo(f"  {f.source}: {len(uids)} {what} (server UIDs {first_few(uids)})")
    files = report.files
    for label, items in (
        ("file missing", files.missing),
        ("file corrupt (size or SHA-256 differs from the index)", files.corrupt),
    ):
        for folder_name, uid in items:
            echo(f"  {folder_name}: archive UID {uid}: {label}")
    for folder_name, file_name in files.unindexed:
        echo(f"  {folder_name}: file not in the index: {file_name}")
    verdict = "ok" if report.ok else "DIFFERENCES FOUND"
    echo(
        f"{name}: verify {kind}: {verdict}: {plural(len(report.folders), 'folder')}, "
        f"{plural(checked, 'message')} on the server, {plural(files.checked, 'file')} checked."
    )
    if report.repaired is not None:
        _print_repair(name, report.repaired)


def _print_repair(name: str, repaired: SyncReport) -> None:
    summary = repaired.summary()
    echo(
        f"{name}: repair: fetched {plural(summary['fetched'], 'message')} again "
        f"({byte_size(summary['bytes'])}); copies that differed are kept in the archive, "
        "marked gone."
    )
    for f in repaired.folders:
        for error in f.errors:
            echo(f"{name}: repair: {f.source}: {error}", err=True)


@click.command("verify")
@account_names("verify")
@click.option("--deep", is_flag=True, help="Also compare the SHA-256 of every message.")
@click.option("--restore", is_flag=True, help="Check the last restore from NAME's archive instead.")
@click.option("--to", default=None, help="With --restore: the mailbox restored into.")
@click.option(
    "--repair",
    is_flag=True,
    help="Then fetch again what differs or is missing (differing copies are kept, marked gone).",
)
@JSON_OPTION
def verify(  # click passes the options by name
    *,
    names: tuple[str, ...],
    all_accounts: bool,
    deep: bool,
    restore: bool,
    to: str | None,
    repair: bool,
    as_json: bool,
) -> None:
    """Compare the archive with the server (folders, UIDs, sizes, flags) and its index.

    With --repair: then fetch again what differs, is missing or is damaged (a copy that
    differs from the server is kept, marked gone). With --restore: check that the mailbox
    holds every message the last restore selected, exactly once, with its flags and date
    (and with --deep, byte for byte)."""
    if restore and repair:
        raise click.UsageError("--repair fetches into the archive; it does not go with --restore")
    if restore and as_json:
        raise click.UsageError("--json is for the archive's verify, not with --restore")
    paths = Paths.from_env()
    config = load_config(paths)
    accounts = select_accounts(config, names, all_accounts)
    if restore:
        if len(accounts) != 1:
            raise ConfigError("verify --restore checks one account's restore: name one account")
        raise click.exceptions.Exit(check_restore(accounts[0].name, to, deep=deep))

    def one(account: AccountConfig) -> int:
        with auditing(paths, config.audit, key=audit_key_for(paths)):
            report = asyncio.run(
                verify_account(account, account_provider(account), paths, deep=deep, repair=repair)
            )
        if as_json:
            emit(verify_document(account.name, report, deep=deep, repair=repair))
        else:
            _print_verify(account.name, report, deep)
        ok = report.ok_after_repair if repair else report.ok
        return EXIT_OK if ok else EXIT_FAILURE

    action = reporting_failures("verify", one) if as_json else one
    raise click.exceptions.Exit(for_each_account(accounts, action))
