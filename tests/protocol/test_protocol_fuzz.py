"""Fuzzing (Hypothesis): whatever bytes arrive, in whatever pieces, the client and the server
connections either produce events or raise RemoteProtocolError, never anything else."""

from __future__ import annotations

import contextlib
import itertools
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exoimap.errors import RemoteProtocolError
from exoimap.protocol import (
    NEED_DATA,
    ClientConnection,
    ContinuationRequest,
    Idle,
    Noop,
    ServerConnection,
    Status,
    StatusResponse,
    parse_command_line,
    parse_response_line,
)

from .protocol_helpers import GREETING, load_corpus

# FUZZ_EXAMPLES=5000 for a longer hunt (the suite keeps it quick).
SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

CORPUS = load_corpus()
SERVER_LINES = [line.data for line in CORPUS if line.side == "S"]
RESPONSE_TOKENS = [
    b"* ",
    b"A0001 ",
    b"A0002 ",
    b"+ ",
    b"+",
    b"FETCH ",
    b"(",
    b")",
    b"{5}\r\n",
    b"~{3}\r\n",
    b"{2+}\r\n",
    b"{0}\r\n",
    b"BODY[",
    b"BODY[]",
    b"]",
    b"<",
    b">",
    b"<0>",
    b"NIL",
    b'"',
    b"\\",
    b" ",
    b"\r\n",
    b"\n",
    b"\r",
    b"1",
    b"0",
    b"42",
    b"UID ",
    b"FLAGS ",
    b"(\\Seen)",
    b"[",
    b"OK ",
    b"NO ",
    b"BAD ",
    b"BYE ",
    b"PREAUTH ",
    b"LIST ",
    b"LSUB ",
    b"STATUS ",
    b"ENVELOPE ",
    b"BODYSTRUCTURE ",
    b"BINARY[1] ",
    b"RFC822 ",
    b"MODSEQ ",
    b"INTERNALDATE ",
    b"\x00",
    b"\xff",
    b"\xc3\xa9",
    b"CAPABILITY ",
    b"SEARCH ",
    b"ESEARCH ",
    b"(TAG ",
    b"NAMESPACE ",
    b"ID ",
    b"VANISHED ",
    b"(EARLIER) ",
    b"1:*",
    b"*",
    b",",
    b":",
    b"COPYUID ",
    b"APPENDUID ",
    b"PERMANENTFLAGS ",
    b"UIDVALIDITY ",
    b"EXISTS",
    b"EXPUNGE",
    b"RECENT",
    b"ENABLED ",
    b"&",
    b"&Jjo-",
    b"&-",
    b"abcde",
    b"xyz",
]
COMMAND_TOKENS = [
    b"A1 ",
    b"UID ",
    b"FETCH ",
    b"STORE ",
    b"SEARCH ",
    b"COPY ",
    b"MOVE ",
    b"EXPUNGE",
    b"APPEND ",
    b"LOGIN ",
    b"AUTHENTICATE ",
    b"XOAUTH2 ",
    b"PLAIN ",
    b"SELECT ",
    b"LIST ",
    b"STATUS ",
    b"IDLE",
    b"DONE",
    b"ENABLE ",
    b"ID ",
    b"NOOP",
    b"(",
    b")",
    b"{5}\r\n",
    b"{3+}\r\n",
    b"~{2}\r\n",
    b"{0}\r\n",
    b'"',
    b"\\",
    b" ",
    b"\r\n",
    b"1",
    b"0",
    b"1:*",
    b"*",
    b"+FLAGS ",
    b"-FLAGS.SILENT ",
    b"(\\Seen)",
    b"BODY.PEEK[]",
    b"BODY[HEADER]<0.10>",
    b"NIL",
    b"CHARSET ",
    b"UTF-8 ",
    b"OR ",
    b"INBOX",
    b"=",
    b"dXNlcg==",
    b"\x00",
    b"\xff",
    b"&",
    b"(UNCHANGEDSINCE 5) ",
    b"(CHANGEDSINCE 1)",
]


def mutated(lines: list[bytes], tokens: list[bytes]) -> st.SearchStrategy[bytes]:
    """Real lines with tokens inserted, bytes deleted or replaced, joined with CRLFs."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        out = bytearray()
        for _ in range(draw(st.integers(1, 4))):
            line = bytearray(draw(st.sampled_from(lines)))
            for _ in range(draw(st.integers(0, 3))):
                where = draw(st.integers(0, len(line)))
                action = draw(st.integers(0, 2))
                if action == 0:
                    line[where:where] = draw(st.sampled_from(tokens))
                elif action == 1:
                    del line[where : where + draw(st.integers(1, 5))]
                else:
                    line[where : where + 1] = bytes([draw(st.integers(0, 255))])
            out += line + b"\r\n"
        return bytes(out)

    return build()


def token_soup(tokens: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.lists(st.sampled_from(tokens), max_size=30).map(b"".join)


response_inputs = st.one_of(
    st.binary(max_size=200), mutated(SERVER_LINES, RESPONSE_TOKENS), token_soup(RESPONSE_TOKENS)
)
command_inputs = st.one_of(
    st.binary(max_size=200),
    mutated(
        [b"A1 " + t for t in COMMAND_TOKENS] + [b"A1 NOOP", b"A1 UID FETCH 1:* (FLAGS)"],
        COMMAND_TOKENS,
    ),
    token_soup(COMMAND_TOKENS),
)


def pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


@SETTINGS
@given(response_inputs, st.lists(st.integers(0, 10_000), max_size=6), st.integers(0, 50))
def test_client_survives_anything(data: bytes, cuts: list[int], threshold: int) -> None:
    client = ClientConnection(
        stream_threshold=threshold,
        max_line_length=500,
        max_literal_size=400,
        max_buffered_literal=100,
    )
    client.receive_data(GREETING)
    client.next_event()
    client.send(Noop())
    client.send(Idle())
    try:
        for piece in [*pieces(data, cuts), b""]:
            client.receive_data(piece)
            while True:
                event = client.next_event()
                if event is NEED_DATA or type(event).__name__ == "ConnectionClosed":
                    break
                if isinstance(event, ContinuationRequest):
                    client.data_to_send()
    except RemoteProtocolError:
        pass


@SETTINGS
@given(command_inputs, st.lists(st.integers(0, 10_000), max_size=6), st.booleans())
def test_server_survives_anything(data: bytes, cuts: list[int], accept: bool) -> None:
    server = ServerConnection(max_line_length=500, max_literal_size=400, max_buffered_literal=100)
    try:
        for piece in [*pieces(data, cuts), b""]:
            server.receive_data(piece)
            while True:
                event = server.next_event()
                if event is NEED_DATA or type(event).__name__ == "ConnectionClosed":
                    break
                if type(event).__name__ == "AppendStart" and event.synchronizing:
                    if accept:
                        server.send(ContinuationRequest(None))
                    else:
                        server.send(StatusResponse(event.tag, Status.NO, None, "no"))
    except RemoteProtocolError:
        pass


@SETTINGS
@given(st.one_of(response_inputs, command_inputs))
def test_whole_message_parsers_raise_only_remote_errors(data: bytes) -> None:
    for parse in (parse_response_line, parse_command_line):
        with contextlib.suppress(RemoteProtocolError):
            parse(data)
