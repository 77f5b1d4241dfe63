"""The console's settings: a TOML file of its own (``console.toml`` next to config.toml).

::

    authority = "https://login.microsoftonline.com/<tenant id>"
    client_id = "<application (client) id of the console's app registration>"
    public_url = "https://console.example.com"   # optional: where browsers reach it
    ca_file = "/etc/ssl/private-ca.pem"           # optional: a private CA for the authority
    graph_url = "https://graph.microsoft.com"     # optional: where [groups] asks for groups
    idle_timeout = 900                            # seconds without a request
    absolute_timeout = 28800                      # seconds after sign-in

    break_glass_minutes = 30                      # how long an admin's break-glass lasts

    [scopes]                                      # mailbox address patterns per role
    auditor = ["*@contoso.com"]
    restore_operator = ["alice@contoso.com", "bob@contoso.com"]

    [scopes.admin]                                # or a table: mailboxes, domains, dates
    mailboxes = ["alice@contoso.com"]
    domains = ["fabrikam.com"]                    # every mailbox of the domain
    after = "2024-01-01"                          # archived on or after this day (UTC)
    before = "2025-01-01"                         # ... and before this day (excluded)

    [groups]                                      # Entra group object id -> roles
    "0b6a5d3e-1c2f-4e8a-9d7b-2f3e4a5b6c7d" = ["auditor"]

The client secret is never in the file: it comes from ``EXOIMAP_CONSOLE_CLIENT_SECRET``
(without it the console signs in as a public client, with PKCE only).
"""

from __future__ import annotations

import datetime as _dt
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exoimap.config import Paths
from exoimap.console.policy import ROLES, DateRange
from exoimap.errors import ConfigError
from exoimap.secrets import Secret

__all__ = ["SECRET_ENV", "ConsoleSettings", "load_settings", "settings_file"]

SECRET_ENV = "EXOIMAP_CONSOLE_CLIENT_SECRET"  # noqa: S105 - a variable name
_KEYS = {
    "authority",
    "client_id",
    "public_url",
    "ca_file",
    "idle_timeout",
    "absolute_timeout",
    "scopes",
    "groups",
    "break_glass_minutes",
    "graph_url",
}
_SCOPE_KEYS = {"mailboxes", "domains", "after", "before"}


@dataclass(frozen=True)
class ConsoleSettings:
    """How the console signs people in and what their roles may reach."""

    authority: str
    client_id: str
    public_url: str
    client_secret: Secret[str] | None = None
    ca_file: Path | None = None
    idle_timeout: float = 900.0
    absolute_timeout: float = 8 * 3600.0
    scopes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Roles granted through membership of an Entra group (object id -> roles).
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: The window of archive dates each role's scope is limited to (no entry: none).
    date_ranges: Mapping[str, DateRange] = field(default_factory=dict)
    #: How long a break-glass grant lasts.
    break_glass_minutes: float = 30.0
    #: The Microsoft Graph asked for the groups of a person in too many for the ID token.
    graph_url: str = "https://graph.microsoft.com"

    @property
    def redirect_uri(self) -> str:
        """The reply URL to register on the app registration (platform "Web")."""
        return self.public_url.rstrip("/") + "/auth/callback"

    @property
    def secure_transport(self) -> bool:
        return self.public_url.startswith("https://")


def settings_file(paths: Paths) -> Path:
    return paths.config_dir / "console.toml"


def _text(document: Mapping[str, Any], key: str, where: Path) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} must be a non-empty string", path=str(where), key=key)
    return value.strip()


def _seconds(
    document: Mapping[str, Any], key: str, default: float, where: Path, unit: str = "seconds"
) -> float:
    value = document.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{key} must be a positive number of {unit}", path=str(where), key=key)
    return float(value)


