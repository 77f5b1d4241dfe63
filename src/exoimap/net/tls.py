"""The TLS policy: TLS 1.2 or newer, the certificate and the host name always verified.

There is deliberately no switch that turns verification off. A private or test CA is
trusted by naming its file (``ca_file``); it is loaded *in addition to* the system store,
so a machine-wide ``SSL_CERT_FILE`` never hides the system roots and a per-account CA file
never replaces them. Where the system store is, and which of its files need loading, is
:mod:`exoimap.net.trust_store`'s job.

:func:`map_ssl_error` turns what :mod:`ssl` raises during a handshake into
:class:`~exoimap.errors.TLSRefused` with a sentence that says what went wrong.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from exoimap.errors import ConfigError, TLSRefused
from exoimap.net.trust_store import trust_locations

__all__ = ["TLSPolicy", "lean_tls_buffers", "map_ssl_error", "tls_version_name"]

_CONTEXTS: dict[tuple[Path | None, float | None], ssl.SSLContext] = {}


def _mtime(path: Path | None) -> float | None:
    try:
        return path.stat().st_mtime if path is not None else None
    except OSError:
        return None


@dataclass(frozen=True)
class TLSPolicy:
    """How to open TLS to an IMAP server.

    ``starttls`` picks STARTTLS on a plain port instead of implicit TLS; the connection is
    then refused if the server does not offer STARTTLS. ``ca_file`` adds a PEM bundle of
    extra trusted CAs.
    """

    ca_file: Path | None = None
    starttls: bool = False

    def context(self) -> ssl.SSLContext:
        """A client context enforcing the policy (built once per CA file version: a context
        is safe to share, and loading a CA file is not free)."""
        key = (self.ca_file, _mtime(self.ca_file))
        ctx = _CONTEXTS.get(key)
        if ctx is None:
            ctx = self._build()
            _CONTEXTS[key] = ctx
        return ctx

    def _build(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # check_hostname and CERT_REQUIRED on
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.check_hostname = True
        bundles, directories = trust_locations(os.environ, ssl.get_default_verify_paths())
        for directory in directories:
            ctx.load_verify_locations(capath=directory)
        for bundle in bundles:
            try:
                ctx.load_verify_locations(cafile=bundle)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"cannot load the system's CA bundle ({exc.__class__.__name__}): repair "
                    "it, or point SSL_CERT_FILE at a readable PEM file of CA certificates",
                    path=bundle,
                ) from None
        if self.ca_file is not None:
            try:
                ctx.load_verify_locations(cafile=str(self.ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"cannot load the CA file ({exc.__class__.__name__}): give a readable PEM "
                    "file of CA certificates",
                    path=str(self.ca_file),
                    key="ca_file",
                ) from None
        return ctx


#: Bytes asyncio's TLS layer reads at once, per connection (its default is 256 KiB).
TLS_READ_BUFFER = 32 << 10


def lean_tls_buffers() -> None:
    """Make every later TLS connection of this process take a 32 KiB read buffer instead of
    asyncio's 256 KiB, for the long-running processes that hold many idle connections (the
    proxy: two a client; the watch: about three a mailbox). A TLS record is at most 16 KiB,
    so reads stay whole records. (It changes asyncio's class attribute: call it only in a
    process of its own, never from a library.)"""
    from asyncio import sslproto

    if hasattr(sslproto.SSLProtocol, "max_size"):
        sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


def tls_version_name(obj: ssl.SSLObject | ssl.SSLSocket | None) -> str | None:
    """``TLSv1.3`` etc. for an established TLS object, else None."""
    if obj is None:
        return None
    return obj.version()


def map_ssl_error(exc: BaseException, host: str, port: int) -> TLSRefused:
    """A :class:`TLSRefused` explaining why the handshake with ``host:port`` failed."""
    where = f"{host}:{port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = exc.verify_code
        # X509_V_ERR_HOSTNAME_MISMATCH = 62, IP address mismatch = 64
        if code in (62, 64) or "mismatch" in (exc.verify_message or ""):
            return TLSRefused(
                f"the TLS certificate of {where} is not valid for the name {host!r} "
                "(host name mismatch): connect with the name the certificate was issued for"
            )
        if code in (10,):
            return TLSRefused(f"the TLS certificate of {where} has expired")
        return TLSRefused(
            f"the TLS certificate of {where} is not trusted ({exc.verify_message}): "
            "if the server uses a private CA, name its certificate file with ca_file"
        )
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or "").upper()
        if reason in ("WRONG_VERSION_NUMBER", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE"):
            return TLSRefused(
                f"{where} did not answer with TLS (is it a plain-text port? "
                "use the implicit-TLS port, usually 993, or configure starttls)"
            )
        if "PROTOCOL_VERSION" in reason or "UNSUPPORTED_PROTOCOL" in reason:
            return TLSRefused(f"{where} offers only TLS versions older than 1.2")
        return TLSRefused(f"the TLS handshake with {where} failed ({exc.reason or exc})")
    if isinstance(exc, (ConnectionResetError, EOFError, ConnectionAbortedError)):
        return TLSRefused(f"{where} closed the connection during the TLS handshake")
    return TLSRefused(f"the TLS handshake with {where} failed ({exc.__class__.__name__})")
