"""The sandbox server driven by our own protocol core (``ClientConnection``) over TLS:
SASL-IR XOAUTH2, typed responses, pipelined UID FETCH with streamed bodies, APPEND."""

from __future__ import annotations

import socket

from exoimap.protocol import (
    NEED_DATA,
    Append,
    Authenticate,
    BodySection,
    Capability,
    ClientConnection,
    Fetch,
    Select,
    SequenceSet,
)
from exoimap.protocol.events import BodyChunk, CommandDone, FetchEnd, FetchStart, Greeting
from exoimap.protocol.sasl import xoauth2
from exoimap.protocol.types import CapabilityResponse, FetchResponse
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.secrets import Secret


class Client:
    def __init__(self, tenant: SandboxTenant) -> None:
        raw = socket.create_connection((tenant.imap_host, tenant.imap_port), timeout=10)
        self.sock = tenant.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1")
        self.conn = ClientConnection(stream_threshold=1024)

    def events(self, until_tag: str | None = None) -> list[object]:
        out: list[object] = []
        while True:
            event = self.conn.next_event()
            if event is NEED_DATA:
                data = self.sock.recv(65536)
                self.conn.receive_data(data)
                if not data:
                    return out
                continue
            out.append(event)
            if until_tag is None and isinstance(event, Greeting):
                return out
            if isinstance(event, CommandDone) and event.tag == until_tag:
                return out

    def run(self, *commands: object) -> list[object]:
        tags = [self.conn.send(command) for command in commands]  # type: ignore[arg-type]
        self.sock.sendall(self.conn.data_to_send())
        out: list[object] = []
        for tag in tags:
            out += self.events(tag)
        return out


def test_protocol_core_client(tenant: SandboxTenant, alice: str, alice_token: str) -> None:
    client = Client(tenant)
    try:
        greeting = client.events()[0]
        assert isinstance(greeting, Greeting)
        assert greeting.response.text.startswith("The Microsoft Exchange IMAP4 service is ready. [")
        auth = client.run(Authenticate("XOAUTH2", xoauth2(alice, Secret(alice_token))))
        done = auth[-1]
        assert isinstance(done, CommandDone)
        assert (done.ok, done.text) == (True, "AUTHENTICATE completed.")
        caps = client.run(Capability())
        assert isinstance(caps[0], CapabilityResponse)
        assert "MOVE" in caps[0].capabilities
        assert "CONDSTORE" not in caps[0].capabilities
        big = b"Subject: big\r\n\r\n" + b"x" * 5000 + b"\r\n"
        appended = client.run(Append("Drafts", big, flags=("\\Draft",)))
        assert isinstance(appended[-1], CommandDone)
        assert appended[-1].ok
        # pipelined: SELECT then a UID FETCH of everything, the big body streamed
        events = client.run(
            Select("Drafts"),
            Fetch(SequenceSet.all(), ("UID", "FLAGS", BodySection(peek=True)), uid=True),
        )
        bodies: dict[int, bytes] = {}
        current = b""
        for event in events:
            if isinstance(event, FetchStart):
                current = b""
            elif isinstance(event, BodyChunk):
                current += bytes(event.data)
            elif isinstance(event, FetchEnd):
                assert event.fetch.uid is not None
                bodies[event.fetch.uid] = current
            elif isinstance(event, FetchResponse) and event.uid is not None:
                body = event.body()  # type: ignore[attr-defined]
                bodies[event.uid] = body
        assert big in bodies.values()
        done = events[-1]
        assert isinstance(done, CommandDone)
        assert done.text == "FETCH completed."
    finally:
        client.sock.close()
