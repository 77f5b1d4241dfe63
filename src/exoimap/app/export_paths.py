"""Safe file-system paths for exported folders (mbox files, ``.eml`` directories).

Folder names come from the server: untrusted. Each ``/``-separated segment becomes one path
segment with nothing that could escape the output directory or confuse a terminal: control
characters, lone surrogates, ``/`` and ``\\`` become ``_``, ``.`` and ``..`` (and the empty
segment) get a ``_`` in front, and a segment longer than :data:`MAX_SEGMENT_BYTES` is cut
and given a short hash of the full name, so two long names stay apart. Two folders whose
safe forms coincide (``a\\x01`` and ``a\\x02``) are told apart by a ``~2`` suffix, compared
case-insensitively so the result also fits a case-insensitive file system.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["FolderPaths", "MAX_SEGMENT_BYTES", "safe_segment"]

#: Room below the usual 255-byte file-name limit for a suffix such as ``~12.mbox``.
MAX_SEGMENT_BYTES = 200
# Control characters, separators, line breaks, and lone surrogates (no file system or zip
# name can hold one).
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f/\\\u2028\u2029\ud800-\udfff]")


def safe_segment(segment: str) -> str:
    """One folder-name segment as a harmless file or directory name."""
    safe = _UNSAFE.sub("_", segment)
    if safe in ("", ".", ".."):
        safe = "_" + safe
    encoded = safe.encode("utf-8")
    if len(encoded) > MAX_SEGMENT_BYTES:
        digest = hashlib.sha256(segment.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        cut = encoded[: MAX_SEGMENT_BYTES - 11].decode("utf-8", "ignore")
        safe = f"{cut}~{digest}"
    return safe


class FolderPaths:
    """Gives every exported folder its own relative path (a tuple of safe segments).

    ``reserved_suffix`` is what the writer appends to file names (``.mbox``, ``.eml``):
    directory segments never end with it, so a folder's directory can never clash with a
    file a writer puts beside it."""

    def __init__(self, reserved_suffix: str) -> None:
        self._suffix = reserved_suffix.lower()
        self._taken: set[tuple[str, ...]] = set()

    def path_for(self, folder: str, delimiter: str | None) -> tuple[str, ...]:
        parts = folder.split(delimiter) if delimiter else [folder]
        segments = [self._directory_safe(safe_segment(part)) for part in parts]
        candidate = tuple(segments)
        number = 1
        while tuple(s.lower() for s in candidate) in self._taken:
            number += 1
            candidate = (*segments[:-1], f"{segments[-1]}~{number}")
        self._taken.add(tuple(s.lower() for s in candidate))
        return candidate

    def _directory_safe(self, segment: str) -> str:
        if self._suffix and segment.lower().endswith(self._suffix):
            return segment + "_"
        return segment
