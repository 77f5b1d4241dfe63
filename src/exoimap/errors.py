"""One exception tree for all of exoimap.

Every error exoimap raises is an :class:`ExoimapError`. Foreign exceptions (``ssl``,
``OSError``, ``msal`` results, ``sqlite3``) are mapped to the most specific class here at the
boundary where they occur, so callers never need to catch anything else.

::

    ExoimapError
    ├── ConfigError                      bad or missing configuration (CLI exit 2)
    ├── AuthError                        sign-in failed (CLI exit 3 unless transient)
    │   ├── ConsentRequired              admin or user consent missing (AADSTS65001)
    │   ├── InteractionRequired          MFA / conditional access / sign-in frequency
    │   ├── TokenExpiredOrRevoked        refresh token expired or revoked: sign in again
    │   ├── InvalidClientCredentials     bad, expired or missing client secret / certificate
    │   ├── TenantOrAppNotFound          unknown tenant, app or resource principal
    │   ├── AppMisconfigured             the app registration does not allow this flow
    │   ├── InsufficientPermission       a token without the IMAP permission
    │   ├── ImapAuthenticationFailed     the IMAP server refused the credentials
    │   └── TransientAuthError           network, 5xx or 429 from the identity platform
    ├── VaultKeyError                    the vault key is wrong or cannot be obtained
    │   └── NoVaultKey                   no key source is set up (CLI exit 2)
    ├── ProtocolError                    IMAP protocol violations
    │   ├── RemoteProtocolError          the server sent something we cannot parse
    │   └── LocalProtocolError           we were asked to send something invalid
    ├── NetworkError                     the connection layer
    │   ├── TLSRefused                   TLS not offered, certificate or host name invalid
    │   ├── ConnectionLost               dropped connection, BYE, timeout
    │   │   └── SessionInvalidated       ``* BYE Session invalidated - <reason>``
    │   ├── ServerUnreachable            connecting kept failing until the deadline
    │   └── Throttled                    server asked us to back off (carries ``backoff``)
    ├── StoreError                       a store failed; says its ``scope`` and ``retryable``
    │   ├── MessageError                 one message (scope MESSAGE)
    │   │   └── AppendIncomplete         some messages of an append refused, the rest stored
    │   ├── FolderError                  one folder (scope FOLDER)
    │   │   └── FolderNotFound
    │   ├── StoreUnavailable             the whole store (scope STORE)
    │   ├── StoreLocked                  another process holds the store's lock
    │   └── DiskFull                     no space left while writing
    └── IntegrityError                   data does not match what was recorded
        ├── HashMismatch                 a message's SHA-256 differs from the index
        ├── AuditChainBroken             the audit log's hash chain or checkpoint fails
        └── VaultTampered                an encrypted vault file fails authentication

:func:`exit_code_for` gives the exit code an error ends a command with (the CLI's and the
agent's): 2 for configuration or a missing vault key, 3 when a sign-in is needed, else 1.

Messages are written for the person at the terminal: what happened, and what to do
(:func:`disk_of` names the disk a :class:`DiskFull` is about, and its free space).
No exception message may carry a secret; values that are secrets travel as
:class:`exoimap.secrets.Secret`, whose string form is ``***``.
"""

from __future__ import annotations

import enum
import os
import time

from exoimap.words import byte_size, sentences

__all__ = [
    "AppMisconfigured",
    "AppendIncomplete",
    "AuditChainBroken",
    "AuthError",
    "ConfigError",
    "ConnectionLost",
    "ConsentRequired",
    "DiskFull",
    "ErrorScope",
    "ExoimapError",
    "FolderError",
    "FolderNotFound",
    "HashMismatch",
    "ImapAuthenticationFailed",
    "InsufficientPermission",
    "IntegrityError",
    "InteractionRequired",
    "InvalidClientCredentials",
    "LocalProtocolError",
    "MessageError",
    "NetworkError",
    "NoVaultKey",
    "ProtocolError",
    "RemoteProtocolError",
    "ServerUnreachable",
    "SessionInvalidated",
    "StoreError",
    "StoreLocked",
    "StoreUnavailable",
    "TLSRefused",
    "TenantOrAppNotFound",
    "Throttled",
    "TokenExpiredOrRevoked",
    "TransientAuthError",
    "VaultKeyError",
    "VaultTampered",
    "disk_of",
    "exit_code_for",
]


class ExoimapError(Exception):
    """Root of every exception exoimap raises."""

    #: Whether repeating the same operation later may succeed.
    retryable: bool = False


