"""The console's web application: routes, the guard every route passes, security headers.

Every route but the sign-in pages and the stylesheet is built by :func:`_guarded`, which
finds the session, checks the CSRF token of a POST, resolves the mailbox the URL names,
asks :func:`~exoimap.console.policy.decide`, records the decision in the audit log, and
only then runs the page. A mailbox outside the person's scope answers like one that does
not exist (404), so guessing URLs tells nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, QueryParams
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from exoimap.audit.query import AuditFilter, summarize
from exoimap.audit.query import tail as audit_tail
from exoimap.console.approvals import (
    KINDS,
    ApprovalBook,
    ApprovalError,
    ApprovalRequest,
    book_path,
)
from exoimap.console.archives import Mailbox, Mailboxes
from exoimap.console.break_glass import (
    MAX_REASON,
    REAUTH_SECONDS,
    Ask,
    Grant,
    normal_reason,
    opened_to,
    reason_refusal,
)
from exoimap.console.dashboard import account_rows
from exoimap.console.downloads import attachment_of, download
from exoimap.console.four_eyes import carry_out, may_file
from exoimap.console.mail_view import BODY_CSP, body_document, read_message
from exoimap.console.pages import link, render
from exoimap.console.policy import Action, Principal, decide, reaches, window
from exoimap.console.restoring import ProviderFactory, restore_message, vault_provider
from exoimap.console.searching import search
from exoimap.console.sessions import Session, SessionStore
from exoimap.console.settings import ConsoleSettings
from exoimap.console.signin import SignIn
from exoimap.console.trail import Trail
from exoimap.errors import AuthError, ConfigError, ExoimapError, StoreError, StoreLocked
from exoimap.store.archive import ArchiveHeld, active_holds, place_hold
from exoimap.store.search import Reach, SearchSyntaxError

__all__ = ["PAGE_CSP", "Console", "build_app"]

PAGE_CSP = (
    "default-src 'none'; style-src 'self'; frame-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
_STATIC = Path(__file__).with_name("static")


@dataclass
class Console:
    """What the routes share."""

    settings: ConsoleSettings
    mailboxes: Mailboxes
    sessions: SessionStore
    sign_in: SignIn
    trail: Trail
    providers: ProviderFactory = vault_provider  # tokens for restoring into a mailbox
    audit_dir: Path | None = None  # default: the installation's audit folder
    approvals: ApprovalBook | None = None  # default: the installation's approval book
    wall_clock: Callable[[], float] = time.time  # break-glass expiry (epoch seconds)
    #: Index every archive in the background while serving (``exoimap console`` does).
    index_at_start: bool = False

    @property
    def book(self) -> ApprovalBook:
        if self.approvals is None:
            self.approvals = ApprovalBook(book_path(self.mailboxes.paths))
        return self.approvals

    @property
    def session_cookie(self) -> str:
        return "__Host-exoimap-console" if self.settings.secure_transport else "exoimap-console"

    @property
    def sign_in_cookie(self) -> str:
        return "__Secure-exoimap-signin" if self.settings.secure_transport else "exoimap-signin"


@dataclass
class Visit:
    """A request that passed the guard."""

    principal: Principal  # with the mailbox of an active break-glass
    session: Session
    mailbox: Mailbox | None
    action: Action


Page = Callable[[Console, Request, Visit], Awaitable[Response]]


def _resource(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def _error(title: str, message: str, status: int, visit: Visit | None = None) -> HTMLResponse:
    context: dict[str, object] = {"title": title, "message": message, "principal": None}
    if visit is not None:
        context.update(_context(visit))
    return render("error.html", context, status)


async def _csrf_refusal(console: Console, request: Request, session: Session | None) -> str:
    """Why a POST is refused ("" when its origin and CSRF token are right)."""
    origin = request.headers.get("origin")
    expected = console.settings.public_url
    if origin is not None and origin.rstrip("/") != expected:
        return "the request came from another site"
    form = await request.form()
    token = form.get("csrf_token")
    if session is None or not session.csrf_ok(token if isinstance(token, str) else None):
        return "the CSRF token is missing or wrong"
    return ""


def _guarded(
    console: Console, action: Action, page: Page, *, mailbox: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        session = console.sessions.get(request.cookies.get(console.session_cookie))
        principal = session.principal if session else None
        resource = _resource(request)
        if request.method == "POST":
            refusal = await _csrf_refusal(console, request, session)
            if refusal:
                console.trail.record(
                    principal, action.value, resource=resource, outcome="denied", reason=refusal
                )
                return _error("Refused", f"Refused: {refusal}.", 403)
        if session is None or principal is None:
            console.trail.record(
                None, action.value, resource=resource, outcome="denied", reason="not signed in"
            )
            return RedirectResponse("/signin", status_code=303)
        principal = _break_glass_checked(console, session)
        try:
            target = console.mailboxes.find(request.path_params["account"]) if mailbox else None
        except ExoimapError as exc:  # config.toml unreadable or invalid
            return _error("Configuration error", str(exc), 500)
        decision = decide(
            principal, action, target.email if target else None, console.settings.scopes
        )
        console.trail.record(
            principal,
            action.value,
            resource=resource,
            outcome="success" if decision.allowed else "denied",
            reason=decision.reason,
            account=target.account if target and decision.allowed else None,
        )
        visit = Visit(principal, session, target, action)
        if not decision.allowed:
            if mailbox:
                return _error("Not found", "There is no such mailbox.", 404, visit)
            return _error("Not allowed", "Your roles do not allow this page.", 403, visit)
        try:
            return await page(console, request, visit)
        except StoreLocked:
            return _error(
                "Busy", "The archive is in use (a sync is running); try again shortly.", 503, visit
            )
        except StoreError as exc:
            return _error("Archive error", f"The archive cannot be read: {exc}", 500, visit)
        except ExoimapError as exc:
            return _error("Error", str(exc), 500, visit)

    return endpoint


def _break_glass_checked(console: Console, session: Session) -> Principal:
    """The session's person for this request: with the mailbox of their break-glass while
    it lasts; the first request after it ran out records that it expired."""
    grant, now = session.break_glass, console.wall_clock()
    if grant is not None and not grant.active(now):
        session.break_glass = None
        console.trail.break_glass(
            session.principal, "expired", grant.account, grant.email, expires=grant.expires
        )
    return opened_to(session.principal, session.break_glass, now)


def _context(visit: Visit, **extra: object) -> dict[str, object]:
    return {
        "principal": visit.principal,
        "csrf_token": visit.session.csrf_token,
        "break_glass": visit.session.break_glass if visit.principal.break_glass else None,
        "can_see_audit": decide(visit.principal, Action.READ_AUDIT).allowed,
        "can_see_dashboard": decide(visit.principal, Action.VIEW_DASHBOARD).allowed,
        "can_search": decide(visit.principal, Action.SEARCH).allowed,
        **extra,
    }


def _positive(value: str | None, default: int | None = None) -> int | None:
    if value is None:
        return default
    return int(value) if value.isdigit() and 0 < int(value) < 2**32 else None


# --- pages -------------------------------------------------------------------------------------


async def _mailbox_list(console: Console, request: Request, visit: Visit) -> Response:
    scopes = console.settings.scopes
    all_accounts = decide(visit.principal, Action.SEE_ALL_ACCOUNTS).allowed
    rows = []
    for mailbox in await run_in_threadpool(console.mailboxes.all):
        browsable = decide(visit.principal, Action.BROWSE_MAILBOX, mailbox.email, scopes).allowed
        if browsable or all_accounts:
            glass = decide(visit.principal, Action.BREAK_GLASS, mailbox.email, scopes).allowed
            rows.append(
                {
                    "account": mailbox.account,
                    "email": mailbox.email,
                    "browsable": browsable,
                    "break_glass": glass,
                }
            )
    glass = any(row["break_glass"] for row in rows)
    context = _context(visit, mailboxes=rows, can_break_glass=glass, max_reason=MAX_REASON)
    response = render("mailboxes.html", context)
    if glass:  # the break-glass form's answer sends the browser to the identity platform
        platform = urlsplit(console.settings.authority)
        response.headers["Content-Security-Policy"] = PAGE_CSP.replace(
            "form-action 'self'", f"form-action 'self' {platform.scheme}://{platform.netloc}"
        )
    return response


async def _folders(console: Console, request: Request, visit: Visit) -> Response:
    assert visit.mailbox is not None
    within = _reaches(console, visit, Action.BROWSE_MAILBOX)
    folders = await console.mailboxes.folders(visit.mailbox, within)
    return render("folders.html", _context(visit, mailbox=visit.mailbox, folders=folders))


async def _messages(console: Console, request: Request, visit: Visit) -> Response:
    assert visit.mailbox is not None
    number = _positive(request.query_params.get("page"), 1)
    folder = request.query_params.get("name", "")
    within = _reaches(console, visit, Action.BROWSE_MAILBOX)
    page = await console.mailboxes.page(visit.mailbox, folder, number, within) if number else None
    if page is None:
        return _error("Not found", "There is no such folder or page.", 404, visit)
    scopes, email = console.settings.scopes, visit.mailbox.email
    context = _context(
        visit,
        mailbox=visit.mailbox,
        page=page,
        can_read=decide(visit.principal, Action.READ_MESSAGE, email, scopes).allowed,
        can_restore=decide(visit.principal, Action.RESTORE_MESSAGE, email, scopes).allowed,
    )
    return render("messages.html", context)


def _reaches(console: Console, visit: Visit, action: Action) -> tuple[Reach, ...]:
    settings = console.settings
    return reaches(visit.principal, action, settings.scopes, settings.date_ranges)


async def _in_scope(console: Console, visit: Visit, folder: str, uid: int) -> bool:
    """The check by id: the message is inside the person's scope for the page's action,
    asked of the search index with the scope (mailboxes, dates) in the SQL."""
    assert visit.mailbox is not None
    account, within = visit.mailbox.account, _reaches(console, visit, visit.action)
    return await run_in_threadpool(console.mailboxes.search.reachable, account, folder, uid, within)


async def _raw_message(console: Console, request: Request, visit: Visit) -> bytes | None:
    assert visit.mailbox is not None
    uid = _positive(request.query_params.get("uid"))
    folder = request.query_params.get("folder", "")
    if uid is None or not await _in_scope(console, visit, folder, uid):
        return None
    return await console.mailboxes.message(visit.mailbox, folder, uid)


async def _message(console: Console, request: Request, visit: Visit) -> Response:
    raw = await _raw_message(console, request, visit)
    if raw is None:
        return _error("Not found", "There is no such message.", 404, visit)
    assert visit.mailbox is not None
    scopes, email = console.settings.scopes, visit.mailbox.email
    context = _context(
        visit,
        mailbox=visit.mailbox,
        folder=request.query_params["folder"],
        uid=request.query_params["uid"],
        message=read_message(raw),
        can_download=decide(visit.principal, Action.DOWNLOAD_MESSAGE, email, scopes).allowed,
    )
    return render("message.html", context)


async def _body(console: Console, request: Request, visit: Visit) -> Response:
    raw = await _raw_message(console, request, visit)
    if raw is None:
        return _error("Not found", "There is no such message.", 404, visit)
    document = body_document(read_message(raw))
    headers = {"Content-Security-Policy": BODY_CSP, "X-Frame-Options": "SAMEORIGIN"}
    return HTMLResponse(document, headers=headers)


async def _restore(console: Console, request: Request, visit: Visit) -> Response:
    assert visit.mailbox is not None
    form = await request.form()
    folder, uid = form.get("folder"), form.get("uid")
    number = _positive(uid if isinstance(uid, str) else None)
    if not isinstance(folder, str) or number is None:
        return _error("Not found", "There is no such message.", 404, visit)
    in_scope = await _in_scope(console, visit, folder, number)
    info = await console.mailboxes.info(visit.mailbox, folder, number) if in_scope else None
    if info is None:
        return _error("Not found", "There is no such message.", 404, visit)
    if not info.message_id:
        reason = "This message has no Message-ID; restore it with `exoimap restore`."
        return _error("Cannot restore", reason, 409, visit)
    with console.trail.acting(visit.principal):
        outcome = await restore_message(
            console.mailboxes.paths,
            visit.mailbox.account,
            folder,
            info.message_id,
            console.providers,
            days=_day_of(info.internal_date),
        )
    context = _context(visit, mailbox=visit.mailbox, folder=folder, outcome=outcome)
    return render("restored.html", context, 200 if outcome.error is None else 502)


def _day_of(when: _dt.datetime | None) -> tuple[_dt.date | None, _dt.date | None]:
    """The restore's selection: the day of the message checked by id (the restore selects
    by Message-ID, which another message of another day may share)."""
    day = when.astimezone(_dt.UTC).date() if when is not None else None
    return day, day


async def _search(console: Console, request: Request, visit: Visit) -> Response:
    text = request.query_params.get("q", "").strip()
    number = _positive(request.query_params.get("page"), 1)
    if not text or number is None:
        return render("search.html", _context(visit, result=None, error="", readable=set()))
    try:
        found = await search(
            console.mailboxes.search,
            visit.principal,
            console.settings.scopes,
            text,
            number,
            ranges=console.settings.date_ranges,
        )
    except SearchSyntaxError as exc:
        context = _context(visit, result=None, error=str(exc), readable=set())
        return render("search.html", context, 400)
    console.trail.searched(visit.principal, text, found.total, number)
    scopes = console.settings.scopes
    readable = {
        mailbox
        for mailbox in {hit.mailbox for hit in found.hits}
        if decide(visit.principal, Action.READ_MESSAGE, mailbox, scopes).allowed
    }
    return render("search.html", _context(visit, result=found, error="", readable=readable))


# --- four eyes ---------------------------------------------------------------------------


def _form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _notice(console: Console, params: QueryParams) -> str:
    """What the last step did, from the book (never text taken from the URL)."""
    hold = params.get("hold", "")
    if hold:
        return f"hold {hold} placed" if hold.isalnum() and len(hold) <= 16 else ""
    found = console.book.get(params.get("request", ""))
    if found is None:
        return ""
    if found.state == "pending":
        return f"request {found.id} filed"
    if found.state != "done":
        return f"request {found.id} {found.state}"
    if found.kind == "release_hold":
        held = found.scope.get("hold", "")
        return f"request {found.id} carried out: hold {held} on {found.account} released"
    return f"request {found.id} carried out"


async def _approvals(console: Console, request: Request, visit: Visit) -> Response:
    approver = decide(visit.principal, Action.APPROVE).allowed
    requests = await run_in_threadpool(console.book.recent)
    if not approver:  # one's own requests only
        requests = [r for r in requests if r.requester_oid == visit.principal.oid]
    holds = []
    if decide(visit.principal, Action.MANAGE_HOLDS).allowed:
        for mailbox in await run_in_threadpool(console.mailboxes.all):
            holds += [(mailbox, h) for h in active_holds(mailbox.archive)]
    context = _context(
        visit,
        requests=requests,
        kinds=KINDS,
        approver=approver,
        holds=holds,
        can_hold=decide(visit.principal, Action.MANAGE_HOLDS).allowed,
        message=await run_in_threadpool(_notice, console, request.query_params),
    )
    return render("approvals.html", context)


async def _file_request(console: Console, request: Request, visit: Visit) -> Response:
    form = await request.form()
    kind, account = _form_text(form, "kind"), _form_text(form, "account")
    scope = {
        k: _form_text(form, k)
        for k in ("folder", "uid", "message_id", "target", "hold")
        if _form_text(form, k)
    }
    refusal = may_file(
        visit.principal,
        {"kind": kind, "account": account, **scope},
        console.mailboxes,
        console.settings.scopes,
    )
    if refusal:
        return _error("Refused", f"This request cannot be filed: {refusal}.", 403, visit)
    hours = _positive(_form_text(form, "hours") or None, 24) or 0
    try:
        filed = await run_in_threadpool(
            lambda: console.book.file(
                kind,
                visit.principal,
                account=account,
                scope=scope,
                reason=_form_text(form, "reason"),
                hours=hours,
            )
        )
    except ApprovalError as exc:
        return _error("Cannot file", str(exc), 400, visit)
    console.trail.approval(visit.principal, "requested", filed)
    return RedirectResponse(link("/approvals", request=filed.id), 303)


async def _decide_request(console: Console, request: Request, visit: Visit) -> Response:
    form = await request.form()
    request_id, decision = _form_text(form, "id"), _form_text(form, "decision")
    try:
        decided = await run_in_threadpool(
            lambda: console.book.decide(request_id, visit.principal, approve=decision == "approve")
        )
    except ApprovalError as exc:
        found = await run_in_threadpool(console.book.get, request_id)
        console.trail.approval(visit.principal, "refused", found or request_id, reason=str(exc))
        return _error("Refused", str(exc), 409, visit)
    console.trail.approval(visit.principal, decided.state, decided)
    return RedirectResponse(link("/approvals", request=decided.id), 303)


async def _run_request(console: Console, request: Request, visit: Visit) -> Response:
    form = await request.form()
    request_id = _form_text(form, "id")
    found = await run_in_threadpool(console.book.get, request_id)
    refusal = (
        may_file(visit.principal, found, console.mailboxes, console.settings.scopes)
        if found
        else "there is no such request"
    )
    if refusal:
        console.trail.approval(visit.principal, "refused", found or request_id, reason=refusal)
        return _error("Refused", f"This request cannot be carried out: {refusal}.", 403, visit)
    try:
        taken = await run_in_threadpool(console.book.take, request_id, visit.principal)
        days = _request_days(console, visit.principal, taken)
        with console.trail.acting(visit.principal):
            carried = await carry_out(taken, console.mailboxes, console.providers, days)
    except (ApprovalError, ArchiveHeld) as exc:
        console.trail.approval(visit.principal, "refused", found or request_id, reason=str(exc))
        return _error("Refused", str(exc), 409, visit)
    console.trail.approval(visit.principal, "carried_out", taken, reason=carried.message)
    if carried.download is not None:
        return download(carried.download[1], carried.download[0], "application/mbox")
    return RedirectResponse(link("/approvals", request=taken.id), 303)


def _request_days(
    console: Console, principal: Principal, request: ApprovalRequest
) -> tuple[_dt.date | None, _dt.date | None]:
    """The days an export or restore may select: the date window of the requester's scope."""
    source = console.mailboxes.find(request.account)
    if source is None:
        return None, None
    action = Action.EXPORT_FOLDER if request.kind == "export" else Action.RESTORE_MESSAGE
    settings = console.settings
    return window(principal, action, source.email, settings.scopes, settings.date_ranges).days


