"""Which of a tenant's users become catalogued mailboxes.

Filters are lists of entries; an entry ``@contoso.com`` matches every user of that domain,
any other entry is a case-insensitive glob on the user principal name (``sales-*@*``).
A user is kept when it is enabled, matches an ``include`` entry (or there are none), and
matches no ``exclude`` entry.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from exoimap.errors import ConfigError
from exoimap.secrets import Secret
from exoimap.tenant.catalog import Catalog
from exoimap.tenant.graph import GraphUser, list_users
from exoimap.tenant.model import Mailbox, TenantRecord
from exoimap.tenant.signin import graph_token

__all__ = ["Discovery", "check_filters", "discover", "matches"]


def check_filters(entries: Iterable[str]) -> tuple[str, ...]:
    """The entries, checked (an empty entry or a bare ``@`` is refused)."""
    kept = tuple(e.strip() for e in entries)
    for entry in kept:
        if not entry or entry == "@":
            raise ConfigError(f"empty filter entry {entry!r}: use @DOMAIN or a UPN pattern")
    return kept


def _matches_one(upn: str, entry: str) -> bool:
    name = upn.lower()
    wanted = entry.lower()
    if wanted.startswith("@"):
        return name.rpartition("@")[2] == wanted[1:]
    return fnmatch.fnmatchcase(name, wanted)


def matches(upn: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    if include and not any(_matches_one(upn, e) for e in include):
        return False
    return not any(_matches_one(upn, e) for e in exclude)


@dataclass(frozen=True, slots=True)
class Discovery:
    """What one discovery found and changed."""

    listed: int
    kept: list[Mailbox]
    new: int
    gone: int


def discover(
    catalog: Catalog,
    tenant: TenantRecord,
    *,
    token: Callable[[TenantRecord], Secret[str]] = graph_token,
    page_size: int = 999,
    sleep: Callable[[float], None] | None = None,
) -> Discovery:
    """List the tenant's users through Graph and record the mailboxes the filters keep."""
    extra = {"sleep": sleep} if sleep is not None else {}
    users: list[GraphUser] = list(
        list_users(
            tenant.graph_url, token(tenant), ca_file=tenant.ca_file, page_size=page_size, **extra
        )
    )
    kept = [
        Mailbox(tenant.name, u.upn.lower(), u.object_id, u.display_name)
        for u in users
        if u.enabled and matches(u.upn, tenant.include, tenant.exclude)
    ]
    new, gone = catalog.replace_mailboxes(tenant.name, kept)
    return Discovery(listed=len(users), kept=kept, new=new, gone=gone)
