"""``exoimap sync`` keeps the search index up to date: against the sandbox tenant, real
sign-in and IMAP, the index is read as the console reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from exoimap.cli import main
from exoimap.config import Paths
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.store.conformance import sample_message
from exoimap.store.search import SearchIndex, SearchScope, index_path, parse_query

from .sync_helpers import isolated_home, signed_in_account


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


def test_sync_indexes_new_mail_for_search(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 4, "Sent Items": 2})
    index = SearchIndex(index_path(Paths.from_env()))
    # no console, no index: a sync that only backs up does not pay for indexing
    assert main(["sync", "work"]) == 0
    assert not index.exists
    index.create()  # as `exoimap console` does when it starts
    assert main(["sync", "work"]) == 0  # nothing new to fetch: the archive gets indexed
    everything = SearchScope(content=(upn.lower(),))

    def found(text: str) -> int:
        return index.search(parse_query(text), everything, page=1, size=50).total

    assert found("folder:inbox") == 4
    assert found('folder:"sent items"') == 2
    assert found("from:example.com") == 6
    assert found("armadillo") == 0
    sandbox_tenant.exchange.deliver(
        upn, sample_message(900).replace(b"line 900", b"armadillo"), folder="INBOX"
    )
    assert main(["sync", "work"]) == 0
    assert found("armadillo") == 1
    assert found("folder:inbox") == 5
    # another mailbox's scope sees none of it
    assert (
        index.search(parse_query("armadillo"), SearchScope(content=("x@*",)), page=1, size=5).total
        == 0
    )
    capsys.readouterr()
