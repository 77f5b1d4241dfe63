"""Rendering the console's pages: Jinja2 templates from this package, always autoescaped,
with ``text`` (server text without control or bidi characters) and ``link`` (a console URL
with its query parameters encoded) for the templates to use."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from urllib.parse import quote, urlencode

import jinja2
from starlette.responses import HTMLResponse

from exoimap.console.mail_view import web_text

__all__ = ["link", "render"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("exoimap.console", "templates"),
    autoescape=True,  # every template, whatever its name
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def link(path: str, **query: object) -> str:
    """``path`` (segments percent-encoded) with ``query`` encoded."""
    encoded = quote(path, safe="/")
    params = {k: str(v) for k, v in query.items() if v is not None}
    return f"{encoded}?{urlencode(params)}" if params else encoded


def _when(value: _dt.datetime | None) -> str:
    return value.astimezone(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _epoch(value: float | None) -> str:
    return _when(_dt.datetime.fromtimestamp(value, _dt.UTC)) if value is not None else ""


def _size(value: int | None) -> str:
    if value is None:
        return ""
    return f"{value / 1024:.0f} KB" if value >= 1024 else f"{value} B"


_ENV.filters.update(text=web_text, when=_when, size=_size, epoch=_epoch)
_ENV.globals.update(link=link)


def render(name: str, context: Mapping[str, object], status: int = 200) -> HTMLResponse:
    return HTMLResponse(_ENV.get_template(name).render(**context), status_code=status)
