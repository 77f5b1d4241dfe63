"""A new user's first hour, scripted (issue 23): the README's first steps against the
sandbox tenant, as a user types them (`exoimap` in a new process each time), with the usual
mistakes on the way. Every line the user reads must be a proper sentence (a full stop, no
"1 messages", no two sentences run together, nothing masked that was not a secret) and
every command must end with its documented exit code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from exoimap.demo import stop_sandbox

USER = "alice@contoso.onmicrosoft.com"
PASSPHRASE = "first hour passphrase"

# "1 messages", "1 folders": a count and a noun that disagree
_PLURAL_SLIP = re.compile(
    r"(?<![\d.])1 (messages|folders|files|flag changes|failed folders|days|times|accounts)\b"
)
# "is not signed in Sign in with": a sentence that runs into the next
_RUN_ON = re.compile(r"[a-z0-9'`)] (Sign|Run|Check|Try|Store|Set|Use|Add|Create|Likely) [a-z]")

_ITEM = re.compile(r"\d+\. ")  # a numbered step, whose sentence may wrap to the next line


@dataclass
class Ran:
    code: int
    out: list[str]
    err: list[str]


class FirstHour:
    """Runs ``exoimap`` as the user would and checks what it says."""

    def __init__(self, env: dict[str, str], state: Path) -> None:
        self.env = env
        self.state = state

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "exoimap", *args]

    def run(self, *args: str, code: int = 0) -> Ran:
        done = subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        ran = Ran(done.returncode, done.stdout.splitlines(), done.stderr.splitlines())
        assert ran.code == code, (args, ran)
        self.check_words(ran)
        return ran

    @staticmethod
    def check_words(ran: Ran) -> None:
        for line in ran.out + ran.err:
            assert not _PLURAL_SLIP.search(line), line
            assert not _RUN_ON.search(line), line
            assert "***" not in line, line  # nothing here is a secret
            assert "Traceback" not in line, line
        for line in ran.err:  # what goes wrong is said in sentences
            assert line.endswith("."), line
            assert not line.startswith(" "), line
        for line in ran.out:  # and every summary (not tables, lists, wrapped lines)
            if line and not line.startswith(" ") and "\t" not in line and not _ITEM.match(line):
                assert line.endswith((".", ":")), line


@pytest.fixture
def first_hour(tmp_path: Path) -> Iterator[FirstHour]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXOIMAP_")}
    env.update(
        EXOIMAP_HOME=str(tmp_path / "home"),
        EXOIMAP_VAULT_PASSPHRASE=PASSPHRASE,
        EXOIMAP_NO_KEYRING="1",
        COLUMNS="120",
    )
    state = tmp_path / "sandbox"
    hour = FirstHour(env, state)
    log = (tmp_path / "sandbox.log").open("wb")
    sandbox = subprocess.Popen(
        hour.command("sandbox", "up", "--state", str(state), "--messages", "40", "--no-persist"),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 90
        while not (state / "sandbox.json").exists():
            assert sandbox.poll() is None, (tmp_path / "sandbox.log").read_text()
            assert time.monotonic() < deadline, "the sandbox did not start"
            time.sleep(0.1)
        yield hour
    finally:
        try:
            stop_sandbox(sandbox)  # Ctrl-C, as the user would; it must end with 0
        finally:
            log.close()


def _login(hour: FirstHour) -> Ran:
    """`exoimap login work`: the user opens the page and enters the code (here: the
    sandbox's `approve` command does what the browser would)."""
    login = subprocess.Popen(
        hour.command("login", "work"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=hour.env,
        stdin=subprocess.DEVNULL,
    )
    err: list[str] = []
    code_seen = threading.Event()

    def read() -> None:
        assert login.stderr is not None
        for line in login.stderr:
            err.append(line.rstrip("\n"))
            if "enter the code" in line:
                code_seen.set()
        code_seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert code_seen.wait(60), "no device code was shown"
        match = re.search(r"enter the code ([A-Z0-9]+)", "\n".join(err))
        assert match, err
        hour.run("sandbox", "approve", match[1], "--as", USER, "--state", str(hour.state))
        out, _ = login.communicate(timeout=60)
    finally:
        if login.poll() is None:
            login.kill()
    reader.join(timeout=5)
    ran = Ran(login.returncode, out.splitlines(), err)
    assert ran.code == 0, ran
    hour.check_words(ran)
    return ran


@pytest.mark.slow  # about half a minute: every step is a new process, as for the user
@pytest.mark.timeout(300)
def test_the_first_hour(first_hour: FirstHour) -> None:
    hour = first_hour
    sandbox = json.loads((hour.state / "sandbox.json").read_text())
    public = next(app for app in sandbox["apps"] if app["name"] == "exoimap-public")
    where = [
        "--cloud", "custom",
        "--authority", sandbox["authority"],
        "--ca-file", sandbox["ca_file"],
        "--imap-host", sandbox["imap_host"],
        "--imap-port", str(sandbox["imap_port"]),
    ]  # fmt: skip
    tenant = sandbox["authority"].rsplit("/", 1)[1]
    add = ["account", "add", "work", "--email", USER, *where]

    # Too quick: nothing configured yet.
    ran = hour.run("sync", code=2)
    assert ran.err == [
        "exoimap: error: no accounts configured; add one: "
        "`exoimap account add NAME --email ADDRESS`."
    ]
    # The app's name instead of its Application (client) ID, then a tenant that is not
    # the one in the authority: each refused, with what to do, and nothing written.
    ran = hour.run(*add, "--client-id", "exoimap-public", "--tenant", tenant, code=2)
    assert "'exoimap-public' is not an Application (client) ID" in ran.err[0]
    ran = hour.run(*add, "--client-id", public["client_id"], "--tenant", "fabrikam.com", code=2)
    assert "the tenant 'fabrikam.com' contradicts the authority" in ran.err[0]
    ran = hour.run("account", "list")
    assert ran.out[0].startswith("No accounts in ")

    # The README's first step.
    ran = hour.run(*add, "--client-id", public["client_id"], "--tenant", tenant)
    assert ran.out[0].startswith("Added account 'work' to ")
    # Syncing before signing in: the error, then what to do, as two sentences.
    ran = hour.run("sync", "work", code=3)
    assert ran.err == [
        "work: failed: account 'work' is not signed in. Sign in with `exoimap login work`."
    ]
    ran = hour.run("account", "list")
    assert ran.out[0].endswith("\tnot signed in")

    ran = _login(hour)
    assert ran.out[0].startswith(f"Signed in 'work' as {USER}; access token valid until ")
    ran = hour.run("account", "list")
    assert ran.out[0].endswith("\tsigned in, refresh token used 0 days ago")

    ran = hour.run("sync", "work")
    summary = ran.out[-1]
    assert re.fullmatch(
        r"work: fetched 40 messages \([\d.]+ [KM]B\) in \d+ folders, 0 flag changes, "
        r"0 deleted on the server, 0 failed folders in [\d.]+ s\.",
        summary,
    ), summary
    ran = hour.run("sync", "work")  # again: nothing new
    assert ran.out[-1].startswith("work: fetched 0 messages (0 B) in ")

    ran = hour.run("verify", "work", "--deep")
    assert re.fullmatch(
        r"work: verify deep \(SHA-256 of every message\): ok: \d+ folders, 40 messages on the "
        r"server, 40 files checked\.",
        ran.out[-1],
    ), ran.out
    ran = hour.run("archive", "stats", "work")
    assert re.fullmatch(
        r"work: 40 messages, \d+ folders, \d+ bytes \([\d.]+ [KM]B\)\.", ran.out[-1]
    )

    # A typo in the account's name.
    ran = hour.run("verify", "wrok", code=2)
    assert ran.err[0].endswith("no account named 'wrok' (accounts: work).")
    # Signed out, then a sync: sign in again; a second logout says there was nothing.
    ran = hour.run("logout", "work")
    assert ran.out == ["Removed the stored sign-in of 'work'."]
    ran = hour.run("logout", "work")
    assert ran.out == ["'work' had no stored sign-in."]
    ran = hour.run("sync", "work", code=3)
    assert "Sign in with `exoimap login work`." in ran.err[-1]

    # A password written into the config file: refused in words, not half masked.
    config = Path(hour.env["EXOIMAP_HOME"]) / "config.toml"
    config.write_text('password = "hunter2"\n' + config.read_text())
    ran = hour.run("sync", "work", code=2)
    assert ran.err[0].endswith(
        "config.toml: password: unknown key (known keys: accounts, audit, logging)."
    )
