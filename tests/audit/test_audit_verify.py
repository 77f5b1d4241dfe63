"""Every kind of tampering is detected, and named at the first bad record."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from exoimap import audit
from exoimap.errors import AuditChainBroken
from exoimap.secrets import Secret

from .conftest import KEY, lines_of, write_events

MakeLog = Callable[..., Path]


def first_file(directory: Path) -> Path:
    return directory / "audit-000001.jsonl"


def rewrite(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def problem(directory: Path, key: Secret[bytes] | None = KEY) -> tuple[str, int | None]:
    result = audit.verify_log(directory, key)
    assert result.problem is not None, "tampering was not detected"
    return result.problem.kind, result.problem.record


def rehash(obj: dict[str, object], key: bytes | None = None) -> bytes:
    """Re-encode a record the way the writer does, with a valid hash (and MAC if keyed)."""
    import hmac

    body = {k: v for k, v in obj.items() if k not in ("hash", "mac")}
    text = json.dumps(body, separators=(",", ":")).encode()
    digest = hashlib.sha256(text).hexdigest()
    mac = (
        hmac.digest(key, b"exoimap-audit-record\x00" + digest.encode(), "sha256").hex()
        if key
        else "f" * 64
    )
    return text[:-1] + f',"hash":"{digest}","mac":"{mac}"}}\n'.encode()


def test_intact_log_verifies(make_log: MakeLog) -> None:
    directory = make_log(20)
    result = audit.verify_log(directory, KEY)
    assert result.ok
    assert result.records == 20
    assert result.keyed
    result.raise_if_broken()


def test_edited_field_is_modified(make_log: MakeLog) -> None:
    directory = make_log(20)
    lines = lines_of(first_file(directory))
    lines[4] = lines[4].replace(b'"copied":4', b'"copied":5')
    rewrite(first_file(directory), lines)
    assert problem(directory) == ("modified", 5)
    with pytest.raises(AuditChainBroken) as caught:
        audit.verify_log(directory, KEY).raise_if_broken()
    assert caught.value.kind == "modified"
    assert caught.value.record == 5


def test_rewrite_with_recomputed_hashes_is_caught_by_the_mac(make_log: MakeLog) -> None:
    """An attacker without the key edits record 5 and re-chains everything after it."""
    directory = make_log(20)
    lines = lines_of(first_file(directory))
    records = [json.loads(line) for line in lines]
    records[4]["data"]["bytes"] = 999
    prev = records[3]["hash"]
    new_lines = lines[:4]
    for record in records[4:]:
        record["prev"] = prev
        line = rehash(record)
        prev = json.loads(line)["hash"]
        new_lines.append(line)
    rewrite(first_file(directory), new_lines)
    assert problem(directory) == ("modified", 5)
    # Without the key the rewrite is invisible: that is why the key exists.
    unkeyed = audit.verify_log(directory, None)
    assert unkeyed.ok
    assert not unkeyed.keyed
    assert "without the key" in unkeyed.notices[-1]


def test_whole_file_rewritten_with_another_key(make_log: MakeLog, tmp_path: Path) -> None:
    directory = make_log(20)
    forged = tmp_path / "forged"
    log = audit.AuditLog(forged, Secret(b"X" * 32), run="r", os_user="eve")
    with audit.Auditor(log) as auditor:
        for n in range(20):
            auditor.emit(audit.FolderSynced(account="work", folder=f"F{n}"))
    first_file(directory).write_bytes(first_file(forged).read_bytes())
    assert problem(directory) == ("modified", 1)


def test_forged_record_inserted(make_log: MakeLog) -> None:
    directory = make_log(20)
    lines = lines_of(first_file(directory))
    genuine = json.loads(lines[3])
    genuine["data"]["folder"] = "Forged"
    rewrite(first_file(directory), [*lines[:3], rehash(genuine), *lines[3:]])
    assert problem(directory) == ("inserted", 4)


def test_copied_record_inserted(make_log: MakeLog) -> None:
    directory = make_log(20)
    lines = lines_of(first_file(directory))
    rewrite(first_file(directory), [*lines[:6], lines[1], *lines[6:]])
    assert problem(directory) == ("inserted", 7)


@pytest.mark.parametrize(("start", "stop", "text"), [(4, 5, "record 5 is"), (4, 7, "5-7")])
def test_deleted_records(make_log: MakeLog, start: int, stop: int, text: str) -> None:
    directory = make_log(20)
    lines = lines_of(first_file(directory))
    rewrite(first_file(directory), lines[:start] + lines[stop:])
    result = audit.verify_log(directory, KEY)
    assert result.problem is not None
    assert (result.problem.kind, result.problem.record) == ("deleted", 5)
    assert text in result.problem.message


def test_reordered_records(make_log: MakeLog) -> None:
    directory = make_log(20)
    lines = lines_of(first_file(directory))
    lines[3], lines[4] = lines[4], lines[3]
    rewrite(first_file(directory), lines)
    assert problem(directory) == ("reordered", 4)


def test_tail_cut_is_truncated(make_log: MakeLog) -> None:
    directory = make_log(20)
    lines = lines_of(first_file(directory))
    rewrite(first_file(directory), lines[:17])
    assert problem(directory) == ("truncated", 18)
    # The hash chain alone cannot see a cut end: only the keyed checkpoint can.
    assert audit.verify_log(directory, None).ok


def test_torn_last_line(make_log: MakeLog) -> None:
    directory = make_log(20)
    path = first_file(directory)
    data = path.read_bytes()
    path.write_bytes(data[:-40])  # the last record was half written when the power went
    result = audit.verify_log(directory, KEY)
    assert result.problem is not None
    assert (result.problem.kind, result.problem.record) == ("torn", 20)
    assert result.problem.line == 20


def test_checkpoint_deleted_or_forged(make_log: MakeLog) -> None:
    directory = make_log(20)
    checkpoint = directory / "audit.checkpoint"
    saved = json.loads(checkpoint.read_text())
    checkpoint.unlink()
    assert problem(directory) == ("checkpoint", None)
    checkpoint.write_text(json.dumps({**saved, "seq": 10}))
    assert problem(directory) == ("checkpoint", None)
    checkpoint.write_text("not json")
    assert problem(directory) == ("checkpoint", None)


def test_wrong_key_fails_at_record_one(make_log: MakeLog) -> None:
    directory = make_log(5)
    assert problem(directory, Secret(b"W" * 32)) == ("modified", 1)


def test_garbage_line_in_the_middle(make_log: MakeLog) -> None:
    directory = make_log(20)
    lines = lines_of(first_file(directory))
    lines[9] = b"hello\n"
    rewrite(first_file(directory), lines)
    assert problem(directory) == ("modified", 10)


def test_empty_log_is_intact(tmp_path: Path) -> None:
    assert audit.verify_log(tmp_path / "none", KEY).ok
    audit.AuditLog(tmp_path / "fresh", KEY)  # creates the genesis checkpoint only
    result = audit.verify_log(tmp_path / "fresh", KEY)
    assert result.ok
    assert result.records == 0


# --- rotation ----------------------------------------------------------------------------


def test_chain_survives_rotation(make_log: MakeLog) -> None:
    directory = make_log(60, max_file_bytes=2000)
    files = sorted(directory.glob("audit-*.jsonl"))
    assert len(files) > 5
    assert all(f.stat().st_size <= 2000 for f in files)
    result = audit.verify_log(directory, KEY)
    assert result.ok
    assert result.records == 60
    assert result.files == len(files)
    # The first record of each file links to the last record of the one before.
    for earlier, later in itertools.pairwise(files):
        assert (
            json.loads(later.read_bytes().splitlines()[0])["prev"]
            == json.loads(earlier.read_bytes().splitlines()[-1])["hash"]
        )


def test_rotated_middle_file_deleted(make_log: MakeLog) -> None:
    directory = make_log(60, max_file_bytes=2000)
    files = sorted(directory.glob("audit-*.jsonl"))
    first_gone = json.loads(files[2].read_bytes().splitlines()[0])["seq"]
    files[2].unlink()
    assert problem(directory) == ("deleted", first_gone)


def test_newest_file_deleted_is_truncated(make_log: MakeLog) -> None:
    directory = make_log(60, max_file_bytes=2000)
    files = sorted(directory.glob("audit-*.jsonl"))
    first_gone = json.loads(files[-1].read_bytes().splitlines()[0])["seq"]
    files[-1].unlink()
    assert problem(directory) == ("truncated", first_gone)


def test_rotated_files_swapped(make_log: MakeLog) -> None:
    directory = make_log(60, max_file_bytes=2000)
    files = sorted(directory.glob("audit-*.jsonl"))
    moved = json.loads(files[1].read_bytes().splitlines()[0])["seq"]
    a, b = files[1].read_bytes(), files[2].read_bytes()
    files[1].write_bytes(b)
    files[2].write_bytes(a)
    assert problem(directory) == ("reordered", moved)


def test_earliest_file_deleted(make_log: MakeLog) -> None:
    directory = make_log(60, max_file_bytes=2000)
    sorted(directory.glob("audit-*.jsonl"))[0].unlink()
    assert problem(directory) == ("deleted", 1)


# --- crash in the middle of a write, and reopening -------------------------------------


def test_writer_sets_a_torn_line_aside_and_says_so(make_log: MakeLog) -> None:
    directory = make_log(20)
    path = first_file(directory)
    intact = path.read_bytes()
    torn = b'{"seq":21,"time":"2026-01-01T00:00:00Z","event":"sync.fol'
    path.write_bytes(intact + torn)
    assert problem(directory) == ("torn", 21)

    write_events(directory, 3)  # a new run opens the log and carries on

    aside = directory / "audit-000001.jsonl.torn-1"
    assert aside.read_bytes() == torn
    assert aside.stat().st_mode & 0o777 == 0o600
    result = audit.verify_log(directory, KEY)
    assert result.ok
    assert result.records == 24
    assert any("recovered after a torn write" in n for n in result.notices)
    records = list(audit.read_records(directory))
    note = records[20]
    assert note.event == "audit.recovered"
    assert note.seq == 21
    assert note.data["torn_bytes"] == len(torn)
    assert note.data["torn_sha256"] == hashlib.sha256(torn).hexdigest()


def test_writer_refuses_to_build_on_a_cut_log(make_log: MakeLog) -> None:
    directory = make_log(20)
    lines = lines_of(first_file(directory))
    rewrite(first_file(directory), lines[:15])
    with pytest.raises(AuditChainBroken) as caught:
        audit.AuditLog(directory, KEY)
    assert caught.value.kind == "truncated"
    assert caught.value.record == 16
    assert len(lines_of(first_file(directory))) == 15  # nothing written over the evidence


def test_writer_refuses_a_forged_last_record(make_log: MakeLog) -> None:
    directory = make_log(20)
    lines = lines_of(first_file(directory))
    last = json.loads(lines[-1])
    last["data"]["bytes"] = 1
    rewrite(first_file(directory), [*lines[:-1], rehash(last)])
    with pytest.raises(AuditChainBroken, match="last audit record"):
        audit.AuditLog(directory, KEY)


def test_writer_refuses_a_missing_checkpoint(make_log: MakeLog) -> None:
    directory = make_log(5)
    (directory / "audit.checkpoint").unlink()
    with pytest.raises(AuditChainBroken) as caught:
        audit.AuditLog(directory, KEY)
    assert caught.value.kind == "checkpoint"


def test_records_after_the_last_checkpoint_are_accepted(make_log: MakeLog, tmp_path: Path) -> None:
    """A crash between the fsync of a batch and the checkpoint update loses nothing."""
    directory = make_log(10)
    saved = (directory / "audit.checkpoint").read_bytes()
    write_events(directory, 5)
    (directory / "audit.checkpoint").write_bytes(saved)
    result = audit.verify_log(directory, KEY)
    assert result.ok
    assert result.records == 15
    assert any("after the last checkpoint" in n for n in result.notices)


def test_permissions(make_log: MakeLog) -> None:
    directory = make_log(5)
    assert directory.stat().st_mode & 0o777 == 0o700
    for path in directory.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path.name


def test_two_writers_share_one_chain(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    first = audit.Auditor(audit.AuditLog(directory, KEY, max_file_bytes=3000), batch_size=3)
    second = audit.Auditor(audit.AuditLog(directory, KEY, max_file_bytes=3000), batch_size=5)
    for n in range(40):
        (first if n % 3 else second).emit(audit.ArchiveRead(account="a", messages=n))
    first.close()
    second.close()
    result = audit.verify_log(directory, KEY)
    assert result.ok
    assert result.records == 40


def test_concurrent_processes_share_one_chain(tmp_path: Path) -> None:
    import subprocess
    import sys

    directory = tmp_path / "audit"
    script = (
        "import sys; from pathlib import Path; from exoimap import audit;"
        "from exoimap.secrets import Secret;"
        "log = audit.AuditLog(Path(sys.argv[1]), Secret(b'K' * 32), max_file_bytes=20000);"
        "a = audit.Auditor(log, batch_size=4)\n"
        "for n in range(80): a.emit(audit.ArchiveRead(account=sys.argv[2], messages=n))\n"
        "a.close()"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(directory), name])
        for name in ("p1", "p2")
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    result = audit.verify_log(directory, KEY)
    assert result.ok, result.problem
    assert result.records == 160
    accounts = [r.account for r in audit.read_records(directory)]
    assert {name: accounts.count(name) for name in ("p1", "p2")} == {"p1": 80, "p2": 80}


CRASHING_WRITER = """
import os, sys
from pathlib import Path
from exoimap import audit
from exoimap.audit import log as audit_log
from exoimap.secrets import Secret

