"""The vault: token caches and secrets, stored only encrypted.

Every entry is one file, ``AES-256-GCM(key, nonce, plaintext, aad)`` where the associated
data names the entry's kind and its account (or secret name), so a file copied over another
entry fails authentication instead of being read as the wrong thing.

The key comes from, in this order (chosen when the vault is created, then recorded in the
vault header ``vault.json`` so the vault always opens the way it was made):

1. the OS keyring (``keyring``), when a real backend exists (never a plaintext one);
2. a passphrase (``EXOIMAP_VAULT_PASSPHRASE`` or a prompt), stretched with scrypt whose
   parameters and salt are recorded in the header;
3. a key file that the user created explicitly (``exoimap vault create-key-file``), mode 0600.

There is no plaintext fallback: with none of the three, :class:`VaultKeyError` says how to
provide one. A wrong passphrase or key is detected with a check value in the header before
anything is read or written; the header's scrypt costs are bounded before anything is
derived, and the whole header is authenticated by an HMAC under the key it opens; a modified
header or entry raises :class:`VaultTampered`, an unreadable one a one-line error; none of
them overwrites anything. Files are 0600, folders 0700, writes are atomic (write, fsync, rename).
:meth:`Vault.lock` is a cross-process lock (``fcntl.flock``) per account, so two processes
refreshing the same account's tokens never lose a rotated refresh token.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import fcntl
import hmac
import json
import logging
import os
import stat
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exoimap.config import Paths
from exoimap.errors import (
    ConfigError,
    DiskFull,
    ExoimapError,
    NoVaultKey,
    VaultKeyError,
    VaultTampered,
    disk_of,
)
from exoimap.private_files import private_dir, write_private
from exoimap.secrets import Secret

__all__ = [
    "KEY_SOURCES",
    "PASSPHRASE_ENV",
    "KEY_FILE_ENV",
    "ScryptParams",
    "Vault",
    "create_key_file",
    "keyring_usable",
    "terminal_prompt",
]

PASSPHRASE_ENV = "EXOIMAP_VAULT_PASSPHRASE"  # noqa: S105 - a variable name
KEY_FILE_ENV = "EXOIMAP_VAULT_KEY_FILE"
NO_KEYRING_ENV = "EXOIMAP_NO_KEYRING"
KEY_SOURCES = ("keyring", "passphrase", "key-file")

_MAGIC = b"EXV1"
_NONCE_LEN = 12
_KEY_LEN = 32
#: What :meth:`Vault.check_writable` writes: more than a token cache of many accounts.
_PROBE_BYTES = 64 << 10
_CHECK_PLAINTEXT = b"exoimap vault key check v1"
_CHECK_AAD = b"exoimap-vault-v1\x00check"
_KEYRING_SERVICE = "exoimap"
_HEADER = "vault.json"
_ENTRY_KINDS = ("token-cache", "account-secret", "secret")
_AUDIT_KEY = "audit-hmac-key"
_AUDIT_KEY_BACKUP = "audit-hmac-key.copy"
_HEADER_MAC_TAG = b"exoimap-vault-v1\x00header\x00"
# What a header may ask of scrypt (the default is 2**17, 8, 1: 128 MiB).
_MIN_SCRYPT_N = 2**10
_MAX_SCRYPT_N = 2**20
_MAX_SCRYPT_R = 32
_MAX_SCRYPT_P = 16
_MAX_SCRYPT_MEMORY = 512 * 2**20


# cryptography is imported by the three functions below, when a vault is first opened: a
# command whose account signs in with a token command, and whose audit key is in
# audit.key, never opens one and would pay 12-16 ms of start-up for the import.


def _seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """AES-256-GCM encryption: the ciphertext with its tag."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key).encrypt(nonce, plaintext, aad)