async def _place_hold(console: Console, request: Request, visit: Visit) -> Response:
    form = await request.form()
    mailbox = console.mailboxes.find(_form_text(form, "account"))
    reason = " ".join(_form_text(form, "reason").split())
    if mailbox is None or not reason:
        return _error("Cannot place the hold", "Name a mailbox and give a reason.", 400, visit)
    hold = await run_in_threadpool(place_hold, mailbox.archive, reason, visit.principal.upn)
    console.trail.approval(
        visit.principal, "hold_placed", hold, reason=reason, account=mailbox.account
    )
    return RedirectResponse(link("/approvals", hold=hold.id), 303)


#: How many records the audit page shows (newest first).
AUDIT_PAGE = 200


async def _audit_log(console: Console, request: Request, visit: Visit) -> Response:
    params = request.query_params
    try:
        where = AuditFilter(
            event=params.get("event") or None,
            outcome=params.get("outcome") or None,
            account=params.get("account") or None,
        )
    except ConfigError as exc:
        return _error("Bad filter", str(exc), 400, visit)
    console.trail.flush()
    directory = console.audit_dir or console.mailboxes.paths.audit_dir
    records = await run_in_threadpool(audit_tail, directory, AUDIT_PAGE, where)
    rows = [
        {"record": r, "console_user": r.actor.get("console_user") or "", "summary": summarize(r)}
        for r in reversed(records)
    ]
    return render("audit.html", _context(visit, rows=rows, where=where))


