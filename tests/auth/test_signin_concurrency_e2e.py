"""Two processes refreshing the same account at once: both succeed, the cache stays valid,
the refreshes take turns (each presents the refresh token the previous one received), and
the last rotated refresh token is the one kept."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from exoimap.auth.provider import TokenProvider
from exoimap.auth.vault import Vault
from exoimap.config import account_to_table
from exoimap.sandbox.identity import IdentitySandbox

from .conftest import TEST_PASSPHRASE, DeviceApprover, sandbox_account

CHILD = """
import json, sys
from pathlib import Path
from exoimap.auth.provider import TokenProvider
from exoimap.auth.vault import Vault
from exoimap.config import parse_config

table, vault_dir, rounds = json.loads(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
account = parse_config({"accounts": {"acct": table}}, Path("x.toml")).account("acct")
provider = TokenProvider(account, vault=Vault(vault_dir))
print("ready", flush=True)
sys.stdin.readline()  # both start together
for _ in range(rounds):
    info = provider.token_info(min_validity=3700)  # more than a token lives: always refresh
    print(json.dumps({"fresh": info.fresh, "iat": info.claims.issued_at}), flush=True)
"""


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class RefreshRecorder:
    """ASGI middleware in front of the sandbox recording, for each refresh-token grant, the
    refresh token presented and the one issued (as digests)."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.exchanges: list[tuple[str, str]] = []
        self.issued: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/oauth2/v2.0/token"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def recording_receive() -> Any:
            message = await receive()
            chunks.append(message.get("body", b""))
            return message

        out: list[bytes] = []

        async def recording_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                out.append(message.get("body", b""))
            await send(message)

        await self.app(scope, recording_receive, recording_send)
        form = parse_qs(b"".join(chunks).decode())
        try:
            issued = json.loads(b"".join(out)).get("refresh_token")
        except ValueError:
            issued = None
        if issued:
            self.issued.append(digest(issued))
            if "refresh_token" in form:
                self.exchanges.append((digest(form["refresh_token"][0]), digest(issued)))


def test_two_processes_refreshing_at_once(tmp_path: Path, vault: Vault) -> None:
    sandbox = IdentitySandbox.open(tmp_path / "idp")
    recorder = RefreshRecorder(sandbox.app)
    sandbox.app = recorder  # type: ignore[assignment]
    rounds = 4
    with sandbox.running() as idp:
        upn = f"alice@{idp.tenant_domain}"
        account = sandbox_account(idp, upn)
        TokenProvider(account, vault=vault, say=DeviceApprover(idp, upn)).login()
        table = json.dumps(account_to_table(account))
        env = {**os.environ, "EXOIMAP_VAULT_PASSPHRASE": TEST_PASSPHRASE}
        children = [
            subprocess.Popen(
                [sys.executable, "-c", CHILD, table, str(vault.directory), str(rounds)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(2)
        ]
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [child.communicate(timeout=60) for child in children]
        for child, (out, err) in zip(children, results, strict=True):
            assert child.returncode == 0, err
            lines = [json.loads(line) for line in out.splitlines()]
            assert len(lines) == rounds
            assert all(line["fresh"] for line in lines)

        # Every refresh presented the refresh token issued just before it: none was used
        # twice, none was lost, so the refreshes really took turns.
        assert len(recorder.exchanges) == 2 * rounds
        presented = [p for p, _ in recorder.exchanges]
        assert len(set(presented)) == len(presented)
        for (_, issued), (next_presented, _) in zip(
            recorder.exchanges, recorder.exchanges[1:], strict=False
        ):
            assert next_presented == issued
        # The vault holds a valid cache with the last rotated refresh token.
        stored = vault.load_token_cache("acct")
        assert stored is not None
        cache = json.loads(stored.reveal())
        (entry,) = cache["RefreshToken"].values()
        assert digest(entry["secret"]) == recorder.issued[-1]
        assert TokenProvider(account, vault=Vault(vault.directory)).token_info(3700).fresh
