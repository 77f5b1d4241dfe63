"""Printing lines that may hold text a server sent (folder names, reply texts)."""

from __future__ import annotations

import click

from exoimap.untrusted import shown

__all__ = ["echo"]


def echo(line: str, *, err: bool = False) -> None:
    """Print one line; no control character in it reaches the terminal."""
    click.echo(shown(line), err=err)