async def _eml(console: Console, request: Request, visit: Visit) -> Response:
    raw = await _raw_message(console, request, visit)
    if raw is None:
        return _error("Not found", "There is no such message.", 404, visit)
    return download(raw, f"message-{request.query_params['uid']}.eml", "message/rfc822")


async def _attachment(console: Console, request: Request, visit: Visit) -> Response:
    raw = await _raw_message(console, request, visit)
    index = _positive(request.query_params.get("part"))
    found = attachment_of(raw, index - 1) if raw is not None and index is not None else None
    if found is None:
        return _error("Not found", "There is no such attachment.", 404, visit)
    return download(found[1], found[0])


async def _dashboard(console: Console, request: Request, visit: Visit) -> Response:
    console.trail.flush()
    directory = console.audit_dir or console.mailboxes.paths.audit_dir
    rows, chart = await account_rows(console.mailboxes.paths, console.mailboxes, directory)
    return render("dashboard.html", _context(visit, rows=rows, chart=chart))


# --- break-glass -------------------------------------------------------------------------


async def _break_glass(console: Console, request: Request, visit: Visit) -> Response:
    """Asks for the mailbox's content: the reason, then a sign-in again."""
    assert visit.mailbox is not None
    account, email = visit.mailbox.account, visit.mailbox.email
    reason = normal_reason(_form_text(await request.form(), "reason"))
    refusal = reason_refusal(reason)
    if refusal:
        console.trail.break_glass(
            visit.principal, "refused", account, email, reason=refusal + ": " + reason[:MAX_REASON]
        )
        return _error("Break-glass refused", f"Break-glass refused: {refusal}.", 400, visit)
    try:
        flow = await run_in_threadpool(
            lambda: console.sign_in.begin(again_as=visit.session.principal.upn)
        )
    except AuthError as exc:
        return _error("Sign-in unavailable", str(exc), 502, visit)
    ask = Ask(
        session_id=request.cookies.get(console.session_cookie, ""),
        oid=visit.session.principal.oid,
        account=account,
        email=email,
        reason=reason,
        asked=console.wall_clock(),
    )
    console.trail.break_glass(visit.principal, "asked", account, email, reason=reason)
    return _to_identity_platform(console, flow, ask)


