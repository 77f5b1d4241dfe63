"""The system's CA store: a bundle that a hashed directory mirrors is left to the directory,
which OpenSSL reads during verification; every other bundle is loaded whole."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from exoimap.errors import ConfigError, TLSRefused
from exoimap.net import tls
from exoimap.net.credentials import PasswordCredentials
from exoimap.net.imap import Endpoint, ImapClient, RetryPolicy
from exoimap.net.tls import TLSPolicy
from exoimap.net.trust_store import trust_locations
from exoimap.sandbox.ca import LocalCA
from exoimap.secrets import Secret
from tests.net.servers import RecordingServer, server_context

pytestmark = pytest.mark.anyio


class Paths(NamedTuple):
    """Stands in for :func:`ssl.get_default_verify_paths`'s compiled-in locations."""

    openssl_cafile: str
    openssl_capath: str


NOWHERE = Paths("/nonexistent/cert.pem", "/nonexistent/certs")


class Store(NamedTuple):
    directory: Path
    bundle: Path


@pytest.fixture(scope="module")
def cas(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalCA, LocalCA]:
    root = tmp_path_factory.mktemp("cas")
    return (
        LocalCA.load_or_create(root / "one", "trust store test CA one"),
        LocalCA.load_or_create(root / "two", "trust store test CA two"),
    )


def _store(folder: Path, *cas: LocalCA, hashed: bool = True) -> Store:
    """A distribution-style store: one PEM file per CA, OpenSSL's hashed names for them
    (``openssl rehash``, as ``update-ca-certificates`` makes them), and the bundle of all
    of them in the same directory."""
    folder.mkdir()
    for number, ca in enumerate(cas):
        shutil.copy(ca.cert_file, folder / f"ca-{number}.pem")
    if hashed:
        subprocess.run(["openssl", "rehash", str(folder)], check=True, capture_output=True)
    bundle = folder / "ca-certificates.crt"
    bundle.write_bytes(b"".join(ca.cert_file.read_bytes() for ca in cas))
    return Store(folder, bundle)


def test_a_bundle_that_its_hashed_directory_mirrors_is_left_to_it(
    tmp_path: Path, cas: tuple[LocalCA, LocalCA]
) -> None:
    store = _store(tmp_path / "certs", *cas)
    assert len(list(store.directory.glob("*.0"))) == 2  # openssl made the hashed names
    env = {"SSL_CERT_FILE": str(store.bundle), "SSL_CERT_DIR": str(store.directory)}
    assert trust_locations(env, NOWHERE) == ([], [str(store.directory)])
    # the same store found through the compiled-in defaults, not the environment
    defaults = Paths(str(store.bundle), str(store.directory))
    assert trust_locations({}, defaults) == ([], [str(store.directory)])


def test_a_bundle_holding_a_certificate_the_directory_lacks_is_loaded_whole(
    tmp_path: Path, cas: tuple[LocalCA, LocalCA]
) -> None:
    store = _store(tmp_path / "certs", cas[0])
    with store.bundle.open("ab") as bundle:  # a CA appended by hand, never rehashed
        bundle.write(cas[1].cert_file.read_bytes())
    defaults = Paths(str(store.bundle), str(store.directory))
    assert trust_locations({}, defaults) == ([str(store.bundle)], [str(store.directory)])


def test_a_store_without_hashed_names_loads_its_bundle(
    tmp_path: Path, cas: tuple[LocalCA, LocalCA]
) -> None:
    store = _store(tmp_path / "certs", *cas, hashed=False)  # as Fedora ships it
    defaults = Paths(str(store.bundle), str(store.directory))
    assert trust_locations({}, defaults) == ([str(store.bundle)], [str(store.directory)])


