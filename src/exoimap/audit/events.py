"""Typed audit events: a closed vocabulary, and no room for a secret.

Each event is a frozen dataclass with a fixed ``name`` (``token.requested``,
``imap.connected``, ...) and typed fields. Building one checks every field:

* a :class:`~exoimap.secrets.Secret` anywhere is a ``TypeError`` (a secret has no business in
  an audit record, even masked: it means the caller passed the wrong thing);
* a value of the wrong type (a dict, bytes, an object) is a ``TypeError``;
* every string goes through :func:`exoimap.logs.redact`, so a token or password pasted into
  a free-text field (an error message, a folder name) is stored as ``***``.

Events compare by identity (each is one occurrence) and share one ``__repr__``, one
keyword-only ``__init__`` and one ``__setattr__`` that refuses changes (:func:`_event`): the
dataclass decorator would compile ``__init__``, ``__setattr__``, ``__delattr__``,
``__eq__``, ``__hash__`` and ``__repr__`` from generated source for each of the 30-odd
classes, which cost about 5 ms of every start.

The envelope that every record gets (time, actor, run id, sequence number, hash chain) is
added by the writer in :mod:`exoimap.audit.log`; events carry only what happened.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, TypeVar, dataclass_transform, get_args

from exoimap.logs import redact
from exoimap.secrets import Secret, known_secrets_generation

__all__ = [
    "EVENT_NAMES",
    "OUTCOMES",
    "AccessDenied",
    "AccountSynced",
    "WatchStateChanged",
    "WorkerJob",
    "WorkerLeaseLost",
    "ArchiveExported",
    "ArchiveRead",
    "ArchiveRestored",
    "ArchiveVerified",
    "AuditEvent",
    "AuditRecovered",
    "AuditResetDetected",
    "AuditSegmentStarted",
    "ConfigChanged",
    "ConsoleAccess",
    "ConsoleApproval",
    "ConsoleBreakGlass",
    "ConsoleSearch",
    "FolderSynced",
    "ImapAuthFailed",
    "ImapAuthenticated",
    "ImapClosed",
    "ImapConnected",
    "ImapThrottled",
    "Outcome",
    "TokenFailed",
    "TokenHandedOut",
    "MailSubmitted",
    "TokenRefreshed",
    "TokenRequested",
    "VaultChanged",
    "event_class",
]

Outcome = Literal["success", "failure", "denied"]
OUTCOMES: Final[tuple[str, ...]] = get_args(Outcome)
_E = TypeVar("_E")

# A JSON scalar or a list of strings: the only shapes an event field may have.
FieldValue = str | int | float | bool | None | tuple[str, ...]


def _init(self: AuditEvent, **given: Any) -> None:
    cls = type(self)
    for name, default, factory in cls._event_fields:
        if name in given:
            value = given.pop(name)
        elif default is not dataclasses.MISSING:
            value = default
        elif factory is not dataclasses.MISSING:
            value = factory()
        else:
            raise TypeError(f"{cls.__name__}() missing keyword argument {name!r}")
        object.__setattr__(self, name, value)
    if given:
        raise TypeError(
            f"{cls.__name__}() got an unexpected keyword argument {next(iter(given))!r}"
        )
    self.__post_init__()


def _refuse_change(self: AuditEvent, name: str, *_value: object) -> None:
    raise dataclasses.FrozenInstanceError(f"cannot change field {name!r} of an audit event")


@dataclass_transform(kw_only_default=True, frozen_default=True, eq_default=False)
def _event(cls: type[_E]) -> type[_E]:
    """A frozen, keyword-only dataclass whose ``__init__`` and ``__setattr__`` are shared
    (see the module docstring); ``__post_init__`` checks the fields."""
    made: Any = dataclass(kw_only=True, init=False, eq=False, repr=False)(cls)
    made._event_fields = tuple(
        (f.name, f.default, f.default_factory) for f in dataclasses.fields(made)
    )
    made.__init__ = _init
    made.__setattr__ = _refuse_change
    made.__delattr__ = _refuse_change
    return made  # type: ignore[no-any-return]


@_event
class AuditEvent:
    """Base of every audit event. Subclasses set ``name`` and add typed fields."""

    name: ClassVar[str] = ""
    #: ``(name, default, default_factory)`` of each field, for the shared ``__init__``.
    _event_fields: ClassVar[tuple[tuple[str, Any, Any], ...]] = ()
    #: The configured account name (``[accounts.NAME]``) the event concerns, if any.
    account: str | None = None
    outcome: Outcome = "success"

    def __post_init__(self) -> None:
        if not type(self).name:
            raise TypeError("AuditEvent is abstract: use one of its subclasses")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, not {self.outcome!r}")
        owner = type(self).__name__
        for name in _field_names(type(self)):
            value = getattr(self, name)
            checked = _checked(owner, name, value)
            if checked is not value:
                object.__setattr__(self, name, checked)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in _field_names(type(self)))
        return f"{type(self).__name__}({fields})"

    def data(self) -> dict[str, FieldValue]:
        """The event's own fields (everything except ``account`` and ``outcome``)."""
        return {name: getattr(self, name) for name in _field_names(type(self))[2:]}


