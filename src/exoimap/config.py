"""Configuration: where files live, and the TOML config file.

Paths
    ``$EXOIMAP_HOME`` (when set) holds everything: ``config.toml``, the vault, logs, archives.
    Otherwise the config is in the XDG config dir (``~/.config/exoimap``) and data in the XDG
    data dir (``~/.local/share/exoimap``).

File
    ``config.toml`` has an optional ``[logging]`` table, an optional ``[audit]`` table, and one
    ``[accounts.NAME]`` table per mailbox. Every key is checked: an unknown key, a wrong type
    or a bad value is a :class:`~exoimap.errors.ConfigError` naming the file and the key.
    Secrets never go in this file: keys that look like secrets are refused with a pointer to
    ``exoimap account set-secret``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from exoimap.errors import ConfigError
from exoimap.home import AGENT_SOCKET, home_dirs

__all__ = [
    "CLOUDS",
    "FLOWS",
    "MECHANISMS",
    "AccountConfig",
    "AuditConfig",
    "Config",
    "LoggingConfig",
    "Paths",
    "load_config",
    "parse_config",
    "write_account",
]

CLOUDS = ("worldwide", "gcc", "gcc-high", "dod", "china", "custom")
FLOWS = ("device", "browser", "client-secret", "client-certificate", "token-command")
MECHANISMS = ("xoauth2", "oauthbearer", "plain", "login")
LOG_LEVELS = ("debug", "info", "warning", "error")
_SECRET_KEY = re.compile(r"(secret|password|passwd|token$|refresh|passphrase|private_key)", re.I)
_ACCOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Paths:
    """Where exoimap reads and writes files."""

    config_dir: Path
    data_dir: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Paths:
        config_dir, data_dir = home_dirs(environ)
        return cls(config_dir=Path(config_dir), data_dir=Path(data_dir))

    @property
    def config_file(self) -> Path:
        return self.config_dir / "config.toml"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def vault_dir(self) -> Path:
        return self.data_dir / "vault"

    @property
    def audit_dir(self) -> Path:
        return self.data_dir / "audit"

    @property
    def audit_anchor(self) -> Path:
        """Where the audit chain ended at its last checkpoint: in the vault folder, so that
        deleting or swapping the audit folder is noticed (:mod:`exoimap.audit.anchor`)."""
        return self.vault_dir / "audit.anchor"

    def archive_dir(self, account: str) -> Path:
        return self.data_dir / "archive" / account

    @property
    def search_index(self) -> Path:
        """The console's search index over every archive (:mod:`exoimap.store.search`)."""
        return self.data_dir / "search" / "index.sqlite"

    @property
    def agent_socket(self) -> Path:
        """Where a running ``exoimap agent`` listens."""
        return self.data_dir / AGENT_SOCKET


# --- value checkers: each returns the converted value or raises ValueError(what is wrong) ---


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_type_name(value)}")
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _choice(options: tuple[str, ...]) -> Callable[[object], str]:
    def check(value: object) -> str:
        text = _string(value)
        if text not in options:
            raise ValueError(f"{text!r} is not one of: {', '.join(options)}")
        return text

    return check


def _port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer port, got {_type_name(value)}")
    if not 1 <= value <= 65535:
        raise ValueError(f"port {value} is outside 1-65535")
    return value


def _positive_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {_type_name(value)}")
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return value


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_type_name(value)}")
    return value


def _path(value: object) -> Path:
    return Path(_string(value)).expanduser()


def _email(value: object) -> str:
    text = _string(value)
    if "@" not in text or text.startswith("@") or text.endswith("@") or " " in text:
        raise ValueError(f"{text!r} is not an email address")
    return text


_GUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def _client_id(value: object) -> str:
    """An Application (client) ID: a GUID, as Entra shows it on the app's Overview page."""
    text = _string(value).strip()
    if not _GUID.fullmatch(text):
        raise ValueError(
            f"{text!r} is not an Application (client) ID: that is a GUID like "
            "00000000-0000-0000-0000-000000000000, shown on the app registration's Overview "
            "page in Entra ID"
        )
    return text


def _https_url(value: object) -> str:
    text = _string(value)
    if not text.startswith("https://") or len(text) <= len("https://"):
        raise ValueError(f"{text!r} must be an https:// URL")
    return text.rstrip("/")


def _command(value: object) -> tuple[str, ...]:
    """A token command: a string (split like a shell would) or a list of arguments."""
    import shlex

    if isinstance(value, str):
        try:
            parts = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split the command: {exc}") from None
    elif isinstance(value, list) and all(isinstance(p, str) for p in value):
        parts = list(value)
    else:
        raise ValueError(f"expected a string or a list of strings, got {_type_name(value)}")
    if not parts:
        raise ValueError("must not be empty")
    return tuple(parts)


