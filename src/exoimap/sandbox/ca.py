"""The one local certificate authority for test and sandbox TLS servers (never production).

The CA lives in a folder (``ca.pem`` public, ``ca-key.pem`` 0600) and is created on first
use, then reused, so clients that trust ``ca.pem`` keep trusting every later run. It serves
the sandbox tenant (identity and IMAP halves), the Dovecot harness and the TLS tests.

* :meth:`LocalCA.issue_server_cert`: a certificate for ``127.0.0.1``, ``::1`` and
  ``localhost`` plus extra names, reused while it still covers them (the sandbox servers);
* :meth:`LocalCA.issue`: a fresh certificate for exactly the names given (a test that needs
  a certificate for the wrong name, or Dovecot's).

EC P-256 keys keep generation fast. Example::

    ca = LocalCA.load_or_create(state_dir / "ca")
    cert_file, key_file = ca.issue_server_cert(state_dir / "tls", "identity")
    ssl_context = ca.server_ssl_context(cert_file, key_file)
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from exoimap.errors import ConfigError
from exoimap.net.certificates import is_ip, key_pem, new_ca, new_server_certificate
from exoimap.sandbox.state import ensure_private_dir, write_private_bytes

__all__ = ["DEFAULT_SERVER_NAMES", "LocalCA", "ServerCertificate"]

DEFAULT_SERVER_NAMES = ("127.0.0.1", "::1", "localhost")
_CA_DAYS = 3650
_SERVER_DAYS = 825


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ServerCertificate(NamedTuple):
    """An issued server certificate (PEM) and its private key (PEM, 0600)."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class LocalCA:
    """A CA certificate and its key, stored in ``folder``."""

    folder: Path
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_file(self) -> Path:
        """The CA certificate (PEM) that clients must trust."""
        return self.folder / "ca.pem"

    @classmethod
    def load_or_create(cls, folder: Path, common_name: str = "exoimap sandbox CA") -> LocalCA:
        """Load the CA from ``folder``, creating it (0700 folder, 0600 key) when absent."""
        ensure_private_dir(folder)
        cert_path, key_path = folder / "ca.pem", folder / "ca-key.pem"
        if cert_path.exists() and key_path.exists():
            try:
                certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
                key = serialization.load_pem_private_key(key_path.read_bytes(), None)
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"unreadable CA: {type(exc).__name__}", path=str(folder)
                ) from None
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise ConfigError("the CA key is not an EC key", path=str(key_path))
            return cls(folder, certificate, key)
        certificate, key = new_ca(common_name, dt.timedelta(days=_CA_DAYS))
        write_private_bytes(key_path, key_pem(key))
        write_private_bytes(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
        return cls(folder, certificate, key)

    def issue_server_cert(
        self, folder: Path, stem: str, extra_names: tuple[str, ...] = ()
    ) -> ServerCertificate:
        """Write ``<stem>.pem`` and ``<stem>-key.pem`` (0600) into ``folder`` and return both.

        The certificate covers ``127.0.0.1``, ``::1``, ``localhost`` and ``extra_names``
        (IP addresses or DNS names). An existing pair is reused when it still covers them.
        """
        cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}-key.pem"
        names = tuple(dict.fromkeys((*DEFAULT_SERVER_NAMES, *extra_names)))
        if cert_path.exists() and key_path.exists() and self._still_good(cert_path, names):
            return ServerCertificate(cert_path, key_path)
        return self.issue(names, folder=folder, stem=stem)

    def issue(
        self, names: tuple[str, ...], *, folder: Path | None = None, stem: str = "server"
    ) -> ServerCertificate:
        """Issue a new certificate for exactly ``names`` (IP addresses or DNS names; the
        first is also the subject), written as ``<stem>.pem`` and ``<stem>-key.pem`` (0600)
        into ``folder`` (default: the CA's own folder)."""
        folder = ensure_private_dir(folder or self.folder)
        cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}-key.pem"
        certificate, key = new_server_certificate(
            self.certificate, self.key, names, dt.timedelta(days=_SERVER_DAYS)
        )
        write_private_bytes(key_path, key_pem(key))
        write_private_bytes(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
        return ServerCertificate(cert_path, key_path)

    def _still_good(self, cert_path: Path, names: tuple[str, ...]) -> bool:
        try:
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
            san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except (OSError, ValueError, x509.ExtensionNotFound):
            return False
        present = {str(v) for v in san.value.get_values_for_type(x509.IPAddress)}
        present |= set(san.value.get_values_for_type(x509.DNSName))
        wanted = {str(ipaddress.ip_address(n)) if is_ip(n) else n for n in names}
        return (
            certificate.issuer == self.certificate.subject
            and wanted <= present
            and certificate.not_valid_after_utc > _now() + dt.timedelta(days=1)
        )

    @staticmethod
    def server_ssl_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
        """A TLS 1.2+ server context for the issued certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_file, key_file)
        return context

    def client_ssl_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this CA."""
        context = ssl.create_default_context(cafile=str(self.cert_file))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context
