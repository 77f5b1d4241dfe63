"""``exoimap doctor``: check everything a backup needs and say the one thing to fix for each
problem, before a scheduled run fails on it.

Checks, in order (a check whose ground is missing is skipped, e.g. no sign-in without a
valid config): the config; the vault (unlocks without a prompt, private, writable); per
account the sign-in (a token refresh through the identity platform right now), the clock
against the token's issue time (token validation breaks beyond a few minutes of skew), the
IMAP server (DNS, verified TLS, sign-in, IDLE); the archive (folder writable, lock, index,
files against the index, free space against growth: :mod:`exoimap.app.doctor_archive`);
then the audit chain; and the Python and library versions.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

from exoimap.app.doctor_archive import archive_findings
from exoimap.app.doctor_findings import DoctorSettings, Finding
from exoimap.audit.verify import verify_log
from exoimap.auth.provider import TokenProvider
from exoimap.auth.vault import Vault
from exoimap.config import AccountConfig, Config, Paths, load_config
from exoimap.errors import (
    AuthError,
    ConfigError,
    ExoimapError,
    NetworkError,
    TLSRefused,
    VaultKeyError,
)
from exoimap.net.account import connection_for
from exoimap.net.session import ImapSession, NetEvent
from exoimap.secrets import Secret

__all__ = ["DoctorSettings", "Finding", "run_doctor"]

#: The minimums the project supports (pyproject's dependencies).
MINIMUM_VERSIONS: dict[str, tuple[int, ...]] = {
    "python": (3, 11),
    "msal": (1, 31),
    "cryptography": (43,),
}


def _version(text: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def check_versions() -> Finding:
    found: dict[str, tuple[int, ...]] = {"python": tuple(sys.version_info[:3])}
    for name in ("msal", "cryptography"):
        try:
            found[name] = _version(metadata.version(name))
        except metadata.PackageNotFoundError:
            found[name] = ()
    old = [n for n, need in MINIMUM_VERSIONS.items() if found[n] < need]
    shown = ", ".join(f"{n} {'.'.join(map(str, v)) or 'missing'}" for n, v in found.items())
    if old:
        needs = ", ".join(f"{n} >= {'.'.join(map(str, MINIMUM_VERSIONS[n]))}" for n in old)
        return Finding("versions", False, shown, f"upgrade: {needs}")
    return Finding("versions", True, shown)


def check_config(paths: Paths) -> tuple[Finding, Config | None]:
    try:
        config = load_config(paths)
    except ConfigError as exc:
        return Finding("config", False, str(exc), f"edit {paths.config_file}"), None
    if not config.accounts:
        fix = "add one: `exoimap account add NAME --email ...`"
        return Finding("config", False, "no accounts configured", fix), config
    names = ", ".join(config.accounts)
    return Finding("config", True, f"{paths.config_file}: accounts {names}"), config


def _private(path: Path) -> bool:
    return not path.exists() or path.stat().st_mode & 0o077 == 0


def check_vault(paths: Paths, vault: Vault) -> Finding:
    directory = paths.vault_dir
    if not vault.exists():
        return Finding("vault", False, f"no vault in {directory}", "sign in: `exoimap login NAME`")
    try:
        source = vault.key_source
    except ExoimapError as exc:
        fix = (
            "for unattended runs set EXOIMAP_VAULT_KEY_FILE (see `exoimap vault "
            "create-key-file`) or EXOIMAP_VAULT_PASSPHRASE"
        )
        return Finding("vault", False, f"cannot unlock: {exc}", fix)
    if not _private(directory):
        return Finding("vault", False, f"{directory} is open to others", f"chmod 700 {directory}")
    if not os.access(directory, os.W_OK):
        fix = f"give your user write access to {directory}"
        return Finding("vault", False, f"{directory} is not writable", fix)
    return Finding("vault", True, f"{directory} unlocks with the {source}, private, writable")


def check_sign_in(
    account: AccountConfig, provider: TokenProvider, settings: DoctorSettings
) -> list[Finding]:
    """A refresh right now (so revoked consent shows), then the clock against the fresh
    token's issue time."""
    name = account.name
    if provider.uses_password:
        return [Finding("sign-in", True, f"password sign-in ({provider.mechanism})", "", name)]
    try:
        info = provider.token_info(min_validity=10 * 86400)  # longer than any token: refresh
    except ExoimapError as exc:
        detail, fix = _split(exc, _default_fix(exc, name))
        return [Finding("sign-in", False, detail, fix, name)]
    left = (info.expires_at - time.time()) / 60
    scopes = " ".join(info.claims.scopes) if info.claims is not None else "unknown"
    found = [
        Finding("sign-in", True, f"token refreshed, {left:.0f} min left, scopes {scopes}", "", name)
    ]
    issued = info.claims.issued_at if info.claims is not None else None
    if issued is None:
        found.append(Finding("clock", True, "the token says nothing of its issue time", "", name))
        return found
    skew = time.time() - issued
    detail = f"this clock is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} the issuer"
    if abs(skew) > settings.max_clock_skew:
        fix = "synchronise the clock (e.g. enable NTP: `timedatectl set-ntp true`)"
        found.append(Finding("clock", False, detail, fix, name))
    else:
        found.append(Finding("clock", True, detail, "", name))
    return found


