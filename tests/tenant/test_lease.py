"""The per-mailbox lease on the real Redis: exclusive, renewed while held, lapsing when its
holder stops renewing, released only by its holder."""

from __future__ import annotations

import time

import pytest
import redis

from exoimap.tenant.lease import (
    LeaseBusy,
    TenantBusy,
    lease_key,
    mailbox_lease,
    slot_key,
    tenant_slot,
)

pytestmark = pytest.mark.xdist_group("tenant")


def test_a_held_lease_is_renewed_past_its_length_and_excludes_others(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    with mailbox_lease(client, "acme", "a@contoso.com", seconds=3.0):
        time.sleep(7.0)  # more than twice the lease: only renewal keeps it
        with pytest.raises(LeaseBusy), mailbox_lease(client, "acme", "A@contoso.com", 1.0):
            pass
        # another mailbox is not affected
        with mailbox_lease(client, "acme", "b@contoso.com", seconds=1.0):
            pass
    # released at the end: free at once
    with mailbox_lease(client, "acme", "a@contoso.com", seconds=1.0):
        pass
    assert client.exists(lease_key("acme", "a@contoso.com")) == 0


def test_a_lease_whose_holder_died_lapses(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    # what a killed worker leaves: the lease, no longer renewed
    dead = client.lock(lease_key("acme", "a@contoso.com"), timeout=1.0, thread_local=False)
    assert dead.acquire(blocking=False)
    with pytest.raises(LeaseBusy), mailbox_lease(client, "acme", "a@contoso.com", 1.0):
        pass
    deadline = time.monotonic() + 30
    while client.exists(lease_key("acme", "a@contoso.com")) and time.monotonic() < deadline:
        time.sleep(0.1)
    with mailbox_lease(client, "acme", "a@contoso.com", seconds=1.0):
        # the dead holder cannot release the lease someone else now holds
        with pytest.raises(redis.exceptions.LockNotOwnedError):
            dead.release()
        assert client.exists(lease_key("acme", "a@contoso.com")) == 1


def test_tenant_slots_let_limit_holders_in_and_free_on_release(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    with (
        tenant_slot(client, "acme", 2, seconds=3.0),
        tenant_slot(client, "acme", 2, seconds=3.0),
    ):
        with pytest.raises(TenantBusy), tenant_slot(client, "acme", 2, seconds=3.0):
            pass
        with tenant_slot(client, "other", 2, seconds=3.0):  # per tenant
            pass
    with tenant_slot(client, "acme", 2, seconds=3.0):
        assert client.exists(slot_key("acme", 0)) == 1
    assert client.exists(slot_key("acme", 0), slot_key("acme", 1)) == 0
    # 0: no limit, nothing held in Redis
    with tenant_slot(client, "acme", 0, seconds=3.0):
        assert client.dbsize() == 0
