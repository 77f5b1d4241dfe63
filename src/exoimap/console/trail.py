"""Every console request's decision goes into the audit log as ``console.access``, with the
signed-in person as the record's ``console_user`` (refusals are on disk at once)."""

from __future__ import annotations

import contextlib
import datetime as _dt
from collections.abc import Iterator

from exoimap import audit
from exoimap.audit import Auditor
from exoimap.console.approvals import ApprovalRequest
from exoimap.console.policy import Principal
from exoimap.store.archive import Hold

__all__ = ["Trail"]


class Trail:
    """Writes to ``auditor`` (default: the process's auditor at the time of the request)."""

    def __init__(self, auditor: Auditor | None = None) -> None:
        self._auditor = auditor

    def record(
        self,
        principal: Principal | None,
        action: str,
        *,
        resource: str = "",
        outcome: audit.Outcome = "success",
        reason: str = "",
        account: str | None = None,
    ) -> None:
        event = audit.ConsoleAccess(
            account=account,
            outcome=outcome,
            action=action,
            resource=resource,
            roles=principal.known_roles if principal else (),
            reason=reason,
        )
        auditor = self._auditor or audit.current_auditor()
        with audit.acting_as(principal.upn if principal else "(not signed in)"):
            auditor.emit(event)

    def searched(self, principal: Principal, query: str, hits: int, page: int) -> None:
        """A search and how many messages it found (``console.search``)."""
        auditor = self._auditor or audit.current_auditor()
        with audit.acting_as(principal.upn):
            auditor.emit(audit.ConsoleSearch(query=query, hits=hits, page=page))

    def approval(
        self,
        principal: Principal,
        state: str,
        subject: ApprovalRequest | Hold | str,
        *,
        reason: str = "",
        account: str | None = None,
    ) -> None:
        """A four-eyes request (or a hold) changing state (``console.approval``)."""
        if isinstance(subject, ApprovalRequest):
            event = audit.ConsoleApproval(
                account=subject.account,
                outcome="denied" if state == "refused" else "success",
                request_id=subject.id,
                kind=subject.kind,
                state=state,
                requester=subject.requester,
                scope=subject.scope_text,
                reason=reason or subject.reason,
                expires=_dt.datetime.fromtimestamp(subject.expires, _dt.UTC).isoformat(),
            )
        elif isinstance(subject, Hold):
            event = audit.ConsoleApproval(
                account=account, request_id=subject.id, kind="hold", state=state, reason=reason
            )
        else:
            event = audit.ConsoleApproval(
                outcome="denied", request_id=subject, kind="", state=state, reason=reason
            )
        auditor = self._auditor or audit.current_auditor()
        with audit.acting_as(principal.upn):
            auditor.emit(event)

    def break_glass(
        self,
        principal: Principal,
        state: str,
        account: str,
        mailbox: str,
        *,
        reason: str = "",
        expires: float | None = None,
    ) -> None:
        """A step of an administrator's break-glass (``console.break_glass``)."""
        event = audit.ConsoleBreakGlass(
            account=account,
            outcome="denied" if state == "refused" else "success",
            state=state,
            mailbox=mailbox,
            reason=reason,
            expires=_dt.datetime.fromtimestamp(expires, _dt.UTC).isoformat() if expires else "",
        )
        auditor = self._auditor or audit.current_auditor()
        with audit.acting_as(principal.upn):
            auditor.emit(event)
        auditor.flush()  # on disk before the content opens

    def flush(self) -> None:
        """Put every record so far on disk (before showing the log)."""
        (self._auditor or audit.current_auditor()).flush()

    @contextlib.contextmanager
    def acting(self, principal: Principal) -> Iterator[None]:
        """Events the application emits in this block (a restore's ``archive.restored``) go
        to this trail's auditor, done on behalf of ``principal``."""
        auditor = self._auditor or audit.current_auditor()
        with audit.use_auditor(auditor), audit.acting_as(principal.upn):
            yield
