"""The comparison's independent raw reader against a real Dovecot: the storing limit
writes every message, byte for byte, to a file of its own."""

from __future__ import annotations

from pathlib import Path

from bench.bench_raw import snapshot, store_fetch

from exoimap.sandbox.dovecot import DovecotServer


def test_the_storing_limit_writes_each_message_to_its_own_file(tmp_path: Path) -> None:
    bodies = {
        "INBOX": [b"Subject: one\r\n\r\nfirst\r\n", b"Subject: two\r\n\r\n" + b"x" * 70_000],
        "Archive/2024": [b"Subject: three\r\n\r\nthird\r\n"],
    }
    with DovecotServer() as server:
        user = server.new_mailbox()
        for folder, messages in bodies.items():
            for serial, body in enumerate(messages):
                server.write_message(user, body, folder=folder, serial=serial)
        server.fix_ownership(user)
        password = server.password(user).reveal()
        folders = snapshot(server.imaps_port, server.ca_file, user, password)
        stored = store_fetch(server.imaps_port, server.ca_file, user, password, tmp_path / "stored")

    every = sorted(b for messages in bodies.values() for b in messages)
    assert stored == sum(len(b) for b in every)
    files = sorted(p.read_bytes() for p in (tmp_path / "stored").rglob("*") if p.is_file())
    assert files == every
    # one directory per folder the server lists, whatever it holds
    assert len(list((tmp_path / "stored").iterdir())) == len(folders)