async def _end_break_glass(console: Console, request: Request, visit: Visit) -> Response:
    grant = visit.session.break_glass
    if grant is not None:
        visit.session.break_glass = None
        console.trail.break_glass(
            visit.session.principal, "ended", grant.account, grant.email, expires=grant.expires
        )
    return RedirectResponse("/", status_code=303)


def _break_glass_confirmed(console: Console, ask: Ask, principal: Principal) -> Response:
    """The sign-in again for ``ask`` succeeded as ``principal``: open the mailbox to the
    session that asked, if it is the same administrator, still in scope, in time."""
    session, now = console.sessions.get(ask.session_id), console.wall_clock()
    refusal = ""
    if session is None or session.principal.oid != ask.oid or principal.oid != ask.oid:
        refusal = "the second sign-in was not by the administrator who asked"
    elif now - ask.asked > REAUTH_SECONDS:
        refusal = "the second sign-in came too late"
    elif not decide(principal, Action.BREAK_GLASS, ask.email, console.settings.scopes).allowed:
        refusal = "the mailbox is not within your scope"
    if session is None or refusal:
        console.trail.break_glass(principal, "refused", ask.account, ask.email, reason=refusal)
        return _error("Break-glass refused", f"Break-glass refused: {refusal}.", 403)
    grant = Grant(
        ask.account, ask.email, ask.reason, now, now + console.settings.break_glass_minutes * 60
    )
    session.break_glass = grant
    console.trail.break_glass(
        principal, "started", ask.account, ask.email, reason=ask.reason, expires=grant.expires
    )
    return render("signed_in.html", {})


