"""``--json`` of ``sync``, ``verify`` and ``archive stats`` against the sandbox tenant: one
JSON object per account on stdout, which a script parses; failures are objects too (with
the exit code), and nothing else is on stdout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from exoimap.cli import EXIT_FAILURE, EXIT_PARTIAL, EXIT_SIGN_IN, EXIT_USAGE, main
from exoimap.config import Paths
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.store.conformance import sample_message

from .sync_helpers import isolated_home, signed_in_account


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


def objects(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]]]:
    """Run ``exoimap ARGV``; its exit code and every stdout line parsed as JSON (each line
    must be one object)."""
    capsys.readouterr()
    code = main(list(argv))
    lines = capsys.readouterr().out.splitlines()
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(p, dict) for p in parsed)
    return code, parsed


def test_sync_json_is_one_object_per_account_with_its_folders(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 3, "Archive": 2})
    signed_in_account(sandbox_tenant, "home", {"INBOX": 1})
    code, found = objects(capsys, "sync", "--all", "--json")
    assert code == 0
    assert [(o["command"], o["account"], o["ok"]) for o in found] == [
        ("sync", "work", True),
        ("sync", "home", True),
    ]
    work = found[0]
    assert work["summary"]["fetched"] == 5
    assert work["dry_run"] is False
    assert work["archive"] == str(Paths.from_env().archive_dir("work"))
    by_folder = {f["folder"]: f for f in work["folders"]}
    assert by_folder["INBOX"]["fetched"] == 3
    assert by_folder["Archive"]["fetched"] == 2
    assert by_folder["INBOX"]["errors"] == []
    assert found[1]["summary"]["fetched"] == 1

    sandbox_tenant.exchange.deliver(upn, sample_message(77, 900), folder="INBOX")
    code, found = objects(capsys, "sync", "work", "--dry-run", "--json")
    assert code == 0
    assert found[0]["dry_run"] is True
    assert {f["folder"]: f["planned"] for f in found[0]["folders"]}["INBOX"] == 1
    code, found = objects(capsys, "sync", "work", "--json")
    assert found[0]["summary"]["fetched"] == 1


def test_sync_json_reports_an_account_that_needs_a_sign_in(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_in_account(sandbox_tenant, "work", {"INBOX": 1})
    signed_in_account(sandbox_tenant, "gone", {"INBOX": 1})
    assert main(["logout", "gone"]) == 0
    code, found = objects(capsys, "sync", "--all", "--json")
    assert code == EXIT_PARTIAL
    work, gone = found
    assert work["ok"] is True
    assert gone["ok"] is False
    assert gone["exit_code"] == EXIT_SIGN_IN
    assert "exoimap login gone" in gone["error"]


def test_verify_json_lists_each_difference(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_in_account(sandbox_tenant, "work", {"INBOX": 3})
    assert main(["sync", "work"]) == 0
    code, found = objects(capsys, "verify", "work", "--deep", "--json")
    assert code == 0
    (result,) = found
    assert result["ok"] is True
    assert result["deep"] is True
    assert result["messages"] == 3
    assert result["files_checked"] == 3
    assert result["problems"] == []

    maildir = Paths.from_env().archive_dir("work") / "maildir"
    victim = next(p for p in (maildir / "cur").iterdir())
    victim.unlink()
    code, found = objects(capsys, "verify", "work", "--json")
    assert code == EXIT_FAILURE
    (result,) = found
    assert result["ok"] is False
    assert result["differences_found"] is True
    assert [f["folder"] for f in result["files_missing"]] == ["INBOX"]

    code, found = objects(capsys, "verify", "work", "--repair", "--json")
    assert code == 0
    (result,) = found
    assert result["differences_found"] is True
    assert result["ok"] is True  # after the repair
    assert result["repaired"]["summary"]["fetched"] == 1
    assert main(["verify", "work", "--deep"]) == 0


def test_archive_stats_json_and_a_failure_object(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_in_account(sandbox_tenant, "work", {"INBOX": 2, "Notes": 1})
    signed_in_account(sandbox_tenant, "never", {"INBOX": 1})
    assert main(["sync", "work"]) == 0
    code, found = objects(capsys, "archive", "stats", "work", "--json")
    assert code == 0
    (stats,) = found
    assert stats["messages"] == 3
    holding = {f["folder"]: f["messages"] for f in stats["folders"] if f["messages"]}
    assert holding == {"INBOX": 2, "Notes": 1}  # and the mailbox's empty default folders
    assert stats["bytes"] == sum(f["bytes"] for f in stats["folders"]) > 0

    # "never" was never synced: its archive does not exist
    code, found = objects(capsys, "archive", "stats", "work", "never", "--json")
    assert code == EXIT_PARTIAL
    assert [(o["account"], o["ok"]) for o in found] == [("work", True), ("never", False)]
    assert found[1]["exit_code"] != 0
    assert found[1]["error"]


def test_json_escapes_what_the_server_named(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder named with a terminal escape: the JSON line carries it escaped (a script
    gets the real name back), never the raw control character."""
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 1})
    hostile = "Evil\x1b[2J\u009b31m"
    exchange = sandbox_tenant.exchange
    exchange.run(lambda: exchange.server.mailboxes.get(upn).store.create_folder_now(hostile))
    exchange.deliver(upn, sample_message(5, 600), folder=hostile)
    capsys.readouterr()
    assert main(["sync", "work", "--json"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\u009b" not in out
    folders = [f["folder"] for f in json.loads(out)["folders"]]
    assert hostile in folders


def test_verify_json_does_not_go_with_restore(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", "--restore", "--json"]) == EXIT_USAGE
    assert "--json" in capsys.readouterr().err
