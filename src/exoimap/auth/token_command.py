"""The ``token-command`` flow: run the user's command and read a bearer token from its output.

For token brokers (pizauth, oama, a script around another library) and for any XOAUTH2
server, such as Dovecot with an OAuth2 provider. No Microsoft endpoint is contacted.

The command runs without a shell, with stdin closed. Its standard output is either:

* the token alone (the first non-empty line; an ``access_token=`` or ``Bearer `` prefix is
  removed), or
* a JSON object with ``access_token`` and optionally ``expires_in`` (seconds) or
  ``expires_at`` / ``expires_on`` (epoch seconds).

The expiry comes from the JSON, else from the token's ``exp`` claim when it is a JWT, else
it is unknown.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from exoimap.auth.claims import TokenClaims, read_claims
from exoimap.errors import AuthError, ConfigError
from exoimap.logs import redact
from exoimap.secrets import MASK, Secret

__all__ = [
    "CommandOutput",
    "CommandToken",
    "run_captured",
    "run_token_command",
    "shown_stderr",
]

#: Output larger than this is not a token.
_MAX_OUTPUT = 64 * 1024
#: How much of a failing command's stderr an error shows.
_STDERR_SHOWN = 200
#: Words of stdout this long are masked in stderr (a token the command printed, then echoed).
_MIN_MASKED_WORD = 8


@dataclass(frozen=True)
class CommandToken:
    token: Secret[str]
    #: Epoch seconds, or None when neither the output nor the token says.
    expires_at: float | None
    claims: TokenClaims | None


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _parse_output(stdout: str, now: float) -> tuple[str, float | None]:
    text = stdout.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise AuthError(
                "the token command printed something that starts like JSON but is not valid JSON"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
            raise AuthError('the token command\'s JSON output has no "access_token" string')
        expires: float | None = None
        if (seconds := _number(data.get("expires_in"))) is not None:
            expires = now + seconds
        elif (epoch := _number(data.get("expires_at", data.get("expires_on")))) is not None:
            expires = epoch
        return data["access_token"].strip(), expires
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        for prefix in ("access_token=", "Bearer ", "bearer "):
            if line.startswith(prefix):
                line = line[len(prefix) :].strip()
        return line, None
    return "", None


def run_captured(
    argv: Sequence[str], timeout: float, environ: Mapping[str, str] | None = None
) -> CommandOutput:
    """Run the command in its own process group (session), so that on a timeout the whole
    group goes, helpers it started included, not only the process we know."""
    proc = subprocess.Popen(  # noqa: S603 - the user's own configured command, no shell
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(environ) if environ is not None else None,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except BaseException:  # the timeout, or an interrupt: leave no process behind
        _kill_group(proc)
        raise
    return CommandOutput(proc.returncode, stdout, stderr)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    # Every process of the group is gone, so the pipes close and this returns.
    proc.communicate()


@dataclass(frozen=True)
class CommandOutput:
    returncode: int
    stdout: bytes
    stderr: bytes


def shown_stderr(stderr: bytes, stdout: bytes) -> str:
    """What the command said on stderr, safe to show: whatever stdout printed (a token it
    may echo) and anything that looks like a secret masked, control characters escaped, and
    at most :data:`_STDERR_SHOWN` characters on one line."""
    text = stderr.decode("utf-8", "replace").strip()
    for word in stdout.decode("utf-8", "replace").split():
        if len(word) >= _MIN_MASKED_WORD:
            text = text.replace(word, MASK)
    text = redact(text)
    escaped = "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )
    if len(escaped) > _STDERR_SHOWN:
        escaped = escaped[:_STDERR_SHOWN] + "..."
    return escaped


def run_token_command(
    argv: Sequence[str],
    *,
    account: str,
    timeout: float = 120.0,
    environ: Mapping[str, str] | None = None,
) -> CommandToken:
    """Run the command and return its token (never logged, never stored)."""
    fix = f"Run the command yourself to see what it prints; it is set in [accounts.{account}]."
    try:
        proc = run_captured(argv, timeout, environ)
    except FileNotFoundError:
        raise ConfigError(
            f"the token command {argv[0]!r} was not found", key=f"accounts.{account}.token_command"
        ) from None
    except PermissionError:
        raise ConfigError(
            f"the token command {argv[0]!r} is not executable",
            key=f"accounts.{account}.token_command",
        ) from None
    except subprocess.TimeoutExpired:
        raise AuthError(
            f"account {account!r}: the token command did not finish within {timeout:g} s "
            "(it and every process it started were stopped)",
            fix=fix,
        ) from None
    if proc.returncode != 0:
        said = shown_stderr(proc.stderr, proc.stdout)
        raise AuthError(
            f"account {account!r}: the token command failed with exit status {proc.returncode}"
            + (f": {said}" if said else ""),
            fix=fix,
        )
    if len(proc.stdout) > _MAX_OUTPUT:
        raise AuthError(f"account {account!r}: the token command printed too much", fix=fix)
    now = time.time()
    value, expires = _parse_output(proc.stdout.decode("utf-8", "replace"), now)
    if not value or any(c.isspace() for c in value):
        raise AuthError(
            f"account {account!r}: the token command printed no token on standard output",
            fix=fix,
        )
    token = Secret(value)
    claims = read_claims(token)
    if expires is None and claims is not None:
        expires = claims.expires_at
    return CommandToken(token=token, expires_at=expires, claims=claims)
