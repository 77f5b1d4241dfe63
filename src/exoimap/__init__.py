"""exoimap: OAuth2 + IMAP access to Microsoft 365 / Exchange Online mailboxes.

The public API is what ``__all__`` lists; everything else is private and may change.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from exoimap.errors import ExoimapError
from exoimap.secrets import Secret

try:
    __version__ = version("exoimap")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["ExoimapError", "Secret", "__version__"]
