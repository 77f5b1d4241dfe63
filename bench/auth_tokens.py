"""What getting a token costs the IMAP layer: ``TokenProvider.access_token()`` served from the
encrypted vault (lock, decrypt, MSAL cache look-up), a forced refresh against the sandbox
(with refresh-token rotation saved to the vault), and opening a passphrase vault with the
default scrypt parameters.

Run: ``.venv/bin/python -m bench.auth_tokens``
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from exoimap.auth import vault as vault_module
from exoimap.auth.provider import TokenProvider
from exoimap.auth.vault import Vault
from exoimap.config import parse_config
from exoimap.sandbox.identity import PUBLIC_APP, IdentitySandbox
from exoimap.secrets import Secret

ROUNDS = 100


def timed(action: Callable[[], object], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        out.append((time.perf_counter() - started) * 1000)
    return out


def show(label: str, millis: list[float]) -> None:
    millis = sorted(millis)
    p95 = millis[int(len(millis) * 0.95) - 1]
    print(f"{label:44s} median {statistics.median(millis):7.2f} ms   p95 {p95:7.2f} ms")


def main() -> None:
    os.environ["EXOIMAP_VAULT_PASSPHRASE"] = "bench passphrase"
    os.environ["EXOIMAP_NO_KEYRING"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        Vault(root / "strong").set_secret("x", Secret(b"y"))
        created = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        Vault(root / "strong").get_secret("x")
        opened = (time.perf_counter() - started) * 1000
        print(
            f"scrypt n={vault_module.DEFAULT_SCRYPT.n}: create vault {created:.0f} ms, "
            f"open vault {opened:.0f} ms (once per process)"
        )

        sandbox = IdentitySandbox.open(root / "idp")
        with sandbox.running() as idp:
            registration = idp.sandbox.directory.find_app(PUBLIC_APP)
            assert registration is not None
            upn = f"alice@{idp.tenant_domain}"
            table = {
                "email": upn,
                "cloud": "custom",
                "authority": idp.authority,
                "imap_host": "127.0.0.1",
                "ca_file": str(idp.ca_file),
                "client_id": registration.client_id,
            }
            account = parse_config({"accounts": {"b": table}}, root / "c.toml").account("b")
            vault = Vault(root / "strong")

            def approve(message: str) -> None:
                code = re.search(r"code ([A-Z0-9]{9})", message)
                if code:
                    idp.admin.approve_device_code(code.group(1), upn=upn)

            provider = TokenProvider(account, vault=vault, say=approve)
            provider.login()
            show("access_token() from the vault", timed(provider.access_token, ROUNDS))
            show(
                "forced refresh + rotation saved",
                timed(lambda: provider.access_token(min_validity=3700), ROUNDS // 4),
            )


if __name__ == "__main__":
    main()
