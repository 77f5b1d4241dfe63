"""Every exact Exchange Online IMAP text the sandbox sends.

Each constant names the fact it reproduces: a section of the protocol facts (copied into
``docs/sandbox.md``) and its confidence tag. [C] texts are byte-exact and must never be
"improved"; [R]/[U] ones back a switch in :mod:`exoimap.sandbox.exchange.config`.
Texts are ``str``; the server sends them as ASCII.
"""

from __future__ import annotations

__all__ = [
    "ACCESS_DENIED",
    "AUTH_CANCELLED",
    "AUTH_CONTINUATION",
    "AUTH_FAILED",
    "BAD_CHARSET",
    "BAD_MESSAGE_SET",
    "BYE_AFTER_AUTH_FAILURES",
    "BYE_AFTER_BAD_COMMANDS",
    "BYE_IDLE_TIMEOUT",
    "BYE_LOGOUT",
    "BYE_SERVER_UNAVAILABLE",
    "BYE_TOKEN_EXPIRED",
    "CAPABILITY_POSTAUTH",
    "CAPABILITY_PREAUTH",
    "CAPABILITY_PREAUTH_MOVE",
    "CAPABILITY_PREAUTH_NO_BASIC",
    "CAPABILITY_POSTAUTH_NO_BASIC",
    "COMMAND_ARGUMENT_ERROR_11",
    "COMMAND_ARGUMENT_ERROR_12",
    "COMMAND_ERROR_11",
    "COMMAND_ERROR_12",
    "FLAGS",
    "GREETING",
    "ID_RESPONSE",
    "IDLE_CONTINUATION",
    "INVALID_STATE",
    "LOGIN_FAILED",
    "LITERAL_CONTINUATION",
    "FOLDER_NOT_FOUND",
    "MESSAGE_TOO_LARGE",
    "COMMAND_FAILED",
    "NAMESPACE_RESPONSE",
    "NOT_CONNECTED",
    "PERMANENT_FLAGS_TEXT",
    "SELECT_DOES_NOT_EXIST",
    "SERVER_UNAVAILABLE",
    "THROTTLED",
    "UIDNEXT_TEXT",
    "UIDVALIDITY_TEXT",
    "UNSEEN_TEXT",
    "completed",
    "throttled",
]

# --- 1.2 greeting -------------------------------------------------------------------------

#: 1.2 [C]: Exchange's default banner; clients (MailKit) key on it. The server adds
#: `` [<base64 of the UTF-16LE front-end FQDN>]``.
GREETING = "The Microsoft Exchange IMAP4 service is ready."

# --- 1.3 capabilities ---------------------------------------------------------------------

#: 1.3 [C] pre-authentication list (current form).
CAPABILITY_PREAUTH = (
    "IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS ID UNSELECT CHILDREN IDLE "
    "NAMESPACE LITERAL+"
)
#: 1.3 [R] variant: some front ends list MOVE before authentication.
CAPABILITY_PREAUTH_MOVE = (
    "IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID UNSELECT CHILDREN IDLE "
    "NAMESPACE LITERAL+"
)
#: 1.3 [R] tenants with basic auth disabled (imapflow #392, node-imap PR #935).
CAPABILITY_PREAUTH_NO_BASIC = (
    "IMAP4 IMAP4rev1 AUTH=XOAUTH2 LOGINDISABLED SASL-IR UIDPLUS ID UNSELECT CHILDREN IDLE "
    "NAMESPACE LITERAL+"
)
#: 1.3 [C] post-authentication list.
CAPABILITY_POSTAUTH = (
    "IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID UNSELECT "
    "CLIENTACCESSRULES CLIENTNETWORKPRESENCELOCATION BACKENDAUTHENTICATE CHILDREN IDLE "
    "NAMESPACE LITERAL+"
)
#: 1.3 [U] post-authentication list on a basic-auth-disabled tenant: the [C] list with the
#: pre-auth list's auth items (no capture shows it; inferred from the ordering rule).
CAPABILITY_POSTAUTH_NO_BASIC = (
    "IMAP4 IMAP4rev1 AUTH=XOAUTH2 LOGINDISABLED SASL-IR UIDPLUS MOVE ID UNSELECT "
    "CLIENTACCESSRULES CLIENTNETWORKPRESENCELOCATION BACKENDAUTHENTICATE CHILDREN IDLE "
    "NAMESPACE LITERAL+"
)

# --- 1.4 tagged / untagged texts ----------------------------------------------------------


def completed(command: str) -> str:
    """1.4 [C]: ``<COMMAND> completed.`` (``CAPABILITY completed.``, ``UID FETCH ...``)."""
    return f"{command} completed."


