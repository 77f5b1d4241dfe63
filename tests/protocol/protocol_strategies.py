"""Hypothesis strategies for typed IMAP commands and responses (canonical forms, so that
``parse(serialize(x)) == x`` must hold exactly)."""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st

from exoimap.protocol import commands as c
from exoimap.protocol.types import (
    KNOWN_CODES,
    NUMBER_CODES,
    Address,
    AppendUidCode,
    BareResponseCode,
    BodyData,
    BodyPart,
    CapabilityCode,
    CapabilityResponse,
    ContinuationRequest,
    CopyUidCode,
    Disposition,
    EnabledResponse,
    Envelope,
    ESearchResponse,
    ExistsResponse,
    ExpungeResponse,
    FetchResponse,
    FlagsResponse,
    IdResponse,
    ListResponse,
    Multipart,
    NamespaceResponse,
    NumberCode,
    OtherCode,
    PermanentFlagsCode,
    RecentResponse,
    SearchResponse,
    SequenceSet,
    SimpleCode,
    Status,
    StatusData,
    StatusResponse,
    VanishedResponse,
)
from exoimap.secrets import Secret

ATOM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.$+=!#&'~"
PRINTABLE = "".join(chr(i) for i in range(0x20, 0x7F))

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
line_text = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\r\n"), max_size=30
)
atom = st.text(ATOM_ALPHABET, min_size=1, max_size=10)
upper_atom = atom.map(str.upper)
tag = st.text(ATOM_ALPHABET.replace("+", ""), min_size=1, max_size=8)
flag = st.one_of(atom, atom.map(lambda a: "\\" + a))
flags = st.lists(flag, max_size=4).map(tuple)
number = st.integers(0, 2**63 - 1)
nz32 = st.integers(1, 2**32 - 1)
#: What an IMAP date-time can hold: aware, whole seconds, an offset in whole minutes.
date_time = st.builds(
    lambda naive, minutes: naive.replace(tzinfo=dt.timezone(dt.timedelta(minutes=minutes))),
    st.datetimes(dt.datetime(1, 1, 2), dt.datetime(9999, 12, 30)).map(
        lambda d: d.replace(microsecond=0)
    ),
    st.integers(-(24 * 60 - 1), 24 * 60 - 1),
)
seq_end = st.one_of(st.none(), nz32)
sequence_set = st.lists(
    st.one_of(nz32.map(lambda n: (n, n)), st.tuples(seq_end, seq_end)), min_size=1, max_size=4
).map(lambda ranges: SequenceSet(tuple(ranges)))
mailbox = text
quoted_printable = st.text(PRINTABLE, max_size=20)

# --- commands ------------------------------------------------------------------------------

section_text = st.text(PRINTABLE.replace("]", ""), max_size=12)
fetch_item = st.one_of(
    st.sampled_from(
        [
            "UID",
            "FLAGS",
            "INTERNALDATE",
            "RFC822.SIZE",
            "ENVELOPE",
            "BODYSTRUCTURE",
            "MODSEQ",
            "ALL",
        ]
    ),
    st.builds(
        c.BodySection,
        section_text,
        st.booleans(),
        st.one_of(st.none(), st.tuples(st.integers(0, 10**6), st.integers(1, 10**6))),
        st.booleans(),
    ),
)
search_token = text.filter(lambda t: t.upper() != "CHARSET")
search_key = st.recursive(
    search_token, lambda inner: st.lists(inner, max_size=3).map(tuple), max_leaves=6
)

qresync = st.builds(c.QResync, nz32, number, st.one_of(st.none(), sequence_set))

