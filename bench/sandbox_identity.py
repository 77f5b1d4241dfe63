"""How fast the sandbox identity server answers real MSAL: start-up time of a fresh state
folder, then token requests per second for client credentials (a new MSAL app each time, so
nothing is served from MSAL's cache) and for the device-code flow.

Run: ``.venv/bin/python -m bench.sandbox_identity``
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import msal
import requests

from exoimap.sandbox.identity import DAEMON_APP, PUBLIC_APP, IdentitySandbox

ROUNDS = 200
IMAP = "https://outlook.office.com/IMAP.AccessAsUser.All"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        sandbox = IdentitySandbox.open(Path(tmp) / "state")
        sandbox.admin.configure(device_code_interval=1)
        opened = time.perf_counter() - started
        with sandbox.running() as idp:
            ready = time.perf_counter() - started
            session = requests.Session()
            session.verify, session.trust_env = str(idp.ca_file), False
            doc = sandbox.sandbox_json(idp.base_url)
            daemon = next(a for a in doc["apps"] if a["name"] == DAEMON_APP)
            public = next(a for a in doc["apps"] if a["name"] == PUBLIC_APP)

            t0 = time.perf_counter()
            for _ in range(ROUNDS):
                app = msal.ConfidentialClientApplication(
                    daemon["client_id"],
                    client_credential=daemon["client_secret"],
                    authority=idp.authority,
                    http_client=session,
                    instance_discovery=False,
                )
                assert "access_token" in app.acquire_token_for_client(
                    ["https://outlook.office365.com/.default"]
                )
            client_credentials = ROUNDS / (time.perf_counter() - t0)

            client = msal.PublicClientApplication(
                public["client_id"],
                authority=idp.authority,
                http_client=session,
                instance_discovery=False,
            )
            t0 = time.perf_counter()
            for _ in range(ROUNDS // 4):
                flow = client.initiate_device_flow([IMAP])
                sandbox.admin.approve_device_code(flow["user_code"])
                assert "access_token" in client.acquire_token_by_device_flow(flow)
            device = (ROUNDS // 4) / (time.perf_counter() - t0)
            session.close()
    print(f"fresh state folder opened (CA, keys, demo tenant): {opened * 1000:.0f} ms")
    print(f"server ready: {ready * 1000:.0f} ms")
    print(f"client credentials (MSAL app + discovery + token): {client_credentials:.1f} /s")
    print(f"device code flows (initiate + approve + redeem): {device:.1f} /s")


if __name__ == "__main__":
    main()
