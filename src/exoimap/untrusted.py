"""Text from a server (or a mailbox), made safe to show to a person.

A server chooses its folder names, its NO/BAD texts and its greeting. Printed as they
come, they can drive the terminal (``ESC[2J`` clears it, ``ESC]0;...`` sets its title) or
hide text behind bidirectional overrides. The one rule, applied by :func:`shown` wherever
such text reaches a person (CLI output, the stderr log, exception messages that quote it):

    every character that does not print itself (Unicode categories Cc, Cf, Cs, Zl, Zp:
    control and format characters, lone surrogates, line and paragraph separators) is
    written as its Python escape, ``\\x1b``, ``\\u202e``, ``\\udc80``.

Everything else, backslashes included, stays as it is, so ordinary names read naturally
(and :func:`shown` of a shown text is the same text). Rich markup is a second, separate
matter: wherever rich renders a string, pass it through ``rich.markup.escape`` too, or
render it with markup off. The JSON-lines log keeps the raw text: JSON escapes it.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["shown"]

_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
#: A quick test: plain printable ASCII needs no work (the common case).
_PLAIN = re.compile(r"[\x20-\x7e]*")


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def shown(text: str) -> str:
    """``text`` with every character that does not print itself escaped (see above)."""
    if _PLAIN.fullmatch(text):
        return text
    return "".join(
        _escape(char) if unicodedata.category(char) in _HIDDEN_CATEGORIES else char for char in text
    )
