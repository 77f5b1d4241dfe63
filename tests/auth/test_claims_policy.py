from __future__ import annotations

import time

import pytest

from exoimap.auth.claims import check_token, read_claims
from exoimap.clouds import get_cloud
from exoimap.errors import InsufficientPermission
from exoimap.secrets import Secret

from .conftest import app_claims, delegated_claims, make_jwt

WORLDWIDE = get_cloud("worldwide").accepted_audiences


def test_reads_delegated_claims() -> None:
    claims = read_claims(Secret(make_jwt(delegated_claims(scp="IMAP.AccessAsUser.All SMTP.Send"))))
    assert claims is not None
    assert claims.audience == "https://outlook.office.com"
    assert claims.scopes == ("IMAP.AccessAsUser.All", "SMTP.Send")
    assert claims.user == "ada@contoso.example"
    assert not claims.app_only
    assert claims.seconds_left() == pytest.approx(3600, abs=5)


def test_reads_app_only_claims() -> None:
    claims = read_claims(Secret(make_jwt(app_claims())))
    assert claims is not None
    assert claims.roles == ("IMAP.AccessAsApp",)
    assert claims.app_only
    assert claims.user is None


@pytest.mark.parametrize(
    "token",
    ["EwBAAl3BAAUFFpUAo7J3Ve0bjLBWZWCclRC3EoAA", "a.b", "!!!.???.***", "eyJhIjoxfQ.bm90anNvbg.x"],
)
def test_opaque_or_garbled_tokens_have_no_claims(token: str) -> None:
    assert read_claims(Secret(token)) is None


def test_a_good_delegated_token_passes_without_warnings() -> None:
    claims = read_claims(Secret(make_jwt(delegated_claims())))
    assert claims is not None
    assert check_token(claims, app_only=False, accepted_audiences=WORLDWIDE) == []


def test_audience_with_trailing_slash_and_guid_form_are_accepted() -> None:
    for aud in ("https://outlook.office365.com/", "00000002-0000-0ff1-ce00-000000000000"):
        claims = read_claims(Secret(make_jwt(app_claims(aud=aud))))
        assert claims is not None
        assert check_token(claims, app_only=True, accepted_audiences=WORLDWIDE) == []


def test_a_token_without_the_imap_scope_is_refused_clearly() -> None:
    claims = read_claims(Secret(make_jwt(delegated_claims(scp="SMTP.Send User.Read"))))
    assert claims is not None
    with pytest.raises(InsufficientPermission) as info:
        check_token(claims, app_only=False, accepted_audiences=WORLDWIDE)
    text = str(info.value)
    assert "IMAP.AccessAsUser.All" in text
    assert "SMTP.Send, User.Read" in text
    assert "admin consent" in text


def test_an_app_token_without_the_imap_role_is_refused() -> None:
    claims = read_claims(Secret(make_jwt(app_claims(roles=["SMTP.SendAsApp"]))))
    assert claims is not None
    with pytest.raises(InsufficientPermission, match=r"IMAP\.AccessAsApp"):
        check_token(claims, app_only=True, accepted_audiences=WORLDWIDE)


def test_a_graph_token_is_refused_with_a_hint() -> None:
    claims = read_claims(Secret(make_jwt(delegated_claims(aud="https://graph.microsoft.com"))))
    assert claims is not None
    with pytest.raises(InsufficientPermission, match="resolved to Microsoft Graph"):
        check_token(claims, app_only=False, accepted_audiences=WORLDWIDE)


def test_a_token_for_another_cloud_is_refused() -> None:
    claims = read_claims(Secret(make_jwt(delegated_claims())))
    assert claims is not None
    with pytest.raises(InsufficientPermission, match=r"outlook\.office365\.us"):
        check_token(
            claims, app_only=False, accepted_audiences=get_cloud("gcc-high").accepted_audiences
        )


def test_an_already_expired_token_is_refused() -> None:
    past = int(time.time()) - 10
    claims = read_claims(Secret(make_jwt(delegated_claims(exp=past))))
    assert claims is not None
    with pytest.raises(InsufficientPermission, match="clock"):
        check_token(claims, app_only=False, accepted_audiences=WORLDWIDE)


def test_broad_permissions_are_warned_about() -> None:
    claims = read_claims(
        Secret(make_jwt(app_claims(roles=["IMAP.AccessAsApp", "full_access_as_app"])))
    )
    assert claims is not None
    warnings = check_token(claims, app_only=True, accepted_audiences=WORLDWIDE)
    assert len(warnings) == 1
    assert "full_access_as_app" in warnings[0]

    claims = read_claims(
        Secret(make_jwt(delegated_claims(scp="IMAP.AccessAsUser.All Mail.ReadWrite")))
    )
    assert claims is not None
    (warning,) = check_token(claims, app_only=False, accepted_audiences=WORLDWIDE)
    assert "Mail.ReadWrite" in warning


def test_default_scope_in_a_delegated_flow_is_warned_about() -> None:
    claims = read_claims(Secret(make_jwt(delegated_claims())))
    assert claims is not None
    warnings = check_token(
        claims,
        app_only=False,
        accepted_audiences=WORLDWIDE,
        granted_scope="https://outlook.office.com/.default",
    )
    assert any(".default" in w for w in warnings)
    assert (
        check_token(
            claims,
            app_only=False,
            accepted_audiences=WORLDWIDE,
            granted_scope="https://outlook.office.com/IMAP.AccessAsUser.All",
        )
        == []
    )
