"""clouds.py: the user names a cloud; hosts and scopes come from here."""

from __future__ import annotations

import pytest

from exoimap.clouds import CLOUD_NAMES, EXCHANGE_APP_ID, get_cloud, resolve_cloud
from exoimap.config import CLOUDS
from exoimap.errors import ConfigError


def test_the_config_and_the_cloud_table_agree() -> None:
    assert set(CLOUD_NAMES) == set(CLOUDS)


@pytest.mark.parametrize(
    ("name", "login", "imap", "delegated_scope", "app_scope"),
    [
        ("worldwide", "login.microsoftonline.com", "outlook.office365.com",
         "https://outlook.office.com/IMAP.AccessAsUser.All", "https://outlook.office365.com/.default"),
        ("gcc", "login.microsoftonline.com", "outlook.office365.com",
         "https://outlook.office.com/IMAP.AccessAsUser.All", "https://outlook.office365.com/.default"),
        ("gcc-high", "login.microsoftonline.us", "outlook.office365.us",
         "https://outlook.office365.us/IMAP.AccessAsUser.All", "https://outlook.office365.us/.default"),
        ("dod", "login.microsoftonline.us", "outlook-dod.office365.us",
         "https://outlook-dod.office365.us/IMAP.AccessAsUser.All",
         "https://outlook-dod.office365.us/.default"),
        ("china", "login.partner.microsoftonline.cn", "partner.outlook.cn",
         "https://partner.outlook.cn/IMAP.AccessAsUser.All", "https://partner.outlook.cn/.default"),
    ],
)  # fmt: skip
def test_named_clouds(
    name: str, login: str, imap: str, delegated_scope: str, app_scope: str
) -> None:
    cloud = get_cloud(name)
    assert cloud.authority_host == login
    assert cloud.imap_host == imap
    assert cloud.imap_port == 993
    assert cloud.delegated_scope == delegated_scope
    assert cloud.app_scope == app_scope
    assert cloud.authority("contoso.com") == f"https://{login}/contoso.com"
    assert cloud.authority(None) == f"https://{login}/organizations"
    assert EXCHANGE_APP_ID in cloud.accepted_audiences
    assert f"https://{imap}" in cloud.accepted_audiences


def test_admin_consent_url() -> None:
    url = get_cloud("worldwide").admin_consent_url("contoso.com", "app-id")
    assert url == (
        "https://login.microsoftonline.com/contoso.com/v2.0/adminconsent?client_id=app-id"
        "&scope=https://outlook.office365.com/.default"
    )


def test_custom_cloud_takes_authority_and_host() -> None:
    cloud = resolve_cloud(
        "custom",
        authority="https://127.0.0.1:8443/tenant-x/",
        imap_host="127.0.0.1",
        imap_port=9993,
    )
    assert cloud.authority("ignored") == "https://127.0.0.1:8443/tenant-x"
    assert cloud.authority_host == "127.0.0.1:8443"
    assert (cloud.imap_host, cloud.imap_port) == ("127.0.0.1", 9993)
    assert cloud.delegated_scope == "https://outlook.office.com/IMAP.AccessAsUser.All"
    assert "127.0.0.1:8443/tenant-x/v2.0/adminconsent" in cloud.admin_consent_url(None, "c")


def test_named_cloud_with_another_imap_host() -> None:
    cloud = resolve_cloud("worldwide", imap_host="imap.example.org", imap_port=1993)
    assert (cloud.imap_host, cloud.imap_port) == ("imap.example.org", 1993)
    assert cloud.authority_host == "login.microsoftonline.com"


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"authority": "https://h/t"}, "imap_host"),
        ({"authority": "http://h/t", "imap_host": "h"}, "authority"),
        ({"authority": "https://h", "imap_host": "h"}, "authority"),
    ],
)
def test_custom_cloud_errors(kwargs: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_cloud("custom", **kwargs)
    assert info.value.key == key


def test_unknown_cloud() -> None:
    with pytest.raises(ConfigError, match="unknown cloud 'mars'"):
        get_cloud("mars")


@pytest.mark.parametrize(
    ("name", "smtp"),
    [
        ("worldwide", "smtp.office365.com"),
        ("gcc", "smtp.office365.com"),
        ("gcc-high", "smtp.office365.us"),
        ("dod", "outlook-dod.office365.us"),
        ("china", "partner.outlook.cn"),
    ],
)
def test_smtp_submission_per_cloud(name: str, smtp: str) -> None:
    cloud = get_cloud(name)
    assert (cloud.smtp_host, cloud.smtp_port) == (smtp, 587)


def test_smtp_submission_of_a_custom_cloud_and_an_override() -> None:
    custom = resolve_cloud("custom", imap_host="127.0.0.1", smtp_port=2525)
    assert (custom.smtp_host, custom.smtp_port) == ("127.0.0.1", 2525)
    relay = resolve_cloud("worldwide", smtp_host="relay.example.com")
    assert (relay.smtp_host, relay.smtp_port, relay.imap_host) == (
        "relay.example.com",
        587,
        "outlook.office365.com",
    )


def test_sign_in_asks_for_smtp_send_only_when_the_proxy_relays_mail() -> None:
    cloud = get_cloud("gcc-high")
    imap = "https://outlook.office365.us/IMAP.AccessAsUser.All"
    assert cloud.sign_in_scopes(app_only=False, smtp=False) == (imap,)
    assert cloud.sign_in_scopes(app_only=False, smtp=True) == (
        imap,
        "https://outlook.office365.us/SMTP.Send",
    )
    # app-only tokens carry the roles granted to the app, whatever is asked
    assert cloud.sign_in_scopes(app_only=True, smtp=True) == (cloud.app_scope,)
