"""A stored message made safe to show in a browser.

Headers become plain text without control or bidi-override characters (Jinja2 escapes them
when the page is rendered). An HTML body is sanitised with ``nh3`` (an allow-list: no
scripts, no event handlers, no ``javascript:``/``data:`` URLs, no forms, frames, SVG or
``<style>``; inline styles only from a list of harmless properties, never ``position``);
images are dropped unless they name a ``cid:`` part. The result is served on its own URL
with ``Content-Security-Policy: sandbox; default-src 'none'`` and shown in an
``<iframe sandbox>``, so even what slipped through could neither run nor load anything.
"""

from __future__ import annotations

import email
import html
import unicodedata
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage

import nh3

from exoimap.console.archives import header_text

__all__ = ["ShownMessage", "body_document", "read_message", "web_text"]

_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "center",
    "code",
    "col",
    "colgroup",
    "dd",
    "del",
    "div",
    "dl",
    "dt",
    "em",
    "font",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "small",
    "span",
    "strike",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "tt",
    "u",
    "ul",
}
_ATTRIBUTES = {
    "*": {"style", "title", "align", "dir", "lang"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "td": {"colspan", "rowspan", "valign", "width", "bgcolor"},
    "th": {"colspan", "rowspan", "valign", "width", "bgcolor"},
    "table": {"width", "border", "cellpadding", "cellspacing", "bgcolor"},
    "font": {"color", "face", "size"},
    "ol": {"start", "type"},
}
_STYLE_PROPERTIES = {
    "color",
    "background-color",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "text-align",
    "text-decoration",
    "line-height",
    "vertical-align",
    "margin",
    "margin-top",
    "margin-bottom",
    "margin-left",
    "margin-right",
    "padding",
    "padding-top",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "border",
    "border-top",
    "border-bottom",
    "border-left",
    "border-right",
    "border-collapse",
    "border-color",
    "border-style",
    "border-width",
    "width",
    "height",
    "white-space",
}
#: The policy of a message body's own response: nothing runs, nothing loads.
BODY_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"


def web_text(text: str) -> str:
    """``text`` without control and format characters (bidi overrides, zero-width
    joiners...): what a header may show. Tabs and newlines become spaces."""
    return "".join(
        " " if c in "\t\r\n" else c
        for c in text
        if c in "\t\r\n" or unicodedata.category(c) not in ("Cc", "Cf")
    )


@dataclass(frozen=True)
class ShownMessage:
    subject: str
    sender: str
    to: str
    cc: str
    date: str
    html_body: str | None  # sanitised
    text_body: str | None
    attachments: list[str] = field(default_factory=list)  # file names (web_text)


def _only_cid_images(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src" and not value.lower().startswith("cid:"):
        return None
    return value


def sanitise(markup: str) -> str:
    return nh3.clean(
        markup,
        tags=_TAGS,
        clean_content_tags={"script", "style", "title", "head", "svg", "math", "noscript"},
        attributes=_ATTRIBUTES,
        attribute_filter=_only_cid_images,
        url_schemes={"http", "https", "mailto", "cid"},
        link_rel="noopener noreferrer nofollow",
        filter_style_properties=_STYLE_PROPERTIES,
        strip_comments=True,
    )


def _content(part: EmailMessage) -> str:
    try:
        value = part.get_content()
    except (LookupError, ValueError, AssertionError):  # unknown charset, broken encoding
        payload = part.get_payload(decode=True)
        value = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return value if isinstance(value, str) else ""


def read_message(raw: bytes) -> ShownMessage:
    """Parse ``raw`` (never fails: what cannot be decoded is shown as best it can)."""
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)  # policy.default makes EmailMessage
    html_part = message.get_body(preferencelist=("html",))
    text_part = message.get_body(preferencelist=("plain",))
    names = [web_text(p.get_filename() or "") for p in message.iter_attachments()]
    return ShownMessage(
        subject=web_text(header_text(message, "subject")),
        sender=web_text(header_text(message, "from")),
        to=web_text(header_text(message, "to")),
        cc=web_text(header_text(message, "cc")),
        date=web_text(header_text(message, "date")),
        html_body=sanitise(_content(html_part)) if isinstance(html_part, EmailMessage) else None,
        text_body=_content(text_part) if isinstance(text_part, EmailMessage) else None,
        attachments=[n or "(no name)" for n in names],
    )


def body_document(shown: ShownMessage) -> str:
    """The HTML document of the message body for its sandboxed frame."""
    if shown.html_body is not None:
        body = shown.html_body
    elif shown.text_body is not None:
        body = f"<pre style='white-space: pre-wrap'>{html.escape(shown.text_body)}</pre>"
    else:
        body = "<p><em>This message has no text to show.</em></p>"
    return f"<!doctype html><html><head><meta charset=utf-8></head><body>{body}</body></html>"
