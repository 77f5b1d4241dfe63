"""Benchmark: the console's pages over a 20,000-message archive, server time per page.

Run: ``.venv/bin/python -m bench.console_pages [--messages 20000] [--requests 30]``

The archive is ``bench.export_mbox``'s (synthetic mail, made once, cached under
``bench/work/export_mbox/``). The console runs in this process with a signed-in auditor
(the session is made directly: sign-in is not what is measured) and a real audit log; each
page is requested ``--requests`` times through Starlette's test client (no network), and
p50/p95 are reported against the issue's 200 ms target. Every request opens the archive,
reads and closes it, as the console does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from bench.export_mbox import _archive, _build
from exoimap import audit
from exoimap.config import Paths
from exoimap.console.archives import Mailboxes
from exoimap.console.policy import Principal
from exoimap.console.sessions import SessionStore
from exoimap.console.settings import ConsoleSettings
from exoimap.console.signin import SignIn
from exoimap.console.trail import Trail
from exoimap.console.web import Console, build_app
from exoimap.secrets import Secret
from exoimap.store.archive import ArchiveStore
from exoimap.store.search import SearchIndex, index_path, update_search

with warnings.catch_warnings():  # Starlette asks for httpx2, which is not packaged yet
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TARGET_MS = 200.0
URL = "https://console.bench"
PAGES = (
    "/",
    "/m/bench",
    "/m/bench/folder?name=INBOX",
    "/m/bench/folder?name=INBOX&page={last}",
    "/m/bench/message?folder=INBOX&uid=1",
    "/m/bench/body?folder=INBOX&uid=1",
    "/search?q=synthetic",
    "/search?q=from%3Asender7%40example.com",
    "/search?q=folder%3AINBOX&page=3",
    "/audit",
    "/dashboard",
)


def _client(home: Path, archive: Path, auditor: audit.Auditor) -> TestClient:
    paths = Paths(config_dir=home / "config", data_dir=home / "data")
    paths.config_dir.mkdir(parents=True)
    paths.config_file.write_text(
        f'[accounts.bench]\nemail = "bench@contoso.com"\narchive = "{archive}"\n'
    )
    settings = ConsoleSettings(
        authority="https://login.invalid/t",
        client_id="bench",
        public_url=URL,
        scopes={"auditor": ("*@contoso.com",)},
    )
    sessions = SessionStore(idle=3600, absolute=3600)
    person = Principal(
        "oid", "reader@contoso.com", "Reader", frozenset({"auditor", "audit_reader", "admin"})
    )
    console = Console(settings, Mailboxes(paths), sessions, SignIn(settings), Trail(auditor))
    client = TestClient(build_app(console), base_url=URL)
    client.cookies.set(console.session_cookie, sessions.create(person))
    return client


async def _index(archive: Path, home: Path) -> int:
    store = ArchiveStore.open(archive, create=False)
    try:
        index = SearchIndex(index_path(Paths(config_dir=home / "config", data_dir=home / "data")))
        done = await update_search(store, index, account="bench", mailbox="bench@contoso.com")
        return done.indexed
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--dir", default="bench/work/export_mbox")
    args = parser.parse_args()
    work = Path(args.dir).absolute()
    work.mkdir(parents=True, exist_ok=True)
    archive = _archive(work, f"archive-{args.messages}", lambda r: _build(r, args.messages))
    last = -(-args.messages // 14 // 50)  # about a 14th of the mail is in INBOX, 50 a page
    with tempfile.TemporaryDirectory() as home:
        log = audit.AuditLog(Path(home) / "data" / "audit", Secret(b"B" * 32), run="bench")
        auditor = audit.Auditor(log)
        client = _client(Path(home), archive, auditor)
        started = time.perf_counter()
        indexed = asyncio.run(_index(archive, Path(home)))
        print(f"search index: {indexed} messages in {time.perf_counter() - started:.1f} s")
        folders = client.get("/m/bench").text.count("/m/bench/folder?")
        print(f"archive: {args.messages} messages; INBOX page 1 and the last page (~{last})")
        worst = 0.0
        for template in PAGES:
            path = template.format(last=last)
            timings = []
            for _ in range(args.requests):
                started = time.perf_counter()
                response = client.get(path)
                timings.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"{path}: HTTP {response.status_code}")
            p50 = statistics.median(timings)
            p95 = statistics.quantiles(timings, n=20)[18]
            worst = max(worst, p95)
            print(f"{path:45} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms")
        verdict = "meets" if worst < TARGET_MS else "MISSES"
        print(
            f"worst p95 {worst:.1f} ms ({verdict} the {TARGET_MS:.0f} ms target); "
            f"load average {os.getloadavg()[0]:.2f}; {folders} folders"
        )
        auditor.close()


if __name__ == "__main__":
    main()
