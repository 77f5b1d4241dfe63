"""A corpus of hostile mail for the console: every way a message has tried to run script,
load something or fool the reader, in the headers, folder names and bodies."""

from __future__ import annotations

from html.parser import HTMLParser

REMOTE = "remote.example"
BIDI = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "gpj.exe" shown as "exe.jpg"

HOSTILE_FOLDER = '"><script>alert("folder")</script>'
SCRIPT_SUBJECT = f"<script>alert('subject')</script> invoice {BIDI}fdp.exe"
SCRIPT_FROM = '"<img src=x onerror=alert(1)>" <evil@attacker.example>'

HTML_BODY = f"""<html><head>
<meta http-equiv="refresh" content="0; url=https://{REMOTE}/refresh">
<style>body {{ background: url(https://{REMOTE}/css.png) }}</style>
<script>document.title = 'pwned'; fetch('https://{REMOTE}/script')</script>
</head><body>
<p id="greeting">Hello from the archive</p>
<img src="https://{REMOTE}/pixel.png" onerror="alert('img')">
<a href="javascript:alert('link')">click</a>
<a href="data:text/html,<script>alert('data')</script>">data link</a>
<svg onload="alert('svg')"><circle r="5"/></svg>
<div style="position: fixed; top: 0; left: 0; width: 100%; height: 100%; color: red">overlay</div>
<iframe srcdoc="&lt;script&gt;alert('srcdoc')&lt;/script&gt;"></iframe>
<form action="https://{REMOTE}/phish"><input name=password></form>
<object data="https://{REMOTE}/object.swf"></object>
</body></html>"""

#: An attachment that would run if the browser showed it, under a name that tries a path,
#: a header break-out and markup.
ATTACHMENT_NAME = '../"evil"<script>.html'
ATTACHMENT = b"<script>alert('attachment')</script>"

TEXT_BODY = "plain text </pre><script>alert('text')</script> & more"


def with_attachment(subject: str) -> bytes:
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = "z@example.com"
    message["Message-ID"] = "<attachment@example.com>"
    message.set_content("see the attachment")
    message.add_attachment(ATTACHMENT, maintype="text", subtype="html", filename=ATTACHMENT_NAME)
    return bytes(message)


def mime(subject: str, sender: str, html: str | None, text: str | None) -> bytes:
    """A message with an HTML and/or a text part (UTF-8, encoded headers as needed)."""
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = "owner@contoso.onmicrosoft.com"
    message["Date"] = "Mon, 01 Jun 2026 10:00:00 +0000"
    message["Message-ID"] = f"<{abs(hash((subject, html, text)))}@example.com>"
    if text is not None:
        message.set_content(text)
    if html is not None:
        if text is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
    return bytes(message)


_ACTIVE_TAGS = ("script", "svg", "object", "embed", "base", "style", "link", "meta")
_META_NAMES = ("viewport", "referrer")


def markup_problems(document: str) -> list[str]:
    """What in ``document`` (a console page or message body) could run, load or overlay:
    the elements and attributes a browser would act on, found by parsing it."""
    problems: list[str] = []

    class Checker(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            values = {name: value or "" for name, value in attrs}
            harmless = (
                tag == "meta" and ("charset" in values or values.get("name") in _META_NAMES)
            ) or (tag == "link" and values.get("href") == "/static/console.css")
            if tag in _ACTIVE_TAGS and not harmless:
                problems.append(f"<{tag}>")
            if tag == "form" and values.get("action") != "/signout":
                problems.append("a form")
            if tag == "iframe" and ("sandbox" not in values or "srcdoc" in values):
                problems.append("an iframe without sandbox")
            if tag == "img" and not values.get("src", "cid:").startswith("cid:"):
                problems.append("a remote image")
            for name, value in values.items():
                if name.startswith("on"):
                    problems.append(f"an {name} handler")
                if value.strip().lower().startswith(("javascript:", "data:", "vbscript:")):
                    problems.append(f"a {value[:11]} URL")
                if name == "style" and "position" in value:
                    problems.append("a positioned overlay")

    Checker().feed(document)
    return problems
