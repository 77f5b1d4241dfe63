"""``exoimap doctor [NAME...]``: every check of :mod:`exoimap.app.doctor`, one line each
(``--json``: one JSON object a line), the fix under each failure; exit 0 only when all pass."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from exoimap.app.doctor import DoctorSettings, Finding, run_doctor
from exoimap.auth.audit_key import load_audit_key
from exoimap.cli.account_names import account_names, select_accounts
from exoimap.cli.app import EXIT_FAILURE, EXIT_OK
from exoimap.cli.output import echo
from exoimap.config import AccountConfig, Config, Paths
from exoimap.secrets import Secret

__all__ = ["doctor"]

_DEFAULTS = DoctorSettings()


def _print(finding: Finding) -> None:
    who = f" {finding.account}" if finding.account else ""
    mark = "FAIL" if not finding.ok else "warn" if finding.warning else "ok  "
    echo(f"{mark} {finding.check}{who}: {finding.detail}")
    if finding.fix and (finding.warning or not finding.ok):
        echo(f"     fix: {finding.fix}")


def _print_json(finding: Finding) -> None:
    click.echo(json.dumps(finding.as_json()))


@click.command("doctor")
@account_names("check")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per check, for monitoring.")
@click.option(
    "--max-clock-skew",
    type=click.FloatRange(min=0),
    default=_DEFAULTS.max_clock_skew,
    help="Seconds of clock difference with the identity platform still accepted.",
)
@click.option(
    "--min-free",
    type=click.FloatRange(min=0),
    default=_DEFAULTS.min_free_bytes / (1 << 30),
    help="GiB the archive's disk must keep free.",
)
@click.option(
    "--min-free-days",
    type=click.FloatRange(min=0),
    default=_DEFAULTS.min_free_days,
    help="Days the free space must last at the archive's growth rate.",
)
def doctor(
    *,
    names: tuple[str, ...],
    all_accounts: bool,
    as_json: bool,
    max_clock_skew: float,
    min_free: float,
    min_free_days: float,
) -> None:
    """Check the config, vault, sign-in, clock, IMAP server, archive (lock, index, files,
    free space against growth), audit chain and versions; print the fix for each problem.
    Exit code 0 only when all pass (warnings pass)."""
    paths = Paths.from_env()

    def select(config: Config, wanted: Sequence[str]) -> Sequence[AccountConfig]:
        return select_accounts(config, tuple(wanted), all_accounts or not wanted)

    def audit_key() -> Secret[bytes] | None:
        return load_audit_key(paths, create=False)

    settings = DoctorSettings(
        max_clock_skew=max_clock_skew,
        min_free_bytes=int(min_free * (1 << 30)),
        min_free_days=min_free_days,
    )
    findings = run_doctor(
        paths,
        names,
        select,
        audit_key,
        settings=settings,
        on_finding=_print_json if as_json else _print,
    )
    failed = [f for f in findings if not f.ok]
    if not as_json:
        plural = "" if len(failed) == 1 else "s"
        verdict = f"{len(failed)} problem{plural} found" if failed else "all checks passed"
        warned = sum(1 for f in findings if f.ok and f.warning)
        if warned:
            verdict += f" ({warned} warning{'' if warned == 1 else 's'})"
        echo(f"doctor: {verdict}")
    raise click.exceptions.Exit(EXIT_FAILURE if failed else EXIT_OK)