def _unseal(key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes | None:
    """What :func:`_seal` sealed; None when the key, the AAD or the data differ."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        return AESGCM(key).decrypt(nonce, sealed, aad)
    except InvalidTag:
        return None


def _scrypt(secret: bytes, salt: bytes, params: ScryptParams) -> bytes:
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    kdf = Scrypt(salt=salt, length=_KEY_LEN, n=params.n, r=params.r, p=params.p)
    return kdf.derive(secret)


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost parameters (memory = 128 * r * n bytes)."""

    n: int = 2**17
    r: int = 8
    p: int = 1

    def out_of_bounds(self) -> str | None:
        """Why these parameters are refused, or None. A header is read before anything can
        authenticate it, so its costs are checked before deriving: ``n = 2**24`` would ask
        for 16 GiB."""
        if not (_MIN_SCRYPT_N <= self.n <= _MAX_SCRYPT_N) or self.n & (self.n - 1):
            return f"n must be a power of two from 2**10 to 2**20, not {self.n}"
        if not (1 <= self.r <= _MAX_SCRYPT_R) or not (1 <= self.p <= _MAX_SCRYPT_P):
            return f"r must be 1-{_MAX_SCRYPT_R} and p 1-{_MAX_SCRYPT_P}, not {self.r} and {self.p}"
        if 128 * self.r * self.n > _MAX_SCRYPT_MEMORY:
            return f"they need {128 * self.r * self.n >> 20} MiB, more than the 512 MiB allowed"
        return None


_logger = logging.getLogger(__name__)

#: Keys derived in this process (see :meth:`Vault._derive`), by a keyed hash of what was
#: stretched: the random per-process key keeps the slots from being a fast passphrase check.
_DERIVED: dict[bytes, Secret[bytes]] = {}
_SLOT_KEY = os.urandom(32)

#: Parameters for new passphrase vaults (128 MiB, about half a second). Tests lower it
#: through this module attribute; an existing vault always uses the ones in its header.
DEFAULT_SCRYPT = ScryptParams()


# --- key sources ---------------------------------------------------------------------------


def keyring_usable(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the OS keyring has a real, non-plaintext backend."""
    env = os.environ if environ is None else environ
    if env.get(NO_KEYRING_ENV):
        return False
    try:
        import keyring
        from keyring.backends import chainer, fail
    except Exception:  # pragma: no cover - keyring is a dependency, but may be broken
        return False
    try:
        backend = keyring.get_keyring()
    except Exception:  # pragma: no cover - a broken backend configuration
        return False
    backends = list(backend.backends) if isinstance(backend, chainer.ChainerBackend) else [backend]
    for candidate in backends:
        if isinstance(candidate, fail.Keyring):
            continue
        name = f"{type(candidate).__module__}.{type(candidate).__name__}".lower()
        if "plaintext" in name or name.startswith("keyring.backends.null"):
            continue
        try:
            if float(candidate.priority) > 0:
                return True
        except Exception:  # noqa: S112 - a backend that cannot say its priority is unusable
            continue
    return False


def create_key_file(path: Path) -> None:
    """Create a new random vault key file (0600); refuses to overwrite an existing one."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = os.urandom(_KEY_LEN)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(
            "the key file already exists; it was not overwritten", path=str(path)
        ) from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(base64.b64encode(key) + b"\n")
        handle.flush()
        os.fsync(handle.fileno())


def _read_key_file(path: Path) -> bytes:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise VaultKeyError(f"the vault key file {path} does not exist") from None
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise VaultKeyError(
            f"the vault key file {path} is readable by other users; run `chmod 600 {path}`"
        )
    try:
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except OSError as exc:
        raise VaultKeyError(f"cannot read the vault key file {path}: {_reason(exc)}") from None
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != _KEY_LEN:
        raise VaultKeyError(f"{path} is not an exoimap vault key file")
    return key


def _reason(exc: OSError) -> str:
    if isinstance(exc, IsADirectoryError):
        return "it is a directory"
    return exc.strerror or type(exc).__name__


def _header_mac(key: bytes, header: Mapping[str, Any]) -> str:
    """HMAC of every header member but the MAC itself, in a canonical form."""
    body = {name: value for name, value in header.items() if name != "mac"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(key, _HEADER_MAC_TAG + text.encode("ascii"), "sha256").hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, what: str, path: Path) -> bytes:
    if not isinstance(text, str):
        raise VaultTampered(f"{path}: {what} is missing or malformed")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise VaultTampered(f"{path}: {what} is malformed") from None


# --- files -------------------------------------------------------------------------------


def _atomic_write(path: Path, data: bytes) -> None:
    """Write-new, fsync, rename, fsync the folder: a crash leaves the old or the new file."""
    private_dir(path.parent)
    write_private(path, data)


def _write_error(exc: OSError, path: Path, what: str) -> ExoimapError:
    """A full disk says which disk and that nothing was lost; any other failure to write the
    vault is a setup problem (permissions, a read-only folder)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(
            f"no space left on {disk_of(path)} while writing {what}; nothing stored before "
            "was lost. Free some space and run again."
        )
    return ConfigError(f"cannot write {what}: {_reason(exc)}", path=str(path))


def _safe_name(name: str) -> str:
    if not name or len(name) > 128 or name.startswith(".") or "/" in name or "\x00" in name:
        raise ConfigError(f"{name!r} cannot name a vault entry")
    return name


# --- the vault ---------------------------------------------------------------------------


class Vault:
    """Encrypted storage for one exoimap home (``<data dir>/vault``)."""

    def __init__(
        self,
        directory: Path,
        *,
        prompt: Callable[[str], str] | None = None,
        environ: Mapping[str, str] | None = None,
        key_file: Path | None = None,
    ) -> None:
        """``prompt`` asks for a passphrase (``None``: never prompt). ``key_file`` is where a
        user-created key file lives (default ``$EXOIMAP_VAULT_KEY_FILE`` or
        ``<directory>/../vault.key``)."""
        self.directory = directory
        self._prompt = prompt
        self._env = dict(os.environ if environ is None else environ)
        configured = self._env.get(KEY_FILE_ENV)
        self.key_file = key_file or (
            Path(configured).expanduser() if configured else directory.parent / "vault.key"
        )
        self._key: Secret[bytes] | None = None
        self._source: str | None = None

    @classmethod
    def from_paths(
        cls, paths: Paths | None = None, *, prompt: Callable[[str], str] | None = None
    ) -> Vault:
        return cls((paths or Paths.from_env()).vault_dir, prompt=prompt)

    # -- header and key --

    @property
    def header_path(self) -> Path:
        return self.directory / _HEADER

    def exists(self) -> bool:
        return self.header_path.exists()

    @property
    def key_source(self) -> str:
        """How this vault's key is obtained (opens the vault when needed)."""
        self._ensure_key()
        assert self._source is not None
        return self._source

    def _read_header(self) -> dict[str, Any] | None:
        try:
            raw = self.header_path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise VaultKeyError(
                f"cannot read the vault header {self.header_path}: {_reason(exc)}"
            ) from None
        try:
            header = json.loads(raw)
        except ValueError:
            raise VaultTampered(f"{self.header_path}: the vault header is not valid JSON") from None
        if not isinstance(header, dict) or header.get("format") != "exoimap-vault":
            raise VaultTampered(f"{self.header_path}: not an exoimap vault header")
        if header.get("version") != 1:
            raise VaultKeyError(
                f"{self.header_path}: vault version {header.get('version')!r} is not supported"
            )
        return header

    def _passphrase(self, *, confirm: bool) -> Secret[str] | None:
        value = self._env.get(PASSPHRASE_ENV)
        if value:
            return Secret(value)
        if self._prompt is None:
            return None
        first = self._prompt("Vault passphrase: ")
        if not first:
            raise VaultKeyError("an empty passphrase cannot protect the vault")
        if confirm and self._prompt("Repeat the vault passphrase: ") != first:
            raise VaultKeyError("the two passphrases differ; nothing was created")
        return Secret(first)

    @staticmethod
    def _derive(passphrase: Secret[str], salt: bytes, params: ScryptParams) -> bytes:
        """scrypt, once per process for the same passphrase, salt and cost: a command opens
        the vault more than once (the audit key, then the account's tokens) and each
        derivation costs about half a second. The cache is keyed by a hash that includes
        the passphrase, so a different (wrong) passphrase is still derived and refused."""
        secret = passphrase.reveal().encode("utf-8")
        label = f"{params.n}:{params.r}:{params.p}:".encode()
        slot = hmac.new(_SLOT_KEY, label + salt + b"\0" + secret, "sha256").digest()
        cached = _DERIVED.get(slot)
        if cached is None:
            cached = _DERIVED[slot] = Secret(_scrypt(secret, salt, params))
        return cached.reveal()

    def _keyring_user(self) -> str:
        return f"vault-key:{self.directory.resolve()}"

    def _ensure_key(self) -> bytes:
        if self._key is not None:
            return self._key.reveal()
        header = self._read_header()
        if header is None:
            with self._file_lock(self.directory / "locks" / ".vault.lock"):
                header = self._read_header()  # another process may have just created it
                if header is None:
                    return self._create()
        return self._open(header)

    def _open(self, header: dict[str, Any]) -> bytes:
        source = header.get("key_source")
        check = _unb64(header.get("check"), "the key check", self.header_path)
        if len(check) < _NONCE_LEN + 16:
            raise VaultTampered(f"{self.header_path}: the key check is too short")
        if source == "keyring":
            key = self._keyring_get()
            wrong = "the key in the OS keyring does not open this vault"
        elif source == "passphrase":
            key = self._passphrase_key(header)
            wrong = "wrong vault passphrase (or the vault header was modified); nothing was changed"
        elif source == "key-file":
            path = Path(str(header.get("key_file") or self.key_file))
            key = _read_key_file(path)
            wrong = f"the key file {path} does not open this vault"
        else:
            raise VaultTampered(f"{self.header_path}: unknown key source {source!r}")
        if _unseal(key, check[:_NONCE_LEN], check[_NONCE_LEN:], _CHECK_AAD) is None:
            raise VaultKeyError(wrong)
        self._check_header_mac(header, key)
        self._key = Secret(key)
        self._source = source
        return key

    def _check_header_mac(self, header: dict[str, Any], key: bytes) -> None:
        """The header is authenticated by the key it opens: a changed member (a key file
        path, a cost) is caught. A header from before the MAC gets one, once its key check
        has passed."""
        mac = header.get("mac")
        if mac is None:
            header["mac"] = _header_mac(key, header)
            self._write_header(header)
            return
        if not isinstance(mac, str) or not hmac.compare_digest(mac, _header_mac(key, header)):
            raise VaultTampered(
                f"{self.header_path}: the vault header was modified (its MAC does not match); "
                "nothing was read or changed"
            )

    def _passphrase_key(self, header: dict[str, Any]) -> bytes:
        kdf = header.get("kdf")
        if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
            raise VaultTampered(f"{self.header_path}: the KDF parameters are malformed")
        salt = _unb64(kdf.get("salt"), "the KDF salt", self.header_path)
        costs = (kdf.get("n"), kdf.get("r"), kdf.get("p"))
        if not all(type(value) is int for value in costs):
            raise VaultTampered(f"{self.header_path}: the KDF parameters are malformed")
        params = ScryptParams(n=int(kdf["n"]), r=int(kdf["r"]), p=int(kdf["p"]))
        if (why := params.out_of_bounds()) is not None:
            raise VaultTampered(f"{self.header_path}: the KDF parameters are refused: {why}")
        passphrase = self._passphrase(confirm=False)
        if passphrase is None:
            raise VaultKeyError(
                f"the vault is protected by a passphrase: set {PASSPHRASE_ENV} or run the "
                "command in a terminal"
            )
        try:
            return self._derive(passphrase, salt, params)
        except (ValueError, MemoryError):
            raise VaultTampered(f"{self.header_path}: the KDF parameters are invalid") from None

    def _write_header(self, header: dict[str, Any]) -> None:
        try:
            _atomic_write(self.header_path, (json.dumps(header, indent=2) + "\n").encode())
        except OSError as exc:
            raise _write_error(exc, self.header_path, "the vault header") from None

    def _create(self) -> bytes:
        header: dict[str, Any] = {"format": "exoimap-vault", "version": 1}
        if keyring_usable(self._env):
            key = os.urandom(_KEY_LEN)
            self._keyring_set(key)
            header["key_source"] = "keyring"
        else:
            passphrase = self._passphrase(confirm=True)
            if passphrase is not None:
                salt = os.urandom(16)
                params = DEFAULT_SCRYPT
                key = self._derive(passphrase, salt, params)
                header["key_source"] = "passphrase"
                header["kdf"] = {
                    "name": "scrypt",
                    "salt": _b64(salt),
                    "n": params.n,
                    "r": params.r,
                    "p": params.p,
                }
            elif self.key_file.exists():
                key = _read_key_file(self.key_file)
                header["key_source"] = "key-file"
                header["key_file"] = str(self.key_file)
            else:
                raise NoVaultKey(
                    "no way to protect secrets: no usable OS keyring, no passphrase "
                    f"({PASSPHRASE_ENV} unset and no terminal to ask), and no key file at "
                    f"{self.key_file}. Fix it one of three ways: set {PASSPHRASE_ENV}, run the "
                    "command in a terminal (it asks for a passphrase), or create a key file "
                    "with `exoimap vault create-key-file`."
                )
        nonce = os.urandom(_NONCE_LEN)
        check = nonce + _seal(key, nonce, _CHECK_PLAINTEXT, _CHECK_AAD)
        header["check"] = _b64(check)
        header["mac"] = _header_mac(key, header)
        private_dir(self.directory)
        self._write_header(header)
        self._key = Secret(key)
        self._source = str(header["key_source"])
        return key

    def _keyring_get(self) -> bytes:
        import keyring

        try:
            stored = keyring.get_password(_KEYRING_SERVICE, self._keyring_user())
        except Exception as exc:
            raise VaultKeyError(f"the OS keyring could not be read: {type(exc).__name__}") from None
        if not stored:
            raise VaultKeyError(
                "the vault key is not in the OS keyring (it was removed, or this is another "
                "user or machine); remove the vault folder and sign in again"
            )
        try:
            key = base64.b64decode(stored, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != _KEY_LEN:
            raise VaultKeyError("the vault key in the OS keyring is malformed")
        return key

    def _keyring_set(self, key: bytes) -> None:
        import keyring

        try:
            keyring.set_password(_KEYRING_SERVICE, self._keyring_user(), _b64(key))
        except Exception as exc:
            raise VaultKeyError(f"the OS keyring could not store the vault key: {exc}") from None

    # -- entries --

    def _entry_path(self, kind: str, name: str) -> Path:
        assert kind in _ENTRY_KINDS
        return self.directory / kind / f"{_safe_name(name)}.bin"

    @staticmethod
    def _aad(kind: str, name: str) -> bytes:
        return b"exoimap-vault-v1\x00" + kind.encode() + b"\x00" + name.encode("utf-8")

    def _read(self, kind: str, name: str) -> bytes | None:
        path = self._entry_path(kind, name)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise VaultTampered(
                f"{path}: not a readable vault entry ({_reason(exc)}); move it aside"
            ) from None
        key = self._ensure_key()
        if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + _NONCE_LEN + 16:
            raise VaultTampered(f"{path}: not a vault entry (truncated or replaced)")
        nonce = blob[len(_MAGIC) : len(_MAGIC) + _NONCE_LEN]
        plaintext = _unseal(key, nonce, blob[len(_MAGIC) + _NONCE_LEN :], self._aad(kind, name))
        if plaintext is None:
            raise VaultTampered(
                f"{path} failed authentication: it was modified, or it belongs to another "
                "entry or vault. Nothing was overwritten; remove it and sign in again."
            )
        return plaintext

    def _write(self, kind: str, name: str, plaintext: bytes) -> None:
        path = self._entry_path(kind, name)
        key = self._ensure_key()
        nonce = os.urandom(_NONCE_LEN)
        blob = _MAGIC + nonce + _seal(key, nonce, plaintext, self._aad(kind, name))
        try:
            _atomic_write(path, blob)
        except OSError as exc:
            raise _write_error(exc, path, "the vault entry") from None

    def check_writable(self) -> None:
        """Write (and remove) a probe as large as a big token cache, so that a full disk or
        a read-only vault is found before a sign-in whose result could not be stored."""
        self._ensure_key()  # creating the vault writes its header first
        probe = self.directory / f".write-probe.{os.getpid()}"
        try:
            _atomic_write(probe, b"\0" * _PROBE_BYTES)
            probe.unlink()
        except OSError as exc:
            with contextlib.suppress(OSError):
                probe.unlink()
            raise _write_error(exc, probe, "the vault") from None

    def _delete(self, kind: str, name: str) -> bool:
        path = self._entry_path(kind, name)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise ConfigError(
                f"cannot remove the vault entry: {_reason(exc)}", path=str(path)
            ) from None
        return True

    # token caches (MSAL's serialised cache, one per account)

    def load_token_cache(self, account: str) -> Secret[str] | None:
        data = self._read("token-cache", account)
        return None if data is None else Secret(data.decode("utf-8"))

    def save_token_cache(self, account: str, cache: Secret[str]) -> None:
        self._write("token-cache", account, cache.reveal().encode("utf-8"))

    def delete_token_cache(self, account: str) -> bool:
        """Remove an account's stored tokens (``exoimap logout``)."""
        return self._delete("token-cache", account)

    def has_token_cache(self, account: str) -> bool:
        return self._entry_path("token-cache", account).exists()

    def token_cache_version(self, account: str) -> tuple[int, int, int] | None:
        """Changes whenever the account's stored tokens are written or removed (every write
        is a new file: inode, size, mtime); None when there are none. A process that keeps a
        token in memory checks it before handing the token out again."""
        try:
            info = self._entry_path("token-cache", account).stat()
        except FileNotFoundError:
            return None
        return info.st_ino, info.st_size, info.st_mtime_ns

    # the account's secret: client secret, certificate passphrase, or IMAP password

    def get_account_secret(self, account: str) -> Secret[str] | None:
        data = self._read("account-secret", account)
        return None if data is None else Secret(data.decode("utf-8"))

    def set_account_secret(self, account: str, secret: Secret[str]) -> None:
        if not secret:
            raise ConfigError("an empty secret was not stored")
        self._write("account-secret", account, secret.reveal().encode("utf-8"))

    def has_account_secret(self, account: str) -> bool:
        return self._entry_path("account-secret", account).exists()

    def delete_account_secret(self, account: str) -> bool:
        return self._delete("account-secret", account)

    # generic named secrets

    def get_secret(self, name: str) -> Secret[bytes] | None:
        data = self._read("secret", name)
        return None if data is None else Secret(data)

    def set_secret(self, name: str, secret: Secret[bytes]) -> None:
        self._write("secret", name, secret.reveal())

    def delete_secret(self, name: str) -> bool:
        return self._delete("secret", name)

    def audit_hmac_key(self, *, create: bool = True) -> Secret[bytes] | None:
        """The audit log's HMAC key: 32 random bytes made on first use (when ``create``),
        then kept in two entries, so that one damaged copy never makes the log unverifiable:
        it is rewritten from the other. ``None`` when there is none and ``create`` is false."""
        with self._file_lock(self.directory / "locks" / ".audit-key.lock"):
            primary, primary_damage = self._audit_key_copy(_AUDIT_KEY)
            backup, backup_damage = self._audit_key_copy(_AUDIT_KEY_BACKUP)
            key = primary or backup
            if key is None and (primary_damage or backup_damage):
                raise VaultTampered(
                    "both copies of the audit key in the vault fail authentication; nothing "
                    "was changed. Keep them (the log verifies again once either is restored "
                    "from a copy of the vault); `exoimap audit verify --no-key` checks the "
                    "hashes meanwhile"
                )
            if key is None:
                if not create:
                    return None
                key = Secret(os.urandom(32))
            if primary is None:
                if primary_damage:
                    _logger.warning("the audit key entry was damaged; restored from its copy")
                self.set_secret(_AUDIT_KEY, key)
            if backup is None:
                self.set_secret(_AUDIT_KEY_BACKUP, key)
            return key

    def _audit_key_copy(self, name: str) -> tuple[Secret[bytes] | None, bool]:
        """One copy of the audit key, and whether it is there but damaged."""
        try:
            key = self.get_secret(name)
        except VaultTampered:
            return None, True
        if key is not None and len(key.reveal()) != 32:
            return None, True
        return key, False

    # -- locking --

    @contextlib.contextmanager
    def lock(self, account: str) -> Iterator[None]:
        """Hold the account's cross-process lock (blocks until it is free)."""
        with self._file_lock(self.directory / "locks" / f"{_safe_name(account)}.lock"):
            yield

    @staticmethod
    @contextlib.contextmanager
    def _file_lock(path: Path) -> Iterator[None]:
        private_dir(path.parent.parent)
        private_dir(path.parent)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def terminal_prompt() -> Callable[[str], str] | None:
    """A passphrase prompt when stdin is a terminal, else None (never prompt)."""
    if not sys.stdin.isatty():
        return None
    import getpass

    return getpass.getpass
