"""A deterministic, realistic mailbox generator.

The same :class:`SeedOptions` always give the same messages, byte for byte (a seeded
:class:`random.Random`, fixed dates, no clock). The mail looks like a business mailbox:

* conversations with replies (``Re:``, ``In-Reply-To``, ``References``, quoted text); the
  owner's own messages land in ``Sent Items``, and answered messages carry ``\\Answered``;
* attachments of common types (PDF, JPEG, PNG, Office files, ZIP, calendar, CSV, text);
* non-ASCII display names and subjects as RFC 2047 encoded words, 8-bit UTF-8 and
  ISO-8859-1 bodies, quoted-printable and base64 parts, non-ASCII folder names;
* sizes like real mail: a median near 10 KB and a tail of multi-MB messages (about 31 KB
  on average, so 20,000 messages come to about 620 MB);
* dates spread over years, roughly ascending in generation order.

Three ways out:

``generate(options)``
    yields :class:`SeedMessage` (folder, flags, internal date, bytes).
``seed_store(store, options)``
    appends into a :class:`~exoimap.store.memory.MemoryStore` (creating the folders).
``write_maildir(root, options)``
    writes a Maildir++ tree (``cur/`` files named uniquely with flags in the name, folders
    as ``.Name.Sub`` in modified UTF-7, a ``subscriptions`` file) that Dovecot serves as is.

Example::

    >>> from exoimap.sandbox.seed import SeedOptions, generate
    >>> first = next(generate(SeedOptions(messages=3, seed=7)))
    >>> first.data.startswith(b"Received: ")
    True
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import hashlib
import math
import os
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING

from exoimap.errors import ConfigError, StoreError
from exoimap.protocol.utf7 import encode_mailbox
from exoimap.sandbox import seed_corpus as corpus

if TYPE_CHECKING:
    from exoimap.store.memory import MemoryStore

__all__ = [
    "SEED_FOLDERS",
    "SeedMessage",
    "SeedOptions",
    "SeedReport",
    "generate",
    "maildir_folder_path",
    "seed_store",
    "write_maildir",
]

#: Folders the seed writes into (Exchange business names; "/" is the delimiter).
SEED_FOLDERS: tuple[str, ...] = (
    "INBOX",
    "Sent Items",
    "Deleted Items",
    "Drafts",
    "Junk Email",
    "Archive",
    *corpus.USER_FOLDERS,
)

_MAILDIR_FLAG_LETTERS = {
    "\\Draft": "D",
    "\\Flagged": "F",
    "\\Answered": "R",
    "\\Seen": "S",
    "\\Deleted": "T",
}


# Random attachment data comes in blocks of 1000 base64 lines (57 input bytes each).
_POOL_BLOCK = 57 * 1000


def _mutf7(name: str) -> str:
    return encode_mailbox(name).decode("ascii")


def _crlf(text: str, charset: str = "utf-8") -> bytes:
    return text.encode(charset, "replace").replace(b"\n", b"\r\n")


@dataclass(frozen=True, slots=True)
class SeedOptions:
    """What to generate. Equal options give equal mailboxes."""

    messages: int = 200
    seed: int = 0
    owner_name: str = "Adele Vance"
    owner_address: str = "adele@contoso.example"
    start: _dt.datetime = _dt.datetime(2019, 1, 1, tzinfo=_dt.UTC)
    end: _dt.datetime = _dt.datetime(2026, 10, 31, tzinfo=_dt.UTC)
    #: Median message size in bytes (ordinary mail, lognormal around it).
    median_size: int = 9_000
    #: Share of messages that carry large attachments (the multi-MB tail).
    large_fraction: float = 0.03
    #: Median size of those large messages.
    large_median_size: int = 260_000
    #: No message is larger than this.
    max_size: int = 30 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.messages < 0:
            raise ConfigError("seed: the number of messages cannot be negative")
        if self.end <= self.start:
            raise ConfigError("seed: the end date must come after the start date")
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ConfigError("seed: start and end dates must be timezone-aware")
        if not 0.0 <= self.large_fraction <= 1.0:
            raise ConfigError("seed: large_fraction must be between 0 and 1")
        if self.median_size < 500 or self.max_size < self.median_size:
            raise ConfigError("seed: median_size must be >= 500 and <= max_size")


@dataclass(frozen=True, slots=True)
class SeedMessage:
    """One generated message."""

    folder: str
    flags: frozenset[str]
    internal_date: _dt.datetime
    data: bytes


@dataclass(slots=True)
class SeedReport:
    """What a seeding run produced."""

    messages: int = 0
    bytes: int = 0
    folders: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class _Person:
    name: str
    address: str


def _encode_word(text: str) -> str:
    """RFC 2047: plain ASCII stays as is; otherwise B-encoded UTF-8 words (or Q, Latin-1)."""
    if text.isascii():
        return text
    try:
        latin = text.encode("iso-8859-1")
    except UnicodeEncodeError:
        latin = b""
    if latin and len(text) <= 40:
        quoted = binascii.b2a_qp(latin, header=True).decode("ascii").replace("?", "=3F")
        return f"=?ISO-8859-1?Q?{quoted}?="
    words = []
    for start in range(0, len(text), 10):
        chunk = text[start : start + 10].encode("utf-8")
        words.append("=?UTF-8?B?" + base64.b64encode(chunk).decode("ascii") + "?=")
    return "\n ".join(words)


def _address(person: _Person) -> str:
    name = person.name
    if name.isascii():
        shown = f'"{name}"' if "'" in name or "," in name else name
    else:
        shown = _encode_word(name)
    return f"{shown} <{person.address}>"


class _Generator:
    """Holds the random state and the pools; one instance per :func:`generate` call."""

    def __init__(self, options: SeedOptions) -> None:
        self.o = options
        self.rng = random.Random(options.seed)  # noqa: S311 (reproducible test data)
        self.owner = _Person(options.owner_name, options.owner_address)
        domain = options.owner_address.rpartition("@")[2] or "contoso.example"
        self.domain = domain
        rng = self.rng
        self.colleagues = [self._person(rng, domain) for _ in range(24)]
        self.externals = [self._person(rng, f"partner{i}.example") for i in range(16)]
        self.paragraphs = [self._paragraph(rng) for _ in range(240)]
        self.pool = [self._wrapped(rng.randbytes(_POOL_BLOCK)) for _ in range(32)]
        self.span = (options.end - options.start).total_seconds()
        self.count = 0

    @staticmethod
    def _person(rng: random.Random, domain: str) -> _Person:
        first = rng.choice(corpus.FIRST_NAMES)
        last = rng.choice(corpus.LAST_NAMES)
        local = f"{first}.{last}".lower().encode("ascii", "ignore").decode().replace("'", "")
        return _Person(f"{first} {last}", f"{local or 'user'}@{domain}")

    @staticmethod
    def _paragraph(rng: random.Random) -> str:
        words = rng.choices(corpus.WORDS, k=rng.randint(25, 110))
        text = " ".join(words)
        lines, line = [], ""
        for word in text.split(" "):
            if len(line) + len(word) + 1 > 72:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
        out = "\n".join(lines)
        return out[0].upper() + out[1:] + "."

    # --- sizes, dates -------------------------------------------------------------------

    def _target_size(self) -> int:
        o = self.o
        if self.rng.random() < o.large_fraction:
            size = self.rng.lognormvariate(math.log(o.large_median_size), 1.3)
        else:
            size = self.rng.lognormvariate(math.log(o.median_size), 0.9)
        return int(min(max(size, 1200), o.max_size))

    def _date_now(self) -> _dt.datetime:
        """A date that moves forward with progress, with jitter, inside [start, end)."""
        progress = self.count / max(self.o.messages, 1)
        offset = progress * self.span + self.rng.uniform(-3, 3) * 86400
        offset = min(max(offset, 0.0), self.span - 86400 * 30)
        moment = self.o.start + _dt.timedelta(seconds=int(max(offset, 0.0)))
        return moment.replace(microsecond=0)

    # --- bodies -------------------------------------------------------------------------

    def _text(self, budget: int) -> str:
        parts: list[str] = []
        size = 0
        while size < budget:
            paragraph = self.rng.choice(self.paragraphs)
            parts.append(paragraph)
            size += len(paragraph) + 2
        return "\n\n".join(parts)

    def _wrapped(self, raw: bytes) -> bytes:
        """Base64 in 76-column CRLF lines (encoded once per 57-byte group of input)."""
        return base64.encodebytes(raw).replace(b"\n", b"\r\n")

    def _random_base64(self, raw_size: int) -> tuple[int, list[bytes]]:
        """About ``raw_size`` random bytes, base64-wrapped: mostly whole pool blocks.

        Each block is 57 * 1000 bytes, so encoding the concatenation equals concatenating
        the encodings; that keeps multi-MB attachments cheap to make."""
        pieces: list[bytes] = []
        blocks, rest = divmod(raw_size, _POOL_BLOCK)
        for _ in range(blocks):
            pieces.append(self.rng.choice(self.pool))
        if rest:
            pieces.append(self._wrapped(self.rng.randbytes(rest)))
        return blocks * _POOL_BLOCK + rest, pieces

    def _attachment(self, size: int, boundary: str) -> list[bytes]:
        ext, ctype, magic = self.rng.choice(corpus.ATTACHMENT_TYPES)
        name = f"{self.rng.choice(corpus.SUBJECT_TOPICS).replace(' ', '_')}.{ext}"
        if self.rng.random() < 0.15:
            name = f"Übersicht_{self.rng.randint(1, 99)}.{ext}"
        raw_size = max(64, size * 3 // 4)
        if ctype.startswith("text/"):
            raw = self._text(raw_size).encode("utf-8")
            total, encoded = len(raw), [self._wrapped(raw)]
        else:
            # the magic bytes pad to one 57-byte group so the pool blocks stay aligned
            head = magic + self.rng.randbytes(57 - len(magic))
            total, encoded = self._random_base64(max(raw_size - 57, 0))
            total += 57
            encoded.insert(0, self._wrapped(head))
        shown = _encode_word(name)
        headers = (
            f"--{boundary}\n"
            f'Content-Type: {ctype}; name="{shown}"\n'
            f"Content-Description: {shown}\n"
            f'Content-Disposition: attachment; filename="{shown}"; size={total}\n'
            "Content-Transfer-Encoding: base64\n\n"
        )
        return [_crlf(headers), *encoded]

    def _plain_part(self, text: str) -> tuple[str, bytes]:
        """(headers, body) of a text/plain part in one of the common encodings."""
        pick = self.rng.random()
        if pick < 0.55:
            return (
                "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit",
                _crlf(text),
            )
        if pick < 0.85:
            body = binascii.b2a_qp(text.encode("utf-8")).decode("ascii")
            return (
                'Content-Type: text/plain; charset="utf-8"\n'
                "Content-Transfer-Encoding: quoted-printable",
                _crlf(body),
            )
        return (
            "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit",
            _crlf(text, "iso-8859-1"),
        )

    def _body(self, target: int, quoted: str | None) -> tuple[str, list[bytes]]:
        """(content headers, body pieces) for a message of about ``target`` bytes."""
        rng = self.rng
        attach = target > 60_000 or rng.random() < 0.1
        text_budget = min(target, rng.randint(600, 7000)) if attach else target - 900
        alternative = rng.random() < 0.6
        if alternative:
            text_budget = max(200, text_budget * 2 // 5)
        text = f"Hi,\n\n{self._text(text_budget)}\n\nBest regards,\n"
        if quoted:
            text += "\n" + "\n".join("> " + line for line in quoted.splitlines()[:40])
        headers, plain = self._plain_part(text)
        body = [plain]
        if alternative:
            html = "".join(f"<p>{p}</p>\n" for p in text.split("\n\n"))
            inner = f"alt_{rng.getrandbits(64):016x}"
            body = [
                _crlf(f"--{inner}\n{headers}\n\n"),
                plain,
                _crlf(
                    f"\n--{inner}\nContent-Type: text/html; charset=utf-8\n"
                    "Content-Transfer-Encoding: 8bit\n\n"
                    f"<html><body>\n{html}</body></html>\n--{inner}--\n"
                ),
            ]
            headers = f'Content-Type: multipart/alternative;\n boundary="{inner}"'
        if not attach:
            return headers, body
        outer = f"mix_{rng.getrandbits(64):016x}"
        used = sum(len(piece) for piece in body)
        parts = [_crlf(f"--{outer}\n{headers}\n\n"), *body, b"\r\n"]
        remaining = max(target - used - 1500, 400)
        count = 1 if remaining < 200_000 else rng.randint(1, 3)
        for _ in range(count):
            parts.extend(self._attachment(remaining // count, outer))
        parts.append(_crlf(f"--{outer}--\n"))
        return f'Content-Type: multipart/mixed;\n boundary="{outer}"', parts

    # --- messages -----------------------------------------------------------------------

    def _message(
        self,
        *,
        sender: _Person,
        to: list[_Person],
        subject: str,
        date: _dt.datetime,
        message_id: str,
        references: list[str],
        quoted: str | None,
    ) -> bytes:
        rng = self.rng
        content_headers, body = self._body(self._target_size(), quoted)
        lines = [
            f"Received: from EX{rng.randint(1, 9)}PR{rng.randint(10, 99)}"
            f"MB{rng.randint(1000, 9999)}"
            f".eurprd0{rng.randint(1, 9)}.prod.outlook.com by mail.{self.domain};"
            f" {format_datetime(date)}",
            f"From: {_address(sender)}",
            "To: " + ",\n ".join(_address(p) for p in to),
        ]
        if rng.random() < 0.25:
            lines.append(f"Cc: {_address(rng.choice(self.colleagues))}")
        lines += [
            f"Subject: {_encode_word(subject)}",
            f"Thread-Topic: {_encode_word(subject.removeprefix('Re: '))}",
            f"Date: {format_datetime(date)}",
            f"Message-ID: {message_id}",
        ]
        if references:
            lines.append(f"In-Reply-To: {references[-1]}")
            lines.append("References: " + "\n ".join(references[-8:]))
        lines += [
            "Content-Language: en-US",
            "X-MS-Has-Attach: " + ("yes" if "multipart/mixed" in content_headers else ""),
            "MIME-Version: 1.0",
            content_headers,
        ]
        head = _crlf("\n".join(lines) + "\n\n")
        data = b"".join([head, *body])
        return data if data.endswith(b"\r\n") else data + b"\r\n"

    def _message_id(self) -> str:
        token = hashlib.sha256(f"{self.o.seed}:{self.count}".encode()).hexdigest()[:24]
        return f"<{token.upper()}@{self.domain}>"

    def _subject(self) -> str:
        if self.rng.random() < 0.2:
            return self.rng.choice(corpus.NON_ASCII_SUBJECTS)
        return f"{self.rng.choice(corpus.SUBJECT_VERBS)} {self.rng.choice(corpus.SUBJECT_TOPICS)}"

    def _received_folder(self, date: _dt.datetime) -> str:
        pick = self.rng.random()
        recent = (self.o.end - date).days < 365
        if pick < (0.6 if recent else 0.35):
            return "INBOX"
        if pick < 0.7:
            return "Archive" if not recent else "INBOX"
        if pick < 0.88:
            return self.rng.choice(corpus.USER_FOLDERS)
        return "Deleted Items"

    def _flags(self, folder: str, date: _dt.datetime) -> set[str]:
        rng = self.rng
        old = (self.o.end - date).days > 30
        flags: set[str] = set()
        if folder in ("Sent Items", "Deleted Items") or rng.random() < (0.93 if old else 0.5):
            flags.add("\\Seen")
        if rng.random() < 0.04:
            flags.add("\\Flagged")
        return flags

    def conversations(self) -> Iterator[SeedMessage]:
        rng = self.rng
        while self.count < self.o.messages:
            pick = rng.random()
            if pick < 0.03:
                yield self._single("Junk Email", spam=True)
                continue
            if pick < 0.04:
                yield self._single("Drafts", spam=False)
                continue
            yield from self._thread()

    def _single(self, folder: str, *, spam: bool) -> SeedMessage:
        date = self._date_now()
        if spam:
            name, address = self.rng.choice(corpus.NEWSLETTER_SENDERS)
            sender, to = _Person(name, address), [self.owner]
            flags = {"\\Seen"} if self.rng.random() < 0.3 else set()
        else:
            sender, to = self.owner, [self.rng.choice(self.externals)]
            flags = {"\\Draft", "\\Seen"}
        data = self._message(
            sender=sender,
            to=to,
            subject=self._subject(),
            date=date,
            message_id=self._message_id(),
            references=[],
            quoted=None,
        )
        self.count += 1
        return SeedMessage(folder, frozenset(flags), date, data)

    def _thread(self) -> Iterator[SeedMessage]:
        rng = self.rng
        subject = self._subject()
        people = [self.owner, *rng.sample(self.colleagues + self.externals, rng.randint(1, 4))]
        length = min(1 + int(rng.expovariate(0.7)), 12)
        date = self._date_now()
        folder = self._received_folder(date)
        references: list[str] = []
        previous: SeedMessage | None = None
        quoted: str | None = None
        for index in range(length):
            if self.count >= self.o.messages:
                break
            sender = people[rng.randrange(len(people))] if index else rng.choice(people[1:])
            to = [p for p in people if p != sender][:3] or [self.owner]
            message_id = self._message_id()
            shown_subject = subject if index == 0 else f"Re: {subject}"
            data = self._message(
                sender=sender,
                to=to,
                subject=shown_subject,
                date=date,
                message_id=message_id,
                references=references,
                quoted=quoted,
            )
            arrival = date + _dt.timedelta(seconds=rng.randint(1, 90))
            own = sender == self.owner
            target = "Sent Items" if own else folder
            flags = {"\\Seen"} if own else self._flags(target, date)
            if own and previous is not None and previous.folder != "Sent Items":
                # The owner answered the message before: Exchange marks it \Answered.
                previous = SeedMessage(
                    previous.folder,
                    previous.flags | {"\\Answered", "\\Seen"},
                    previous.internal_date,
                    previous.data,
                )
            if previous is not None:
                yield previous
            self.count += 1
            previous = SeedMessage(target, frozenset(flags), arrival, data)
            references.append(message_id)
            quoted = self.rng.choice(self.paragraphs)
            date = date + _dt.timedelta(minutes=rng.randint(5, 60 * 48))
        if previous is not None:
            yield previous


def generate(options: SeedOptions | None = None) -> Iterator[SeedMessage]:
    """Yield ``options.messages`` messages (deterministic for equal options)."""
    yield from _Generator(options or SeedOptions()).conversations()


def seed_store(store: MemoryStore, options: SeedOptions | None = None) -> SeedReport:
    """Append a generated mailbox to ``store``, creating the folders it uses."""
    report = SeedReport()
    existing = {name.upper() if name.upper() == "INBOX" else name for name in store.folder_names()}
    for message in generate(options):
        if message.folder not in existing:
            store.create_folder_now(message.folder)
            existing.update(store.folder_names())
        store.add_message(
            message.folder, message.data, flags=message.flags, internal_date=message.internal_date
        )
        report.messages += 1
        report.bytes += len(message.data)
        report.folders[message.folder] += 1
    return report


def maildir_folder_path(root: Path, folder: str) -> Path:
    """Where Maildir++ keeps ``folder`` under ``root`` (INBOX is ``root`` itself)."""
    if folder.upper() == "INBOX":
        return root
    if "." in folder:
        raise StoreError(f"Maildir++ cannot hold a folder name with a dot: {folder!r}")
    return root / ("." + _mutf7(folder).replace("/", "."))


def write_maildir(
    root: str | os.PathLike[str], options: SeedOptions | None = None, *, fsync: bool = False
) -> SeedReport:
    """Write a generated mailbox as a Maildir++ tree under ``root``."""
    base = Path(root)
    report = SeedReport()
    made: set[Path] = set()
    options = options or SeedOptions()
    try:
        for serial, message in enumerate(generate(options)):
            folder_dir = maildir_folder_path(base, message.folder)
            if folder_dir not in made:
                for sub in ("cur", "new", "tmp"):
                    (folder_dir / sub).mkdir(parents=True, exist_ok=True)
                if folder_dir != base:
                    (folder_dir / "maildirfolder").touch()
                made.add(folder_dir)
            stamp = int(message.internal_date.timestamp())
            letters = "".join(sorted(_MAILDIR_FLAG_LETTERS[f] for f in message.flags))
            size = len(message.data)
            name = f"{stamp}.M{serial}P{options.seed}.exoimap-seed,S={size},W={size}:2,{letters}"
            path = folder_dir / "cur" / name
            with open(path, "wb") as handle:
                handle.write(message.data)
                if fsync:
                    os.fsync(handle.fileno())
            os.utime(path, (stamp, stamp))
            report.messages += 1
            report.bytes += size
            report.folders[message.folder] += 1
        folders = sorted(f for f in report.folders if f.upper() != "INBOX")
        (base / "subscriptions").write_text(
            "".join(_mutf7(f) + "\n" for f in ["INBOX", *folders]), encoding="utf-8"
        )
    except OSError as exc:
        raise StoreError(f"cannot write the seeded Maildir under {base}: {exc}") from exc
    return report
