from __future__ import annotations

import fcntl
import hashlib
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import pytest

from exoimap.auth import vault as vault_module
from exoimap.auth.vault import ScryptParams, Vault, create_key_file, keyring_usable
from exoimap.errors import ConfigError, VaultKeyError, VaultTampered
from exoimap.secrets import Secret

CACHE = json.dumps({"RefreshToken": {"k": {"secret": "0.AXYZ-refresh-token-value-123456789"}}})


def snapshot(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def test_round_trip_and_nothing_in_clear(vault: Vault) -> None:
    vault.save_token_cache("work", Secret(CACHE))
    vault.set_account_secret("work", Secret("abc1Q~client-secret-value-xyz"))
    again = Vault(vault.directory)
    cache = again.load_token_cache("work")
    assert cache is not None
    assert cache.reveal() == CACHE
    secret = again.get_account_secret("work")
    assert secret is not None
    assert secret.reveal() == "abc1Q~client-secret-value-xyz"
    for path in vault.directory.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"refresh-token-value" not in data
            assert b"client-secret-value" not in data


def test_files_are_0600_and_folders_0700(vault: Vault) -> None:
    vault.save_token_cache("work", Secret(CACHE))
    vault.set_secret("thing", Secret(b"value"))
    with vault.lock("work"):
        pass
    for path in [vault.directory, *vault.directory.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path


def test_missing_entries_are_none_and_delete_reports(vault: Vault) -> None:
    assert vault.load_token_cache("nobody") is None
    assert vault.get_account_secret("nobody") is None
    vault.save_token_cache("work", Secret(CACHE))
    assert vault.delete_token_cache("work") is True
    assert vault.delete_token_cache("work") is False
    assert vault.load_token_cache("work") is None


def test_wrong_passphrase_is_a_clear_error_and_changes_nothing(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault.save_token_cache("work", Secret(CACHE))
    before = snapshot(vault.directory)
    monkeypatch.setenv("EXOIMAP_VAULT_PASSPHRASE", "not the passphrase")
    wrong = Vault(vault.directory)
    with pytest.raises(VaultKeyError, match="wrong vault passphrase"):
        wrong.load_token_cache("work")
    with pytest.raises(VaultKeyError):
        wrong.save_token_cache("work", Secret("{}"))
    assert snapshot(vault.directory) == before


def test_passphrase_from_a_prompt(exo_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXOIMAP_VAULT_PASSPHRASE")
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "typed passphrase"

    Vault(exo_home / "vault", prompt=prompt).save_token_cache("a", Secret(CACHE))
    assert len(asked) == 2  # asked twice on creation, to confirm
    cache = Vault(exo_home / "vault", prompt=prompt).load_token_cache("a")
    assert cache is not None
    assert len(asked) == 3
    mismatched = iter(["one", "two"])
    other = exo_home / "other-vault"
    with pytest.raises(VaultKeyError, match="differ"):
        Vault(other, prompt=lambda _: next(mismatched)).save_token_cache("a", Secret(CACHE))
    assert not (other / "vault.json").exists()


def test_tampered_entry_is_detected_and_left_alone(vault: Vault) -> None:
    vault.save_token_cache("work", Secret(CACHE))
    vault.save_token_cache("home", Secret(CACHE))
    path = vault.directory / "token-cache" / "work.bin"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))
    before = snapshot(vault.directory)
    with pytest.raises(VaultTampered, match="failed authentication"):
        Vault(vault.directory).load_token_cache("work")
    assert snapshot(vault.directory) == before
    assert Vault(vault.directory).load_token_cache("home") is not None  # others still open


def test_an_entry_copied_over_another_account_fails(vault: Vault) -> None:
    vault.save_token_cache("work", Secret(CACHE))
    vault.save_token_cache("home", Secret("{}"))
    folder = vault.directory / "token-cache"
    (folder / "home.bin").write_bytes((folder / "work.bin").read_bytes())
    with pytest.raises(VaultTampered):
        Vault(vault.directory).load_token_cache("home")


def test_truncated_entry_is_tampered(vault: Vault) -> None:
    vault.save_token_cache("work", Secret(CACHE))
    path = vault.directory / "token-cache" / "work.bin"
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(VaultTampered, match="truncated"):
        Vault(vault.directory).load_token_cache("work")


def test_modified_kdf_parameters_do_not_open(vault: Vault) -> None:
    vault.save_token_cache("work", Secret(CACHE))
    header = json.loads(vault.header_path.read_text())
    header["kdf"]["n"] = 2**11
    vault.header_path.write_text(json.dumps(header))
    with pytest.raises(VaultKeyError):
        Vault(vault.directory).load_token_cache("work")


def test_kdf_parameters_are_recorded_and_used_when_reopening(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault.save_token_cache("work", Secret(CACHE))
    header = json.loads(vault.header_path.read_text())
    assert header["key_source"] == "passphrase"
    assert header["kdf"]["name"] == "scrypt"
    assert header["kdf"]["n"] == 2**10
    assert len(header["kdf"]["salt"]) >= 20
    monkeypatch.setattr(vault_module, "DEFAULT_SCRYPT", ScryptParams(n=2**12, r=8, p=1))
    assert Vault(vault.directory).load_token_cache("work") is not None


def test_default_kdf_is_strong() -> None:
    # Read the class default, not the module attribute the fixture lowers for speed.
    params = ScryptParams()
    assert params.n >= 2**15
    assert params.r >= 8


def test_no_key_source_refuses_instead_of_storing_in_clear(
    exo_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EXOIMAP_VAULT_PASSPHRASE")
    target = Vault(exo_home / "vault")
    with pytest.raises(VaultKeyError) as info:
        target.save_token_cache("work", Secret(CACHE))
    text = str(info.value)
    assert "EXOIMAP_VAULT_PASSPHRASE" in text
    assert "create-key-file" in text
    assert not target.header_path.exists()
    assert not list((exo_home / "vault").rglob("*.bin"))


def test_key_file_is_used_when_there_is_no_passphrase(
    exo_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EXOIMAP_VAULT_PASSPHRASE")
    key_path = exo_home / "vault.key"
    create_key_file(key_path)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    with pytest.raises(ConfigError, match="already exists"):
        create_key_file(key_path)
    Vault(exo_home / "vault").save_token_cache("work", Secret(CACHE))
    header = json.loads((exo_home / "vault" / "vault.json").read_text())
    assert header["key_source"] == "key-file"
    assert Vault(exo_home / "vault").load_token_cache("work") is not None
    # A key file others can read is refused.
    os.chmod(key_path, 0o644)
    with pytest.raises(VaultKeyError, match="chmod 600"):
        Vault(exo_home / "vault").load_token_cache("work")
    # Another key file does not open the vault.
    os.chmod(key_path, 0o600)
    key_path.unlink()
    create_key_file(key_path)
    with pytest.raises(VaultKeyError, match="does not open"):
        Vault(exo_home / "vault").load_token_cache("work")


# keyring picks its backend lazily among every KeyringBackend subclass, which would include
# the test backends below (equal priority: the pick varied with hash seeds): pick now.
keyring.get_keyring()


class MemoryKeyring(keyring.backend.KeyringBackend):
    """An in-process keyring backend standing in for the OS one (no D-Bus on CI)."""

    priority = 10  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.store[(service, username)]


class PlaintextKeyring(MemoryKeyring):
    """Named like keyrings.alt's plaintext backend, which must never be used."""


# Defining a backend class registers it for keyring's auto-detection; these two must only
# ever be installed explicitly by the tests below, never picked for other tests.
keyring.backend.KeyringBackend._classes.discard(MemoryKeyring)  # type: ignore[attr-defined]
keyring.backend.KeyringBackend._classes.discard(PlaintextKeyring)  # type: ignore[attr-defined]


@pytest.fixture
def memory_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    monkeypatch.delenv("EXOIMAP_NO_KEYRING")
    yield backend
    keyring.set_keyring(previous)


def test_keyring_is_preferred_when_usable(exo_home: Path, memory_keyring: MemoryKeyring) -> None:
    assert keyring_usable()
    Vault(exo_home / "vault").save_token_cache("work", Secret(CACHE))
    header = json.loads((exo_home / "vault" / "vault.json").read_text())
    assert header["key_source"] == "keyring"
    assert "kdf" not in header
    assert len(memory_keyring.store) == 1
    assert Vault(exo_home / "vault").load_token_cache("work") is not None
    memory_keyring.store.clear()
    with pytest.raises(VaultKeyError, match="not in the OS keyring"):
        Vault(exo_home / "vault").load_token_cache("work")


def test_plaintext_and_failing_keyrings_are_not_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring.backends.fail

    monkeypatch.delenv("EXOIMAP_NO_KEYRING", raising=False)
    previous = keyring.get_keyring()
    try:
        keyring.set_keyring(PlaintextKeyring())
        assert not keyring_usable()
        keyring.set_keyring(keyring.backends.fail.Keyring())
        assert not keyring_usable()
        keyring.set_keyring(MemoryKeyring())
        assert keyring_usable()
        assert not keyring_usable({"EXOIMAP_NO_KEYRING": "1"})
    finally:
        keyring.set_keyring(previous)


def test_generic_secrets_and_the_audit_key(vault: Vault) -> None:
    vault.set_secret("smtp-relay", Secret(b"\x00\x01binary"))
    got = Vault(vault.directory).get_secret("smtp-relay")
    assert got is not None
    assert got.reveal() == b"\x00\x01binary"
    key = vault.audit_hmac_key()
    assert len(key.reveal()) == 32
    assert Vault(vault.directory).audit_hmac_key().reveal() == key.reveal()
    assert vault.delete_secret("smtp-relay")


@pytest.mark.parametrize("name", ["", "../escape", ".hidden", "a/b", "x" * 200])
def test_bad_entry_names_are_refused(vault: Vault, name: str) -> None:
    with pytest.raises(ConfigError):
        vault.save_token_cache(name, Secret(CACHE))


HOLD_LOCK = """
import sys
from pathlib import Path
from exoimap.auth.vault import Vault
with Vault(Path(sys.argv[1])).lock("work"):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_lock_excludes_another_process(vault: Vault) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(vault.directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "locked"
        fd = os.open(vault.directory / "locks" / "work.lock", os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            child.stdin.write("release\n")
            child.stdin.flush()
            assert child.wait(10) == 0
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free once the child let go
        finally:
            os.close(fd)
    finally:
        child.kill()
        child.wait(10)


def test_passphrase_is_stretched_once_per_process(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two Vault objects with the same passphrase (the audit key, then the tokens) cost one
    scrypt; a different passphrase is still derived, and refused."""
    vault.save_token_cache("work", Secret(CACHE))
    vault_module._DERIVED.clear()
    calls: list[int] = []
    real = vault_module._scrypt

    def counting_scrypt(secret: bytes, salt: bytes, params: ScryptParams) -> bytes:
        calls.append(1)
        return real(secret, salt, params)

    monkeypatch.setattr(vault_module, "_scrypt", counting_scrypt)
    for _ in range(3):
        cache = Vault(vault.directory).load_token_cache("work")
        assert cache is not None
        assert cache.reveal() == CACHE
    assert len(calls) == 1
    monkeypatch.setenv("EXOIMAP_VAULT_PASSPHRASE", "not the passphrase")
    with pytest.raises(VaultKeyError, match="wrong vault passphrase"):
        Vault(vault.directory).load_token_cache("work")
    assert len(calls) == 2


# --- a hostile or damaged header or entry: one clear error, nothing read or lost -------------


def _edit_header(vault: Vault, **members: object) -> None:
    header = json.loads(vault.header_path.read_text())
    header.update(members)
    vault.header_path.write_text(json.dumps(header))


def test_scrypt_costs_out_of_bounds_are_refused_before_deriving(
    vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault.save_token_cache("work", Secret(CACHE))
    derived: list[ScryptParams] = []
    monkeypatch.setattr(vault_module, "_scrypt", lambda *_a: derived.append(ScryptParams()))
    header = json.loads(vault.header_path.read_text())
    for n, r, p in [(2**24, 8, 1), (2**30, 1, 1), (3 * 2**10, 8, 1), (2**20, 8, 1), (2**12, 8, 99)]:
        header["kdf"].update(n=n, r=r, p=p)
        vault.header_path.write_text(json.dumps(header))
        with pytest.raises(VaultTampered, match="KDF parameters are refused") as info:
            Vault(vault.directory).load_token_cache("work")
        assert "\n" not in str(info.value)
    for bad in ["1024", 1024.0, True, None]:
        header["kdf"]["n"] = bad
        vault.header_path.write_text(json.dumps(header))
        with pytest.raises(VaultTampered, match="malformed"):
            Vault(vault.directory).load_token_cache("work")
    assert derived == []  # never reached scrypt


@pytest.mark.parametrize("check", ["", "AAAA", "A" * 36])
def test_a_short_key_check_is_a_clear_error(vault: Vault, check: str) -> None:
    vault.save_token_cache("work", Secret(CACHE))
    _edit_header(vault, check=check)
    with pytest.raises(VaultTampered, match="key check is too short"):
        Vault(vault.directory).load_token_cache("work")


def test_the_header_is_authenticated(vault: Vault) -> None:
    vault.save_token_cache("work", Secret(CACHE))
    assert "mac" in json.loads(vault.header_path.read_text())
    _edit_header(vault, comment="added by someone else")
    with pytest.raises(VaultTampered, match="header was modified"):
        Vault(vault.directory).load_token_cache("work")


def test_a_header_from_before_the_mac_gets_one(vault: Vault) -> None:
    vault.save_token_cache("work", Secret(CACHE))
    header = json.loads(vault.header_path.read_text())
    del header["mac"]
    vault.header_path.write_text(json.dumps(header))
    assert Vault(vault.directory).load_token_cache("work") == Secret(CACHE)
    assert "mac" in json.loads(vault.header_path.read_text())
    assert Vault(vault.directory).load_token_cache("work") == Secret(CACHE)


def test_an_entry_that_is_a_directory_is_a_clear_error(vault: Vault) -> None:
    vault.save_token_cache("work", Secret(CACHE))
    path = vault.directory / "token-cache" / "other.bin"
    path.mkdir()
    with pytest.raises(VaultTampered, match="it is a directory") as info:
        Vault(vault.directory).load_token_cache("other")
    assert str(path) in str(info.value)
    with pytest.raises(ConfigError, match="it is a directory"):
        Vault(vault.directory).save_token_cache("other", Secret(CACHE))
    assert Vault(vault.directory).load_token_cache("work") == Secret(CACHE)


def test_a_header_that_is_a_directory_is_a_clear_error(exo_home: Path) -> None:
    directory = exo_home / "vault"
    (directory / "vault.json").mkdir(parents=True)
    with pytest.raises(VaultKeyError, match="it is a directory"):
        Vault(directory).save_token_cache("work", Secret(CACHE))
