"""Words for people: counts with the right plural, sizes, and sentences joined with full stops.

Every line exoimap prints is built from pieces (a message and the fix, a count and its
noun). The two rules live here so that each caller cannot get them wrong on its own:
``plural(1, "message")`` is "1 message", and ``sentences("a is wrong", "Do b.")`` is
"a is wrong. Do b.".
"""

from __future__ import annotations

__all__ = ["byte_size", "first_few", "noun", "plural", "sentence", "sentences"]

#: What may already end a sentence (a colon introduces what follows on the next line).
_ENDINGS = (".", "!", "?", ":")


def noun(count: int, word: str, many: str | None = None) -> str:
    """``word`` in the number that goes with ``count``: "message" for 1, else "messages".
    Irregular nouns give their plural as ``many``."""
    return word if count == 1 else (many or word + "s")


def plural(count: int, word: str, many: str | None = None) -> str:
    """``count`` and the noun in the right number: "1 message", "0 messages", "2 folders"."""
    return f"{count} {noun(count, word, many)}"


def byte_size(count: float) -> str:
    """A number of bytes as people read it: "512 B", "1.5 KB", "3.2 GB" (steps of 1024)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(count) < 1024 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")  # pragma: no cover - the loop always returns


def sentence(text: str) -> str:
    """``text`` ending with a full stop (unless it already ends a sentence)."""
    text = text.rstrip()
    if not text or text.endswith(_ENDINGS) or text.endswith((".)", ".`", '."')):
        return text
    return text + "."


def sentences(*parts: str | None) -> str:
    """The non-empty ``parts`` as sentences, each ended with a full stop, one space between:
    ``sentences("account 'work' is not signed in", "Sign in with ...")``."""
    return " ".join(sentence(part) for part in parts if part and part.strip())


def first_few(numbers: list[int], shown: int = 10) -> str:
    """The first ``shown`` numbers, comma-separated, with " ..." when there are more."""
    return ", ".join(str(n) for n in numbers[:shown]) + (" ..." if len(numbers) > shown else "")
