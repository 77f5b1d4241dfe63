"""Words for people: counts with the right plural, and sentences joined with full stops.

Every line exoimap prints is built from pieces (a message and the fix, a count and its
noun). The two rules live here so that each caller cannot get them wrong on its own:
``plural(1, "message")`` is "1 message", and ``sentences("a is wrong", "Do b.")`` is
"a is wrong. Do b.".
"""

from __future__ import annotations

__all__ = ["noun", "plural", "sentence", "sentences"]

#: What may already end a sentence (a colon introduces what follows on the next line).
_ENDINGS = (".", "!", "?", ":")


def noun(count: int, word: str, many: str | None = None) -> str:
    """``word`` in the number that goes with ``count``: "message" for 1, else "messages".
    Irregular nouns give their plural as ``many``."""
    return word if count == 1 else (many or word + "s")


def plural(count: int, word: str, many: str | None = None) -> str:
    """``count`` and the noun in the right number: "1 message", "0 messages", "2 folders"."""
    return f"{count} {noun(count, word, many)}"


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
