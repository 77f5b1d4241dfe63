"""Twenty mail clients asking ``exoimap token print`` at once, each across a refresh: every
one prints a valid token, the refreshes take turns (each presents the refresh token the one
before it received), and the vault ends up with the newest refresh token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bench.token_print import sign_in

from exoimap import audit
from exoimap.auth.vault import Vault
from exoimap.config import Paths
from exoimap.sandbox.identity import IdentitySandbox
from tests.auth.test_signin_concurrency_e2e import RefreshRecorder, digest
from tests.cli.sync_helpers import isolated_home

CALLS = 20


def test_twenty_parallel_calls_across_refreshes_lose_no_refresh_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    isolated_home(tmp_path, monkeypatch)
    sandbox = IdentitySandbox.open(tmp_path / "idp")
    recorder = RefreshRecorder(sandbox.app)
    sandbox.app = recorder  # type: ignore[assignment]
    sandbox.admin.configure(device_code_interval=1)
    with sandbox.running() as idp:
        upn = f"alice@{idp.tenant_domain}"
        # Every token lives 290 s, less than the five minutes a handed-out token must have
        # left: each of the twenty calls refreshes, rotating the refresh token.
        idp.admin.configure(access_token_lifetime=290)
        sign_in(idp, upn, "work")
        capsys.readouterr()

        calls = [
            subprocess.Popen(
                [sys.executable, "-m", "exoimap", "token", "print", "work"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=dict(os.environ),
            )
            for _ in range(CALLS)
        ]
        results = [call.communicate(timeout=300) for call in calls]

        tokens = []
        for call, (out, err) in zip(calls, results, strict=True):
            assert call.returncode == 0, err
            assert out.count("\n") == 1
            tokens.append(out.strip())
        for token in tokens:
            claims = idp.sandbox.verifier.verify(token, now=idp.sandbox.now())
            assert claims.upn == upn
        assert len({digest(t) for t in tokens}) == CALLS  # each refreshed: its own new token

        # The refreshes took turns: none presented a refresh token another had used.
        assert len(recorder.exchanges) == CALLS
        presented = [p for p, _ in recorder.exchanges]
        assert len(set(presented)) == CALLS
        for (_, issued), (next_presented, _) in zip(
            recorder.exchanges, recorder.exchanges[1:], strict=False
        ):
            assert next_presented == issued
        stored = Vault.from_paths().load_token_cache("work")
        assert stored is not None
        (entry,) = json.loads(stored.reveal())["RefreshToken"].values()
        assert digest(entry["secret"]) == recorder.issued[-1]

        records = list(audit.read_records(Paths.from_env().audit_dir))
        handed = [r for r in records if r.event == "token.handed_out"]
        assert len(handed) == CALLS
        assert all(r.outcome == "success" and r.account == "work" for r in handed)
        assert sum(r.event == "token.refreshed" for r in records) == CALLS
