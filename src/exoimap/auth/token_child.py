"""Access tokens from a short-lived ``exoimap token print`` process, for long-running watches.

A watch holds its mailboxes for weeks but needs a new token about once an hour per
mailbox. Refreshing in its own process would keep MSAL, requests and their two hundred
modules (about 10 MB) resident for good. A child ``exoimap token print --json`` refreshes
under the vault's per-account lock like every other command, writes its own audit record,
prints the token and exits: about a quarter of a second of CPU an hour per mailbox.

The child opens the vault without a prompt (no terminal, stdin closed), so this provider is
for vaults whose key needs no one at a keyboard: :func:`token_provider_for` falls back to
the in-process :class:`~exoimap.auth.provider.TokenProvider` otherwise, and for accounts that
need no Microsoft sign-in (a password, a token command of the user's own).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from exoimap.auth.account_server import AccountServer
from exoimap.auth.claims import TokenClaims, read_claims
from exoimap.auth.handout import MAX_MIN_VALIDITY
from exoimap.auth.policy import APP_ONLY_FLOWS, DELEGATED_FLOWS
from exoimap.auth.provider import TokenProvider
from exoimap.auth.token_command import CommandOutput, run_captured, shown_stderr
from exoimap.auth.vault import Vault
from exoimap.config import AccountConfig, Paths
from exoimap.errors import (
    AuthError,
    ConfigError,
    ExoimapError,
    TokenExpiredOrRevoked,
    TransientAuthError,
)
from exoimap.secrets import Secret

__all__ = ["ChildTokenProvider", "token_child_command", "token_provider_for"]

#: The exit codes of ``exoimap token print`` that mean a person must act (sign in again,
#: fix the configuration or the vault key), not that a later try may work.
_NEEDS_A_PERSON = {2, 3}


def token_child_command(name: str, min_validity: float) -> list[str]:
    """``exoimap token print`` for account ``name``, by this very interpreter; never
    answered by an agent (the agent may be the one asking)."""
    return [
        sys.executable, "-m", "exoimap", "token", "print", name,
        "--json", "--no-agent", "--min-validity",
        str(min(max(60, round(min_validity)), MAX_MIN_VALIDITY)),
    ]  # fmt: skip


class ChildTokenProvider(AccountServer):
    """An :class:`~exoimap.net.account.AccountProvider` whose tokens come from a child."""

    def __init__(
        self,
        account: AccountConfig,
        *,
        command: Callable[[str, float], Sequence[str]] = token_child_command,
        timeout: float = 120.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(account)
        self._command = command
        self._timeout = timeout
        self._environ = environ
        self._token: Secret[str] | None = None
        self._expires_at = 0.0
        self._claims: TokenClaims | None = None
        self._mutex = threading.Lock()  # one child at a time per account

    @property
    def uses_password(self) -> bool:
        return False

    def password(self) -> Secret[str]:
        raise ConfigError(f"account {self.account.name!r} signs in with a token, not a password")

    def expires_at(self) -> float:
        return self._expires_at

    def checked_token(self) -> TokenClaims | None:
        # the child held the token to the Exchange checks before it printed it
        return self._claims

    async def access_token_async(self, min_validity: float = 300.0) -> Secret[str]:
        return await asyncio.to_thread(self.access_token, min_validity)

    def access_token(self, min_validity: float = 300.0) -> Secret[str]:
        """The kept token while it has ``min_validity`` seconds left, else the child's."""
        with self._mutex:
            if self._token is not None and self._expires_at - time.time() >= min_validity:
                return self._token
            self._token, self._expires_at = self._read(self._run(min_validity))
            self._claims = read_claims(self._token)
            return self._token

    def _run(self, min_validity: float) -> CommandOutput:
        name = self.account.name
        try:
            return run_captured(self._command(name, min_validity), self._timeout, self._environ)
        except subprocess.TimeoutExpired:
            raise TransientAuthError(
                f"account {name!r}: `exoimap token print` did not finish within "
                f"{self._timeout:g} s (it was stopped)"
            ) from None
        except OSError as exc:
            raise TransientAuthError(
                f"account {name!r}: `exoimap token print` could not start: {exc.strerror}"
            ) from None

    def _read(self, output: CommandOutput) -> tuple[Secret[str], float]:
        name = self.account.name
        if output.returncode != 0:
            said = shown_stderr(output.stderr, b"").removeprefix("exoimap: error: ")
            message = f"account {name!r}: no token ({said or f'exit code {output.returncode}'})"
            if output.returncode == 3:
                raise TokenExpiredOrRevoked(message, fix=f"Sign in with `exoimap login {name}`.")
            if output.returncode in _NEEDS_A_PERSON:
                raise AuthError(message, fix=f"Run `exoimap doctor {name}`.")
            raise TransientAuthError(message)
        try:
            document = json.loads(output.stdout)
            token, expires_at = document["token"], document["expires_at"]
        except (ValueError, KeyError, TypeError):
            raise TransientAuthError(
                f"account {name!r}: `exoimap token print` printed no token"
            ) from None
        if not isinstance(token, str) or not isinstance(expires_at, int | float):
            raise TransientAuthError(f"account {name!r}: `exoimap token print` printed no token")
        return Secret(token), float(expires_at)


def _opens_unattended(vault: Vault) -> bool:
    """Whether the vault exists and opens without anyone typing a passphrase (a keyring,
    a key file, the passphrase in the environment): then a child can open it too."""
    if not vault.exists():
        return False
    try:
        vault.key_source  # noqa: B018 - opens the vault, which raises when it cannot
    except ExoimapError:
        return False
    return True


def token_provider_for(
    account: AccountConfig, paths: Paths, *, prompt: Callable[[str], str] | None = None
) -> ChildTokenProvider | TokenProvider:
    """A child's tokens for a Microsoft sign-in whose vault opens unattended; otherwise
    the in-process provider, which may ask for the passphrase with ``prompt``."""
    microsoft = account.flow in DELEGATED_FLOWS | APP_ONLY_FLOWS
    oauth = account.mechanism in ("xoauth2", "oauthbearer")
    if microsoft and oauth and _opens_unattended(Vault.from_paths(paths)):
        return ChildTokenProvider(account)
    return TokenProvider(account, vault=Vault.from_paths(paths, prompt=prompt))
