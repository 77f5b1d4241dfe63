"""Freed heap memory goes back to the OS after a sync (glibc keeps it otherwise)."""

from __future__ import annotations

from pathlib import Path

from exoimap.app.heap import release_freed_memory


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_freed_memory_is_returned_to_the_os() -> None:
    # 40 MB in 1000-byte blocks (above Python's own small-object allocator, so from malloc);
    # every tenth is kept, so the freed ones are holes glibc would keep for ever
    blocks = [bytes(1000) + bytes([i % 256]) for i in range(40_000)]
    kept = blocks[::10]
    del blocks
    before = _rss_kb()
    assert release_freed_memory()
    after = _rss_kb()
    assert before - after > 20_000, (before, after)
    assert len(kept) == 4000
