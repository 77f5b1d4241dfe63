"""The proxy's own certificate authority: clients trust it once, the proxy's certificates
follow.

Created on first use in ``<data>/proxy/ca`` (folder 0700, every file 0600). ``ca.pem`` is
what ``exoimap proxy ca`` prints for clients to import; the key never leaves the folder.
The listening certificate (``server.pem``) covers ``127.0.0.1``, ``::1``, ``localhost`` and
any host the listener is given, and is re-issued when a name is missing or it is near its
end. EC P-256 keeps generation fast.
"""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from exoimap.errors import ConfigError
from exoimap.net.certificates import general_name, key_pem, new_ca, new_server_certificate
from exoimap.private_files import private_dir, write_private

__all__ = ["LOOPBACK_NAMES", "ProxyCA", "server_context"]

LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")
_CA_LIFETIME = dt.timedelta(days=3650)
_CERT_LIFETIME = dt.timedelta(days=397)
_RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class ProxyCA:
    """The CA's certificate and key, kept in ``folder``."""

    folder: Path
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def load_or_create(cls, folder: Path) -> ProxyCA:
        """The CA in ``folder``, made there on first use."""
        private_dir(folder)
        cert_path, key_path = folder / "ca.pem", folder / "ca-key.pem"
        if not key_path.exists():
            return cls._create(folder)
        try:
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
            key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"the proxy CA cannot be read ({type(exc).__name__}); move the folder away "
                "to start a new CA (clients must then trust the new one)",
                path=str(folder),
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError("the proxy CA key is not an EC key", path=str(key_path))
        return cls(folder, certificate, key)

    @classmethod
    def _create(cls, folder: Path) -> ProxyCA:
        certificate, key = new_ca("exoimap proxy local CA", _CA_LIFETIME)
        write_private(folder / "ca-key.pem", key_pem(key))
        write_private(folder / "ca.pem", certificate.public_bytes(serialization.Encoding.PEM))
        return cls(folder, certificate, key)

    @property
    def cert_file(self) -> Path:
        return self.folder / "ca.pem"

    def pem(self) -> str:
        """The CA certificate as PEM text, for clients to trust."""
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def fingerprint(self) -> str:
        """SHA-256 of the CA certificate, as colon-separated hex (to compare by eye)."""
        return self.certificate.fingerprint(hashes.SHA256()).hex(":").upper()

    def server_files(self, extra_names: tuple[str, ...] = ()) -> tuple[Path, Path]:
        """``(server.pem, server-key.pem)`` for the loopback names and ``extra_names``,
        issued anew when the existing pair misses a name or ends within 30 days."""
        names = tuple(dict.fromkeys((*LOOPBACK_NAMES, *extra_names)))
        cert_path, key_path = self.folder / "server.pem", self.folder / "server-key.pem"
        if not (key_path.exists() and self._covers(cert_path, names)):
            self._issue(names, cert_path, key_path)
        return cert_path, key_path

    def server_context(self, extra_names: tuple[str, ...] = ()) -> ssl.SSLContext:
        """A TLS 1.2+ server context with the CA-issued certificate."""
        return server_context(*self.server_files(extra_names))

    def _issue(self, names: tuple[str, ...], cert_path: Path, key_path: Path) -> None:
        certificate, key = new_server_certificate(self.certificate, self.key, names, _CERT_LIFETIME)
        write_private(key_path, key_pem(key))
        write_private(cert_path, certificate.public_bytes(serialization.Encoding.PEM))

    def _covers(self, cert_path: Path, names: tuple[str, ...]) -> bool:
        try:
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
            alt = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except (OSError, ValueError, x509.ExtensionNotFound):
            return False
        present = set(alt.value)
        return (
            certificate.issuer == self.certificate.subject
            and all(general_name(n) in present for n in names)
            and certificate.not_valid_after_utc > dt.datetime.now(dt.UTC) + _RENEW_BEFORE
        )


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context for a certificate and key (the CA's or the user's own)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load the certificate and key: {exc.strerror or exc}"
            if isinstance(exc, OSError)
            else f"cannot load the certificate and key: {exc.reason or exc}",
            path=str(cert_file),
        ) from None
    return context
