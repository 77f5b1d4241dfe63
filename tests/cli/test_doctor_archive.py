"""``exoimap doctor``'s archive checks against a real synced archive (sandbox tenant), each
fault injected for real: the lock held by a live process and left by an ended one, a damaged
index, a deleted message file and a stray one, a small disk that the archive's growth fills
within days. Each is found, its fix printed, and the exit code says whether it failed."""

from __future__ import annotations

import datetime as _dt
import shutil
from pathlib import Path

import pytest

from exoimap.cli import EXIT_FAILURE, main
from exoimap.config import Paths
from exoimap.sandbox.tenant import SandboxTenant

from ..store.test_archive_inspect import holding_lock, recorded_runs
from .sync_helpers import isolated_home, signed_in_account
from .test_doctor_cli import _doctor
from .test_expected_failures import _tmpfs


@pytest.fixture
def archive(sandbox_tenant: SandboxTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The archive of account 'work' after one sync of 3 INBOX messages."""
    home = isolated_home(tmp_path, monkeypatch)
    signed_in_account(sandbox_tenant, "work", {"INBOX": 3})
    assert main(["sync", "work"]) == 0
    return home / "archive" / "work"


def _text(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["doctor", *args])
    return code, capsys.readouterr().out


def _inbox_files(archive: Path) -> list[Path]:
    return sorted((archive / "maildir" / "cur").iterdir())


def test_a_lock_held_by_a_live_process_is_a_warning_naming_it(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with holding_lock(archive / "lock") as child:
        code, found = _doctor(capsys)
        text_code, out = _text(capsys)
    lock = found["archive-lock/work"]
    assert code == 0  # a sync running is no failure
    assert lock["ok"]
    assert lock["warning"]
    assert lock["detail"].startswith(f"held by pid {child.pid} (")
    assert "-c import sys; from pathlib" in lock["detail"]  # its command line
    assert "running for 0 h" in lock["detail"]
    assert f"`kill {child.pid}`" in lock["fix"]
    assert found["archive-files/work"]["ok"]
    assert text_code == 0
    assert f"warn archive-lock work: held by pid {child.pid}" in out
    assert "doctor: all checks passed (1 warning)" in out

    # the holder ended: its pid stays in the file, and that is no lock
    code, found = _doctor(capsys)
    lock = found["archive-lock/work"]
    assert code == 0
    assert lock["ok"]
    assert not lock["warning"]
    assert f"pid {child.pid}, which held it last, has ended" in lock["detail"]
    assert main(["sync", "work"]) == 0  # and the next run takes it


def test_a_damaged_index_is_found_read_only_and_its_fix_works(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = archive / "index.sqlite"
    data = bytearray(index.read_bytes())
    page = 4096
    assert len(data) >= 3 * page
    for start in range(page, len(data), page):  # every page but the header's
        data[start + 8 : start + 400] = b"\xff" * 392
    index.write_bytes(bytes(data))
    code, found = _doctor(capsys)
    assert code == EXIT_FAILURE
    checked = found["archive-index/work"]
    assert not checked["ok"]
    # quick_check names the damage, or SQLite meets it first while reading the schema
    # (which one depends on where the pages of this index fell)
    assert any(
        said in checked["detail"]
        for said in ("failed its integrity check (quick_check: ", "disk image is malformed")
    )
    assert "\n" not in checked["detail"]
    assert "`exoimap verify work`" in checked["fix"]
    assert str(archive / "damaged") in checked["fix"]
    assert "archive-files/work" not in found  # nothing to compare against
    assert index.read_bytes() == bytes(data)  # the doctor wrote nothing

    capsys.readouterr()
    main(["verify", "work"])  # the fix: the index is kept aside and rebuilt
    assert list((archive / "damaged").glob("index-*.sqlite"))
    code, found = _doctor(capsys)
    assert found["archive-index/work"]["ok"]
    assert found["archive-files/work"]["ok"]


def test_an_index_that_is_no_database_is_found(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index = archive / "index.sqlite"
    index.write_bytes(b"this is not SQLite" + index.read_bytes()[18:])
    code, found = _doctor(capsys)
    assert code == EXIT_FAILURE
    checked = found["archive-index/work"]
    assert not checked["ok"]
    assert "file is not a database" in checked["detail"]
    assert "`exoimap verify work`" in checked["fix"]


def test_a_missing_index_is_reported_not_created(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (archive / "index.sqlite").unlink()
    code, found = _doctor(capsys)
    assert code == EXIT_FAILURE
    checked = found["archive-index/work"]
    assert checked["detail"] == f"{archive / 'index.sqlite'} is missing while message files exist"
    assert not (archive / "index.sqlite").exists()


def test_a_deleted_message_file_and_a_stray_one_are_found(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _inbox_files(archive)
    assert len(files) == 3
    files[0].unlink()
    (archive / "maildir" / "cur" / "stray\x1b[31m:2,S").write_bytes(b"Subject: x\r\n\r\nx\r\n")
    code, found = _doctor(capsys)
    assert code == EXIT_FAILURE
    checked = found["archive-files/work"]
    assert not checked["ok"]
    assert checked["detail"].startswith("3 indexed messages: 1 missing, 1 not in the index (")
    assert "INBOX UID " in checked["detail"]
    assert "stray\\x1b[31m not in the index" in checked["detail"]  # escaped
    assert "\x1b" not in checked["detail"]
    assert "`exoimap verify --repair work`" in checked["fix"]
    assert "move them out of the Maildir" in checked["fix"]

    text_code, out = _text(capsys)
    assert text_code == EXIT_FAILURE
    assert "FAIL archive-files work: 3 indexed messages: 1 missing" in out
    assert "\x1b" not in out


def test_a_file_of_another_size_is_found_and_repair_fetches_it(
    archive: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = _inbox_files(archive)[1]
    damaged.write_bytes(damaged.read_bytes()[:-5])
    code, found = _doctor(capsys)
    assert code == EXIT_FAILURE
    checked = found["archive-files/work"]
    assert "1 of another size than indexed" in checked["detail"]
    assert "size differs" in checked["detail"]
    assert "verify --deep work" not in checked["detail"]

    capsys.readouterr()
    main(["verify", "--repair", "work"])
    code, found = _doctor(capsys)
    assert found["archive-files/work"]["ok"]  # the damaged copy is fetched again


def test_free_space_that_the_growth_fills_within_days_is_found(
    archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, found = _doctor(capsys)
    assert "growth not known yet (1 finished run recorded" in found["archive-growth/work"]["detail"]
    with _tmpfs(tmp_path / "small", "8m") as disk:
        shutil.copytree(archive, disk / "work")
        now = _dt.datetime.now(_dt.UTC)
        runs = [(now - _dt.timedelta(days=ago), 2 << 20) for ago in (3, 2, 1)]  # 2 MiB a day
        recorded_runs(disk / "work" / "runs", runs)
        config = Paths.from_env().config_file
        config.write_text(config.read_text() + f'archive = "{disk / "work"}"\n')
        code, found = _doctor(capsys, "--min-free", "0")
        relaxed, found_relaxed = _doctor(capsys, "--min-free", "0", "--min-free-days", "2")
    growth = found["archive-growth/work"]
    assert code == EXIT_FAILURE
    assert not growth["ok"]
    assert "from 4 runs over 3.0 days" in growth["detail"]
    assert "a day" in growth["detail"]
    days = float(growth["detail"].rpartition("full in about ")[2].split()[0])
    assert 2 < days < 7  # under 8 MiB free, a little over 1.3 MiB a day
    assert "[accounts.work]" in growth["fix"]
    assert "at least 7 days" in growth["fix"]
    assert relaxed == 0
    assert found_relaxed["archive-growth/work"]["ok"]
