"""Four eyes: what needs a second person, and the book of requests.

Restoring into another mailbox, exporting a folder, deleting from the archive and releasing
a legal hold each need a request (what, on which mailbox, why, until when) that a different
person with the approver role approves; the requester then carries it out once, before it
expires. Self-approval is refused: the approver must not be the requester (compared by the
ID token's ``oid``, and by sign-in name). State changes are single SQLite transactions
(``BEGIN IMMEDIATE``), so two approvers at once, or a request carried out twice, cannot
both succeed. The book lives in ``<data>/console/approvals.sqlite`` (0600).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from exoimap.config import Paths
from exoimap.console.policy import Principal
from exoimap.errors import ExoimapError
from exoimap.private_files import private_dir

__all__ = [
    "KINDS",
    "MAX_HOURS",
    "ApprovalBook",
    "ApprovalError",
    "ApprovalRequest",
    "book_path",
]

#: What needs four eyes, and how the console says it.
KINDS: Mapping[str, str] = {
    "restore_elsewhere": "restore a message into another mailbox",
    "export": "export a folder",
    "delete": "delete a message from the archive",
    "release_hold": "release a legal hold",
}
#: The longest a request may stay valid.
MAX_HOURS = 30 * 24
MAX_REASON = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    requester_oid TEXT NOT NULL,
    requester TEXT NOT NULL,
    account TEXT NOT NULL,
    scope TEXT NOT NULL,
    reason TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    state TEXT NOT NULL,
    decided_by TEXT NOT NULL DEFAULT '',
    decided_at REAL
);
"""
_SELECT = (
    "SELECT id, kind, requester_oid, requester, account, scope, reason, created, expires, "
    "state, decided_by, decided_at FROM requests"
)
_INSERT = (
    "INSERT INTO requests (id, kind, requester_oid, requester, account, scope, reason, "
    "created, expires, state, decided_by, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class ApprovalError(ExoimapError):
    """A request that cannot be filed, decided or carried out; the message says why."""


@dataclass(frozen=True)
class ApprovalRequest:
    id: str
    kind: str
    requester_oid: str
    requester: str
    account: str
    scope: dict[str, str]
    reason: str
    created: float
    expires: float
    state: str  # pending, approved, rejected, done
    decided_by: str = ""
    decided_at: float | None = None

    def expired(self, now: float | None = None) -> bool:
        return (now or time.time()) >= self.expires

    @property
    def described(self) -> str:
        return KINDS.get(self.kind, self.kind)

    @property
    def scope_text(self) -> str:
        return " ".join(f"{k}={v}" for k, v in sorted(self.scope.items()))


def book_path(paths: Paths) -> Path:
    return paths.data_dir / "console" / "approvals.sqlite"


def _request(row: tuple[object, ...]) -> ApprovalRequest:
    values = list(row)
    values[5] = json.loads(str(values[5]))
    return ApprovalRequest(*values)  # type: ignore[arg-type]


def _same_person(a_oid: str, a_upn: str, b: Principal) -> bool:
    return (bool(a_oid) and a_oid == b.oid) or (
        bool(a_upn) and a_upn.casefold() == b.upn.casefold()
    )


class ApprovalBook:
    """The requests of one console."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        try:
            if not self.path.exists():
                private_dir(self.path.parent)
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise ApprovalError(f"the approval book {self.path} cannot be opened: {exc}") from None
        try:
            db.executescript(_SCHEMA)
            db.execute("BEGIN IMMEDIATE")
            yield db
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise ApprovalError(f"the approval book failed: {exc}") from None
        finally:
            db.close()

    def file(
        self,
        kind: str,
        requester: Principal,
        *,
        account: str,
        scope: Mapping[str, str],
        reason: str,
        hours: float,
    ) -> ApprovalRequest:
        reason = " ".join(reason.split())
        if kind not in KINDS:
            raise ApprovalError(f"unknown kind of request {kind!r}")
        if not reason:
            raise ApprovalError("a request needs a reason")
        if len(reason) > MAX_REASON:
            raise ApprovalError(f"the reason is too long (at most {MAX_REASON} characters)")
        if not 0 < hours <= MAX_HOURS:
            raise ApprovalError(f"a request is valid for 1 to {MAX_HOURS} hours")
        now = time.time()
        request = ApprovalRequest(
            secrets.token_hex(6),
            kind,
            requester.oid,
            requester.upn,
            account,
            dict(scope),
            reason,
            now,
            now + hours * 3600,
            "pending",
        )
        with self._db() as db:
            db.execute(
                _INSERT,
                (
                    request.id,
                    request.kind,
                    request.requester_oid,
                    request.requester,
                    request.account,
                    json.dumps(request.scope),
                    request.reason,
                    request.created,
                    request.expires,
                    request.state,
                    "",
                    None,
                ),
            )
        return request

    def get(self, request_id: str) -> ApprovalRequest | None:
        with self._db() as db:
            row = db.execute(_SELECT + " WHERE id = ?", (request_id,)).fetchone()
        return _request(row) if row else None

    def recent(self, limit: int = 200) -> list[ApprovalRequest]:
        with self._db() as db:
            rows = db.execute(_SELECT + " ORDER BY created DESC LIMIT ?", (limit,)).fetchall()
        return [_request(r) for r in rows]

    def decide(self, request_id: str, approver: Principal, *, approve: bool) -> ApprovalRequest:
        """Approve or reject a pending request; never one's own."""
        with self._db() as db:
            row = db.execute(_SELECT + " WHERE id = ?", (request_id,)).fetchone()
            if row is None:
                raise ApprovalError("there is no such request")
            request = _request(row)
            if _same_person(request.requester_oid, request.requester, approver):
                raise ApprovalError("you cannot approve your own request: another person must")
            if request.state != "pending":
                raise ApprovalError(f"this request is already {request.state}")
            if request.expired():
                raise ApprovalError("this request has expired; file a new one")
            state = "approved" if approve else "rejected"
            db.execute(
                "UPDATE requests SET state = ?, decided_by = ?, decided_at = ? WHERE id = ?",
                (state, approver.upn, time.time(), request_id),
            )
        return self.get(request_id) or request

    def take(self, request_id: str, requester: Principal) -> ApprovalRequest:
        """Mark an approved request of ``requester`` as carried out (once, before it
        expires) and return it; the caller then does it."""
        with self._db() as db:
            row = db.execute(_SELECT + " WHERE id = ?", (request_id,)).fetchone()
            if row is None:
                raise ApprovalError("there is no such request")
            request = _request(row)
            if not _same_person(request.requester_oid, request.requester, requester):
                raise ApprovalError("only the person who filed a request may carry it out")
            if request.state != "approved":
                raise ApprovalError(f"this request is {request.state}, not approved")
            if request.expired():
                raise ApprovalError("this request has expired; file a new one")
            db.execute("UPDATE requests SET state = 'done' WHERE id = ?", (request_id,))
        return request
