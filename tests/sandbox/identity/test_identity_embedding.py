"""The APIs other parts build on: serving inside the caller's event loop (the IMAP half),
and the in-process runner's helpers (sign-in tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msal

from exoimap.sandbox.identity import (
    DAEMON_APP,
    EXCHANGE_AUDIENCES,
    IdentitySandbox,
    RunningIdentity,
)


def test_serve_in_the_callers_event_loop(tmp_path: Path) -> None:
    sandbox = IdentitySandbox.open(tmp_path / "state")
    sock = sandbox.bind()
    base_url = sandbox.base_url_for(sock)
    ca_file = str(sandbox.ca.cert_file)
    daemon = next(a for a in sandbox.sandbox_json(base_url)["apps"] if a["name"] == DAEMON_APP)

    def get_token() -> dict[str, object]:
        running = RunningIdentity(
            base_url, int(sock.getsockname()[1]), sandbox.ca.cert_file, sandbox
        )
        with running.requests_session() as session:
            assert session.verify == ca_file
            client = msal.ConfidentialClientApplication(
                daemon["client_id"],
                client_credential=daemon["client_secret"],
                authority=running.authority,
                http_client=session,
                instance_discovery=False,
            )
            return dict(client.acquire_token_for_client(["https://outlook.office365.com/.default"]))

    async def other_server_and_client() -> dict[str, object]:
        await sandbox.wait_started()  # the IMAP server would start here, in the same loop
        try:
            return await asyncio.to_thread(get_token)
        finally:
            sandbox.stop(force=True)

    async def main() -> dict[str, object]:
        async with asyncio.TaskGroup() as group:
            group.create_task(sandbox.serve(sock))
            client = group.create_task(other_server_and_client())
        return client.result()

    result = asyncio.run(main())
    sock.close()
    token = result["access_token"]
    assert isinstance(token, str)
    claims = sandbox.verifier.verify(token, audiences=EXCHANGE_AUDIENCES, now=sandbox.now())
    assert claims.roles == {"IMAP.AccessAsApp"}
    principal = sandbox.directory.exchange_principal(claims.app_id, claims.tenant_id)
    assert principal is not None
    assert principal.object_id == claims.object_id
    alice = sandbox.directory.find_user("alice@contoso.onmicrosoft.com")
    assert alice is not None
    assert sandbox.directory.has_full_access(claims.object_id, alice.upn, claims.tenant_id)


def test_running_document_matches_sandbox_json_shape(idp: RunningIdentity) -> None:
    document = idp.document()
    assert document["authority"] == idp.authority
    assert document["ca_file"] == str(idp.ca_file)
    assert document["tenant_id"] == idp.tenant_id
    assert document["tenant_domain"] == idp.tenant_domain
    types = {a["name"]: a["type"] for a in document["apps"]}
    assert types["exoimap-public"] == "public"
    assert types["exoimap-daemon"] == "confidential"
