"""``sandbox.json``: what a running sandbox publishes for scripts and tests.

Built from the directory alone (no server objects), so admin commands in another process
can refresh it cheaply after a change. Keys owned by the identity half are rebuilt; keys
another half added (``imap_host``, ``imap_port``) are kept.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from exoimap.errors import ConfigError
from exoimap.sandbox.identity.model import ClientSecret
from exoimap.sandbox.identity.seed import app_cert_folder
from exoimap.sandbox.identity.store import DirectoryStore
from exoimap.sandbox.state import SANDBOX_JSON, read_sandbox_json, write_private_json

__all__ = ["refresh_sandbox_json", "sandbox_document", "write_sandbox_json"]


def sandbox_document(
    store: DirectoryStore, base_url: str | None, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``sandbox.json`` document for the directory's first tenant; without a
    ``base_url`` (no server yet) it lacks ``authority``, ``identity_url`` and ``pid``."""
    tenants = store.current().tenants
    if not tenants:
        raise ConfigError("the sandbox has no tenant", path=str(store.state_dir))
    tenant = tenants[0]
    now = store.now()
    apps: list[dict[str, Any]] = []
    for app in tenant.apps:
        entry: dict[str, Any] = {"name": app.name, "client_id": app.client_id, "type": app.type}
        live = [s for s in app.secrets if s.expires_at > now]
        if live:
            entry["client_secret"] = live[-1].value
        if app.secrets:  # every one, expired too (to try an expired secret)
            entry["client_secrets"] = [_secret_entry(s, now) for s in app.secrets]
        for cert in app.certificates:
            folder = app_cert_folder(store.state_dir, app.name)
            cert_file = folder / f"{cert.thumbprint_sha1[:8]}.pem"
            key_file = folder / f"{cert.thumbprint_sha1[:8]}-key.pem"
            if cert_file.exists() and key_file.exists() and cert.expires_at > now:
                entry["certificate_file"] = str(cert_file)
                entry["private_key_file"] = str(key_file)
                entry["certificate_thumbprint"] = cert.thumbprint_sha1
        if app.redirect_uris:
            entry["redirect_uris"] = list(app.redirect_uris)
        apps.append(entry)
    document: dict[str, Any] = {
        "ca_file": str(store.state_dir / "ca" / "ca.pem"),
        "tenant_id": tenant.tenant_id,
        "tenant_domain": tenant.domain,
        "users": [{"upn": u.upn, "password": u.password} for u in tenant.users],
        "apps": apps,
    }
    if base_url is not None:
        document.update(
            authority=f"{base_url}/{tenant.tenant_id}", identity_url=base_url, pid=os.getpid()
        )
    document.update(extra or {})
    return document


def _secret_entry(secret: ClientSecret, now: float) -> dict[str, Any]:
    expires = dt.datetime.fromtimestamp(secret.expires_at, dt.UTC).isoformat(timespec="seconds")
    return {
        "secret_id": secret.secret_id,
        "value": secret.value,
        "expires": expires,
        "expired": secret.expires_at <= now,
    }


def write_sandbox_json(
    store: DirectoryStore, base_url: str, extra: dict[str, Any] | None = None
) -> Path:
    """Write ``<state>/sandbox.json`` (0600) and return its path."""
    path = store.state_dir / SANDBOX_JSON
    write_private_json(path, sandbox_document(store, base_url, extra))
    return path


def refresh_sandbox_json(store: DirectoryStore) -> Path:
    """Rebuild ``sandbox.json`` after an admin change (keeping what a running server
    added); before the first ``up`` it holds the directory's part alone."""
    path = store.state_dir / SANDBOX_JSON
    if not path.exists():
        write_private_json(path, sandbox_document(store, None))
        return path
    current = read_sandbox_json(store.state_dir)
    base_url = current.get("identity_url")
    if not isinstance(base_url, str):
        base_url = None
    owned = set(sandbox_document(store, base_url)) - {"pid"}
    extra = {k: v for k, v in current.items() if k not in owned}
    write_private_json(path, sandbox_document(store, base_url, extra))
    return path
