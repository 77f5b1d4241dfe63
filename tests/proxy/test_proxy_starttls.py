"""IMAP with STARTTLS on the proxy's second port (``--starttls-listen``): real ``imaplib`` and
``curl`` (``imap://`` with ``--ssl-reqd``) upgrade, sign in with an app password and read
mail; before the upgrade the proxy offers no sign-in and takes no password."""

from __future__ import annotations

import imaplib

import pytest

from exoimap.config import Paths
from exoimap.store.conformance import sample_message
from tests.proxy.conftest import WorkAccount
from tests.proxy.proxy_helpers import book, curl_tls, running_proxy

pytestmark = pytest.mark.xdist_group("sandbox")


def test_imaplib_upgrades_with_starttls_then_signs_in(
    work_account: WorkAccount,
) -> None:
    upn = work_account({"INBOX": 3})
    password = book(Paths.from_env()).add("old-client", "work").reveal()
    with running_proxy(Paths.from_env()) as proxy:
        with imaplib.IMAP4("127.0.0.1", proxy.starttls_port, timeout=30) as clear:
            assert {"STARTTLS", "LOGINDISABLED"} <= set(clear.capabilities)
            assert "AUTH=PLAIN" not in clear.capabilities
            # imaplib itself refuses LOGIN under LOGINDISABLED: send it raw to see the answer.
            tag = clear._new_tag().decode()
            clear.send(f'{tag} LOGIN "{upn}" "{password}"\r\n'.encode())
            answer = clear.readline()
            assert answer.startswith(f"{tag} NO [PRIVACYREQUIRED]".encode())
        with imaplib.IMAP4("127.0.0.1", proxy.starttls_port, timeout=30) as client:
            client.starttls(ssl_context=proxy.client_context())
            assert "AUTH=PLAIN" in client.capabilities
            assert client.login(upn, password)[0] == "OK"
            status, data = client.select("INBOX", readonly=True)
            assert (status, data) == ("OK", [b"3"])
            _, fetched = client.uid("FETCH", "2", "(BODY.PEEK[])")
            assert fetched[0][1] == sample_message(2, 500 + 37 * 2)


def test_curl_requires_and_gets_tls_on_the_starttls_port(
    work_account: WorkAccount,
) -> None:
    upn = work_account({"INBOX": 2})
    password = book(Paths.from_env()).add("curl", "work").reveal()
    with running_proxy(Paths.from_env()) as proxy:
        url = f"imap://127.0.0.1:{proxy.starttls_port}/INBOX;UID=1"
        done = curl_tls(proxy, f"{upn}:{password}", url)
    assert done.returncode == 0, done.stderr
    assert done.stdout == sample_message(1, 500 + 37)
