"""Where the audit key comes from.

The key authenticates the audit log (record MACs and the checkpoint). It belongs in the
encrypted vault; until the vault is wired in, :func:`load_audit_key` keeps a random 32-byte
key in ``<vault dir>/audit.key`` (0600, in a 0700 folder). This is the ONE place that knows
where the key lives: change it here and every writer and verifier follows.
"""

from __future__ import annotations

import os
import secrets

from exoimap.config import Paths
from exoimap.errors import ConfigError
from exoimap.secrets import Secret

__all__ = ["KEY_BYTES", "load_audit_key"]

KEY_BYTES = 32


def load_audit_key(paths: Paths, *, create: bool = True) -> Secret[bytes]:
    """Read the audit key, creating it on first use when ``create`` is true."""
    path = paths.vault_dir / "audit.key"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if not create:
            raise ConfigError(
                "there is no audit key (it is made the first time something is audited); "
                "without it only the unkeyed checks can run (`exoimap audit verify --no-key`)",
                path=str(path),
            ) from None
        paths.vault_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(paths.vault_dir, 0o700)
        key = secrets.token_bytes(KEY_BYTES)
        # Write it whole under a private name, then link it in: another process never
        # reads a half-written key, and if one raced us, both use the same key.
        temp = path.with_name(f"audit.key.{os.getpid()}.new")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temp, path)
        except FileExistsError:
            return load_audit_key(paths, create=False)
        finally:
            os.unlink(temp)
        return Secret(key)
    except OSError as exc:
        raise ConfigError(f"cannot read the audit key: {exc.strerror}", path=str(path)) from None
    if len(raw) != KEY_BYTES:
        raise ConfigError(
            f"the audit key must be {KEY_BYTES} bytes; this file holds {len(raw)}", path=str(path)
        )
    return Secret(raw)
