"""The audit anchor: where the chain ended at the last checkpoint, kept in the vault folder.

The checkpoint lives in the audit folder, so deleting the whole folder (or swapping in an
older copy of it) takes the checkpoint along and a new chain verifies as intact. The
anchor (``<vault dir>/audit.anchor``) holds the same number and hash of the last durable
record, with an HMAC under the audit key, outside the audit folder. The writer replaces it
after every checkpoint; :func:`exoimap.audit.verify.verify_log` checks that the chain
still holds that record, and the writer records a mismatch it finds (``audit.reset_detected``)
instead of stopping every sync.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from exoimap.audit.atomic import replace_file
from exoimap.errors import AuditChainBroken

__all__ = ["Anchor", "read_anchor", "write_anchor"]

_ANCHOR_TAG: Final = b"exoimap-audit-anchor\x00"


def _mac(key: bytes, seq: int, record_hash: str) -> str:
    return hmac.digest(key, _ANCHOR_TAG + f"{seq}\x00{record_hash}".encode(), "sha256").hex()


@dataclass(frozen=True)
class Anchor:
    """The number and hash of the last record at the last checkpoint."""

    seq: int
    hash: str
    mac: str

    def valid(self, key: bytes) -> bool:
        return hmac.compare_digest(self.mac, _mac(key, self.seq, self.hash))


def read_anchor(path: Path) -> Anchor | None:
    """The anchor, ``None`` when there is none; ``AuditChainBroken`` if it is unreadable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuditChainBroken(
            f"the audit anchor {path} cannot be read: {exc.strerror}", kind="anchor"
        ) from None
    try:
        obj = json.loads(raw)
        return Anchor(seq=int(obj["seq"]), hash=str(obj["hash"]), mac=str(obj["mac"]))
    except (ValueError, KeyError, TypeError):
        raise AuditChainBroken(
            f"the audit anchor {path} is unreadable: it was damaged or replaced", kind="anchor"
        ) from None


def write_anchor(path: Path, key: bytes, seq: int, record_hash: str) -> None:
    """Replace the anchor (write new, fsync, rename); 0600 in a 0700 folder."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = json.dumps({"seq": seq, "hash": record_hash, "mac": _mac(key, seq, record_hash)})
    replace_file(path, text.encode("ascii") + b"\n")