async def _sign_out(console: Console, request: Request, visit: Visit) -> Response:
    console.sessions.drop(request.cookies.get(console.session_cookie))
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(
        console.session_cookie, path="/", secure=True, httponly=True, samesite="strict"
    )
    return response


# --- signing in -----------------------------------------------------------------------------


def _to_identity_platform(console: Console, flow: dict[str, object], ask: Ask | None) -> Response:
    """Sends the browser to sign in, with a cookie naming the sign-in under way."""
    response = RedirectResponse(str(flow["auth_uri"]), status_code=303)
    response.set_cookie(
        console.sign_in_cookie,
        console.sessions.start_sign_in(dict(flow), ask),
        max_age=600,
        path="/auth/callback",
        secure=True,
        httponly=True,
        # it must come back with the identity platform's cross-site form post (RFC 9700
        # prefers form_post: the code stays out of URLs, logs and the history)
        samesite="none",
    )
    return response


def _sign_in_routes(console: Console) -> list[Route]:
    async def sign_in_page(request: Request) -> Response:
        return render("signin.html", {"principal": None})

    async def start(request: Request) -> Response:
        try:
            flow = await run_in_threadpool(console.sign_in.begin)
        except AuthError as exc:
            return _error("Sign-in unavailable", str(exc), 502)
        return _to_identity_platform(console, flow, None)

    async def callback(request: Request) -> Response:
        pending = request.cookies.get(console.sign_in_cookie)
        flow, ask = console.sessions.take_sign_in(pending), console.sessions.take_ask(pending)
        if flow is None:
            console.trail.record(None, "sign_in", outcome="failure", reason="no sign-in under way")
            return _error(
                "Sign-in failed",
                "This sign-in has expired or was never started; sign in again.",
                400,
            )
        try:
            reply = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
            principal = await run_in_threadpool(console.sign_in.finish, flow, reply)
        except AuthError as exc:
            console.trail.record(None, "sign_in", outcome="failure", reason=str(exc))
            return _error("Sign-in failed", str(exc), 400)
        console.trail.record(principal, "sign_in", resource=principal.oid)
        if ask is not None:
            response = _break_glass_confirmed(console, ask, principal)
            response.delete_cookie(
                console.sign_in_cookie, path="/auth/callback", secure=True, httponly=True
            )
            return response
        response = render("signed_in.html", {})
        response.delete_cookie(
            console.sign_in_cookie, path="/auth/callback", secure=True, httponly=True
        )
        response.set_cookie(
            console.session_cookie,
            console.sessions.create(principal),
            path="/",
            secure=True,
            httponly=True,
            samesite="strict",
        )
        return response

    return [
        Route("/signin", sign_in_page),
        Route("/auth/start", start),
        Route("/auth/callback", callback, methods=["POST"]),
    ]


