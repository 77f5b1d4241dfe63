"""Where the system's trusted CA certificates are, and how to load them cheaply.

A client context trusts the CAs that OpenSSL's defaults name (``SSL_CERT_FILE`` and
``SSL_CERT_DIR`` when set) and, always, the distribution's own store: a machine-wide
``SSL_CERT_FILE`` that names a private bundle must not hide the public roots.

A store comes in two shapes. A *bundle* is one PEM file; OpenSSL 3 decodes every certificate
in it when it is loaded, which takes 40-50 ms for Debian's 144 roots, on every cold start. A
*hashed directory* holds one file per certificate under a name made of its subject's hash;
OpenSSL reads it during verification, only the issuers it looks up. Distributions ship both
with the same certificates: ``update-ca-certificates`` (Debian, Ubuntu, Alpine) writes the
bundle into the directory that holds the hashed names. So a bundle that lies in a hashed
directory and holds as many certificates as that directory has hashed names is left to the
directory. Any other bundle (a private one, one edited by hand, a distribution that ships no
hashed names) is loaded whole. Trust is never wider than loading everything would give: the
directories are loaded either way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

__all__ = ["DefaultPaths", "trust_locations"]

#: OpenSSL's name for a certificate in a hashed directory: subject hash, dot, number.
_HASHED_NAME = re.compile(r"[0-9a-f]{8}\.[0-9]+")
_PEM_CERTIFICATE_STARTS = (b"-----BEGIN CERTIFICATE-----", b"-----BEGIN TRUSTED CERTIFICATE-----")


class DefaultPaths(Protocol):
    """The compiled-in locations of :func:`ssl.get_default_verify_paths`."""

    @property
    def openssl_cafile(self) -> str: ...

    @property
    def openssl_capath(self) -> str: ...


def trust_locations(
    environ: Mapping[str, str], defaults: DefaultPaths
) -> tuple[list[str], list[str]]:
    """``(bundles, directories)`` to load into a client context, each once (see the module
    docstring): the directories of ``SSL_CERT_DIR`` (a list, as OpenSSL reads it) and the
    distribution's, then the bundles of ``SSL_CERT_FILE`` and the distribution's that no
    hashed directory mirrors. Locations that do not exist are left out."""
    directories: list[str] = []
    hashed: dict[str, int] = {}
    for directory in (*environ.get("SSL_CERT_DIR", "").split(os.pathsep), defaults.openssl_capath):
        real = os.path.realpath(directory) if directory else ""
        if real and real not in hashed and os.path.isdir(real):
            hashed[real] = _hashed_names(real)
            directories.append(directory)
    bundles: list[str] = []
    seen: set[str] = set()
    for bundle in (environ.get("SSL_CERT_FILE", ""), defaults.openssl_cafile):
        real = os.path.realpath(bundle) if bundle else ""
        if not real or real in seen or not os.path.isfile(real):
            continue
        seen.add(real)
        names = hashed.get(os.path.dirname(real), 0)
        if names and _certificates_in(real) == names:
            continue  # the directory holds the same certificates, read when needed
        bundles.append(bundle)
    return bundles, directories


def _hashed_names(directory: str) -> int:
    """How many certificates ``directory`` holds under OpenSSL's hashed names."""
    try:
        with os.scandir(directory) as entries:
            return sum(1 for entry in entries if _HASHED_NAME.fullmatch(entry.name))
    except OSError:
        return 0


def _certificates_in(bundle: str) -> int:
    """How many PEM certificates ``bundle`` holds; -1 when it cannot be read (then it is
    loaded whole, and the load reports the problem)."""
    try:
        data = Path(bundle).read_bytes()
    except OSError:
        return -1
    return sum(data.count(start) for start in _PEM_CERTIFICATE_STARTS)