def _hours(value: object) -> tuple[int, int]:
    """Office hours as "HH-HH" (24 h clock), e.g. "07-19"."""
    text = _string(value)
    match = re.fullmatch(r"(\d{1,2})-(\d{1,2})", text)
    if not match:
        raise ValueError(f"{text!r} is not a range of hours like '07-19'")
    start, end = int(match.group(1)), int(match.group(2))
    if not (0 <= start <= 23 and 1 <= end <= 24 and start < end):
        raise ValueError(f"{text!r}: hours must satisfy 0 <= start < end <= 24")
    return (start, end)


def _type_name(value: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


# --- the schema --------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountConfig:
    """One mailbox: who it is, how to sign in, where the server is, where the archive goes."""

    name: str
    email: str
    cloud: str = "worldwide"
    tenant: str | None = None
    client_id: str | None = None
    flow: str = "device"
    certificate: Path | None = None
    token_command: tuple[str, ...] | None = None
    authority: str | None = None
    imap_host: str | None = None
    imap_port: int = 993
    #: SMTP submission for ``exoimap proxy`` (default: the cloud's, port 587 with STARTTLS).
    smtp_host: str | None = None
    smtp_port: int = 587
    #: Sign in for SMTP.Send too (``exoimap login NAME --smtp``): the proxy relays mail.
    smtp_send: bool = False
    ca_file: Path | None = None
    archive: Path | None = None
    username: str | None = None
    mechanism: str = "xoauth2"
    starttls: bool = False
    max_connections: int = 4
    #: Seconds connecting to the IMAP server may keep failing before a run gives up on it.
    unreachable_timeout: int = 300


_ACCOUNT_KEYS: dict[str, Callable[[object], Any]] = {
    "email": _email,
    "cloud": _choice(CLOUDS),
    "tenant": _string,
    "client_id": _client_id,
    "flow": _choice(FLOWS),
    "certificate": _path,
    "token_command": _command,
    "authority": _https_url,
    "imap_host": _string,
    "imap_port": _port,
    "smtp_host": _string,
    "smtp_port": _port,
    "smtp_send": _boolean,
    "ca_file": _path,
    "archive": _path,
    "username": _string,
    "mechanism": _choice(MECHANISMS),
    "starttls": _boolean,
    "max_connections": _positive_int,
    "unreachable_timeout": _positive_int,
}


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "info"
    file: Path | None = None


_LOGGING_KEYS: dict[str, Callable[[object], Any]] = {"level": _choice(LOG_LEVELS), "file": _path}


@dataclass(frozen=True)
class AuditConfig:
    enabled: bool = True
    office_hours: tuple[int, int] | None = None
    max_file_bytes: int = 64 * 1024 * 1024


_AUDIT_KEYS: dict[str, Callable[[object], Any]] = {
    "enabled": _boolean,
    "office_hours": _hours,
    "max_file_bytes": _positive_int,
}


@dataclass(frozen=True)
class Config:
    """The whole configuration, validated."""

    path: Path
    accounts: dict[str, AccountConfig] = field(default_factory=dict)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)

    def account(self, name: str) -> AccountConfig:
        try:
            return self.accounts[name]
        except KeyError:
            known = ", ".join(sorted(self.accounts)) or "none configured"
            raise ConfigError(
                f"no account named {name!r} (accounts: {known})", path=str(self.path)
            ) from None


def _check_table(
    table: object, where: str, keys: Mapping[str, Callable[[object], Any]], path: str
) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError(f"expected a table, got {_type_name(table)}", path=path, key=where)
    checked: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{where}.{key}"
        if _SECRET_KEY.search(key):
            raise ConfigError(
                "secrets are never stored in the config file; store it encrypted with "
                "`exoimap account set-secret NAME` instead",
                path=path,
                key=dotted,
            )
        check = keys.get(key)
        if check is None:
            raise ConfigError(
                f"unknown key (known keys: {', '.join(sorted(keys))})", path=path, key=dotted
            )
        try:
            checked[key] = check(value)
        except ValueError as exc:
            raise ConfigError(str(exc), path=path, key=dotted) from None
    return checked


