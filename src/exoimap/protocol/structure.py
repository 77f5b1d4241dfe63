"""ENVELOPE and BODYSTRUCTURE: from generic parsed values to types, tolerantly, and back.

Servers get these wrong in many ways (Exchange: a disposition sent as ``"inline"`` instead
of ``("inline" NIL)``, ``(NIL NIL)`` parameter pairs, missing fields). The reader first
parses the value generically; here every field is read defensively, so a malformed part
gives None/empty fields, never an exception other than :class:`RemoteProtocolError`.
"""

from __future__ import annotations

from exoimap.protocol.reader import dec
from exoimap.protocol.types import (
    Address,
    BodyPart,
    BodyStructure,
    Disposition,
    Envelope,
    Multipart,
    Value,
)

__all__ = [
    "body_structure_from_value",
    "body_structure_to_value",
    "envelope_from_value",
    "envelope_to_value",
]


def _bytes(v: Value) -> bytes | None:
    if isinstance(v, bytes):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v).encode()
    return None


def _text(v: Value) -> str | None:
    b = _bytes(v)
    return None if b is None else dec(b)


def _int(v: Value) -> int | None:
    if isinstance(v, int):
        return v
    if isinstance(v, bytes) and v.isdigit():
        return int(v)
    return None


def _addresses(v: Value) -> tuple[Address, ...] | None:
    if not isinstance(v, tuple):
        return None
    out = []
    for item in v:
        if isinstance(item, tuple):
            fields = [*item[:4], None, None, None, None][:4]
            out.append(Address(*(_bytes(f) for f in fields)))
    return tuple(out)


def envelope_from_value(v: Value) -> Envelope:
    if not isinstance(v, tuple):
        return Envelope()
    f = [*v[:10], *([None] * 10)][:10]
    return Envelope(
        date=_bytes(f[0]),
        subject=_bytes(f[1]),
        from_=_addresses(f[2]),
        sender=_addresses(f[3]),
        reply_to=_addresses(f[4]),
        to=_addresses(f[5]),
        cc=_addresses(f[6]),
        bcc=_addresses(f[7]),
        in_reply_to=_bytes(f[8]),
        message_id=_bytes(f[9]),
    )


def _address_value(addrs: tuple[Address, ...] | None) -> Value:
    if addrs is None:
        return None
    return tuple((a.name, a.adl, a.mailbox, a.host) for a in addrs)


def envelope_to_value(e: Envelope) -> Value:
    return (
        e.date,
        e.subject,
        _address_value(e.from_),
        _address_value(e.sender),
        _address_value(e.reply_to),
        _address_value(e.to),
        _address_value(e.cc),
        _address_value(e.bcc),
        e.in_reply_to,
        e.message_id,
    )


def _params(v: Value) -> tuple[tuple[str, str], ...]:
    """Parameter pairs; odd lengths and ``(NIL NIL)`` pairs are dropped, not fatal."""
    if not isinstance(v, tuple):
        return ()
    out = []
    for i in range(0, len(v) - 1, 2):
        key, value = _text(v[i]), _text(v[i + 1])
        if key is not None and value is not None:
            out.append((key, value))
    return tuple(out)


def _disposition(v: Value) -> Disposition | None:
    if isinstance(v, bytes):  # Exchange: "inline" instead of ("inline" NIL)
        return Disposition(dec(v))
    if isinstance(v, tuple) and v:
        kind = _text(v[0])
        if kind is None:
            return None
        return Disposition(kind, _params(v[1]) if len(v) > 1 else ())
    return None


def _language(v: Value) -> tuple[str, ...] | None:
    if isinstance(v, tuple):
        return tuple(t for t in (_text(x) for x in v) if t is not None)
    t = _text(v)
    return None if t is None else (t,)


def body_structure_from_value(v: Value, depth: int = 0) -> BodyStructure | None:
    if not isinstance(v, tuple) or not v or depth > 32:
        return None
    if isinstance(v[0], tuple):
        parts: list[BodyStructure] = []
        i = 0
        while i < len(v) and isinstance(v[i], tuple):
            part = body_structure_from_value(v[i], depth + 1)
            if part is not None:
                parts.append(part)
            i += 1
        rest = [*v[i:], None, None, None, None, None][:5]
        return Multipart(
            parts=tuple(parts),
            subtype=(_text(rest[0]) or "MIXED").upper(),
            params=_params(rest[1]),
            disposition=_disposition(rest[2]),
            language=_language(rest[3]),
            location=_text(rest[4]),
        )
    f = [*v, *([None] * 12)]
    kind = (_text(f[0]) or "TEXT").upper()
    subtype = (_text(f[1]) or "PLAIN").upper()
    envelope: Envelope | None = None
    body: BodyStructure | None = None
    lines: int | None = None
    ext = 7
    if kind == "MESSAGE" and subtype == "RFC822" and isinstance(f[7], tuple):
        envelope = envelope_from_value(f[7])
        body = body_structure_from_value(f[8], depth + 1)
        lines = _int(f[9])
        ext = 10
    elif kind == "TEXT":
        lines = _int(f[7])
        ext = 8
    return BodyPart(
        type=kind,
        subtype=subtype,
        params=_params(f[2]),
        id=_text(f[3]),
        description=_text(f[4]),
        encoding=_text(f[5]),
        size=_int(f[6]) or 0,
        lines=lines,
        md5=_text(f[ext]),
        disposition=_disposition(f[ext + 1]),
        language=_language(f[ext + 2]),
        location=_text(f[ext + 3]),
        envelope=envelope,
        body=body,
    )


def _params_value(params: tuple[tuple[str, str], ...]) -> Value:
    if not params:
        return None
    return tuple(x.encode("utf-8", "surrogateescape") for pair in params for x in pair)


def _opt(s: str | None) -> Value:
    return None if s is None else s.encode("utf-8", "surrogateescape")


def _disposition_value(d: Disposition | None) -> Value:
    if d is None:
        return None
    return (_opt(d.type), _params_value(d.params))


def _language_value(lang: tuple[str, ...] | None) -> Value:
    if lang is None:
        return None
    return tuple(_opt(x) for x in lang)


def body_structure_to_value(b: BodyStructure) -> Value:
    if isinstance(b, Multipart):
        return (
            *(body_structure_to_value(p) for p in b.parts),
            _opt(b.subtype),
            _params_value(b.params),
            _disposition_value(b.disposition),
            _language_value(b.language),
            _opt(b.location),
        )
    fields: list[Value] = [
        _opt(b.type),
        _opt(b.subtype),
        _params_value(b.params),
        _opt(b.id),
        _opt(b.description),
        _opt(b.encoding),
        b.size,
    ]
    if b.envelope is not None:
        fields.append(envelope_to_value(b.envelope))
        fields.append(None if b.body is None else body_structure_to_value(b.body))
        fields.append(b.lines or 0)
    elif b.lines is not None or b.type.upper() == "TEXT":
        fields.append(b.lines or 0)
    fields += [
        _opt(b.md5),
        _disposition_value(b.disposition),
        _language_value(b.language),
        _opt(b.location),
    ]
    return tuple(fields)
