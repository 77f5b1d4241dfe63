"""Peer configurations and result checking for the comparison.

``exoimap`` is the CLI (``exoimap sync NAME``, XOAUTH2 through the token-command flow);
``exoimap-lib`` drives the library directly with PLAIN (``bench/bench_exoimap.py``). Each tool
gets its own temporary folder; :func:`command` gives the argv that syncs the
server into it (the same argv for the initial sync and the no-change resync).
:func:`check` compares what a tool stored with the server's snapshot.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.bench_raw import ServerMessage, normalise
from exoimap.protocol.utf7 import decode_mailbox_lenient

__all__ = [
    "MAILDIR_LETTERS",
    "Check",
    "Target",
    "check",
    "command",
    "folder_key",
    "maildir_folders",
]

TOOLS = ("exoimap", "mbsync", "offlineimap3", "exoimap-lib")
#: Maildir info letters and the IMAP flags they stand for.
MAILDIR_LETTERS = {
    "D": "\\Draft",
    "F": "\\Flagged",
    "R": "\\Answered",
    "S": "\\Seen",
    "T": "\\Deleted",
}
_SYSTEM = frozenset(MAILDIR_LETTERS.values())


@dataclass(frozen=True)
class Target:
    port: int
    ca_file: Path
    user: str
    password: str
    #: Mints an XOAUTH2 token the server accepts (exoimap's CLI signs in with it).
    mint_token: Callable[[], str] | None = None


def _exoimap_cli(target: Target, home: Path, store: Path) -> list[str]:
    """``exoimap sync bench`` in a private EXOIMAP_HOME, signing in with the token-command
    flow (XOAUTH2; Dovecot validates the JWT locally). The token file is 0600."""
    if target.mint_token is None:
        raise SystemExit("the exoimap CLI run needs a server that mints tokens")
    token = home / "token"
    token.touch(mode=0o600)
    token.write_text(target.mint_token())
    exo_home = home / "exoimap-home"
    exo_home.mkdir(mode=0o700)
    (exo_home / "config.toml").write_text(
        "[accounts.bench]\n"
        f'email = "{target.user}"\n'
        'flow = "token-command"\n'
        f'token_command = ["cat", "{token}"]\n'
        'imap_host = "127.0.0.1"\n'
        f"imap_port = {target.port}\n"
        f'ca_file = "{target.ca_file}"\n'
        f'archive = "{store}"\n'
        "max_connections = 4\n"
    )
    exe = Path(sys.executable).with_name("exoimap")
    return ["env", f"EXOIMAP_HOME={exo_home}", str(exe), "sync", "bench"]


def command(tool: str, target: Target, home: Path) -> list[str]:
    """The argv that syncs ``target`` into ``home/store`` (config files go into ``home``)."""
    store = home / "store"
    if tool == "exoimap":
        return _exoimap_cli(target, home, store)
    if tool == "exoimap-lib":
        return [
            *(sys.executable, "-m", "bench.bench_exoimap"),
            *("--port", str(target.port), "--ca", str(target.ca_file)),
            *("--user", target.user, "--password", target.password, "--archive", str(store)),
        ]
    if tool == "mbsync":
        store.mkdir(parents=True, exist_ok=True)
        conf = home / "mbsyncrc"
        conf.write_text(
            "FSync yes\n\nIMAPAccount bench\nHost localhost\n"
            f"Port {target.port}\nUser {target.user}\n"
            f'Pass "{target.password}"\nAuthMechs PLAIN\nSSLType IMAPS\n'
            f"CertificateFile {target.ca_file}\n\n"
            "IMAPStore far\nAccount bench\n\n"
            f"MaildirStore near\nPath {store}/\nInbox {store}/INBOX\nSubFolders Verbatim\n\n"
            "Channel bench\nFar :far:\nNear :near:\nPatterns *\nCreate Near\n"
            "Sync Pull\nExpunge None\nSyncState *\n"
        )
        conf.chmod(0o600)
        return ["mbsync", "-q", "-c", str(conf), "bench"]
    if tool == "offlineimap3":
        store.mkdir(parents=True, exist_ok=True)
        conf = home / "offlineimaprc"
        conf.write_text(
            "[general]\naccounts = bench\nmetadata = " + str(home / "meta") + "\n"
            "ui = quiet\n\n"
            "[Account bench]\nlocalrepository = near\nremoterepository = far\n\n"
            f"[Repository near]\ntype = Maildir\nlocalfolders = {store}\nsep = /\n\n"
            f"[Repository far]\ntype = IMAP\nremotehost = localhost\nremoteport = {target.port}\n"
            f"ssl = yes\nsslcacertfile = {target.ca_file}\nremoteuser = {target.user}\n"
            f"remotepass = {target.password}\nauth_mechanisms = PLAIN\nreadonly = True\n"
            "maxconnections = 3\n"
        )
        conf.chmod(0o600)
        return ["offlineimap", "-c", str(conf), "-u", "quiet"]
    raise SystemExit(f"unknown tool {tool!r}; known: {', '.join(TOOLS)}")


@dataclass
class Check:
    """What a run stored, compared with the server."""

    messages: int = 0
    missing: int = 0
    extra: int = 0
    flag_mismatch: int = 0
    byte_exact: int = 0
    #: equal only after CRLF -> LF and without the X-TUID header (mbsync's rewrite)
    normalised_only: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.missing == 0 and self.extra == 0 and self.flag_mismatch == 0

    @property
    def exact(self) -> bool:
        return self.complete and self.byte_exact == self.messages


def _flags_from_name(name: str) -> frozenset[str]:
    info = name.rsplit(":2,", 1)[1] if ":2," in name else ""
    return frozenset(MAILDIR_LETTERS[c] for c in info if c in MAILDIR_LETTERS)


def folder_key(name: str) -> str:
    """One spelling for a folder, whether in modified UTF-7 (as servers send it) or not."""
    decoded = decode_mailbox_lenient(name.encode()) if "&" in name else name
    return "INBOX" if decoded.upper() == "INBOX" else decoded


def maildir_folders(root: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for top, dirs, _files in os.walk(root):
        here = Path(top)
        if "cur" in dirs and "new" in dirs:
            rel = here.relative_to(root).as_posix()
            files = [p for sub in ("cur", "new") for p in (here / sub).iterdir() if p.is_file()]
            found[folder_key(rel or "INBOX")] = files
        dirs[:] = [d for d in dirs if d not in ("cur", "new", "tmp") and not d.startswith(".")]
    return found


def check(tool: str, store: Path, server: dict[str, dict[int, ServerMessage]]) -> Check:
    """Compare a tool's copy with the server: counts, flags and bytes, folder by folder."""
    result = Check()
    expected = {folder_key(name): box for name, box in server.items()}
    result.messages = sum(len(box) for box in expected.values())
    if tool.startswith("exoimap"):
        stored = _exoimap_folders(store)
        for name, box in expected.items():
            have = stored.get(name, {})
            result.missing += len(set(box) - set(have))
            result.extra += len(set(have) - set(box))
            for uid, message in box.items():
                if uid not in have:
                    continue
                path, flags = have[uid]
                if not path.exists():
                    result.missing += 1
                    if len(result.notes) < 5:
                        result.notes.append(f"{name}: UID {uid} indexed, no file")
                    continue
                if flags != message.flags:
                    result.flag_mismatch += 1
                if hashlib.sha256(path.read_bytes()).hexdigest() == message.sha256:
                    result.byte_exact += 1
        return result
    local = maildir_folders(store)
    for name, box in expected.items():
        files = local.get(name, [])
        exact = {m.sha256: m for m in box.values()}
        loose = {m.norm_sha256: m for m in box.values()}
        seen: Counter[int] = Counter()
        for path in files:
            data = path.read_bytes()
            message = exact.get(hashlib.sha256(data).hexdigest())
            if message is not None:
                result.byte_exact += 1
            else:
                message = loose.get(hashlib.sha256(normalise(data)).hexdigest())
                if message is None:
                    result.extra += 1
                    continue
                result.normalised_only += 1
            seen[message.uid] += 1
            if _flags_from_name(path.name) != message.flags & _SYSTEM:
                result.flag_mismatch += 1
        result.missing += sum(1 for uid in box if not seen[uid])
        result.extra += sum(n - 1 for n in seen.values() if n > 1)
    if result.normalised_only:
        result.notes.append(
            f"{result.normalised_only} messages differ from the server's bytes "
            "(stored with LF line ends and/or an added X-TUID header)"
        )
    return result


