"""Fixtures of the proxy tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from exoimap.sandbox.tenant import SandboxTenant
from tests.cli.sync_helpers import isolated_home, signed_in_account

#: ``work_account({"INBOX": 2})``: the address of the signed-in account ``work``
WorkAccount = Callable[[dict[str, int]], str]


@pytest.fixture
def work_account(
    sandbox_tenant: SandboxTenant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> WorkAccount:
    """In an isolated exoimap home, the sandbox account ``work`` signed in (device code,
    with SMTP.Send as the proxy's SMTP relay needs), its new mailbox holding the messages
    asked for per folder."""
    isolated_home(tmp_path, monkeypatch)
    return lambda folders: signed_in_account(sandbox_tenant, "work", folders, smtp=True)
