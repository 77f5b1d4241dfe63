"""The client refuses every unsafe connection before any credential leaves."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import pytest

from exoimap.errors import ConfigError, TLSRefused
from exoimap.net.credentials import OAuth2Credentials, PasswordCredentials, StaticToken
from exoimap.net.imap import Endpoint, ImapClient, RetryPolicy
from exoimap.net.tls import TLSPolicy
from exoimap.sandbox.ca import LocalCA
from exoimap.sandbox.dovecot import DovecotServer
from exoimap.secrets import Secret
from tests.net.servers import RecordingServer, server_context

pytestmark = pytest.mark.anyio

PASSWORD = "correct-horse-battery-staple"
TOKEN = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ0ZXN0LXRva2VuLXZhbHVlIn0.c2lnbmF0dXJlLXZhbHVl"


def _leaks(received: bytes) -> list[str]:
    """Every form in which a credential could have travelled."""
    found = []
    for secret in (PASSWORD, TOKEN):
        forms = [secret.encode()]
        for prefix in ("", "\x00alice\x00", "user=alice\x01auth=Bearer "):
            forms.append(base64.b64encode((prefix + secret).encode())[:20])
        if any(f in received for f in forms):
            found.append(secret[:6])
    for verb in (b"AUTHENTICATE", b"LOGIN"):
        if verb in received.upper():
            found.append(verb.decode())
    return found


def _clients(port: int, policy: TLSPolicy) -> list[ImapClient]:
    endpoint = Endpoint("127.0.0.1", port, policy, connect_timeout=5)
    retry = RetryPolicy(max_attempts=0)
    return [
        ImapClient(endpoint, PasswordCredentials("alice", Secret(PASSWORD)), retry=retry),
        ImapClient(
            endpoint,
            OAuth2Credentials("alice", StaticToken(Secret(TOKEN))),
            retry=retry,
        ),
    ]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("pki")
    trusted = LocalCA.load_or_create(root / "trusted", "trusted test CA")
    stranger = LocalCA.load_or_create(root / "stranger", "unknown test CA")
    good = trusted.issue(("127.0.0.1", "localhost"), stem="good")
    wrong_name = trusted.issue(("mail.example.org",), stem="wrong-name")
    unknown = stranger.issue(("127.0.0.1",), stem="unknown")
    return {
        "ca": trusted.cert_file,
        "good_cert": good.cert_file,
        "good_key": good.key_file,
        "wrong_cert": wrong_name.cert_file,
        "wrong_key": wrong_name.key_file,
        "unknown_cert": unknown.cert_file,
        "unknown_key": unknown.key_file,
    }


async def test_plaintext_server_on_the_tls_port_is_refused(pki: dict[str, Path]) -> None:
    async with RecordingServer() as server:
        for client in _clients(server.port, TLSPolicy(ca_file=pki["ca"])):
            with pytest.raises(TLSRefused, match="did not answer with TLS"):
                await client.session()
    assert _leaks(bytes(server.received)) == []


async def test_certificate_from_an_unknown_ca_is_refused(pki: dict[str, Path]) -> None:
    ctx = server_context(str(pki["unknown_cert"]), str(pki["unknown_key"]))
    async with RecordingServer(tls=ctx) as server:
        for client in _clients(server.port, TLSPolicy(ca_file=pki["ca"])):
            with pytest.raises(TLSRefused, match="not trusted"):
                await client.session()
    assert server.received == b""


async def test_host_name_mismatch_is_refused(pki: dict[str, Path]) -> None:
    ctx = server_context(str(pki["wrong_cert"]), str(pki["wrong_key"]))
    async with RecordingServer(tls=ctx) as server:
        for client in _clients(server.port, TLSPolicy(ca_file=pki["ca"])):
            with pytest.raises(TLSRefused, match="host name mismatch"):
                await client.session()
    assert server.received == b""


async def test_trusted_certificate_is_accepted_by_the_same_policy(pki: dict[str, Path]) -> None:
    # The control for the two tests above: only the certificate differs.
    ctx = server_context(str(pki["good_cert"]), str(pki["good_key"]))
    async with RecordingServer(tls=ctx, capabilities="IMAP4rev1 AUTH=PLAIN") as server:
        client = _clients(server.port, TLSPolicy(ca_file=pki["ca"]))[0]
        session = await client.session()
        assert session.transport.tls_version in ("TLSv1.2", "TLSv1.3")
        await client.close()
    assert b"AUTHENTICATE PLAIN" in server.received


async def test_stripped_starttls_is_refused(pki: dict[str, Path]) -> None:
    # A man in the middle removed STARTTLS from the capabilities.
    async with RecordingServer(capabilities="IMAP4rev1 AUTH=PLAIN LOGIN") as server:
        for client in _clients(server.port, TLSPolicy(ca_file=pki["ca"], starttls=True)):
            with pytest.raises(TLSRefused, match="does not offer STARTTLS"):
                await client.session()
    assert _leaks(bytes(server.received)) == []
    assert set(bytes(server.received).split(b"\r\n")) == {b"S0 CAPABILITY", b""}


async def test_starttls_answered_with_no_is_refused(pki: dict[str, Path]) -> None:
    async with RecordingServer(
        capabilities="IMAP4rev1 STARTTLS AUTH=PLAIN", starttls_answer=b"NO not today"
    ) as server:
        for client in _clients(server.port, TLSPolicy(ca_file=pki["ca"], starttls=True)):
            with pytest.raises(TLSRefused, match="refused STARTTLS"):
                await client.session()
    assert _leaks(bytes(server.received)) == []


async def test_starttls_to_dovecot_signs_in(dovecot: DovecotServer) -> None:
    policy = TLSPolicy(ca_file=dovecot.ca_file, starttls=True)
    endpoint = Endpoint(dovecot.host, dovecot.imap_port, policy)
    client = ImapClient(
        endpoint, PasswordCredentials("bob@lab.test", dovecot.password("bob@lab.test"))
    )
    async with client:
        session = await client.session()
        assert session.transport.tls_version in ("TLSv1.2", "TLSv1.3")
        assert "UIDPLUS" in client.capabilities  # the post-login list, read after TLS


async def test_dovecot_plain_port_without_starttls_is_refused(dovecot: DovecotServer) -> None:
    # Implicit TLS to the plain-text port: refused even though Dovecot would accept LOGIN
    # from 127.0.0.1 without TLS.
    endpoint = Endpoint(dovecot.host, dovecot.imap_port, TLSPolicy(ca_file=dovecot.ca_file))
    client = ImapClient(
        endpoint,
        PasswordCredentials("bob@lab.test", dovecot.password("bob@lab.test")),
        retry=RetryPolicy(max_attempts=0),
    )
    with pytest.raises(TLSRefused):
        await client.session()


def test_policy_always_verifies(tmp_path: Path) -> None:
    ctx = TLSPolicy().context()
    assert ctx.verify_mode is ssl.CERT_REQUIRED
    assert ctx.check_hostname is True
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    fields = set(TLSPolicy.__dataclass_fields__)
    assert fields == {"ca_file", "starttls"}  # no switch that turns verification off


def test_ca_file_adds_to_the_system_store(tmp_path: Path) -> None:
    ca = LocalCA.load_or_create(tmp_path / "ca")
    base = TLSPolicy().context().cert_store_stats()["x509_ca"]
    extended = TLSPolicy(ca_file=ca.cert_file).context().cert_store_stats()["x509_ca"]
    assert extended == base + 1


def test_unreadable_ca_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("hello")
    with pytest.raises(ConfigError, match="ca_file"):
        TLSPolicy(ca_file=bad).context()
