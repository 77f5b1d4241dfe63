"""The HTML pages: sign-in, MFA, consent, device login, errors, and form_post.

Plain HTML forms (no JavaScript needed, except the auto-submit of ``form_post``), so a test
can drive them with any HTTP client: every form posts the fields named here.
Every value is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape

__all__ = [
    "consent_page",
    "device_code_page",
    "device_done_page",
    "error_page",
    "form_post_page",
    "login_page",
    "mfa_page",
    "signed_out_page",
]

_STYLE = (
    "body{font-family:system-ui,sans-serif;background:#f2f2f2;margin:0}"
    "main{background:#fff;max-width:440px;margin:60px auto;padding:44px;"
    "box-shadow:0 2px 6px rgba(0,0,0,.2)}"
    "h1{font-size:1.5rem;font-weight:600}input[type=text],input[type=password],"
    "input[type=email]{width:100%;padding:6px 0;margin:8px 0;border:0;"
    "border-bottom:1px solid #666;font-size:1rem}"
    "button{background:#0067b8;color:#fff;border:0;padding:8px 24px;margin:16px 8px 0 0}"
    "button.secondary{background:#ccc;color:#000}.error{color:#e81123}.small{color:#666}"
)


def _page(title: str, body: str, status_note: str = "") -> str:
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body><main>"
        f"<div class=small>exoimap sandbox tenant {escape(status_note)}</div>{body}"
        "</main></body></html>"
    )


def _hidden(fields: Mapping[str, str]) -> str:
    return "".join(
        f'<input type=hidden name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items()
    )


def _error(message: str | None) -> str:
    return f"<p class=error id=error role=alert>{escape(message)}</p>" if message else ""


def login_page(
    action: str, hidden: Mapping[str, str], app_name: str, login_hint: str, error: str | None
) -> str:
    """The username + password form (fields ``login`` and ``passwd``)."""
    body = (
        f"<h1>Sign in</h1><p>to continue to {escape(app_name)}</p>{_error(error)}"
        f'<form method=post action="{escape(action)}">{_hidden(hidden)}'
        f'<input type=email name=login placeholder="Email, phone, or Skype" '
        f'value="{escape(login_hint)}" autocomplete=username>'
        "<input type=password name=passwd placeholder=Password autocomplete=current-password>"
        "<button type=submit>Sign in</button></form>"
    )
    return _page("Sign in to your account", body)


def mfa_page(action: str, hidden: Mapping[str, str], upn: str) -> str:
    """The second factor: the sandbox approves with a button (field ``action=approve``)."""
    body = (
        f"<h1>Approve sign in request</h1><p>{escape(upn)}</p>"
        "<p>Your organization requires multi-factor authentication. In this sandbox, "
        "approving here stands in for the authenticator app.</p>"
        f'<form method=post action="{escape(action)}">{_hidden(hidden)}'
        "<button type=submit name=action value=approve>Approve</button>"
        "<button class=secondary type=submit name=action value=deny>Deny</button></form>"
    )
    return _page("Approve sign in request", body)


def consent_page(
    action: str,
    hidden: Mapping[str, str],
    app_name: str,
    upn: str,
    permissions: Iterable[str],
    *,
    accept_label: str = "Accept",
) -> str:
    """Permissions requested (fields ``action=accept`` or ``action=cancel``)."""
    items = "".join(f"<li>{escape(p)}</li>" for p in permissions)
    body = (
        f"<h1>Permissions requested</h1><p>{escape(upn)}</p>"
        f"<p><b>{escape(app_name)}</b> would like to:</p><ul>{items}</ul>"
        f'<form method=post action="{escape(action)}">{_hidden(hidden)}'
        f"<button type=submit name=action value=accept>{escape(accept_label)}</button>"
        "<button class=secondary type=submit name=action value=cancel>Cancel</button></form>"
    )
    return _page("Permissions requested", body)


def error_page(code: int | None, description: str) -> str:
    """A sign-in error Microsoft shows on its own page instead of redirecting."""
    prefix = f"AADSTS{code}: " if code else ""
    body = (
        "<h1>Sorry, but we're having trouble signing you in.</h1>"
        f"<p class=error id=error>{prefix}{escape(description)}</p>"
    )
    return _page("Sign in error", body)


def form_post_page(redirect_uri: str, fields: Mapping[str, str]) -> str:
    """``response_mode=form_post``: a self-submitting form to the redirect URI."""
    return (
        "<!DOCTYPE html><html><head><title>Working...</title></head>"
        '<body onload="document.forms[0].submit()">'
        f'<form method=post action="{escape(redirect_uri)}">{_hidden(fields)}'
        "<noscript><button type=submit>Continue</button></noscript></form></body></html>"
    )


def device_code_page(action: str, error: str | None = None) -> str:
    """The device-login entry page (field ``otc``)."""
    body = (
        f"<h1>Enter code</h1><p>Enter the code displayed on your app or device.</p>"
        f'{_error(error)}<form method=post action="{escape(action)}">'
        '<input type=hidden name="step" value="code">'
        "<input type=text name=otc placeholder=Code autocomplete=off>"
        "<button type=submit>Next</button></form>"
    )
    return _page("Enter code", body)


def device_done_page(app_name: str, approved: bool) -> str:
    """The last device-login page."""
    if approved:
        text = (
            f"You have signed in to the {escape(app_name)} application on your device. "
            "You may now close this window."
        )
    else:
        text = "You have declined to sign in to the application. You may now close this window."
    return _page(app_name, f"<h1>{escape(app_name)}</h1><p id=result>{text}</p>")


def signed_out_page() -> str:
    """After ``logout`` without a (registered) ``post_logout_redirect_uri``."""
    return _page("Signed out", "<h1>You signed out of your account</h1>")
