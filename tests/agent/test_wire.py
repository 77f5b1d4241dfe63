"""The agent's wire format and the client's choice of what to hand over."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from exoimap.agent import wire
from exoimap.agent.client import forward, served_by_agent


def _pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


def test_frames_round_trip_whatever_the_chunking() -> None:
    left, right = _pair()
    with left, right:
        data = wire.frame(wire.STDOUT, "Zähler ✓\n".encode()) + wire.frame(wire.EXIT, b"4")
        for byte in data:  # one byte at a time: frames split anywhere still come out whole
            left.sendall(bytes([byte]))
        left.shutdown(socket.SHUT_WR)
        reader = wire.FrameReader(right)
        assert reader.read() == (wire.STDOUT, "Zähler ✓\n".encode())
        assert reader.read() == (wire.EXIT, b"4")
        assert reader.read() is None


def test_a_stream_cut_inside_a_frame_is_an_error_not_an_end() -> None:
    left, right = _pair()
    with left, right:
        left.sendall(wire.frame(wire.STDERR, b"half of this")[:-4])
        left.shutdown(socket.SHUT_WR)
        with pytest.raises(wire.WireError, match="middle of a frame"):
            wire.FrameReader(right).read()


def test_an_oversized_frame_is_refused_on_both_sides() -> None:
    with pytest.raises(wire.WireError):
        wire.frame(wire.STDOUT, b"x" * (wire.MAX_FRAME + 1))
    left, right = _pair()
    with left, right:
        left.sendall(wire.STDOUT + (wire.MAX_FRAME + 1).to_bytes(4, "big"))
        with pytest.raises(wire.WireError, match="at most"):
            wire.FrameReader(right).read()


def test_run_requests_carry_any_argument_bytes() -> None:
    argv = ["sync", "work", "--folder", "Équipe/*", "--exclude", "bad\udcffname"]
    payload = wire.run_request(argv, tty=True, columns=132, cwd="/home/ann/Mail")[5:]
    request = wire.parse_run_request(payload)
    assert (request.version, request.tty, request.columns) == (wire.VERSION, True, 132)
    assert (request.cwd, request.argv) == ("/home/ann/Mail", argv)
    plain = wire.parse_run_request(wire.run_request(["sync"], tty=False, columns=None, cwd="/")[5:])
    assert (plain.tty, plain.columns, plain.cwd, plain.argv) == (False, None, "/", ["sync"])
    with pytest.raises(wire.WireError):
        wire.parse_run_request(b"garbage")


@pytest.mark.parametrize(
    ("argv", "served"),
    [
        (["sync"], True),
        (["sync", "work", "--dry-run"], True),
        (["-v", "sync", "work"], True),
        (["-q", "--verbose", "sync"], True),
        (["sync", "--no-agent"], False),
        (["verify", "work"], False),
        (["agent", "status"], False),
        (["--version"], False),
        ([], False),
        (["--help", "sync"], False),
    ],
)
def test_only_sync_goes_to_the_agent(argv: list[str], served: bool) -> None:
    assert served_by_agent(argv) is served


def test_without_an_agent_the_command_runs_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXOIMAP_HOME", str(tmp_path))
    assert forward(["sync"]) is None  # no socket at all
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(run_dir / "agent.sock"))  # a socket file nobody listens on (a killed agent)
    stale.close()
    assert forward(["sync"]) is None


def test_the_client_never_talks_to_another_users_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A socket at the agent's path that another user listens on (here: we pretend to be
    someone else) gets no request: the command runs in its own process."""
    monkeypatch.setenv("EXOIMAP_HOME", str(tmp_path))
    (tmp_path / "run").mkdir()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with listener:
        listener.bind(str(tmp_path / "run" / "agent.sock"))
        listener.listen(1)
        assert wire.peer_uid(listener) in (None, os.getuid())  # what the check reads
        real_uid = os.getuid()
        monkeypatch.setattr(os, "getuid", lambda: real_uid + 4242)
        assert forward(["sync"]) is None
        listener.settimeout(0.5)
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(0.5)
            assert conn.recv(100) == b""  # connected, then closed without a word
    assert "belongs to uid" in capsys.readouterr().err