def _patterns(role: str, value: object, where: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
        raise ConfigError(f"scopes.{role} must be a list of address patterns", path=str(where))
    return tuple(value)


def _day(role: str, key: str, value: object, where: Path) -> _dt.date | None:
    if value is None or (isinstance(value, _dt.date) and not isinstance(value, _dt.datetime)):
        return value
    if isinstance(value, str) and len(value) == len("2024-01-31"):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ConfigError(
        f"scopes.{role}.{key} must be a date such as 2024-01-31, not {str(value)[:40]!r}",
        path=str(where),
    )


def _scope_table(
    role: str, table: Mapping[str, Any], where: Path
) -> tuple[tuple[str, ...], DateRange | None]:
    """``[scopes.role]``: mailboxes, domains, and the date window."""
    unknown = sorted(set(table) - _SCOPE_KEYS)
    if unknown:
        known = ", ".join(sorted(_SCOPE_KEYS))
        raise ConfigError(f"scopes.{role}: unknown key {unknown[0]!r} ({known})", path=str(where))
    domains = _patterns(f"{role}.domains", table.get("domains", []), where)
    patterns = (
        *_patterns(f"{role}.mailboxes", table.get("mailboxes", []), where),
        *("*@" + "".join(f"[{c}]" if c in "*?[]" else c for c in d.lstrip("@")) for d in domains),
    )
    after = _day(role, "after", table.get("after"), where)
    before = _day(role, "before", table.get("before"), where)
    if after is not None and before is not None and after >= before:
        raise ConfigError(
            f"scopes.{role}: after ({after}) must be earlier than before ({before})",
            path=str(where),
        )
    return patterns, DateRange(after, before) if after or before else None


def _scopes(value: object, where: Path) -> tuple[dict[str, tuple[str, ...]], dict[str, DateRange]]:
    if not isinstance(value, dict):
        raise ConfigError("scopes must be a table of role = [patterns]", path=str(where))
    scopes: dict[str, tuple[str, ...]] = {}
    ranges: dict[str, DateRange] = {}
    for role, patterns in value.items():
        if role not in ROLES or role == "self":
            known = ", ".join(r for r in ROLES if r != "self")
            raise ConfigError(f"scopes: unknown role {role!r} (roles: {known})", path=str(where))
        if isinstance(patterns, dict):
            scopes[role], window = _scope_table(role, patterns, where)
            if window is not None:
                ranges[role] = window
        else:
            scopes[role] = _patterns(role, patterns, where)
    return scopes, ranges


def _groups(value: object, where: Path) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise ConfigError('groups must be a table of "group object id" = [roles]', path=str(where))
    groups: dict[str, tuple[str, ...]] = {}
    for group, roles in value.items():
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise ConfigError(f"groups.{group} must be a list of roles", path=str(where))
        unknown = [r for r in roles if r not in ROLES]
        if unknown:
            known = ", ".join(ROLES)
            raise ConfigError(
                f"groups.{group}: unknown role {unknown[0]!r} (roles: {known})", path=str(where)
            )
        groups[group.strip().lower()] = tuple(roles)
    return groups


def load_settings(
    path: Path, *, public_url: str, environ: Mapping[str, str] | None = None
) -> ConsoleSettings:
    """Read ``path``; ``public_url`` is the default where the file names none."""
    env = os.environ if environ is None else environ
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"no console settings at {path}: write authority and client_id there "
            "(see docs/console.md)",
            path=str(path),
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"the console settings cannot be read: {exc}", path=str(path)) from None
    unknown = sorted(set(document) - _KEYS)
    if unknown:
        raise ConfigError(f"unknown console setting {unknown[0]!r}", path=str(path))
    ca_file = document.get("ca_file")
    if ca_file is not None and not isinstance(ca_file, str):
        raise ConfigError("ca_file must be a path", path=str(path), key="ca_file")
    secret = env.get(SECRET_ENV)
    scopes, ranges = _scopes(document.get("scopes", {}), path)
    return ConsoleSettings(
        authority=_text(document, "authority", path).rstrip("/"),
        client_id=_text(document, "client_id", path),
        public_url=(document.get("public_url") or public_url).rstrip("/"),
        client_secret=Secret(secret) if secret else None,
        ca_file=Path(ca_file).expanduser() if ca_file else None,
        idle_timeout=_seconds(document, "idle_timeout", 900.0, path),
        absolute_timeout=_seconds(document, "absolute_timeout", 8 * 3600.0, path),
        scopes=scopes,
        groups=_groups(document.get("groups", {}), path),
        date_ranges=ranges,
        break_glass_minutes=_seconds(document, "break_glass_minutes", 30.0, path, "minutes"),
        graph_url=_graph_url(document, path),
    )


def _graph_url(document: Mapping[str, Any], where: Path) -> str:
    if "graph_url" not in document:
        return ConsoleSettings.graph_url
    url = _text(document, "graph_url", where).rstrip("/")
    if not url.startswith("https://"):
        raise ConfigError("graph_url must be an https:// URL", path=str(where), key="graph_url")
    return url