# --- configuration -----------------------------------------------------------------------


class ConfigError(ExoimapError):
    """The configuration is missing, unreadable or invalid.

    ``path`` names the file and ``key`` the dotted key (``accounts.work.flow``) when known.
    """

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        self.path = path
        self.key = key
        where = ""
        if path and key:
            where = f"{path}: {key}: "
        elif path:
            where = f"{path}: "
        elif key:
            where = f"{key}: "
        super().__init__(f"{where}{message}")


# --- authentication ----------------------------------------------------------------------


class AuthError(ExoimapError):
    """Signing in or using a token failed.

    ``code`` is the AADSTS number when Microsoft gave one; ``fix`` is the sentence telling
    the user what to do. The text is ``message`` and ``fix`` as sentences (full stops
    added where missing); ``message`` alone stays available for callers that add to it.
    """

    def __init__(self, message: str, *, code: int | None = None, fix: str | None = None) -> None:
        self.code = code
        self.fix = fix
        self.message = message
        super().__init__(sentences(message, fix))


class ConsentRequired(AuthError):
    """The app lacks user or admin consent for the requested permission."""


class InteractionRequired(AuthError):
    """Interactive sign-in is needed (MFA, conditional access, sign-in frequency)."""


class TokenExpiredOrRevoked(AuthError):
    """The refresh token expired or was revoked: the user must sign in again."""


class InvalidClientCredentials(AuthError):
    """The client secret or certificate is wrong, expired or missing."""


class TenantOrAppNotFound(AuthError):
    """The tenant, the application or the resource principal does not exist."""


class AppMisconfigured(AuthError):
    """The app registration does not allow what was asked (redirect URI, public client
    flows, grant type on /common)."""


class InsufficientPermission(AuthError):
    """A token was issued but lacks the IMAP permission, or the mailbox is not accessible."""


class ImapAuthenticationFailed(AuthError):
    """The IMAP server refused the credentials; ``causes`` lists likely reasons."""

    def __init__(
        self,
        message: str,
        *,
        causes: tuple[str, ...] = (),
        code: int | None = None,
        fix: str | None = None,
    ) -> None:
        self.causes = causes
        if causes:
            message = sentences(message, "Likely causes: " + "; ".join(causes))
        super().__init__(message, code=code, fix=fix)


class TransientAuthError(AuthError):
    """A temporary failure talking to the identity platform; retry later."""

    retryable = True


# --- vault -------------------------------------------------------------------------------


class VaultKeyError(ExoimapError):
    """The vault key is wrong (bad passphrase, other key file) or no key source is usable."""


class NoVaultKey(VaultKeyError):
    """No key source is set up (no keyring, passphrase or key file): a setup step is missing,
    so nothing that would need the vault (a sign-in) may start."""


# --- protocol ----------------------------------------------------------------------------


class ProtocolError(ExoimapError):
    """An IMAP protocol violation, by either side."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something we cannot parse or that breaks the protocol."""


class LocalProtocolError(ProtocolError):
    """Our own code asked to send something invalid (a bug in the caller)."""


# --- network -----------------------------------------------------------------------------


class NetworkError(ExoimapError):
    """The connection to a server failed."""

    retryable = True


class TLSRefused(NetworkError):
    """TLS could not be established safely: no TLS, unknown CA, host name mismatch, stripped
    STARTTLS. Never retried automatically: it may be an attack."""

    retryable = False


class ConnectionLost(NetworkError):
    """The connection dropped, timed out or the server said BYE."""


class SessionInvalidated(ConnectionLost):
    """Exchange ended the session (``* BYE Session invalidated - <reason>``)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"the server invalidated the session: {reason}")


class ServerUnreachable(NetworkError):
    """Every attempt to connect to ``host`` failed from ``since`` (epoch seconds) until the
    account's deadline: the run stops instead of retrying folder after folder."""

    retryable = False

    def __init__(self, host: str, since: float, waited: float, last_error: str) -> None:
        self.host = host
        self.since = since
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since))
        super().__init__(
            f"cannot reach {host} since {stamp} (gave up after {waited:.0f} s of retries; "
            f"last error: {last_error}). Nothing was lost: run the same command again once "
            "the server is back."
        )


class Throttled(NetworkError):
    """The server asked us to slow down; ``backoff`` is its suggested wait in seconds."""

    def __init__(self, backoff: float, message: str | None = None) -> None:
        self.backoff = backoff
        super().__init__(message or f"the server is throttling; it suggests waiting {backoff:g} s")


