"""Missing or unreachable services end tenant commands with one line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from exoimap.cli import main
from exoimap.sandbox.services import free_port
from tests.cli.sync_helpers import isolated_home

pytestmark = pytest.mark.xdist_group("tenant")


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("exoimap: error: ")
    return err


def test_worker_without_a_queue_says_how_to_give_one(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    isolated_home(tmp_path, monkeypatch)
    monkeypatch.delenv("EXOIMAP_REDIS_URL", raising=False)
    assert main(["worker", "--database", database_url]) == 2
    assert "EXOIMAP_REDIS_URL" in _one_line_error(capsys)


def test_unreachable_queue_and_catalog_are_one_line_failures(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    isolated_home(tmp_path, monkeypatch)
    nobody = free_port()
    assert (
        main(["worker", "--database", database_url, "--redis", f"redis://127.0.0.1:{nobody}"]) == 1
    )
    assert "cannot reach the job queue" in _one_line_error(capsys)
    gone = f"postgresql://postgres@127.0.0.1:{nobody}/x"
    assert main(["tenant", "status", "acme", "--database", gone]) == 1
    assert "cannot reach the tenant catalog database" in _one_line_error(capsys)


def test_tenant_add_refuses_what_no_worker_could_sign_in_with(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    isolated_home(tmp_path, monkeypatch)
    not_a_key = tmp_path / "cert.pem"
    not_a_key.write_text("not a certificate")
    base = ["tenant", "add", "acme", "--tenant", "contoso.com", "--client-id", "x"]
    assert main([*base, "--certificate", str(not_a_key), "--database", database_url]) == 2
    assert "is not a PEM file with a private key and certificate" in _one_line_error(capsys)
    assert (
        main([*base, "--certificate", str(tmp_path / "none.pem"), "--database", database_url]) == 2
    )
    assert "does not exist" in _one_line_error(capsys)
    # nothing was stored
    assert main(["tenant", "status", "acme", "--database", database_url]) == 2
    assert "no tenant 'acme' in the catalog" in _one_line_error(capsys)