def _exoimap_folders(store: Path) -> dict[str, dict[int, tuple[Path, frozenset[str]]]]:
    db = sqlite3.connect(f"file:{store / 'index.sqlite'}?mode=ro", uri=True)
    try:
        folders = {
            fid: (name, dirname)
            for fid, name, dirname in db.execute(
                "SELECT id, name, dirname FROM folders WHERE gone_at IS NULL"
            )
        }
        out: dict[str, dict[int, tuple[Path, frozenset[str]]]] = {
            folder_key(name): {} for name, _d in folders.values()
        }
        rows = db.execute(
            "SELECT folder_id, origin_uid, flags, file FROM messages WHERE gone_at IS NULL"
        )
        on_disk: dict[int, dict[str, Path]] = {}
        for fid, (_name, dirname) in folders.items():
            base = store / "maildir" / dirname
            on_disk[fid] = {
                p.name.split(":2,", 1)[0]: p
                for sub in ("cur", "new")
                if (base / sub).is_dir()
                for p in (base / sub).iterdir()
            }
        for fid, uid, flags, file in rows:
            if fid not in folders or uid is None:
                continue
            name, dirname = folders[fid]
            path = on_disk[fid].get(file, store / "maildir" / dirname / "cur" / file)
            out[folder_key(name)][uid] = (path, frozenset(flags.split()))
        return out
    finally:
        db.close()