_FIELD_NAMES: dict[type[AuditEvent], tuple[str, ...]] = {}


def _field_names(cls: type[AuditEvent]) -> tuple[str, ...]:
    """``account``, ``outcome``, then the class's own fields in declaration order."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        rest = [f.name for f in dataclasses.fields(cls) if f.name not in ("account", "outcome")]
        names = _FIELD_NAMES[cls] = ("account", "outcome", *rest)
    return names


@functools.lru_cache(maxsize=4096)
def _redact_cached(text: str, known_secrets: int) -> str:
    # The known secrets' generation is part of the key: an entry made before a new Secret
    # existed is never reused after.
    return redact(text)


def _redacted(text: str) -> str:
    return _redact_cached(text, known_secrets_generation())


def _checked(owner: str, name: str, value: object) -> Any:
    if isinstance(value, Secret):
        raise TypeError(f"{owner}.{name}: a Secret never goes into an audit event")
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return _redacted(value)
    if isinstance(value, (tuple, list)):
        items = []
        for item in value:
            if isinstance(item, Secret):
                raise TypeError(f"{owner}.{name}: a Secret never goes into an audit event")
            if not isinstance(item, str):
                raise TypeError(f"{owner}.{name}: list items must be strings, not {type(item)}")
            items.append(_redacted(item))
        return tuple(items)
    raise TypeError(f"{owner}.{name}: {type(value).__name__} is not an allowed field type")


# --- sign-in ---------------------------------------------------------------------------


@_event
class TokenRequested(AuditEvent):
    """A token was obtained from the identity platform (interactively or not)."""

    name: ClassVar[str] = "token.requested"
    flow: str
    client_id: str | None = None
    scopes: tuple[str, ...] = ()
    tenant: str | None = None
    from_cache: bool = False


@_event
class TokenRefreshed(AuditEvent):
    """An access token was renewed with a refresh token."""

    name: ClassVar[str] = "token.refreshed"
    flow: str
    client_id: str | None = None
    scopes: tuple[str, ...] = ()
    tenant: str | None = None
    expires_in: int | None = None


@_event
class TokenFailed(AuditEvent):
    """Getting or renewing a token failed; ``aadsts`` is Microsoft's code when given."""

    name: ClassVar[str] = "token.failed"
    outcome: Outcome = "failure"
    flow: str
    client_id: str | None = None
    scopes: tuple[str, ...] = ()
    tenant: str | None = None
    aadsts: int | None = None
    error: str = ""


@_event
class TokenHandedOut(AuditEvent):
    """An access token was given to another program (``exoimap token print``).

    ``requested_by`` names the programs that asked, nearest first (``mbsync[4242]``), as
    the operating system reports them; ``via`` is ``agent`` or ``command``; ``format`` is
    how it was printed; a failed ask (a sign-in is needed) has ``error``. The token itself
    is never recorded."""

    name: ClassVar[str] = "token.handed_out"
    requested_by: tuple[str, ...] = ()
    via: str = "command"
    format: str = "token"
    expires_in: int | None = None
    error: str = ""


@_event
class MailSubmitted(AuditEvent):
    """A client submitted a message through ``exoimap proxy``'s SMTP listener; ``reply`` is
    the SMTP code Exchange answered (or the proxy, when Exchange could not be asked). The
    addresses and the message are never recorded, only how many and how large."""

    name: ClassVar[str] = "smtp.submitted"
    client: str
    username: str | None = None
    recipients: int = 0
    size: int = 0
    reply: int = 0


# --- IMAP connections ------------------------------------------------------------------


@_event
class ImapConnected(AuditEvent):
    """A TCP+TLS connection to an IMAP server was established."""

    name: ClassVar[str] = "imap.connected"
    host: str
    port: int = 993
    tls_version: str | None = None
    connection: str | None = None


@_event
class ImapAuthenticated(AuditEvent):
    """The IMAP server accepted our credentials."""

    name: ClassVar[str] = "imap.authenticated"
    host: str
    mechanism: str
    username: str | None = None
    connection: str | None = None