def _default_fix(exc: ExoimapError, name: str) -> str:
    if isinstance(exc, VaultKeyError):
        return "make the vault unlock first (see the vault check)"
    if isinstance(exc, ConfigError):
        return f"correct the account: `exoimap account add {name} --replace ...`"
    if isinstance(exc, NetworkError):
        return "check the network and the identity platform's address (--authority)"
    return f"sign in again: `exoimap login {name}`"


def _split(exc: ExoimapError, default_fix: str) -> tuple[str, str]:
    """(what went wrong, what to do): an auth error's own fix when it has one."""
    fix = exc.fix if isinstance(exc, AuthError) else None
    if fix:
        return str(exc).removesuffix(f" {fix}"), fix
    return str(exc), default_fix


def _ignore(_event: NetEvent) -> None:
    pass


async def _imap(account: AccountConfig, provider: TokenProvider) -> tuple[str, frozenset[str]]:
    endpoint, credentials = connection_for(provider, ca_file=account.ca_file)
    session = await ImapSession.open(endpoint, _ignore, account=account.name)
    try:
        await session.authenticate(credentials)
        return f"{endpoint.host}:{endpoint.port}", session.capabilities
    finally:
        await session.logout()


def check_imap(account: AccountConfig, provider: TokenProvider) -> Finding:
    name = account.name
    try:
        where, caps = asyncio.run(_imap(account, provider))
    except TLSRefused as exc:
        fix = "check the server's certificate, or the account's --ca-file"
        return Finding("imap", False, str(exc), fix, name)
    except NetworkError as exc:
        fix = "check the network, DNS and the account's --imap-host/--imap-port"
        return Finding("imap", False, str(exc), fix, name)
    except ExoimapError as exc:
        detail, fix = _split(exc, f"sign in again: `exoimap login {name}`")
        return Finding("imap", False, detail, fix, name)
    idle = "IDLE" if "IDLE" in caps else "no IDLE (watch polls instead)"
    return Finding("imap", True, f"{where}: TLS verified, signed in, {idle}", "", name)


def check_audit(paths: Paths, key: Secret[bytes] | None) -> Finding:
    try:
        result = verify_log(paths.audit_dir, key, anchor=paths.audit_anchor)
    except ExoimapError as exc:
        return Finding("audit", False, str(exc), f"check the permissions of {paths.audit_dir}")
    if result.problem is not None:
        fix = "find out who changed it (`exoimap audit verify`); then `exoimap audit recover`"
        return Finding("audit", False, f"broken: {result.problem.describe()}", fix)
    return Finding("audit", True, f"{result.records} records intact in {result.files} files")


def run_doctor(
    paths: Paths,
    names: Sequence[str],
    select: Callable[[Config, Sequence[str]], Sequence[AccountConfig]],
    audit_key: Callable[[], Secret[bytes] | None],
    *,
    settings: DoctorSettings | None = None,
    on_finding: Callable[[Finding], None] | None = None,
) -> list[Finding]:
    """Every check, in order; ``select`` picks the accounts named (the CLI's rules)."""
    settings = settings or DoctorSettings()
    findings: list[Finding] = []

    def add(finding: Finding) -> None:
        findings.append(finding)
        if on_finding is not None:
            on_finding(finding)

    found, config = check_config(paths)
    add(found)
    if config is not None and config.accounts:
        vault = Vault.from_paths(paths)
        add(check_vault(paths, vault))
        for account in select(config, names):
            provider = TokenProvider(account, vault=vault)
            signed_in = check_sign_in(account, provider, settings)
            for finding in signed_in:
                add(finding)
            if signed_in[0].ok:
                add(check_imap(account, provider))
            for finding in archive_findings(account, paths, settings):
                add(finding)
        try:
            key = audit_key()
        except ExoimapError:
            key = None
        add(check_audit(paths, key))
    add(check_versions())
    return findings
