"""Flag spelling shared by every store."""

from __future__ import annotations

import pytest

from exoimap.store.archive.files import letters_for
from exoimap.store.base import normalize_flags


@pytest.mark.parametrize("kind", [tuple, frozenset, list, set])
def test_flags_are_normalized_the_same_however_often(kind: type) -> None:
    """System flags get their canonical spelling and ``\\Recent`` goes, the first time and
    every time after (the second answer may come from the cache of flag sets seen)."""
    raw = ["\\SEEN", "\\recent", "$Label1", "\\flagged"]
    first = normalize_flags(kind(raw))
    assert first == frozenset({"\\Seen", "$Label1", "\\Flagged"})
    assert normalize_flags(kind(raw)) == first
    assert normalize_flags(kind(["\\Seen", "$label1"])) == frozenset({"\\Seen", "$label1"})


@pytest.mark.parametrize("kind", [frozenset, set, list])
def test_maildir_letters_are_the_same_however_often(kind: type) -> None:
    """A flag set's Maildir letters are sorted and skip flags without a letter, the first
    time and every time after (the second answer may come from the cache of sets seen)."""
    flags = ["\\Seen", "$Label1", "\\Flagged", "\\Draft"]
    assert letters_for(kind(flags)) == "DFS"
    assert letters_for(kind(flags)) == "DFS"
    assert letters_for(kind(["\\Seen"])) == "S"
    assert letters_for(kind([])) == ""
