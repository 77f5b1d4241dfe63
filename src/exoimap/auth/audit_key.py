"""Where the audit key comes from: the vault layer finds it, the auditor is handed it.

The key authenticates the audit log (record MACs and the checkpoint). This is the ONE place
that knows where it lives; whoever opens an auditor or verifies the log asks
:func:`load_audit_key` (or hands :func:`audit_key_for` to :func:`exoimap.audit.auditing`)
and passes the key down, so :mod:`exoimap.audit` needs nothing from :mod:`exoimap.auth`.

The choice is made once and then kept, because a log can only be verified with the key it
was written with:

1. if ``<vault dir>/audit.key`` exists, it is used (0600, in a 0700 folder);
2. otherwise, if the encrypted vault exists or can be opened without a prompt (OS keyring,
   ``EXOIMAP_VAULT_PASSPHRASE``, a key file), the key is a vault secret
   (:meth:`exoimap.auth.vault.Vault.audit_hmac_key`), encrypted at rest;
3. otherwise (no vault at all, e.g. an account that only uses ``token-command``), a random key
   is written to ``audit.key`` and a warning says that it is protected only by file
   permissions. Set up the vault before the first audited command to avoid that.

Either way the key is kept twice (two vault entries, or ``audit.key`` and
``audit.key.copy``): a damaged copy is rewritten from the other, because a lost key makes
the whole old log unverifiable.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from exoimap.audit.atomic import replace_file
from exoimap.auth.vault import Vault
from exoimap.config import Paths
from exoimap.errors import ConfigError, VaultKeyError
from exoimap.secrets import Secret

__all__ = ["KEY_BYTES", "audit_key_for", "load_audit_key"]

KEY_BYTES = 32
_COPY_NAME = "audit.key.copy"
_log = logging.getLogger(__name__)


def audit_key_for(paths: Paths) -> Callable[[], Secret[bytes]]:
    """How to get this installation's audit key, for :func:`exoimap.audit.auditing`: it is
    called only when auditing is enabled, so a disabled audit never makes a key."""
    return functools.partial(load_audit_key, paths)


def load_audit_key(paths: Paths, *, create: bool = True) -> Secret[bytes]:
    """Read the audit key, creating it on first use when ``create`` is true."""
    path = paths.vault_dir / "audit.key"
    if not path.exists() and not path.with_name(_COPY_NAME).exists():
        vault = Vault.from_paths(paths)
        if vault.exists() or create:
            try:
                return _vault_key(vault) if create else _existing_vault_key(vault)
            except VaultKeyError:
                if vault.exists():
                    raise  # the key is in the vault: never fork it into a second file
        if create:
            _log.warning(
                "the vault has no key source, so the audit key is kept in %s, protected only "
                "by file permissions (see `exoimap vault status`)",
                path,
            )
    return _file_key(paths, path, create=create)


def _vault_key(vault: Vault) -> Secret[bytes]:
    key = vault.audit_hmac_key(create=True)
    assert key is not None  # made when missing
    return key


def _existing_vault_key(vault: Vault) -> Secret[bytes]:
    key = vault.audit_hmac_key(create=False)
    if key is None:
        raise ConfigError(
            "there is no audit key yet (it is made the first time something is audited); "
            "without it only the unkeyed checks can run (`exoimap audit verify --no-key`)",
            path=str(vault.directory),
        )
    return key


def _file_key(paths: Paths, path: Path, *, create: bool) -> Secret[bytes]:
    """The key in ``audit.key``, kept with a copy in ``audit.key.copy``: a damaged file is
    rewritten from the other, so the log stays verifiable."""
    copy = path.with_name(_COPY_NAME)
    key, damaged = _read_key_file(path)
    kept, copy_damaged = _read_key_file(copy)
    if key is None and kept is None:
        if damaged or copy_damaged:
            raise ConfigError(
                f"the audit key is damaged ({path.name} must hold {KEY_BYTES} bytes) and "
                f"{copy.name} holds no intact copy; nothing was changed. Keep them: the log "
                "verifies again once either is restored from a backup; `exoimap audit verify "
                "--no-key` checks the hashes meanwhile",
                path=str(path),
            )
        if not create:
            raise ConfigError(
                "there is no audit key (it is made the first time something is audited); "
                "without it only the unkeyed checks can run (`exoimap audit verify --no-key`)",
                path=str(path),
            )
        return _new_file_key(paths, path)
    chosen = key or kept
    assert chosen is not None
    if key is None:
        _log.warning("%s was damaged or missing; restored from %s", path, copy.name)
        _write_key(path, chosen)
    if kept is None:
        _write_key(copy, chosen)
    return Secret(chosen)


def _read_key_file(path: Path) -> tuple[bytes | None, bool]:
    """A key file's 32 bytes, or None, and whether the file is there but damaged."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, False
    except OSError:
        return None, True
    return (raw, False) if len(raw) == KEY_BYTES else (None, True)


def _new_file_key(paths: Paths, path: Path) -> Secret[bytes]:
    paths.vault_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(paths.vault_dir, 0o700)
    key = secrets.token_bytes(KEY_BYTES)
    # Write it whole under a private name, then link it in: another process never
    # reads a half-written key, and if one raced us, both use the same key.
    temp = path.with_name(f"audit.key.{os.getpid()}.new")
    _write_private(temp, key)
    try:
        os.link(temp, path)
    except FileExistsError:
        return _file_key(paths, path, create=False)
    finally:
        os.unlink(temp)
    _write_key(path.with_name(_COPY_NAME), key)
    return Secret(key)


def _write_key(path: Path, key: bytes) -> None:
    """Replace ``path`` with ``key`` (write new, fsync, rename)."""
    try:
        replace_file(path, key)
    except OSError as exc:
        raise ConfigError(f"cannot write the audit key: {exc.strerror}", path=str(path)) from None


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
