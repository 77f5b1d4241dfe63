"""The mailbox of ``bench.million``: many small messages written straight into Maildir files.

Not a benchmark on its own (``python -m bench`` skips modules named ``bench_*``).

The messages come from :func:`exoimap.sandbox.seed.generate` (RFC 5322 text, unique
Message-IDs, dates spread over years, a few flags) with a small median size and no large
attachments: about 2.5 KB each. They are spread over eight folders by a fixed rule (INBOX
30 %, seven others 10 % each), not by the seed's own choice, so every count has the same
shape. Each message becomes one file in ``cur/`` named as Dovecot names what it delivers
(``<time>.M<n>P<pid>.<host>,S=<size>,W=<vsize>:2,<flags>``), its mtime set to the
message's date (Dovecot's INTERNALDATE). No IMAP APPEND: a million files take a minute
or two, not hours. The tree is cached under ``bench/work/million-<count>-<seed>/`` with
a ``seeded.json`` marker, as :func:`bench.bench_server.seeded_root` caches its own.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from pathlib import Path

from bench.bench_check import MAILDIR_LETTERS
from bench.bench_server import BENCH_USER, WORK, _to_fs_layout, give_to_mail_user
from exoimap.sandbox.seed import SeedOptions, generate, maildir_folder_path

__all__ = ["FOLDER_SHARES", "million_root"]

#: Folder -> tenths of the messages it holds (nested and non-ASCII names included).
FOLDER_SHARES: dict[str, int] = {
    "INBOX": 3,
    "Sent Items": 1,
    "Deleted Items": 1,
    "Drafts": 1,
    "Junk Email": 1,
    "Archive": 1,
    "Archive/2023": 1,
    "Équipe": 1,
}
#: Message n goes to _SLOTS[n % 10]: the shares hold exactly for every multiple of ten.
_SLOTS = [name for name, tenths in FOLDER_SHARES.items() for _ in range(tenths)]
_FLAG_LETTERS = {flag: letter for letter, flag in MAILDIR_LETTERS.items()}
_HOST = "bench"
#: The smallest median the seed accepts; with headers the mean comes to about 2.5 KB.
_MEDIAN_SIZE = 500


def _folder_dirs(maildir: Path) -> dict[str, str]:
    """Create every folder (Maildir++ names, turned into LAYOUT=fs afterwards)."""
    dirs = {}
    for folder in FOLDER_SHARES:
        path = maildir_folder_path(maildir, folder)
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        dirs[folder] = str(path / "cur")
    return dirs


def _write_messages(maildir: Path, messages: int, seed: int) -> tuple[int, Counter[str]]:
    """Write the files; returns the bytes written and the messages per folder."""
    dirs = _folder_dirs(maildir)
    options = SeedOptions(messages=messages, seed=seed, median_size=_MEDIAN_SIZE, large_fraction=0)
    pid = os.getpid()
    total = 0
    per_folder: Counter[str] = Counter()
    for serial, message in enumerate(generate(options)):
        folder = _SLOTS[serial % len(_SLOTS)]
        stamp = int(message.internal_date.timestamp())
        size = len(message.data)  # CRLF line ends: the size and the virtual size agree
        letters = "".join(sorted(_FLAG_LETTERS[f] for f in message.flags if f in _FLAG_LETTERS))
        name = f"{stamp}.M{serial}P{pid}.{_HOST},S={size},W={size}:2,{letters}"
        fd = os.open(f"{dirs[folder]}/{name}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, message.data)
            os.utime(fd, (stamp, stamp))
        finally:
            os.close(fd)
        total += size
        per_folder[folder] += 1
    return total, per_folder


def million_root(messages: int, seed: int = 0) -> tuple[Path, dict[str, object]]:
    """A Dovecot root under ``bench/work`` whose user holds ``messages`` small messages
    (cached: a second call returns the first one's tree and what it recorded)."""
    root = WORK / f"million-{messages}-{seed}"
    marker = root / "seeded.json"
    if marker.exists():
        return root, {**json.loads(marker.read_text()), "cached": True}
    shutil.rmtree(root, ignore_errors=True)
    maildir = root / "mail" / BENCH_USER / "Maildir"
    maildir.mkdir(parents=True)
    print(f"seeding {messages} small messages (seed {seed}) into {maildir} ...", flush=True)
    started = time.monotonic()
    total, per_folder = _write_messages(maildir, messages, seed)
    written = time.monotonic() - started
    _to_fs_layout(maildir)
    give_to_mail_user(root)
    info: dict[str, object] = {
        "messages": sum(per_folder.values()),
        "bytes": total,
        "mean_size": round(total / max(messages, 1)),
        "folders": dict(per_folder),
        "seed": seed,
        "write_s": round(written, 1),
        "seconds": round(time.monotonic() - started, 1),
    }
    marker.write_text(json.dumps(info, indent=1))
    print(
        f"seeded {messages} messages, {total / 1e6:.0f} MB in {info['seconds']} s "
        f"({messages / max(written, 1e-3):.0f} files/s written)",
        flush=True,
    )
    return root, info
