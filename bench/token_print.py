"""What a mail client waits for when its PassCmd is ``exoimap token print NAME``: the whole
command, as a new process, timed from the outside (wall clock, like mbsync would).

Four ways, each ``--rounds`` times, with a token still valid (the common case):

* a bare ``python -c pass``: the interpreter's own start, the floor for a Python command;
* without an agent, the vault opened with a key file (or the OS keyring's key: no stretching);
* without an agent, a passphrase vault with the default scrypt cost (128 MiB, stretched once
  per process: what every call pays);
* with ``exoimap agent`` running: the small client asks it over the socket.

The account lives in a temporary ``EXOIMAP_HOME``, signed in (device code) against a sandbox
identity platform started here; audit is on, as for users.

Run: ``.venv/bin/python -m bench.token_print [--rounds 30]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from exoimap.auth.vault import create_key_file
from exoimap.cli import main as exoimap
from exoimap.sandbox.identity import PUBLIC_APP, IdentitySandbox, RunningIdentity
from exoimap.sandbox.identity.admin import SandboxAdmin

EXOIMAP = str(Path(sys.executable).with_name("exoimap"))


def timed_runs(command: list[str], env: dict[str, str], rounds: int) -> list[float]:
    """Wall milliseconds of each run; every run must print one line and succeed."""
    millis = []
    for _ in range(rounds):
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, check=False)
        millis.append((time.perf_counter() - started) * 1000)
        if done.returncode != 0 or done.stdout.count(b"\n") != 1:
            raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode()}")
    return millis


def show(label: str, millis: list[float]) -> None:
    ordered = sorted(millis)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    print(
        f"{label:52s} median {statistics.median(ordered):7.1f} ms   p95 {p95:7.1f} ms   "
        f"min {ordered[0]:6.1f} ms",
        flush=True,
    )


@contextlib.contextmanager
def home_for(root: Path, env: dict[str, str]) -> Iterator[None]:
    """Point this process (the in-process CLI calls) at a home; put everything back after."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def device_login(admin: SandboxAdmin, add_args: list[str], name: str, upn: str) -> None:
    """Run ``exoimap ADD_ARGS`` (an ``account add``) and ``login NAME`` in this process,
    approving the device code as ``upn`` from another thread."""
    said = io.StringIO()

    def approve() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pending = admin.pending_device_codes()
            if pending:
                admin.approve_device_code(pending[0].user_code, upn=upn)
                return
            time.sleep(0.05)

    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
        assert exoimap(add_args) == 0, said.getvalue()
        approver = threading.Thread(target=approve)
        approver.start()
        code = exoimap(["login", name])
        approver.join()
    if code != 0:
        raise SystemExit(f"login failed: {said.getvalue()}")


def sign_in(idp: RunningIdentity, upn: str, name: str = "b") -> None:
    """``account add NAME`` + ``login NAME`` in this process (the home of ``EXOIMAP_HOME``),
    approving the device code as ``upn``."""
    registration = idp.sandbox.directory.find_app(PUBLIC_APP)
    assert registration is not None
    args = [
        "account", "add", name, "--cloud", "custom", "--authority", idp.authority,
        "--ca-file", str(idp.ca_file), "--imap-host", "127.0.0.1",
        "--client-id", registration.client_id, "--email", upn, "--flow", "device",
    ]  # fmt: skip
    device_login(idp.admin, args, name, upn)


def prepared_home(
    root: Path, idp: RunningIdentity, upn: str, *, passphrase: bool
) -> dict[str, str]:
    """The environment of a signed-in home: a key-file vault, or a passphrase one."""
    home = root / ("pass" if passphrase else "keyfile")
    env = {**os.environ, "EXOIMAP_HOME": str(home), "EXOIMAP_NO_KEYRING": "1"}
    env.pop("EXOIMAP_VAULT_KEY_FILE", None)
    env.pop("EXOIMAP_VAULT_PASSPHRASE", None)
    if passphrase:
        env["EXOIMAP_VAULT_PASSPHRASE"] = "bench passphrase"
    else:
        create_key_file(home / "vault.key")  # where the vault looks for it (EXOIMAP_HOME)
    with home_for(root, env):
        sign_in(idp, upn)
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    rounds = parser.parse_args(argv).rounds
    load = os.getloadavg()[0]
    print(f"exoimap token print, {rounds} runs each, 1-minute load {load:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="exo-tp-", dir="/tmp") as tmp:
        root = Path(tmp)
        sandbox = IdentitySandbox.open(root / "idp")
        sandbox.admin.configure(device_code_interval=1)
        with sandbox.running() as idp:
            upn = f"alice@{idp.tenant_domain}"
            key_file = prepared_home(root, idp, upn, passphrase=False)
            with_passphrase = prepared_home(root, idp, upn, passphrase=True)
            command = [EXOIMAP, "token", "print", "b"]

            show("python -c pass (interpreter start)", timed_runs(
                [sys.executable, "-c", "print()"], key_file, rounds))  # fmt: skip
            show("token print, no agent, key-file vault", timed_runs(command, key_file, rounds))
            show(
                "token print, no agent, passphrase vault (scrypt)",
                timed_runs(command, with_passphrase, max(3, rounds // 3)),
            )
            started = subprocess.run(
                [EXOIMAP, "agent", "start"], env=key_file, capture_output=True, check=False
            )
            if started.returncode != 0:
                raise SystemExit(f"agent start failed: {started.stderr.decode()}")
            try:
                show("token print, answered by the agent", timed_runs(command, key_file, rounds))
            finally:
                subprocess.run([EXOIMAP, "agent", "stop"], env=key_file, check=False,
                               capture_output=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