directory, target, crash_at = Path(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3])
writes = 0
real_write = os.write

def write_then_die(fd, data):
    # The power goes out halfway through a write: half of it reaches the file.
    global writes
    writes += target in bytes(data)
    if writes == crash_at:
        real_write(fd, bytes(data[: len(data) // 2]))
        os._exit(9)
    return real_write(fd, data)

audit_log.os.write = write_then_die
log = audit.AuditLog(directory, Secret(b"K" * 32), max_file_bytes=1500)
auditor = audit.Auditor(log, batch_size=3)
for n in range(100):
    auditor.emit(audit.ArchiveRead(account="work", messages=n))
"""


def crash_writer(directory: Path, target: bytes, crash_at: int) -> None:
    import subprocess
    import sys

    argv = [sys.executable, "-c", CRASHING_WRITER, str(directory), target.decode(), str(crash_at)]
    child = subprocess.run(argv, check=False, timeout=60)
    assert child.returncode == 9


def test_real_crash_mid_write_with_rotation(tmp_path: Path) -> None:
    """A writer process dies halfway through writing a batch of records; the torn line is
    reported, then the next writer sets it aside, records that, and the chain continues."""
    directory = tmp_path / "audit"
    crash_writer(directory, b'"event":', 9)  # the 9th batch: the log has rotated by then
    files = sorted(directory.glob("audit-*.jsonl"))
    assert len(files) > 1
    result = audit.verify_log(directory, KEY)
    assert result.problem is not None
    assert result.problem.kind == "torn"
    assert result.problem.record == result.records + 1

    write_events(directory, 2)
    after = audit.verify_log(directory, KEY)
    assert after.ok, after.problem
    assert after.records == result.records + 3  # the recovery note and the two new events
    assert any("recovered after a torn write" in n for n in after.notices)
    assert list(directory.glob("audit-*.jsonl.torn-1"))
    assert not any("no audit.recovered record" in n for n in after.notices)
    stray = directory / "audit-000001.jsonl.torn-9"
    stray.write_bytes(b'{"seq":')
    assert any("torn-9 holds a torn line" in n for n in audit.verify_log(directory, KEY).notices)


def test_real_crash_mid_checkpoint(tmp_path: Path) -> None:
    """Dying while the checkpoint is rewritten loses nothing: the old one stays in place."""
    directory = tmp_path / "audit"
    crash_writer(directory, b'"file": ', 5)  # only the checkpoint has this
    result = audit.verify_log(directory, KEY)
    assert result.ok, result.problem
    assert any("after the last checkpoint" in n for n in result.notices)
    write_events(directory, 2)
    assert audit.verify_log(directory, KEY).ok


def test_writer_leaves_a_tampered_torn_log_untouched(make_log: MakeLog) -> None:
    """Cut into a checkpointed record: the writer refuses and does not 'repair' anything."""
    directory = make_log(20)
    path = first_file(directory)
    damaged = path.read_bytes()[:-300]
    path.write_bytes(damaged)
    with pytest.raises(AuditChainBroken) as caught:
        audit.AuditLog(directory, KEY)
    assert caught.value.kind == "truncated"
    assert path.read_bytes() == damaged
    assert not list(directory.glob("*.torn-*"))


def test_checkpoint_failure_keeps_the_records(
    make_log: MakeLog, caplog: pytest.LogCaptureFixture
) -> None:
    """A checkpoint that cannot be replaced (here: a folder in the way of the temp file)
    does not make the writer fail a batch whose records are already durable."""
    directory = make_log(5)
    blocker = directory / "audit.checkpoint.new"
    blocker.mkdir()
    with caplog.at_level("WARNING", logger="exoimap.audit.log"):
        write_events(directory, 3)
    assert "checkpoint not updated" in caplog.text
    blocker.rmdir()
    result = audit.verify_log(directory, KEY)
    assert result.ok
    assert result.records == 8
    assert any("3 record(s) after the last checkpoint" in n for n in result.notices)


def test_disk_full_in_the_middle_of_a_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills up after a batch's first file was written and before the next one:
    the error is DiskFull, and the retry writes the rest once (no duplicate, no gap)."""
    import errno

    from exoimap.audit import log as log_module
    from exoimap.errors import DiskFull

    directory = tmp_path / "audit"
    auditor = audit.Auditor(audit.AuditLog(directory, KEY, max_file_bytes=2500), batch_size=10)
    real_write = os.write
    record_writes = 0

    def disk_fills(fd: int, data: bytes) -> int:
        nonlocal record_writes
        if b'"event":' in bytes(data):
            record_writes += 1
            if record_writes == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(log_module.os, "write", disk_fills)
    for n in range(9):
        auditor.emit(audit.ArchiveRead(account="work", folder=f"F{n}"))
    with pytest.raises(DiskFull):
        auditor.emit(audit.ArchiveRead(account="work", folder="F9"))  # the batch is full
    monkeypatch.undo()
    auditor.close()

    folders = [r.data["folder"] for r in audit.read_records(directory)]
    assert folders == [f"F{n}" for n in range(10)]
    assert len(list(directory.glob("audit-*.jsonl"))) > 1
    assert audit.verify_log(directory, KEY).ok


def test_unreadable_log_is_a_clear_error(make_log: MakeLog) -> None:
    from exoimap.errors import StoreUnavailable

    directory = make_log(3)
    (directory / "audit-000002.jsonl").mkdir()  # not a file
    with pytest.raises(StoreUnavailable, match="reading the end of the audit log"):
        audit.AuditLog(directory, KEY)
    with pytest.raises(StoreUnavailable, match="cannot read the audit log"):
        audit.verify_log(directory, KEY)
    with pytest.raises(StoreUnavailable, match="cannot read"):
        list(audit.read_records(directory))
