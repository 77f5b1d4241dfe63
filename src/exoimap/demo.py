"""``make demo``: exoimap end to end against an offline sandbox tenant.

It runs the real CLI, step by step, and shows each command: start a sandbox tenant in the
background, add an account for a seeded user, sign in with the device-code flow (the demo
approves the code through the sandbox, as the user would in a browser), back up a few
thousand messages, change the mailbox as another mail client would (new mail, a flag, a
deletion), back up again incrementally, verify with ``--deep``, show the archive, stop the
sandbox. Everything lives in a temporary folder (``EXOIMAP_HOME``), so the user's own
configuration is never touched. Any failed step says what failed and exits non-zero.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

__all__ = ["DemoFailed", "exoimap_command", "main", "run", "run_demo", "say"]

DEMO_USER = "alice@contoso.onmicrosoft.com"
DEMO_MESSAGES = 2000
#: The folder the demo deletes on the server and restores from the archive.
RESTORED_FOLDER = "Équipe"
START_TIMEOUT = 120.0
STEP_TIMEOUT = 300.0


class DemoFailed(Exception):
    """A demo step failed (the message says which and why)."""


def exoimap_command() -> list[str]:
    script = Path(sys.executable).with_name("exoimap")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from exoimap.cli import main; sys.exit(main())"]


def say(text: str) -> None:
    print(text, flush=True)


def _show(args: Sequence[str]) -> None:
    say("\n$ exoimap " + " ".join(_quote(a) for a in args))


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./*-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


def run(args: Sequence[str], *, expect: int = 0) -> str:
    """Run ``exoimap ARGS``, echo its output indented, return it (stdout and stderr)."""
    _show(args)
    started = time.monotonic()
    done = subprocess.run(  # noqa: S603 - our own CLI, fixed argv, no shell
        [*exoimap_command(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )
    for line in done.stdout.splitlines():
        say("  " + line)
    say(f"  (exit code {done.returncode}, {time.monotonic() - started:.1f} s)")
    if done.returncode != expect:
        raise DemoFailed(
            f"`exoimap {' '.join(args)}` exited with {done.returncode} (expected {expect})"
        )
    return done.stdout


def _number(pattern: str, text: str, what: str) -> int:
    match = re.search(pattern, text)
    if match is None:
        raise DemoFailed(f"could not read {what} from the output")
    return int(match.group(1))


def start_sandbox(state: Path, log: Path) -> tuple[subprocess.Popen[bytes], dict[str, object]]:
    args = ["sandbox", "up", "--state", str(state), "--messages", str(DEMO_MESSAGES)]
    args.append("--no-persist")
    _show(args)
    say(f"  (in the background; its output goes to {log})")
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own CLI, no shell
            [*exoimap_command(), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    details = state / "sandbox.json"
    while not details.exists():
        if process.poll() is not None:
            raise DemoFailed(f"the sandbox stopped at start-up:\n{log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise DemoFailed(f"the sandbox did not start within {START_TIMEOUT:.0f} s")
        time.sleep(0.2)
    document: dict[str, object] = json.loads(details.read_text())
    say(f"  sandbox ready: identity at {document['authority']}, IMAP port {document['imap_port']}")
    return process, document


def stop_sandbox(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise DemoFailed("the sandbox did not stop on Ctrl-C within 30 s") from None
    if process.returncode != 0:
        raise DemoFailed(f"the sandbox exited with {process.returncode} on Ctrl-C")
    say("  sandbox stopped")


def sign_in(state: Path) -> None:
    """``exoimap login demo`` with the code approved through the sandbox."""
    args = ["login", "demo"]
    _show(args)
    process = subprocess.Popen(  # noqa: S603 - our own CLI, no shell
        [*exoimap_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    output: list[str] = []
    code_seen = threading.Event()
    code: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            say("  " + line.rstrip())
            match = re.search(r"enter the code ([A-Z0-9]+)", line)
            if match and not code:
                code.append(match.group(1))
                code_seen.set()
        code_seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not code_seen.wait(60) or not code:
        process.kill()
        raise DemoFailed("`exoimap login demo` showed no device code")
    say("  (the demo plays the user: it approves the code in the sandbox instead of a browser)")
    run(["sandbox", "approve", code[0], "--as", DEMO_USER, "--state", str(state)])
    try:
        returncode = process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        raise DemoFailed("`exoimap login demo` did not finish within 120 s") from None
    reader.join(timeout=5)
    if returncode != 0:
        raise DemoFailed(f"`exoimap login demo` exited with {returncode}")


async def _change_mailbox() -> tuple[int, str]:
    """New mail, a flag change and a deletion, made over IMAP as another client would."""
    from exoimap.app.accounts import open_source
    from exoimap.auth.provider import TokenProvider
    from exoimap.auth.vault import Vault
    from exoimap.config import load_config
    from exoimap.store.base import AppendItem

    account = load_config().account("demo")
    store = await open_source(account, TokenProvider(account, vault=Vault.from_paths()))
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    message = (
        f"From: Bob <bob@contoso.onmicrosoft.com>\r\nTo: Alice <{DEMO_USER}>\r\n"
        f"Subject: exoimap demo: new mail\r\nDate: {now:%a, %d %b %Y %H:%M:%S +0000}\r\n"
        f"Message-ID: <demo-{secrets.token_hex(8)}@contoso.onmicrosoft.com>\r\n\r\n"
        "This message arrived after the first backup.\r\n"
    ).encode()

    async def body() -> AsyncIterator[bytes]:
        yield message

    async def items() -> AsyncIterator[AppendItem]:
        yield AppendItem(chunks=body(), size=len(message), internal_date=now)

    try:
        async with store.open_folder("INBOX") as inbox:
            listing = await inbox.list_messages()
            uids = sorted(m.uid for m in listing.messages)
            flagged = uids[0]
            current = next(m.flags for m in listing.messages if m.uid == flagged)
            await inbox.set_flags({flagged: current | {"\\Flagged"}})
            await inbox.expunge([uids[1]])
            await inbox.append(items())
    finally:
        await store.close()
    return flagged, "INBOX"


async def _delete_folder(name: str) -> None:
    from exoimap.app.accounts import open_source
    from exoimap.auth.provider import TokenProvider
    from exoimap.auth.vault import Vault
    from exoimap.config import load_config

    account = load_config().account("demo")
    store = await open_source(account, TokenProvider(account, vault=Vault.from_paths()))
    try:
        await store.delete_folder(name)
    finally:
        await store.close()


def lose_and_restore_folder(stats: str) -> None:
    """A folder is deleted on the server; the archive keeps it; restore brings it back."""
    match = re.search(rf"{RESTORED_FOLDER}\s+(\d+) messages?", stats)
    if match is None:
        raise DemoFailed(f"the archive should hold the folder {RESTORED_FOLDER}")
    held = int(match.group(1))
    say(
        f"\n# Disaster: someone deletes the folder {RESTORED_FOLDER} ({held} messages) on the "
        "server. The next backup keeps it in the archive; a restore brings it back."
    )
    asyncio.run(_delete_folder(RESTORED_FOLDER))
    run(["sync", "demo"])
    restored = run(["restore", "demo", "--merge", "--folder", RESTORED_FOLDER])
    if _number(r"restored (\d+) messages?", restored, "the restored count") != held:
        raise DemoFailed(f"the restore should have brought back the {held} messages")
    again = run(["restore", "demo", "--merge", "--folder", RESTORED_FOLDER])
    if _number(r"restored (\d+) messages?", again, "the second restore's count") != 0:
        raise DemoFailed("a second restore must not copy anything twice")


def change_mailbox() -> None:
    say(
        "\n# Meanwhile, in the mailbox (over IMAP, as alice's phone would): "
        "one new message arrives in INBOX, one message gets flagged, one is deleted."
    )
    asyncio.run(_change_mailbox())


def demo(work: Path) -> str:
    started = time.monotonic()
    state = work / "sandbox"
    home = work / "home"
    os.environ["EXOIMAP_HOME"] = str(home)
    os.environ["EXOIMAP_VAULT_PASSPHRASE"] = secrets.token_urlsafe(16)
    os.environ["EXOIMAP_NO_KEYRING"] = "1"
    say(f"exoimap demo: everything happens in {work} (EXOIMAP_HOME={home});")
    say(
        "your own configuration is not touched. The vault passphrase comes from "
        "EXOIMAP_VAULT_PASSPHRASE, which the demo set to a random value."
    )
    process, details = start_sandbox(state, work / "sandbox.log")
    try:
        apps: list[dict[str, str]] = details["apps"]  # type: ignore[assignment]  # JSON list
        public = next(a for a in apps if a["name"] == "exoimap-public")
        run(
            [
                "account", "add", "demo",
                "--cloud", "custom",
                "--authority", str(details["authority"]),
                "--ca-file", str(details["ca_file"]),
                "--imap-host", str(details["imap_host"]),
                "--imap-port", str(details["imap_port"]),
                "--client-id", str(public["client_id"]),
                "--email", DEMO_USER,
                "--flow", "device",
            ]
        )  # fmt: skip
        sign_in(state)
        first = run(["sync", "demo"])
        fetched = _number(r"fetched (\d+) messages?", first, "the first sync's count")
        if fetched < DEMO_MESSAGES:
            raise DemoFailed(f"the first sync fetched {fetched} messages, not {DEMO_MESSAGES}")
        change_mailbox()
        second = run(["sync", "demo"])
        if _number(r"fetched (\d+) messages?", second, "the second sync's count") != 1:
            raise DemoFailed("the incremental sync should have fetched exactly the new message")
        if _number(r"(\d+) flag changes?", second, "the flag changes") != 1:
            raise DemoFailed("the incremental sync should have applied exactly one flag change")
        if _number(r"(\d+) deleted on the server", second, "the deletions") != 1:
            raise DemoFailed("the incremental sync should have seen exactly one deletion")
        run(["verify", "demo", "--deep"])
        stats = run(["archive", "stats", "demo"])
        match = re.search(r"demo: (\d+) messages, (\d+) folders, (\d+) bytes", stats)
        if match is None:
            raise DemoFailed("could not read the archive's totals")
        messages, folders, size = (int(g) for g in match.groups())
        lose_and_restore_folder(stats)
        run(["audit", "verify"])
    finally:
        say("\n# Stopping the sandbox (Ctrl-C)")
        stop_sandbox(process)
    seconds = time.monotonic() - started
    return f"demo ok: {messages} messages, {folders} folders, {size} bytes in {seconds:.1f} s"


def run_demo(prefix: str, demo: Callable[[Path], str]) -> int:
    """Run ``demo`` in a new temporary folder: its ``demo ok:`` line and 0, or what failed
    and 1 (the folder is then kept for a look)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        line = demo(work)
    except (DemoFailed, subprocess.TimeoutExpired) as exc:
        print(f"\ndemo FAILED: {exc}", file=sys.stderr, flush=True)
        print(f"(files kept in {work})", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"\ndemo FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        print(f"(files kept in {work})", file=sys.stderr)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    say("\n" + line)
    return 0


def main() -> int:
    return run_demo("exoimap-demo-", demo)


if __name__ == "__main__":
    sys.exit(main())
