"""Shared helpers for the protocol tests: feed bytes whole or byte by byte, load the corpus."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exoimap.protocol import (
    NEED_DATA,
    AppendChunk,
    BodyChunk,
    ClientConnection,
    ServerConnection,
)

GREETING = b"* OK IMAP4rev1 ready\r\n"
CORPUS = Path(__file__).with_name("exchange_dovecot_corpus.txt")


def drain(conn: ClientConnection | ServerConnection) -> list[Any]:
    events: list[Any] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)


def merge_chunks(events: list[Any]) -> list[Any]:
    """Join consecutive BodyChunk/AppendChunk events so whole and byte-wise runs compare."""
    out: list[Any] = []
    for event in events:
        if isinstance(event, BodyChunk | AppendChunk) and out and type(out[-1]) is type(event):
            out[-1] = type(event)(bytes(out[-1].data) + bytes(event.data))
        elif isinstance(event, BodyChunk | AppendChunk):
            out.append(type(event)(bytes(event.data)))
        else:
            out.append(event)
    return out


def feed(conn: ClientConnection | ServerConnection, data: bytes, *, bytewise: bool) -> list[Any]:
    """Feed ``data`` whole or one byte at a time, draining events as they come."""
    events: list[Any] = []
    if bytewise:
        for i in range(len(data)):
            conn.receive_data(data[i : i + 1])
            events += drain(conn)
    else:
        conn.receive_data(data)
        events += drain(conn)
    return merge_chunks(events)


def client_events(data: bytes, *, bytewise: bool, greet: bool = True, **kwargs: Any) -> list[Any]:
    """Events of a fresh greeted client fed ``data``."""
    conn = ClientConnection(**kwargs)
    if greet:
        conn.receive_data(GREETING)
        drain(conn)
    return feed(conn, data, bytewise=bytewise)


def both_ways(data: bytes, **kwargs: Any) -> list[Any]:
    """Client events for ``data`` fed whole; asserts byte-by-byte feeding gives the same."""
    whole = client_events(data, bytewise=False, **kwargs)
    assert client_events(data, bytewise=True, **kwargs) == whole
    return whole


@dataclass(frozen=True)
class CorpusLine:
    source: str
    side: str  # "S" or "C"
    exact: bool
    data: bytes  # without the final CRLF; literals written inline with CRLF


def load_corpus() -> list[CorpusLine]:
    lines: list[CorpusLine] = []
    source = ""
    last_was_label = False
    for raw in CORPUS.read_text(encoding="utf-8").split("\n"):
        if raw.startswith("@ "):
            source = (source + " " + raw[2:]) if last_was_label else raw[2:]
            last_was_label = True
            continue
        last_was_label = False
        if not raw or raw.startswith("#"):
            continue
        head, _, text = raw.partition(": ")
        side, _, flag = head.partition(" ")
        data = text.replace("<CRLF>", "\r\n").encode("utf-8")
        lines.append(CorpusLine(source, side, flag == "exact", data))
    return lines