@_event
class ImapAuthFailed(AuditEvent):
    """The IMAP server refused our credentials."""

    name: ClassVar[str] = "imap.auth_failed"
    outcome: Outcome = "failure"
    host: str
    mechanism: str
    username: str | None = None
    error: str = ""
    connection: str | None = None


@_event
class ImapClosed(AuditEvent):
    """A connection ended; ``bytes_sent``/``bytes_received`` count what crossed the wire."""

    name: ClassVar[str] = "imap.closed"
    host: str
    bytes_sent: int = 0
    bytes_received: int = 0
    reason: str = ""
    connection: str | None = None


@_event
class ImapThrottled(AuditEvent):
    """The server throttled us and asked us to wait ``wait_s`` seconds before trying again."""

    name: ClassVar[str] = "imap.throttled"
    host: str
    wait_s: float
    reason: str = ""


# --- data transfer ---------------------------------------------------------------------


@_event
class FolderSynced(AuditEvent):
    """One folder was synchronised between two stores."""

    name: ClassVar[str] = "sync.folder"
    folder: str
    source: str = ""
    target: str = ""
    copied: int = 0
    updated: int = 0
    deleted: int = 0
    failed: int = 0
    bytes: int = 0
    duration_s: float = 0.0
    #: The class name of each error behind ``failed`` (e.g. ``MessageFetchFailed``).
    error_kinds: tuple[str, ...] = ()


@_event
class AccountSynced(AuditEvent):
    """One account's sync run ended: what it moved in all, and how long it took. A run that
    stopped early (sign-in, a locked archive) has outcome ``failure`` and says why."""

    name: ClassVar[str] = "sync.account"
    source: str = ""
    target: str = ""
    dry_run: bool = False
    folders: int = 0
    copied: int = 0
    failed: int = 0
    bytes: int = 0
    duration_s: float = 0.0
    error: str = ""
    #: The class name of the error that stopped the run (e.g. ``StoreLocked``).
    error_kind: str = ""


@_event
class WatchStateChanged(AuditEvent):
    """``exoimap watch``: an account's watch changed state (``starting``, ``syncing``,
    ``watching``, ``reconnecting``, ``signin_needed``); ``error`` says why it left
    ``watching`` when it did."""

    name: ClassVar[str] = "watch.state"
    state: str
    error: str = ""


@_event
class WorkerJob(AuditEvent):
    """``exoimap worker``: a tenant mailbox's backup job ``started``, ``finished``,
    ``failed`` (to be tried again) or ``dead_lettered`` (a permanent failure, or retries
    spent) on ``worker``; ``error`` says why it did not finish."""

    name: ClassVar[str] = "worker.job"
    state: str
    tenant: str
    mailbox: str
    message_id: str = ""
    attempt: int = 0
    worker: str = ""
    copied: int = 0
    bytes: int = 0
    error: str = ""


@_event
class WorkerLeaseLost(AuditEvent):
    """``exoimap worker``: the lease of the mailbox a job was backing up lapsed under it
    (the job stopped: another worker may hold the mailbox now)."""

    name: ClassVar[str] = "worker.lease_lost"
    outcome: Outcome = "failure"
    tenant: str
    mailbox: str
    message_id: str = ""
    worker: str = ""


@_event
class SyncChange(AuditEvent):
    """A sync changed the shape of the target or its memory: a folder created, renamed,
    marked gone or deleted; messages marked gone, expunged, re-matched or fetched again
    because their content was lost or changed under the same UID (``notes``: those server
    UIDs); or notes of what recovery did when the run started
    (an interrupted run, a repaired archive)."""

    name: ClassVar[str] = "sync.change"
    change: str
    folder: str | None = None
    new_name: str | None = None
    count: int = 0
    notes: tuple[str, ...] = ()


# --- archive ---------------------------------------------------------------------------


@_event
class ArchiveRead(AuditEvent):
    """Messages were read out of the local archive."""

    name: ClassVar[str] = "archive.read"
    folder: str | None = None
    messages: int = 0
    bytes: int = 0
    purpose: str = ""


@_event
class ArchiveExported(AuditEvent):
    """Messages left the archive to a file or another program."""

    name: ClassVar[str] = "archive.exported"
    destination: str
    format: str = ""
    folder: str | None = None
    messages: int = 0
    bytes: int = 0


@_event
class ArchiveVerified(AuditEvent):
    """The archive was checked against its recorded hashes."""

    name: ClassVar[str] = "archive.verified"
    messages: int = 0
    mismatches: int = 0
    missing: int = 0


@_event
class ArchiveRestored(AuditEvent):
    """Messages were restored from the archive to a mailbox."""

    name: ClassVar[str] = "archive.restored"
    target: str
    folder: str | None = None
    messages: int = 0
    bytes: int = 0


