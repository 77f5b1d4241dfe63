"""The audit key: found by the vault layer, handed to the auditor (audit imports no auth)."""

from __future__ import annotations

from pathlib import Path

import pytest

from exoimap import audit
from exoimap.auth import vault as vault_module
from exoimap.auth.audit_key import KEY_BYTES, audit_key_for, load_audit_key
from exoimap.auth.vault import ScryptParams, Vault
from exoimap.config import AuditConfig, Paths
from exoimap.errors import ConfigError, ExoimapError
from exoimap.secrets import Secret


def test_without_a_vault_the_key_is_a_private_file_made_once(tmp_path: Path) -> None:
    paths = Paths(config_dir=tmp_path, data_dir=tmp_path)
    key = load_audit_key(paths)
    key_file = paths.vault_dir / "audit.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert paths.vault_dir.stat().st_mode & 0o777 == 0o700
    assert len(key.reveal()) == KEY_BYTES
    assert load_audit_key(paths) == key
    assert load_audit_key(paths, create=False) == key


def test_the_installation_auditor_is_keyed_by_the_found_key(tmp_path: Path) -> None:
    paths = Paths(config_dir=tmp_path, data_dir=tmp_path)
    with audit.auditing(paths, AuditConfig(), key=audit_key_for(paths)):
        audit.emit(audit.ArchiveRead(account="w", messages=2))
    assert audit.verify_log(paths.audit_dir, load_audit_key(paths, create=False)).ok


def test_a_disabled_audit_makes_no_key(tmp_path: Path) -> None:
    paths = Paths(config_dir=tmp_path, data_dir=tmp_path)
    with audit.auditing(paths, AuditConfig(enabled=False), key=audit_key_for(paths)):
        audit.emit(audit.ArchiveRead(account="w", messages=2))
    assert not (paths.vault_dir / "audit.key").exists()


def test_bad_key_file(tmp_path: Path) -> None:
    paths = Paths(config_dir=tmp_path, data_dir=tmp_path)
    with pytest.raises(ConfigError, match="no audit key"):
        load_audit_key(paths, create=False)
    paths.vault_dir.mkdir(parents=True)
    (paths.vault_dir / "audit.key").write_bytes(b"short")
    with pytest.raises(ConfigError, match="32 bytes"):
        load_audit_key(paths)


def test_audit_key_lives_in_the_vault_when_it_can_be_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vault_module, "DEFAULT_SCRYPT", ScryptParams(n=2**10, r=8, p=1))
    monkeypatch.setenv("EXOIMAP_VAULT_PASSPHRASE", "audit key test passphrase")
    paths = Paths(config_dir=tmp_path, data_dir=tmp_path)
    key = load_audit_key(paths)
    assert not (paths.vault_dir / "audit.key").exists()
    assert Vault.from_paths(paths).get_secret("audit-hmac-key") == key
    assert load_audit_key(paths, create=False) == key

    # The vault exists but cannot be opened now: an error, never a second key in a file.
    monkeypatch.delenv("EXOIMAP_VAULT_PASSPHRASE")
    with pytest.raises(ExoimapError, match=r"passphrase|key"):
        load_audit_key(paths)
    assert not (paths.vault_dir / "audit.key").exists()


def test_a_damaged_key_file_is_restored_from_its_copy_and_the_log_still_verifies(
    tmp_path: Path,
) -> None:
    paths = Paths(config_dir=tmp_path, data_dir=tmp_path)
    key = load_audit_key(paths)
    with audit.auditing(paths, AuditConfig(), key=key):
        audit.emit(audit.ImapConnected(account="work", host="imap.example.org"))
    key_file = paths.vault_dir / "audit.key"
    assert (paths.vault_dir / "audit.key.copy").read_bytes() == key.reveal()
    key_file.write_bytes(b"damaged")
    assert load_audit_key(paths, create=False) == key
    assert key_file.read_bytes() == key.reveal()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert audit.verify_log(paths.audit_dir, load_audit_key(paths, create=False)).ok


def test_both_key_files_damaged_changes_nothing_and_says_how_to_keep_verifiability(
    tmp_path: Path,
) -> None:
    paths = Paths(config_dir=tmp_path, data_dir=tmp_path)
    load_audit_key(paths)
    for name in ("audit.key", "audit.key.copy"):
        (paths.vault_dir / name).write_bytes(b"damaged")
    with pytest.raises(ConfigError, match="Keep them") as info:
        load_audit_key(paths)
    assert "remove" not in str(info.value)
    for name in ("audit.key", "audit.key.copy"):
        assert (paths.vault_dir / name).read_bytes() == b"damaged"


def test_a_damaged_vault_audit_key_is_restored_from_its_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vault_module, "DEFAULT_SCRYPT", ScryptParams(n=2**10, r=8, p=1))
    monkeypatch.setenv("EXOIMAP_VAULT_PASSPHRASE", "audit key test passphrase")
    paths = Paths(config_dir=tmp_path, data_dir=tmp_path)
    Vault.from_paths(paths).save_token_cache("work", Secret('{"cache": "audit key copy test"}'))
    key = load_audit_key(paths)
    with audit.auditing(paths, AuditConfig(), key=key):
        audit.emit(audit.ImapConnected(account="work", host="imap.example.org"))
    entry = paths.vault_dir / "secret" / "audit-hmac-key.bin"
    damaged = bytearray(entry.read_bytes())
    damaged[-1] ^= 1
    entry.write_bytes(bytes(damaged))
    assert load_audit_key(paths, create=False) == key
    assert Vault.from_paths(paths).get_secret("audit-hmac-key") == key  # rewritten
    assert audit.verify_log(paths.audit_dir, load_audit_key(paths, create=False)).ok
    # Both copies damaged: a clear error that keeps them, never "remove it".
    for name in ("audit-hmac-key", "audit-hmac-key.copy"):
        (paths.vault_dir / "secret" / f"{name}.bin").write_bytes(bytes(damaged))
    with pytest.raises(ExoimapError, match="Keep them") as info:
        load_audit_key(paths, create=False)
    assert "remove" not in str(info.value)
