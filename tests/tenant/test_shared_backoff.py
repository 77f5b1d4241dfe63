"""One backoff for the whole tenant, whoever is told to back off: a Microsoft Graph 429 seen
by discovery holds back a worker's next IMAP command, and an IMAP throttling answer heard by
a worker holds back discovery's next Graph request. The pause lives in the real Redis; the
sandbox's own records of when it answered (Graph) and was sent commands (IMAP) show that
nothing went before the pause was over."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import redis

from exoimap.auth.vault import Vault
from exoimap.cli import main
from exoimap.config import Paths
from exoimap.net.session import NetEvent
from exoimap.sandbox.identity.graph import GraphAnswer
from exoimap.tenant.budget import Budget, RequestBudget, TenantPause
from exoimap.tenant.catalog import open_catalog
from exoimap.tenant.discover import discover
from exoimap.tenant.graph import list_users
from exoimap.tenant.run_mailbox import WorkerContext, run_mailbox
from exoimap.tenant.signin import graph_token
from tests.tenant.helpers import Setup, add_tenant, archived, delivered, make_mailboxes

pytestmark = [pytest.mark.xdist_group("tenant"), pytest.mark.slow]

#: Redis keeps the pause in whole milliseconds.
ROUNDING = 0.002


def _answers(setup: Setup, since: float) -> list[GraphAnswer]:
    graph = setup.sandbox.identity.graph
    return [a for a in list(graph.answers) if a.app_id == setup.app.client_id and a.at >= since]


def test_a_graph_429_seen_by_discovery_holds_back_a_workers_next_imap_command(
    setup: Setup, graph_budget: Callable[..., object]
) -> None:
    upns = make_mailboxes(setup.sandbox, setup.app, 1, messages=2)
    setup.add_and_discover()
    with open_catalog(setup.database) as catalog:
        tenant = catalog.tenant("acme")
    access = graph_token(tenant)
    # one Graph request per 5 s for the app, and this listing spends it (after waiting out
    # the discovery above): discovery's first request is answered 429, Retry-After 5 s
    graph_budget(graph_budget=1, graph_budget_window=5)
    list(list_users(tenant.graph_url, access, ca_file=tenant.ca_file))
    job_started: list[float] = []

    def while_discovery_waits(_seconds: float) -> None:
        # a worker's job for the tenant starts while discovery waits out the 429: its own
        # Redis client and request budget see the pause discovery recorded
        job_started.append(time.monotonic())
        context = WorkerContext(
            setup.database,
            redis.Redis.from_url(setup.redis_url),
            Vault.from_paths(),
            Paths.from_env(),
        )
        run_mailbox(context, "acme", upns[0].lower())

    pause = TenantPause(
        redis.Redis.from_url(setup.redis_url), "acme", "discovery", sleep=while_discovery_waits
    )
    since = time.monotonic()
    with open_catalog(setup.database) as catalog:
        found = discover(catalog, tenant, token=lambda _t: access, backoff=pause)

    assert [m.upn for m in found.kept] == [upns[0].lower()]
    refused = [a for a in _answers(setup, since) if a.retry_after]
    assert refused, "the sandbox Graph never answered 429"
    first, last = (a.at + a.retry_after - ROUNDING for a in (refused[0], refused[-1]))
    assert job_started
    assert job_started[0] < first  # the job tried during the pause
    commands = setup.sandbox.exchange.app_request_times(setup.app.client_id)
    assert commands, "the job sent no IMAP command"
    assert min(commands) >= first  # and sent nothing before it was over
    served = [a.at for a in _answers(setup, refused[-1].at) if not a.retry_after]
    assert served
    assert min(served) >= last  # nor did discovery
    assert sorted(archived(setup.archives / upns[0].lower())) == sorted(delivered(setup.app, 0, 2))


def test_an_imap_throttling_answer_heard_by_a_worker_holds_back_discovery(setup: Setup) -> None:
    upns = make_mailboxes(setup.sandbox, setup.app, 2, messages=0)
    add_tenant(setup.sandbox, setup.app, setup.database, setup.archives)
    worker = RequestBudget(redis.Redis.from_url(setup.redis_url), "acme", upns[0], Budget())
    before = time.monotonic()
    worker.heard("tenant-acme", NetEvent("throttled", "imap.test", 993, wait=2.0))

    args = ["tenant", "discover", "acme", "--database", setup.database, "--redis", setup.redis_url]
    assert main(args) == 0

    answers = _answers(setup, before)
    assert answers, "discovery asked Graph nothing"
    assert answers[0].at >= before + 2.0 - ROUNDING
    with open_catalog(setup.database) as catalog:
        assert [m.upn for m in catalog.mailboxes("acme")] == [u.lower() for u in upns]
