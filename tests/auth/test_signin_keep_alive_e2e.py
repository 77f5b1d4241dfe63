"""A device sign-in against the sandbox identity platform (uvicorn, real HTTPS) that closes
idle connections exactly at the device-code poll interval: the race of issue 20, where a
poll went out on the pooled connection the server was closing. The sign-in succeeds."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3.connectionpool

from exoimap.auth.provider import TokenProvider
from exoimap.auth.transport import TokenSession
from exoimap.auth.vault import Vault
from exoimap.sandbox.identity import IdentitySandbox, RunningIdentity
from tests.auth.conftest import new_user, sandbox_account


class ApproveAfterPolls:
    """Plays the user: approves the device code once the client has polled ``polls`` times
    and been told to keep waiting (counted on the client's real HTTP session)."""

    def __init__(self, idp: RunningIdentity, upn: str, polls: int) -> None:
        self.idp, self.upn, self.polls = idp, upn, polls
        self.code: str | None = None
        self.pending = 0

    def say(self, message: str) -> None:
        match = re.search(r"enter the code ([A-Z0-9]{9})", message)
        if match:
            self.code = match.group(1)

    def watch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        send = TokenSession.send

        def counting(session: TokenSession, request: Any, **kwargs: Any) -> requests.Response:
            response = send(session, request, **kwargs)
            if "authorization_pending" in response.text:
                self.pending += 1
                if self.pending == self.polls and self.code is not None:
                    self.idp.admin.approve_device_code(self.code, upn=self.upn)
            return response

        monkeypatch.setattr(TokenSession, "send", counting)


def _sign_in(
    tmp_path: Path, vault: Vault, monkeypatch: pytest.MonkeyPatch, *, interval: int, polls: int
) -> ApproveAfterPolls:
    """A device sign-in against a sandbox that closes connections idle for 1 s, approved
    after ``polls`` polls; checks the token is the user's."""
    sandbox = IdentitySandbox.open(tmp_path / "idp")
    sandbox.admin.configure(http_keep_alive=1, device_code_interval=interval)
    with sandbox.running() as idp:
        upn = new_user(idp)
        user = ApproveAfterPolls(idp, upn, polls=polls)
        user.watch(monkeypatch)
        info = TokenProvider(sandbox_account(idp, upn), vault=vault, say=user.say).login()
    assert info.claims is not None
    assert info.claims.user == upn
    return user


def test_device_sign_in_polls_while_the_server_closes_idle_connections_at_the_interval(
    tmp_path: Path, vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = _sign_in(tmp_path, vault, monkeypatch, interval=1, polls=5)
    assert user.pending == 5  # five polls, each racing the server's close


def test_every_poll_on_a_connection_the_server_closed_is_resent_and_the_sign_in_succeeds(
    tmp_path: Path,
    vault: Vault,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The race made certain: the server's close reaches the client only after its pool
    # looked at the connection, so each poll after the first goes out on a closed one.
    monkeypatch.setattr(urllib3.connectionpool, "is_connection_dropped", lambda conn: False)
    caplog.set_level(logging.INFO, logger="exoimap.auth")
    _sign_in(tmp_path, vault, monkeypatch, interval=2, polls=3)
    # three polls after an idle pause twice the keep-alive: each found its connection closed
    resends = sum("resending" in r.getMessage() for r in caplog.records)
    assert resends >= 1
