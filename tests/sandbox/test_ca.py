"""The one sandbox CA: certificates for exactly the names asked, or for loopback plus more."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from exoimap.sandbox.ca import DEFAULT_SERVER_NAMES, LocalCA


def _names(cert_file: Path) -> set[str]:
    certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(
        san.get_values_for_type(x509.DNSName)
    )


def test_issue_covers_exactly_the_names_given(tmp_path: Path) -> None:
    ca = LocalCA.load_or_create(tmp_path / "ca", "exact names CA")
    issued = ca.issue(("mail.example.org",), stem="wrong-name")
    assert issued.cert_file.parent == tmp_path / "ca"
    assert _names(issued.cert_file) == {"mail.example.org"}
    assert issued.key_file.stat().st_mode & 0o777 == 0o600
    certificate = x509.load_pem_x509_certificate(issued.cert_file.read_bytes())
    assert certificate.issuer == ca.certificate.subject


def test_server_certificates_cover_loopback_and_are_reused(tmp_path: Path) -> None:
    ca = LocalCA.load_or_create(tmp_path / "ca")
    cert_file, _key_file = ca.issue_server_cert(tmp_path / "tls", "imap", ("imap.test",))
    assert _names(cert_file) == {*DEFAULT_SERVER_NAMES, "imap.test"}
    again = ca.issue_server_cert(tmp_path / "tls", "imap", ("imap.test",))
    assert again.cert_file.read_bytes() == cert_file.read_bytes()
    wider = ca.issue_server_cert(tmp_path / "tls", "imap", ("imap.test", "other.test"))
    assert "other.test" in _names(wider.cert_file)