# --- stores ------------------------------------------------------------------------------


class ErrorScope(enum.Enum):
    """How much of a store an error affects (mbsync's MSG_BAD / BOX_BAD / store-level)."""

    MESSAGE = "message"
    FOLDER = "folder"
    STORE = "store"


class StoreError(ExoimapError):
    """A store operation failed. ``scope`` says how much is affected, ``retryable`` whether
    trying again later can help."""

    scope: ErrorScope = ErrorScope.STORE

    def __init__(
        self,
        message: str,
        *,
        scope: ErrorScope | None = None,
        retryable: bool | None = None,
        folder: str | None = None,
        uid: int | None = None,
    ) -> None:
        if scope is not None:
            self.scope = scope
        if retryable is not None:
            self.retryable = retryable
        self.folder = folder
        self.uid = uid
        super().__init__(message)


class MessageError(StoreError):
    """One message could not be read or written; the rest of the folder is fine."""

    scope = ErrorScope.MESSAGE


class AppendIncomplete(MessageError):
    """An append stored some of its messages and not others. ``uids`` has one entry per
    message the store took from the caller, in order: the new UID, or ``None`` where that
    message was not stored; ``failures`` says why, one error per such message (its ``uid``
    the source UID, when the store knew it)."""

    def __init__(
        self,
        uids: list[int | None],
        failures: list[MessageError],
        *,
        folder: str | None = None,
    ) -> None:
        self.uids = uids
        self.failures = failures
        stored = sum(1 for uid in uids if uid is not None)
        first = f": {failures[0]}" if failures else ""
        super().__init__(
            f"{len(failures)} message(s) not stored, {stored} stored{first}",
            folder=folder,
            retryable=False,
        )


class FolderError(StoreError):
    """One folder failed; other folders are fine."""

    scope = ErrorScope.FOLDER


class FolderNotFound(FolderError):
    """The named folder does not exist."""


class StoreUnavailable(StoreError):
    """The whole store cannot be used right now."""

    scope = ErrorScope.STORE
    retryable = True


class StoreLocked(StoreError):
    """Another process holds the store's lock (for example a sync already running)."""

    scope = ErrorScope.STORE
    retryable = True


class DiskFull(StoreError):
    """No space left on the device; nothing already stored was lost."""

    scope = ErrorScope.STORE
    retryable = False


def disk_of(path: str | os.PathLike[str] | None) -> str:
    """Names the disk that holds ``path`` for a full-disk message: ``the disk of PATH
    (mounted at M: F free of T)``; ``the device`` when the path is unknown."""
    if path is None:
        return "the device"
    where = os.path.abspath(os.fspath(path))
    probe = where
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)  # the file being written may not exist (yet)
    try:
        usage = os.statvfs(probe)
        mount = probe
        device = os.stat(probe).st_dev
        while (parent := os.path.dirname(mount)) != mount and os.stat(parent).st_dev == device:
            mount = parent
    except OSError:
        return f"the disk of {where}"
    free = byte_size(usage.f_bavail * usage.f_frsize)
    total = byte_size(usage.f_blocks * usage.f_frsize)
    return f"the disk of {where} (mounted at {mount}: {free} free of {total})"


# --- integrity ---------------------------------------------------------------------------


class IntegrityError(ExoimapError):
    """Stored data does not match what was recorded."""


class HashMismatch(IntegrityError):
    """A message's content no longer matches its recorded SHA-256."""


class AuditChainBroken(IntegrityError):
    """The audit log's hash chain or keyed checkpoint does not verify.

    ``record`` is the 1-based number of the first bad record and ``kind`` one of
    ``modified``, ``inserted``, ``deleted``, ``reordered``, ``truncated``, ``torn``, or
    ``checkpoint`` (the keyed checkpoint is missing, unreadable or forged; ``record`` None).
    """

    def __init__(self, message: str, *, record: int | None = None, kind: str | None = None) -> None:
        self.record = record
        self.kind = kind
        super().__init__(message)


class VaultTampered(IntegrityError):
    """An encrypted vault file failed authentication: wrong key, or it was modified."""


# --- exit codes --------------------------------------------------------------------------


def exit_code_for(exc: ExoimapError) -> int:
    """The documented exit code for an error that ended a command: 2 for configuration
    (or no vault key: a setup step is missing), 3 when a sign-in is needed, else 1 (the
    agent answers with these too)."""
    if isinstance(exc, ConfigError | NoVaultKey):
        return 2
    if isinstance(exc, AuthError) and not exc.retryable:
        return 3
    return 1
