"""Which of a tenant's users become catalogued mailboxes.

Filters are lists of entries; an entry ``@contoso.com`` matches every user of that domain,
``group:<object id>`` every user in that group (directly or through nested groups, asked of
Graph once per discovery), any other entry is a case-insensitive glob on the user principal
name (``sales-*@*``). A user is kept when it is enabled, matches an ``include`` entry (or
there are none), and matches no ``exclude`` entry.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from exoimap.errors import ConfigError
from exoimap.secrets import Secret
from exoimap.tenant.catalog import Catalog
from exoimap.tenant.graph import Backoff, GraphUser, LocalBackoff, group_members, list_users
from exoimap.tenant.model import Mailbox, TenantRecord
from exoimap.tenant.signin import graph_token

__all__ = ["GROUP_PREFIX", "Discovery", "check_filters", "discover", "matches"]

GROUP_PREFIX = "group:"


def check_filters(entries: Iterable[str]) -> tuple[str, ...]:
    """The entries, checked (an empty entry, a bare ``@`` or ``group:`` is refused)."""
    kept = tuple(e.strip() for e in entries)
    for entry in kept:
        if not entry or entry == "@" or entry.lower() == GROUP_PREFIX:
            raise ConfigError(
                f"empty filter entry {entry!r}: use @DOMAIN, group:OBJECT-ID or a UPN pattern"
            )
    return kept


def _group_id(entry: str) -> str | None:
    return entry[len(GROUP_PREFIX) :] if entry.lower().startswith(GROUP_PREFIX) else None


def _matches_one(upn: str, entry: str, groups: Mapping[str, frozenset[str]]) -> bool:
    name = upn.lower()
    group = _group_id(entry)
    if group is not None:
        return name in groups.get(group, frozenset())
    wanted = entry.lower()
    if wanted.startswith("@"):
        return name.rpartition("@")[2] == wanted[1:]
    return fnmatch.fnmatchcase(name, wanted)


def matches(
    upn: str,
    include: Sequence[str],
    exclude: Sequence[str],
    groups: Mapping[str, frozenset[str]] | None = None,
) -> bool:
    """Whether the filters keep ``upn``; ``groups`` maps each ``group:`` entry's id to its
    members' UPNs (lower case)."""
    members = groups or {}
    if include and not any(_matches_one(upn, e, members) for e in include):
        return False
    return not any(_matches_one(upn, e, members) for e in exclude)


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
    backoff: Backoff | None = None,
) -> Discovery:
    """List the tenant's users through Graph and record the mailboxes the filters keep;
    throttling answers go to ``backoff`` (one for the whole discovery)."""
    access = token(tenant)
    paced = {"backoff": backoff or LocalBackoff()}

    def members(group: str) -> frozenset[str]:
        found = group_members(
            tenant.graph_url, access, group, ca_file=tenant.ca_file, page_size=page_size, **paced
        )
        return frozenset(u.upn.lower() for u in found)

    users: list[GraphUser] = list(
        list_users(tenant.graph_url, access, ca_file=tenant.ca_file, page_size=page_size, **paced)
    )
    wanted = {_group_id(e) for e in (*tenant.include, *tenant.exclude)} - {None}
    groups = {group: members(group) for group in sorted(g for g in wanted if g)}
    kept = [
        Mailbox(tenant.name, u.upn.lower(), u.object_id, u.display_name)
        for u in users
        if u.enabled and matches(u.upn, tenant.include, tenant.exclude, groups)
    ]
    new, gone = catalog.replace_mailboxes(tenant.name, kept)
    return Discovery(listed=len(users), kept=kept, new=new, gone=gone)
