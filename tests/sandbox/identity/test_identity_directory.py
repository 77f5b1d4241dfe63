"""The state folder, the CA, the live directory and the admin API (no server needed)."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest

from exoimap.errors import ConfigError
from exoimap.sandbox.ca import LocalCA
from exoimap.sandbox.identity import (
    EXCHANGE_APP_ID,
    AadstsError,
    DirectoryStore,
    SandboxAdmin,
)
from exoimap.sandbox.identity.scopes import GRAPH_APP_ID, parse_scopes

DOMAIN = "fabrikam.example.com"


@pytest.fixture
def admin(tmp_path: Path) -> SandboxAdmin:
    admin = SandboxAdmin(DirectoryStore(tmp_path / "state"))
    admin.create_tenant(DOMAIN)
    return admin


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ca_issues_a_certificate_a_client_trusts_and_reuses_it(tmp_path: Path) -> None:
    ca = LocalCA.load_or_create(tmp_path / "ca")
    assert _mode(tmp_path / "ca") == 0o700
    assert _mode(tmp_path / "ca" / "ca-key.pem") == 0o600
    cert_file, key_file = ca.issue_server_cert(tmp_path / "tls", "imap", ("imap.sandbox.test",))
    assert _mode(key_file) == 0o600
    again = ca.issue_server_cert(tmp_path / "tls", "imap", ("imap.sandbox.test",))
    assert again[0].read_bytes() == cert_file.read_bytes()
    assert LocalCA.load_or_create(tmp_path / "ca").certificate == ca.certificate

    server_context = LocalCA.server_ssl_context(cert_file, key_file)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with server_context.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port)) as raw,
            ca.client_ssl_context().wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            assert tls.recv(2) == b"ok"
            names = {v for _k, v in tls.getpeercert()["subjectAltName"]}
            assert {"127.0.0.1", "localhost", "imap.sandbox.test"} <= names
    finally:
        thread.join(5)
        listener.close()
    other = LocalCA.load_or_create(tmp_path / "other-ca")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server_context, other.client_ssl_context())


def _handshake(server_context: ssl.SSLContext, client_context: ssl.SSLContext) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        worker = threading.Thread(target=lambda: _accept_tls(listener, server_context))
        worker.start()
        try:
            with (
                socket.create_connection(listener.getsockname()) as raw,
                client_context.wrap_socket(raw, server_hostname="localhost"),
            ):
                pass
        finally:
            worker.join(5)


def _accept_tls(listener: socket.socket, context: ssl.SSLContext) -> None:
    conn, _ = listener.accept()
    try:
        context.wrap_socket(conn, server_side=True).close()
    except (ssl.SSLError, OSError):
        conn.close()


def test_directory_changes_from_another_store_are_seen(admin: SandboxAdmin) -> None:
    other = SandboxAdmin(DirectoryStore(admin.store.state_dir))  # as another process would
    other.create_user(f"zoe@{DOMAIN}", password="pw-123456")
    user = admin.directory.find_user(f"ZOE@{DOMAIN}")
    assert user is not None
    assert user.password == "pw-123456"
    assert _mode(admin.store.path) == 0o600
    assert _mode(admin.store.state_dir) == 0o700


def test_a_failed_change_is_not_kept(admin: SandboxAdmin) -> None:
    def half_made() -> None:
        with admin.store.transaction() as directory:
            directory.tenants[0].display_name = "half-made"
            raise ConfigError("boom")

    with pytest.raises(ConfigError):
        half_made()
    assert admin.directory.tenants[0].display_name != "half-made"


def test_corrupt_directory_is_a_config_error(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    DirectoryStore(folder)
    (folder / "directory.json").write_text('{"tenants": [{"tenant_id": 5}]}')
    with pytest.raises(ConfigError, match="invalid"):
        DirectoryStore(folder)
    (folder / "directory.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read"):
        DirectoryStore(folder)


def test_secrets_stay_out_of_reprs(admin: SandboxAdmin) -> None:
    user = admin.create_user(f"rob@{DOMAIN}", password="hunter2-very-secret")
    assert "hunter2-very-secret" not in repr(user)
    app = admin.create_app("daemon", public=False)
    secret = admin.add_client_secret("daemon")
    assert secret.value not in repr(secret)
    assert secret.value not in repr(admin.directory.find_app(app.client_id))
    assert "Q~" in secret.value


def test_admin_rejects_bad_input_and_changes_nothing(admin: SandboxAdmin) -> None:
    admin.create_app("pub", public=True)
    before = admin.store.path.read_bytes()
    with pytest.raises(ConfigError, match="no tenant has the domain"):
        admin.create_user("x@elsewhere.example")
    with pytest.raises(ConfigError, match="not a user principal name"):
        admin.create_user("no-at-sign")
    with pytest.raises(ConfigError, match="not a delegated permission"):
        admin.create_app("a", public=True, delegated=["https://outlook.office.com/Nope"])
    with pytest.raises(ConfigError, match="public client cannot have secrets"):
        admin.add_client_secret("pub")
    with pytest.raises(ConfigError, match="unknown settings"):
        admin.configure(colour="blue")
    assert admin.store.path.read_bytes() == before
    admin.create_user(f"amy@{DOMAIN}")
    admin.create_app("unregistered", public=False)
    with pytest.raises(ConfigError, match="no Exchange service principal"):
        admin.add_mailbox_permission(f"amy@{DOMAIN}", "unregistered")


def test_exchange_principals_and_full_access(admin: SandboxAdmin) -> None:
    amy = admin.create_user(f"amy@{DOMAIN}")
    ben = admin.create_user(f"ben@{DOMAIN}")
    app = admin.create_app(
        "daemon",
        public=False,
        application=["https://outlook.office365.com/IMAP.AccessAsApp"],
        admin_consent=True,
    )
    principal = admin.register_exchange_principal("daemon")
    assert principal.object_id == app.service_principal_id
    admin.add_mailbox_permission(amy.upn, app.client_id)
    directory = admin.directory
    tenant_id = amy.tenant_id
    found = directory.exchange_principal(app.client_id, tenant_id)
    assert found is not None
    assert directory.has_full_access(found.object_id, amy.upn.upper(), tenant_id)
    assert not directory.has_full_access(found.object_id, ben.upn, tenant_id)
    assert directory.has_full_access(ben.oid, ben.upn, tenant_id)  # own mailbox
    assert not directory.has_full_access(ben.oid, amy.upn, tenant_id)
    admin.add_mailbox_permission(amy.upn, ben.upn)
    assert admin.directory.has_full_access(ben.oid, amy.upn, tenant_id)
    admin.remove_mailbox_permission(amy.upn, "daemon")
    assert not admin.directory.has_full_access(found.object_id, amy.upn, tenant_id)
    # Microsoft's classic mistake: registering the app registration's object id.
    wrong = admin.register_exchange_principal("daemon", object_id=app.object_id)
    assert wrong.object_id != app.service_principal_id


def test_scope_parsing_rules() -> None:
    imap = parse_scopes(
        "https://outlook.office.com/IMAP.AccessAsUser.All offline_access", tenant="t"
    )
    assert imap.audience == "https://outlook.office.com"
    assert imap.resource is not None
    assert imap.resource.app_id == EXCHANGE_APP_ID
    bare = parse_scopes("User.Read openid", tenant="t")
    assert bare.resource is not None
    assert bare.resource.app_id == GRAPH_APP_ID
    assert bare.audience == GRAPH_APP_ID
    for bad, code in [
        (
            "https://outlook.office.com/IMAP.AccessAsUser.All https://graph.microsoft.com/User.Read",
            70011,
        ),
        ("https://outlook.office.com/.default https://outlook.office.com/SMTP.Send", 70011),
        ("https://unknown.example/.default", 500011),
        ("", 70011),
    ]:
        with pytest.raises(AadstsError) as caught:
            parse_scopes(bad, tenant="t")
        assert caught.value.code == code