#: 1.4 [C] S1: the single generic XOAUTH2 failure (no JSON challenge, no response code).
AUTH_FAILED = "AUTHENTICATE failed."
#: 1.4 [C] S5: after too many failed AUTHENTICATE/LOGIN attempts (threshold [U]).
BYE_AFTER_AUTH_FAILURES = "Connection is closed. 14"
#: 1.4 [C] S5: the client answered ``*`` to the continuation.
AUTH_CANCELLED = "The AUTH protocol exchange was canceled by the client."
#: [U]: the continuation for a synchronising literal (APPEND); no capture shows Exchange's.
LITERAL_CONTINUATION = "Ready for additional command text."
#: [U]: the target of COPY/MOVE/APPEND does not exist (sent after ``[TRYCREATE]``).
FOLDER_NOT_FOUND = "The requested item could not be found."
#: [R] (issue 16, from migration tools' reports; not in the protocol facts): APPEND larger
#: than the mailbox's maximum receive size (1.10). No trailing period, as reported.
MESSAGE_TOO_LARGE = "Maximum size of appendable message has been exceeded"
#: [U]: a mailbox command that failed (CREATE of an existing name, DELETE of INBOX, ...).
COMMAND_FAILED = "{command} failed."
#: 1.4 [C] S4/S5: the continuation for AUTHENTICATE without SASL-IR is a bare ``+``.
AUTH_CONTINUATION = ""
#: 1.4 [C]: LOGIN failure (LOGIN success is ``completed("LOGIN")``).
LOGIN_FAILED = "LOGIN failed."
#: 1.4/1.5 [C]: credentials accepted but the mailbox cannot be opened.
NOT_CONNECTED = "User is authenticated but not connected."
#: 1.4 [C] S5: command not allowed in this state.
INVALID_STATE = "Command received in Invalid state."
#: 1.4 [C] S5: unknown command / parse error.
COMMAND_ERROR_12 = "Command Error. 12"
#: 1.4 [C] S5: non-ASCII command.
COMMAND_ERROR_11 = "Command Error. 11"
#: 1.4 [C] S5: bad argument (also unknown SASL mechanism, SELECT on \\Noselect,
#: LIST pattern with more than 10 wildcards).
COMMAND_ARGUMENT_ERROR_11 = "Command Argument Error. 11"
#: 1.4 [C] S5: wrong number of arguments.
COMMAND_ARGUMENT_ERROR_12 = "Command Argument Error. 12"
#: 1.4 [R] S5: bad message set.
BAD_MESSAGE_SET = "The specified message set is invalid."
#: 1.4 [C] S5: SEARCH with a charset other than US-ASCII / UTF-8 (sent after
#: ``[BADCHARSET (US-ASCII)]``).
BAD_CHARSET = "The specified charset is not supported."
#: 1.4 [C] S5: the third consecutive bad or invalid command (note: not "is closed").
BYE_AFTER_BAD_COMMANDS = "Connection closed. 14"
#: 1.4 [C] S5: back-end/store exception.
SERVER_UNAVAILABLE = "Server Unavailable. 15"
#: 1.4 [C] S5/S4: the BYE after a connection failure.
BYE_SERVER_UNAVAILABLE = "Connection closed."
#: 1.4/1.9 [C] S5 ``TimeoutErrorString``: idle timeout.
BYE_IDLE_TIMEOUT = "Connection is closed. 13"
#: 1.4/1.5 [C] aioimaplib #83, imap-backup #198: the token expired during the session.
BYE_TOKEN_EXPIRED = "Session invalidated - AccessTokenExpired"  # noqa: S105 (not a secret)
#: 1.4 [C] S5: SELECT/EXAMINE of a folder that does not exist (``<name> doesn't exist.``).
SELECT_DOES_NOT_EXIST = "{name} doesn't exist."
#: 1.4 [C] S5: SELECT access denied.
ACCESS_DENIED = "access denied."
#: 1.4 [C] php-imap #315: the untagged BYE before ``OK LOGOUT completed.``.
BYE_LOGOUT = "Microsoft Exchange Server IMAP4 server signing off."
#: 1.4/1.9 [C] S5: the IDLE continuation; ``DONE`` then gets ``OK IDLE completed.``.
IDLE_CONTINUATION = "IDLE accepted, awaiting DONE command."
#: 1.4 [C] Thunderbird fixture, imapflow fixture: the ``* ID`` answer.
ID_RESPONSE = '("name" "Microsoft.Exchange.Imap4.Imap4Server" "version" "15.20")'
#: 1.4 [C] MailKit #1282: the ``* NAMESPACE`` answer.
NAMESPACE_RESPONSE = '(("" "/")) NIL NIL'
#: 1.4/1.10 [C] S7: throttling (NO or BAD; ``ms`` is often near 300000).
THROTTLED = "Request is throttled. Suggested Backoff Time: {ms} milliseconds"


def throttled(milliseconds: int) -> str:
    """1.4 [C]: ``Request is throttled. Suggested Backoff Time: N milliseconds``."""
    return THROTTLED.format(ms=milliseconds)


# --- 1.7 SELECT ---------------------------------------------------------------------------

#: 1.7 [C]: FLAGS and PERMANENTFLAGS lists (no ``\\*``: custom keywords are not kept).
FLAGS = ("\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft", "$MDNSent")
#: 1.7 [C]: the texts after each SELECT response code.
PERMANENT_FLAGS_TEXT = "Permanent flags"
UNSEEN_TEXT = "Is the first unseen message"
UIDVALIDITY_TEXT = "UIDVALIDITY value"
UIDNEXT_TEXT = "The next unique identifier value"