commands = st.one_of(
    st.sampled_from(
        [c.Capability(), c.Noop(), c.Logout(), c.Namespace(), c.Close(), c.Unselect(), c.Expunge()]
    ),
    st.sampled_from([c.Idle()]),
    st.builds(c.Login, text, text.map(Secret)),
    st.builds(c.Authenticate, upper_atom, st.one_of(st.none(), st.binary(max_size=40).map(Secret))),
    st.builds(c.Select, mailbox, st.booleans(), st.one_of(st.none(), qresync)),
    st.builds(c.Examine, mailbox, st.booleans(), st.one_of(st.none(), qresync)),
    st.builds(c.Create, mailbox),
    st.builds(c.Delete, mailbox),
    st.builds(c.Subscribe, mailbox),
    st.builds(c.Unsubscribe, mailbox),
    st.builds(c.Rename, mailbox, mailbox),
    st.builds(c.List, mailbox, mailbox),
    st.builds(c.Lsub, mailbox, mailbox),
    st.builds(c.StatusCommand, mailbox, st.lists(upper_atom, max_size=4).map(tuple)),
    st.builds(
        c.Fetch,
        sequence_set,
        st.lists(fetch_item, min_size=1, max_size=4).map(tuple),
        st.booleans(),
        st.one_of(st.none(), number),
    ),
    st.builds(
        c.Fetch,
        sequence_set,
        st.lists(fetch_item, min_size=1, max_size=4).map(tuple),
        st.just(True),
        number,
        st.booleans(),
    ),
    st.builds(
        c.Search,
        st.lists(search_key, min_size=1, max_size=4).map(tuple),
        st.booleans(),
        st.one_of(st.none(), atom),
    ),
    st.builds(
        c.StoreFlags,
        sequence_set,
        flags,
        st.sampled_from(list(c.StoreMode)),
        st.booleans(),
        st.booleans(),
        st.one_of(st.none(), number),
    ),
    st.builds(c.Copy, sequence_set, mailbox, st.booleans()),
    st.builds(c.Move, sequence_set, mailbox, st.booleans()),
    st.builds(c.UidExpunge, sequence_set),
    st.builds(
        c.Append,
        mailbox,
        st.binary(max_size=60),
        flags,
        st.one_of(st.none(), date_time),
    ),
    st.builds(c.Enable, st.lists(atom, min_size=1, max_size=3).map(tuple)),
    st.builds(
        c.Id,
        st.one_of(
            st.none(),
            st.lists(st.tuples(text, st.one_of(st.none(), text)), max_size=3).map(tuple),
        ),
    ),
)

# --- responses -----------------------------------------------------------------------------

code = st.one_of(
    upper_atom.filter(lambda n: n not in KNOWN_CODES).map(SimpleCode),
    st.builds(NumberCode, st.sampled_from(sorted(NUMBER_CODES)), number),
    st.builds(PermanentFlagsCode, st.lists(st.one_of(flag, st.just("\\*")), max_size=4).map(tuple)),
    st.builds(CapabilityCode, st.lists(atom, min_size=1, max_size=4).map(tuple)),
    st.builds(AppendUidCode, nz32, sequence_set),
    st.builds(CopyUidCode, nz32, sequence_set, sequence_set),
    st.builds(
        OtherCode,
        upper_atom.filter(lambda n: n not in KNOWN_CODES),
        st.text(PRINTABLE.replace("]", ""), max_size=15),
    ),
)
status_text = line_text.filter(lambda t: not t.startswith("["))


@st.composite
def status_responses(draw: st.DrawFn) -> StatusResponse:
    tagged = draw(st.booleans())
    if tagged:
        status = draw(st.sampled_from([Status.OK, Status.NO, Status.BAD]))
        return StatusResponse(
            draw(tag), status, draw(st.one_of(st.none(), code)), draw(status_text)
        )
    status = draw(st.sampled_from(list(Status)))
    return StatusResponse(None, status, draw(st.one_of(st.none(), code)), draw(status_text))


nstring_bytes = st.one_of(st.none(), st.binary(max_size=20))
address = st.builds(Address, nstring_bytes, nstring_bytes, nstring_bytes, nstring_bytes)
addresses = st.one_of(st.none(), st.lists(address, max_size=2).map(tuple))
envelope = st.builds(
    Envelope,
    nstring_bytes,
    nstring_bytes,
    addresses,
    addresses,
    addresses,
    addresses,
    addresses,
    addresses,
    nstring_bytes,
    nstring_bytes,
)
opt_text = st.one_of(st.none(), text)
params = st.lists(st.tuples(text, text), max_size=2).map(tuple)
disposition = st.one_of(st.none(), st.builds(Disposition, text, params))
language = st.one_of(st.none(), st.lists(text, max_size=2).map(tuple))


