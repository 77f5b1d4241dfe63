"""The anchor in the vault (a deleted, emptied or swapped audit folder is caught) and
``exoimap audit recover`` (a broken log is kept, a new segment linked to it)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from exoimap import audit
from exoimap.audit.recover import recover_log
from exoimap.auth.audit_key import audit_key_for, load_audit_key
from exoimap.config import Paths
from exoimap.errors import AuditChainBroken, ConfigError

from .conftest import run


def fill(count: int) -> None:
    """What any command does: open the installation's auditor and write."""
    paths = Paths.from_env()
    with audit.open_auditor(paths, key=audit_key_for(paths)) as auditor:
        for n in range(count):
            auditor.emit(audit.ArchiveRead(account="work", messages=n))


def records(directory: Path) -> list[dict[str, object]]:
    lines = []
    for path in sorted(directory.glob("audit-*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines()]
    return lines


def test_a_deleted_audit_folder_is_caught_then_recorded_and_recovered(
    home: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    fill(3)
    shutil.rmtree(home / "audit")
    code, _, err = run(capfd, "audit", "verify")
    assert code == 1
    assert "anchor: record 3: the vault's anchor names record 3" in err
    assert "deleted, cut, or replaced" in err

    # The next command is not blocked: the finding goes into the new chain, with advice.
    writer_log = logging.getLogger("exoimap.audit.log")
    writer_log.addHandler(caplog.handler)  # the CLI run above stopped propagation
    try:
        fill(2)
    finally:
        writer_log.removeHandler(caplog.handler)
    assert "exoimap audit recover --reason" in caplog.text
    first = records(home / "audit")[0]
    assert first["event"] == "audit.reset_detected"
    assert first["data"]["anchor_seq"] == 3  # type: ignore[index]
    code, _, err = run(capfd, "audit", "verify")
    assert code == 1
    assert "reset: record 1" in err
    assert "exoimap audit recover --reason TEXT" in err

    code, out, _ = run(capfd, "audit", "recover", "--reason", "folder removed by a cleanup job")
    assert code == 0, out
    assert "segment-0001" in out
    code, out, _ = run(capfd, "audit", "verify")
    assert code == 0, out
    assert "reason: folder removed by a cleanup job" in out
    assert "segment-0001" in out
    fill(1)
    assert run(capfd, "audit", "verify")[0] == 0


def test_a_swapped_in_older_copy_of_the_folder_is_caught(
    home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    fill(2)
    shutil.copytree(home / "audit", home / "older")
    fill(3)
    shutil.rmtree(home / "audit")
    (home / "older").rename(home / "audit")  # files and checkpoint agree: only the anchor knows
    code, _, err = run(capfd, "audit", "verify")
    assert code == 1
    assert "anchor: record 5" in err
    assert "ends before (at 2)" in err


def test_a_log_truncated_to_nothing_is_caught(
    home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    paths = Paths.from_env()
    with audit.open_auditor(paths, key=audit_key_for(paths)):
        pass  # the checkpoint for an empty log
    empty_checkpoint = (home / "audit" / "audit.checkpoint").read_bytes()
    fill(4)
    (home / "audit" / "audit-000001.jsonl").write_bytes(b"")
    (home / "audit" / "audit.checkpoint").write_bytes(empty_checkpoint)
    code, _, err = run(capfd, "audit", "verify")
    assert code == 1
    assert "anchor: record 4" in err


def test_a_forged_anchor_is_reported(home: Path, capfd: pytest.CaptureFixture[str]) -> None:
    fill(2)
    anchor = home / "vault" / "audit.anchor"
    data = json.loads(anchor.read_text())
    data["seq"] = 1
    anchor.write_text(json.dumps(data))
    code, _, err = run(capfd, "audit", "verify")
    assert code == 1
    assert "anchor: the audit anchor in the vault is not authenticated" in err


def test_a_deleted_checkpoint_is_recovered_into_a_new_linked_segment(
    home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    fill(3)
    old = records(home / "audit")
    (home / "audit" / "audit.checkpoint").unlink()
    with pytest.raises(AuditChainBroken, match="exoimap audit recover --reason TEXT"):
        fill(1)  # the writer never writes over evidence...
    code, out, _ = run(capfd, "audit", "recover", "--reason", "checkpoint lost in a disk repair")
    assert code == 0
    assert "checkpoint" in out
    sealed = home / "audit" / "segment-0001"
    assert records(sealed) == old  # kept as it was
    assert oct(sealed.stat().st_mode & 0o777) == "0o700"
    first = records(home / "audit")[0]
    assert first["event"] == "audit.segment_started"
    assert first["seq"] == 4
    assert first["prev"] == old[-1]["hash"]
    assert first["data"]["reason"] == "checkpoint lost in a disk repair"  # type: ignore[index]
    assert first["data"]["problem_kind"] == "checkpoint"  # type: ignore[index]

    fill(2)  # ...and after the recovery, commands write again
    code, out, _ = run(capfd, "audit", "verify")
    assert code == 0, out
    code, queried, _ = run(capfd, "audit", "query", "--format", "json")
    assert [r["seq"] for r in json.loads(queried)] == [1, 2, 3, 4, 5, 6]  # the old log too
    assert "record 4: a new segment started after a recovery" in out
    assert "checkpoint lost in a disk repair" in out
    assert "the checkpoint is missing" in out


def test_a_sealed_segment_changed_afterwards_fails_verify(
    home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    fill(3)
    (home / "audit" / "audit.checkpoint").unlink()
    assert run(capfd, "audit", "recover", "--reason", "test")[0] == 0
    sealed_file = home / "audit" / "segment-0001" / "audit-000001.jsonl"
    sealed_file.write_bytes(b"".join(sealed_file.read_bytes().splitlines(keepends=True)[:2]))
    code, _, err = run(capfd, "audit", "verify")
    assert code == 1
    assert "segment: record 4: the segment segment-0001 sealed by the recovery changed" in err


def test_a_second_recovery_links_to_the_first_segment(
    home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    fill(2)
    (home / "audit" / "audit.checkpoint").unlink()
    assert run(capfd, "audit", "recover", "--reason", "first")[0] == 0
    fill(1)
    (home / "audit" / "audit.checkpoint").unlink()
    assert run(capfd, "audit", "recover", "--reason", "second")[0] == 0
    code, out, _ = run(capfd, "audit", "verify")
    assert code == 0, out
    assert "reason: second" in out
    assert "reason: first" in out


def test_an_intact_log_is_not_recovered(home: Path, capfd: pytest.CaptureFixture[str]) -> None:
    fill(2)
    before = sorted(p.name for p in (home / "audit").iterdir())
    code, out, _ = run(capfd, "audit", "recover", "--reason", "just because")
    assert code == 0
    assert "intact: nothing to recover" in out
    assert sorted(p.name for p in (home / "audit").iterdir()) == before


def test_a_recovery_needs_a_reason(home: Path, capfd: pytest.CaptureFixture[str]) -> None:
    fill(1)
    (home / "audit" / "audit.checkpoint").unlink()
    assert run(capfd, "audit", "recover")[0] == 2
    paths = Paths.from_env()
    with pytest.raises(ConfigError, match="say why"):
        recover_log(paths.audit_dir, load_audit_key(paths, create=False), "  ")
    assert not (home / "audit" / "segment-0001").exists()
