"""Give the memory a finished sync freed back to the operating system.

glibc's allocator keeps freed heap pages for reuse, so a long-running process stays as big
as its biggest moment (for ``exoimap watch``, the first sync of every mailbox) for ever.
``malloc_trim(0)`` returns what is free. Elsewhere (musl, macOS) there is no such call and
nothing is done.
"""

from __future__ import annotations

import ctypes
import functools
import gc
from collections.abc import Callable

__all__ = ["release_freed_memory"]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] | None = getattr(ctypes.CDLL(None), "malloc_trim", None)
    except OSError:
        return None
    return trim


def release_freed_memory() -> bool:
    """Return free heap pages to the OS; False where the C library cannot. Unreachable
    cycles (a closed connection's protocol objects) are collected first, so their memory
    is among what is returned."""
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