def _check_account(name: str, table: object, path: str) -> AccountConfig:
    where = f"accounts.{name}"
    # fullmatch: "$" would accept a name ending in a newline
    if not _ACCOUNT_NAME.fullmatch(name):
        shown = where if where.isprintable() else f"accounts.{name!r}"  # one line, visible
        raise ConfigError(
            "account names use letters, digits, '.', '_' and '-' (at most 64)", path=path, key=shown
        )
    values = _check_table(table, where, _ACCOUNT_KEYS, path)
    if "email" not in values:
        raise ConfigError("missing required key", path=path, key=f"{where}.email")
    flow = values.get("flow", "device")
    cloud = values.get("cloud", "worldwide")
    rules = [
        (flow == "token-command" and "token_command" not in values, "token_command",
         "flow 'token-command' needs token_command"),
        (flow == "client-certificate" and "certificate" not in values, "certificate",
         "flow 'client-certificate' needs certificate (a PEM or PFX file)"),
        (flow in ("client-secret", "client-certificate") and "tenant" not in values, "tenant",
         f"flow {flow!r} is app-only and needs a tenant id or domain (not common)"),
        (cloud == "custom" and flow != "token-command" and "authority" not in values,
         "authority", "cloud 'custom' needs authority (https://host/tenant)"),
        (cloud == "custom" and "imap_host" not in values, "imap_host",
         "cloud 'custom' needs imap_host"),
    ]  # fmt: skip
    for broken, key, message in rules:
        if broken:
            raise ConfigError(message, path=path, key=f"{where}.{key}")
    _check_tenant_matches_authority(values, where, path)
    if flow == "token-command" and "cloud" not in values and "imap_host" in values:
        values["cloud"] = "custom"
    return AccountConfig(name=name, **values)


def _check_tenant_matches_authority(values: Mapping[str, Any], where: str, path: str) -> None:
    """A custom authority names its tenant (``https://host/<tenant>``), and that tenant is
    the one signed in to: a different ``tenant`` would be silently ignored."""
    tenant, authority = values.get("tenant"), values.get("authority")
    if values.get("cloud") != "custom" or tenant is None or authority is None:
        return
    in_authority = authority.rstrip("/").rsplit("/", 1)[-1]
    if tenant.strip().lower() != in_authority.lower():
        raise ConfigError(
            f"the tenant {tenant!r} contradicts the authority {authority}, whose tenant is "
            f"{in_authority!r}; leave the tenant out or make the two agree",
            path=path,
            key=f"{where}.tenant",
        )


def parse_config(data: Mapping[str, object], path: Path) -> Config:
    """Validate a parsed TOML document."""
    where = str(path)
    known = {"accounts", "logging", "audit"}
    for key in data:
        if key not in known:
            raise ConfigError(
                f"unknown key (known keys: {', '.join(sorted(known))})", path=where, key=key
            )
    accounts_table = data.get("accounts", {})
    if not isinstance(accounts_table, dict):
        raise ConfigError("expected [accounts.NAME] tables", path=where, key="accounts")
    accounts = {name: _check_account(name, table, where) for name, table in accounts_table.items()}
    logging_cfg = LoggingConfig(
        **_check_table(data.get("logging", {}), "logging", _LOGGING_KEYS, where)
    )
    audit_cfg = AuditConfig(**_check_table(data.get("audit", {}), "audit", _AUDIT_KEYS, where))
    return Config(path=path, accounts=accounts, logging=logging_cfg, audit=audit_cfg)


def load_config(paths: Paths | None = None) -> Config:
    """Read and validate ``config.toml``; a missing file is an empty configuration."""
    paths = paths or Paths.from_env()
    path = paths.config_file
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config(path=path)
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror}", path=str(path)) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError("the file is not valid UTF-8", path=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", path=str(path)) from None
    return parse_config(data, path)


def account_to_table(account: AccountConfig) -> dict[str, Any]:
    """The TOML table for an account, leaving out defaults (used by `account add`)."""
    table: dict[str, Any] = {}
    defaults = AccountConfig(name=account.name, email=account.email)
    for f in fields(account):
        if f.name == "name":
            continue
        value = getattr(account, f.name)
        # A token-command account's cloud is written even when it is the default: left out,
        # the account would read back as cloud "custom" and its tokens would go unchecked.
        kept = f.name == "email" or (f.name == "cloud" and account.flow == "token-command")
        if value is None or (not kept and value == getattr(defaults, f.name)):
            continue
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        table[f.name] = value
    return table


def write_account(
    account: AccountConfig, paths: Paths | None = None, *, replace: bool = False
) -> Path:
    """Add (or with ``replace``, overwrite) one ``[accounts.NAME]`` table in ``config.toml``,
    keeping everything else in the file. The whole result is validated before it is written,
    and the file is replaced atomically."""
    import tomli_w

    paths = paths or Paths.from_env()
    path = paths.config_file
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        data = {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot update the file: {exc}", path=str(path)) from None
    accounts = data.setdefault("accounts", {})
    if not isinstance(accounts, dict):
        raise ConfigError("expected [accounts.NAME] tables", path=str(path), key="accounts")
    if account.name in accounts and not replace:
        raise ConfigError(
            "an account with this name already exists (use --replace to overwrite it)",
            path=str(path),
            key=f"accounts.{account.name}",
        )
    accounts[account.name] = account_to_table(account)
    parse_config(data, path)  # never write a file that would not load
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(tomli_w.dumps(data))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path