@st.composite
def body_parts(draw: st.DrawFn) -> BodyPart:
    kind = draw(st.sampled_from(["TEXT", "APPLICATION", "IMAGE"]))
    return BodyPart(
        kind,
        draw(upper_atom),
        draw(params),
        draw(opt_text),
        draw(opt_text),
        draw(opt_text),
        draw(st.integers(0, 10**9)),
        draw(st.integers(0, 10**6)) if kind == "TEXT" else None,
        draw(opt_text),
        draw(disposition),
        draw(language),
        draw(opt_text),
    )


body_structure = st.one_of(
    body_parts(),
    st.builds(
        Multipart,
        st.lists(body_parts(), min_size=1, max_size=3).map(tuple),
        upper_atom,
        params,
        disposition,
        language,
        opt_text,
    ),
)


@st.composite
def body_data(draw: st.DrawFn) -> BodyData:
    name = draw(st.sampled_from(["BODY", "BINARY", "RFC822", "RFC822.HEADER", "RFC822.TEXT"]))
    data = draw(nstring_bytes)
    size = None if data is None else len(data)
    if name.startswith("RFC822"):
        return BodyData("", None, data, name, False, size)
    origin = draw(st.one_of(st.none(), st.integers(0, 10**6)))
    return BodyData(draw(section_text), origin, data, name, False, size)


fetch_responses = st.builds(
    FetchResponse,
    nz32,
    st.one_of(st.none(), nz32),
    st.one_of(st.none(), flags),
    st.one_of(st.none(), date_time),
    st.one_of(st.none(), number),
    st.one_of(st.none(), number),
    st.one_of(st.none(), envelope),
    st.one_of(st.none(), body_structure),
    st.lists(body_data(), max_size=3).map(tuple),
    st.lists(
        st.tuples(
            st.sampled_from(["X-GM-MSGID", "X-GUID", "SAVEDATE"]),
            st.one_of(number, st.binary(max_size=8)),
        ),
        max_size=2,
    ).map(tuple),
)
delimiter = st.one_of(st.none(), st.sampled_from(["/", ".", "\\", '"', "|"]))
namespace = st.one_of(
    st.none(), st.lists(st.tuples(text, delimiter), min_size=1, max_size=2).map(tuple)
)

responses = st.one_of(
    status_responses(),
    st.builds(ContinuationRequest, st.one_of(st.none(), line_text)),
    st.builds(BareResponseCode, code, status_text),
    st.builds(CapabilityResponse, st.lists(atom, max_size=4).map(tuple)),
    st.builds(EnabledResponse, st.lists(atom, max_size=4).map(tuple)),
    st.builds(ExistsResponse, nz32),
    st.builds(RecentResponse, nz32),
    st.builds(ExpungeResponse, nz32),
    st.builds(FlagsResponse, flags),
    st.builds(ListResponse, flags, delimiter, mailbox, st.booleans()),
    st.builds(
        StatusData,
        mailbox,
        st.lists(st.tuples(upper_atom, number), max_size=3).map(tuple),
        st.booleans(),
    ),
    st.builds(SearchResponse, st.lists(nz32, max_size=5).map(tuple), st.one_of(st.none(), number)),
    st.builds(
        ESearchResponse,
        st.one_of(st.none(), quoted_printable),
        st.booleans(),
        st.one_of(st.none(), nz32),
        st.one_of(st.none(), nz32),
        st.one_of(st.none(), number),
        st.one_of(st.none(), sequence_set),
        st.one_of(st.none(), number),
    ),
    st.builds(VanishedResponse, sequence_set, st.booleans()),
    st.builds(
        IdResponse,
        st.one_of(
            st.none(), st.lists(st.tuples(text, st.one_of(st.none(), text)), max_size=3).map(tuple)
        ),
    ),
    st.builds(NamespaceResponse, namespace, namespace, namespace),
    fetch_responses,
)