# --- administration --------------------------------------------------------------------


@_event
class ConfigChanged(AuditEvent):
    """The configuration changed (``key`` is dotted, the value itself is not recorded)."""

    name: ClassVar[str] = "config.changed"
    key: str
    action: str = "set"


@_event
class VaultChanged(AuditEvent):
    """Something in the encrypted vault was added, replaced or removed."""

    name: ClassVar[str] = "vault.changed"
    item: str
    action: str = "set"


@_event
class AccessDenied(AuditEvent):
    """An operation was refused (policy, role, scope, lock)."""

    name: ClassVar[str] = "access.denied"
    outcome: Outcome = "denied"
    action: str
    resource: str = ""
    reason: str = ""


@_event
class ConsoleAccess(AuditEvent):
    """A request to ``exoimap console``, allowed or refused (the signed-in person is the
    record's ``console_user``): sign-in, sign-out, each page, each message opened."""

    name: ClassVar[str] = "console.access"
    action: str
    resource: str = ""
    roles: tuple[str, ...] = ()
    reason: str = ""


@_event
class ConsoleSearch(AuditEvent):
    """A search in ``exoimap console``: what was asked and how many messages matched
    within the person's scope."""

    name: ClassVar[str] = "console.search"
    query: str
    hits: int
    page: int = 1


@_event
class ConsoleApproval(AuditEvent):
    """A four-eyes request in ``exoimap console`` changing state: ``requested``,
    ``approved``, ``refused`` (a self-approval, a hold), ``rejected``, ``carried_out``."""

    name: ClassVar[str] = "console.approval"
    request_id: str
    kind: str
    state: str
    requester: str = ""
    scope: str = ""
    reason: str = ""
    expires: str = ""


@_event
class ConsoleBreakGlass(AuditEvent):
    """An administrator's break-glass access to a mailbox's content in ``exoimap console``:
    ``asked`` (reason given), ``started`` (signed in again), ``refused``, ``ended`` (early,
    by the administrator) or ``expired``."""

    name: ClassVar[str] = "console.break_glass"
    state: str
    mailbox: str
    reason: str = ""
    expires: str = ""


# --- written by the audit log itself ---------------------------------------------------


@_event
class AuditRecovered(AuditEvent):
    """The writer found a torn last line (a crash mid-write) and set it aside."""

    name: ClassVar[str] = "audit.recovered"
    torn_bytes: int
    torn_sha256: str
    set_aside: str
    file: str = field(default="")


@_event
class AuditResetDetected(AuditEvent):
    """The writer found that the log no longer holds the record the anchor in the vault
    names: the folder was deleted, cut or replaced. Written as the next record, so the
    finding stays in the chain while syncs go on (``exoimap audit recover`` acknowledges it)."""

    name: ClassVar[str] = "audit.reset_detected"
    outcome: Outcome = "failure"
    anchor_seq: int
    anchor_hash: str
    log_end: int
    problem: str


@_event
class AuditSegmentStarted(AuditEvent):
    """``exoimap audit recover``: the old chain was kept, sealed in ``segment``, and this
    first record of the new one links to its last good record and says why."""

    name: ClassVar[str] = "audit.segment_started"
    segment: str
    last_seq: int
    last_hash: str
    problem_kind: str
    problem: str
    reason: str


_CLASSES: Final[tuple[type[AuditEvent], ...]] = (
    TokenRequested,
    TokenRefreshed,
    TokenFailed,
    TokenHandedOut,
    ImapConnected,
    ImapAuthenticated,
    ImapAuthFailed,
    ImapClosed,
    ImapThrottled,
    FolderSynced,
    AccountSynced,
    WatchStateChanged,
    WorkerJob,
    WorkerLeaseLost,
    ArchiveRead,
    ArchiveExported,
    ArchiveVerified,
    ArchiveRestored,
    ConfigChanged,
    VaultChanged,
    AccessDenied,
    ConsoleAccess,
    ConsoleSearch,
    ConsoleApproval,
    ConsoleBreakGlass,
    AuditRecovered,
    AuditResetDetected,
    AuditSegmentStarted,
    MailSubmitted,
)
_BY_NAME: Final[dict[str, type[AuditEvent]]] = {cls.name: cls for cls in _CLASSES}

#: Every event name an audit record can carry.
EVENT_NAMES: Final[tuple[str, ...]] = tuple(_BY_NAME)


def event_class(name: str) -> type[AuditEvent]:
    """The event class for an event name; ``KeyError`` if the name is not in the vocabulary."""
    return _BY_NAME[name]