# --- assembly -----------------------------------------------------------------------------------


class SecurityHeaders:
    """Adds the page policy and the other protective headers a response has not set."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app, self.hsts = app, hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _value in headers}
                defaults = {
                    b"content-security-policy": PAGE_CSP.encode(),
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"same-origin",  # no-referrer: POSTs say Origin: null
                    b"x-frame-options": b"DENY",
                    b"cache-control": b"no-store",
                    b"cross-origin-opener-policy": b"same-origin",
                }
                if self.hsts:
                    defaults[b"strict-transport-security"] = b"max-age=31536000"
                headers += [(k, v) for k, v in defaults.items() if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


#: Every guarded route: path, action, page, methods, whether the path names a mailbox.
_ROUTES: tuple[tuple[str, Action, Page, tuple[str, ...], bool], ...] = (
    ("/", Action.LIST_MAILBOXES, _mailbox_list, ("GET",), False),
    ("/signout", Action.SIGNED_IN, _sign_out, ("POST",), False),
    ("/m/{account}", Action.BROWSE_MAILBOX, _folders, ("GET",), True),
    ("/m/{account}/folder", Action.BROWSE_MAILBOX, _messages, ("GET",), True),
    ("/m/{account}/message", Action.READ_MESSAGE, _message, ("GET",), True),
    ("/m/{account}/body", Action.READ_MESSAGE, _body, ("GET",), True),
    ("/m/{account}/restore", Action.RESTORE_MESSAGE, _restore, ("POST",), True),
    ("/m/{account}/eml", Action.DOWNLOAD_MESSAGE, _eml, ("GET",), True),
    ("/m/{account}/attachment", Action.DOWNLOAD_MESSAGE, _attachment, ("GET",), True),
    ("/m/{account}/breakglass", Action.BREAK_GLASS, _break_glass, ("POST",), True),
    ("/breakglass/end", Action.SIGNED_IN, _end_break_glass, ("POST",), False),
    ("/search", Action.SEARCH, _search, ("GET",), False),
    ("/approvals", Action.SIGNED_IN, _approvals, ("GET",), False),
    ("/approvals/new", Action.SIGNED_IN, _file_request, ("POST",), False),
    ("/approvals/decide", Action.APPROVE, _decide_request, ("POST",), False),
    ("/approvals/run", Action.SIGNED_IN, _run_request, ("POST",), False),
    ("/holds", Action.MANAGE_HOLDS, _place_hold, ("POST",), False),
    ("/audit", Action.READ_AUDIT, _audit_log, ("GET",), False),
    ("/dashboard", Action.VIEW_DASHBOARD, _dashboard, ("GET",), False),
)
#: The routes anyone may reach: signing in, and the stylesheet.
PUBLIC_PATHS = ("/signin", "/auth/start", "/auth/callback", "/static")


def build_app(console: Console) -> ASGIApp:
    routes: list[Route | Mount] = [
        Route(path, _guarded(console, action, page, mailbox=named), methods=list(methods))
        for path, action, page, methods, named in _ROUTES
    ]
    routes += _sign_in_routes(console)
    routes.append(Mount("/static", StaticFiles(directory=_STATIC), name="static"))

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # archives backed up before the console first ran are indexed while it serves;
        # stopping the console stops the indexing (the next start or sync finishes it)
        task = (
            asyncio.create_task(console.mailboxes.index_all()) if console.index_at_start else None
        )
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = Starlette(routes=routes, lifespan=lifespan)
    return SecurityHeaders(app, hsts=console.settings.secure_transport)
