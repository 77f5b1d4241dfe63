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

import json
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from exoimap.auth.claims import TokenClaims, read_claims
from exoimap.errors import AuthError, ConfigError
from exoimap.logs import redact
from exoimap.secrets import Secret

__all__ = ["CommandToken", "run_token_command"]

#: Output larger than this is not a token.
_MAX_OUTPUT = 64 * 1024


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
        proc = subprocess.run(  # noqa: S603 - the user's own configured command, no shell
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
            env=dict(environ) if environ is not None else None,
        )
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
            f"account {account!r}: the token command did not finish within {timeout:g} s", fix=fix
        ) from None
    if proc.returncode != 0:
        said = redact(proc.stderr.decode("utf-8", "replace").strip())[-400:]
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