def test_a_private_bundle_is_loaded_and_the_distribution_store_kept(
    tmp_path: Path, cas: tuple[LocalCA, LocalCA]
) -> None:
    distribution = _store(tmp_path / "certs", cas[0])
    private = tmp_path / "private" / "corporate.pem"
    private.parent.mkdir()
    shutil.copy(cas[1].cert_file, private)
    env = {"SSL_CERT_FILE": str(private), "SSL_CERT_DIR": f"{tmp_path / 'absent'}:"}
    defaults = Paths(str(distribution.bundle), str(distribution.directory))
    # the private bundle whole; the distribution's bundle left to its directory
    assert trust_locations(env, defaults) == ([str(private)], [str(distribution.directory)])


def test_each_location_is_loaded_once_whatever_the_links_to_it(
    tmp_path: Path, cas: tuple[LocalCA, LocalCA]
) -> None:
    store = _store(tmp_path / "certs", cas[0], hashed=False)
    alias = tmp_path / "lib-ssl"  # like /usr/lib/ssl/certs -> /etc/ssl/certs
    alias.symlink_to(store.directory)
    env = {"SSL_CERT_FILE": str(store.bundle), "SSL_CERT_DIR": str(store.directory)}
    defaults = Paths(str(alias / "ca-certificates.crt"), str(alias))
    assert trust_locations(env, defaults) == ([str(store.bundle)], [str(store.directory)])


def _client(port: int) -> ImapClient:
    endpoint = Endpoint("127.0.0.1", port, TLSPolicy(), connect_timeout=5)
    return ImapClient(
        endpoint,
        PasswordCredentials("alice", Secret("not-a-real-password")),
        retry=RetryPolicy(max_attempts=0),
    )


def _as_the_system_store(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(store.bundle))
    monkeypatch.setenv("SSL_CERT_DIR", str(store.directory))
    monkeypatch.setattr(tls, "_CONTEXTS", {})  # no context built for another store


def _server_of(ca: LocalCA, folder: Path) -> ssl.SSLContext:
    good = ca.issue(("127.0.0.1",), folder=folder, stem="good")
    return server_context(str(good.cert_file), str(good.key_file))


def _ca_names(context: ssl.SSLContext) -> list[str]:
    """The common names of the CA certificates the context holds in memory."""
    names = []
    for der in context.get_ca_certs(binary_form=True):
        subject = x509.load_der_x509_certificate(der).subject
        names += [str(cn.value) for cn in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return names


async def test_a_server_is_verified_through_the_hashed_directory_alone(
    tmp_path: Path, cas: tuple[LocalCA, LocalCA], monkeypatch: pytest.MonkeyPatch
) -> None:
    _as_the_system_store(_store(tmp_path / "certs", cas[0]), monkeypatch)
    context = TLSPolicy().context()
    # the bundle was not loaded: the test CA is not in memory before it is looked up
    assert "trust store test CA one" not in _ca_names(context)
    server_tls = _server_of(cas[0], tmp_path / "server")
    async with RecordingServer(tls=server_tls, capabilities="IMAP4rev1 AUTH=PLAIN") as server:
        client = _client(server.port)
        session = await client.session()
        assert session.transport.tls_version in ("TLSv1.2", "TLSv1.3")
        await client.close()
    # verification found the CA under its hashed name and kept it
    assert "trust store test CA one" in _ca_names(context)


async def test_a_server_whose_ca_is_in_no_store_is_still_refused(
    tmp_path: Path, cas: tuple[LocalCA, LocalCA], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The control: the same server certificate, with the store holding only the other CA.
    _as_the_system_store(_store(tmp_path / "certs", cas[1]), monkeypatch)
    async with RecordingServer(tls=_server_of(cas[0], tmp_path / "server")) as server:
        with pytest.raises(TLSRefused, match="not trusted"):
            await _client(server.port).session()
    assert server.received == b""


def test_an_unreadable_system_bundle_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(broken))
    monkeypatch.setattr(tls, "_CONTEXTS", {})
    with pytest.raises(ConfigError, match="cannot load the system's CA bundle") as caught:
        TLSPolicy().context()
    assert str(broken) in str(caught.value)
