"""The sync display: rich bars on a terminal, plain lines otherwise; throttling shown."""

from __future__ import annotations

import dataclasses
import io

import pytest
from rich.console import Console

from exoimap.cli.progress import SyncDisplay
from exoimap.net.session import NetEvent
from exoimap.sync.report import Progress

THROTTLED = NetEvent("throttled", "127.0.0.1", 993, detail="Request is throttled.", wait=1.5)


def _update(done: int, planned: int = 10, folder: str = "INBOX") -> Progress:
    return Progress(
        folder=folder,
        folder_done=done,
        folder_planned=planned,
        folder_bytes=done * 2048,
        total_done=done,
        total_planned=planned,
        total_bytes=done * 2048,
    )


def test_bars_show_messages_bytes_and_throttling_waits() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160, color_system=None)
    with SyncDisplay(rich=True, console=console) as display:
        display.progress("work", _update(3))
        display.net_event("work", THROTTLED)
        display.progress("work", _update(4))
    text = screen.getvalue()
    assert "work (total)" in text
    assert "INBOX" in text
    assert "4/10" in text
    assert "8.0 KB" in text
    assert "throttled 1x (1.5 s)" in text
    assert "the server asked us to slow down; waiting 1.5 s." in text
    assert display.throttle_summary("work")[0] == 1


def test_plain_lines_when_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with SyncDisplay(rich=False) as display:
        display.progress("work", _update(1, planned=2))
        display.progress("work", _update(2, planned=2))
        display.net_event("work", THROTTLED)
    out = capsys.readouterr().out
    assert "work: 1/2 messages, 2.0 KB" in out
    assert "work/INBOX: 2 messages, 4.0 KB" in out
    assert "work: the server asked us to slow down; waiting 1.5 s." in out
    assert "\x1b[" not in out  # no terminal control codes


HOSTILE = ["evil\x1b[2J\x1b]0;owned\x07", "[blink red]party[/blink red]", "[/bold]x", "a\u202eb"]


def test_bars_show_hostile_folder_names_literally() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=200, color_system="truecolor")
    with SyncDisplay(rich=True, console=console) as display:
        for name in HOSTILE:
            display.progress("work", _update(1, folder=name))
        display.net_event("[/bold]y", THROTTLED)
    text = screen.getvalue()
    assert "\x1b[2J" not in text
    assert "\x1b]0;" not in text
    assert "\x07" not in text
    assert "\\x1b[2J\\x1b]0;owned\\x07" in text
    assert "[blink red]party[/blink red]" in text
    assert "[/bold]x" in text
    assert "\\u202e" in text
    assert "\x1b[5m" not in text  # nothing blinks


def test_plain_lines_show_hostile_folder_names_escaped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with SyncDisplay(rich=False) as display:
        for name in HOSTILE:
            display.progress("work", _update(2, planned=2, folder=name))
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "work/\\x1b" not in out
    assert "work/evil\\x1b[2J\\x1b]0;owned\\x07: 2 messages" in out
    assert "work/[/bold]x: 2 messages" in out


def test_a_folder_planned_in_windows_is_finished_only_after_its_last_window(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with SyncDisplay(rich=False) as display:
        first_window = dataclasses.replace(_update(2, planned=2), folder_plan_final=False)
        display.progress("work", first_window)
        display.progress("work", _update(4, planned=4))
    out = capsys.readouterr().out
    assert "work/INBOX: 2 messages" not in out  # more windows were still to come
    assert "work/INBOX: 4 messages, 8.0 KB" in out
