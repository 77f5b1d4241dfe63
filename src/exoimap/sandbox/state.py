"""The sandbox state folder and its ``sandbox.json``.

A state folder (mode 0700) holds everything a sandbox needs to come back as it was: the
local CA, the token-signing key, the tenant directory, the ports of the last run
(``ports.json``) and ``sandbox.json``, the file a script reads to use a running sandbox
without reading logs. Files are 0600 and written durably (write a temporary file, fsync,
rename, fsync the folder), so neither a crash nor a power cut leaves a half-written file
or loses one that was reported written.

``sandbox.json`` keys: ``authority``, ``ca_file``, ``tenant_id``, ``tenant_domain``,
``users`` (``upn``, ``password``), ``apps`` (``name``, ``client_id``, ``type`` and, for
confidential apps, ``client_secret`` + ``client_secrets`` and/or ``certificate_file`` +
``private_key_file``), ``identity_url``, ``pid``; the IMAP half adds ``imap_host`` and
``imap_port``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exoimap.errors import ConfigError
from exoimap.private_files import write_private

__all__ = [
    "PORTS_JSON",
    "SANDBOX_JSON",
    "KeptPorts",
    "serving_lock",
    "ensure_private_dir",
    "read_kept_ports",
    "write_kept_ports",
    "read_json",
    "read_sandbox_json",
    "write_private_bytes",
    "write_private_json",
]

SANDBOX_JSON = "sandbox.json"
PORTS_JSON = "ports.json"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (missing parents too, all 0700) and make it 0700."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private_bytes(path: Path, data: bytes) -> None:
    """Durably replace ``path`` with ``data``; the file is 0600 from the first byte (see
    :func:`exoimap.private_files.write_private`)."""
    write_private(path, data)


def write_private_json(path: Path, document: object) -> None:
    """Atomically write ``document`` as indented JSON, mode 0600."""
    write_private_bytes(path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> Any:
    """Read a JSON file, turning every failure into a :class:`ConfigError` naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("file not found", path=str(path)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read: {type(exc).__name__}", path=str(path)) from None


@dataclass(frozen=True)
class KeptPorts:
    """The ports a sandbox served on last time (0: none kept), reused by the next ``up``
    so that accounts configured against it keep working."""

    identity: int = 0
    imap: int = 0


def read_kept_ports(state_dir: Path) -> KeptPorts:
    """The ports kept in ``<state>/ports.json``; none when the file is missing or damaged
    (then the next run picks free ports and keeps those)."""
    path = state_dir / PORTS_JSON
    if not path.exists():
        return KeptPorts()
    try:
        document = read_json(path)
        identity, imap = document["identity"], document["imap"]
    except (ConfigError, TypeError, KeyError):
        return KeptPorts()
    if not all(isinstance(p, int) and 0 < p < 65536 for p in (identity, imap)):
        return KeptPorts()
    return KeptPorts(identity, imap)


def write_kept_ports(state_dir: Path, ports: KeptPorts) -> None:
    write_private_json(state_dir / PORTS_JSON, {"identity": ports.identity, "imap": ports.imap})


def read_sandbox_json(state_dir: Path) -> dict[str, Any]:
    """The ``sandbox.json`` of a state folder (written by ``exoimap sandbox up``)."""
    document = read_json(state_dir / SANDBOX_JSON)
    if not isinstance(document, dict):
        raise ConfigError("not a JSON object", path=str(state_dir / SANDBOX_JSON))
    return document


@contextlib.contextmanager
def serving_lock(state_dir: Path) -> Iterator[None]:
    """Held while a sandbox serves a state folder: a second ``up`` on it fails clearly
    instead of overwriting ``sandbox.json`` under the first one."""
    ensure_private_dir(state_dir)
    fd = os.open(state_dir / "serving.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                "a sandbox is already running on this state folder; stop it first or use "
                "another --state",
                path=str(state_dir),
            ) from None
        yield
    finally:
        os.close(fd)
