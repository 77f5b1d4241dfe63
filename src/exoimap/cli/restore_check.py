"""``exoimap verify NAME --restore``: check the last restore and print what differs."""

from __future__ import annotations

import asyncio

import click

from exoimap.app.restore import RestoreOptions, RestoreRequest, verify_restore
from exoimap.audit import auditing
from exoimap.auth.audit_key import audit_key_for
from exoimap.cli.app import EXIT_FAILURE, EXIT_OK
from exoimap.cli.output import echo
from exoimap.cli.provider import account_provider
from exoimap.config import Paths, load_config
from exoimap.words import plural

__all__ = ["check_restore"]


def check_restore(name: str, to: str | None, *, deep: bool) -> int:
    """Check the last restore from ``name``'s archive into ``to`` (default ``name``);
    print the differences and return the exit code."""
    paths = Paths.from_env()
    config = load_config(paths)
    account = config.account(name)
    target = config.account(to) if to else account
    request = RestoreRequest(account, target, account_provider(target), paths, RestoreOptions())
    with auditing(paths, config.audit, key=audit_key_for(paths)):
        report = asyncio.run(verify_restore(request, deep=deep))
    checked = sum(f.checked for f in report.folders)
    for folder in report.folders:
        for what, uids in (
            ("not restored", folder.missing),
            ("restored more than once", folder.duplicates),
            ("flags differ", folder.flag_mismatch),
            ("internal date differs", folder.date_mismatch),
            ("content differs (SHA-256)", folder.hash_mismatch),
            ("skipped: larger than the mailbox takes", folder.skipped),
        ):
            if uids:
                shown = ", ".join(str(u) for u in uids[:10]) + (" ..." if len(uids) > 10 else "")
                echo(f"  {folder.source} -> {folder.target}: {len(uids)} {what} ({shown})")
    for missing in report.folders_missing:
        echo(f"  folder {missing}: not restored")
    verdict = "ok" if report.ok else "DIFFERENCES FOUND"
    click.echo(
        f"{name}: verify restore into {target.name}: {verdict}: {plural(checked, 'message')} in "
        f"{plural(len(report.folders), 'folder')}{' (SHA-256 compared)' if deep else ''}."
    )
    return EXIT_OK if report.ok else EXIT_FAILURE
