"""Where the proxy relays SMTP submission: the account's cloud's host on port 587, or
``smtp_host`` / ``smtp_port`` from config.toml; a bad value is a one-line config error."""

from __future__ import annotations

from pathlib import Path

import pytest

from exoimap.config import parse_config
from exoimap.errors import ConfigError
from exoimap.proxy.smtp_upstream import SmtpReply, smtp_endpoint


def endpoint(table: dict[str, object]) -> tuple[str, int]:
    config = parse_config({"accounts": {"work": table}}, Path("config.toml"))
    return smtp_endpoint(config.account("work"))


def test_each_cloud_relays_to_its_own_submission_host() -> None:
    assert endpoint({"email": "a@contoso.com"}) == ("smtp.office365.com", 587)
    assert endpoint({"email": "a@agency.us", "cloud": "gcc-high"}) == ("smtp.office365.us", 587)
    assert endpoint({"email": "a@x.cn", "cloud": "china"}) == ("partner.outlook.cn", 587)


def test_a_custom_cloud_uses_its_imap_host_unless_told_otherwise() -> None:
    custom = {
        "email": "a@sandbox.test",
        "cloud": "custom",
        "authority": "https://127.0.0.1:8443/tenant",
        "imap_host": "127.0.0.1",
    }
    assert endpoint(custom) == ("127.0.0.1", 587)
    assert endpoint({**custom, "smtp_host": "relay.test", "smtp_port": 2525}) == (
        "relay.test",
        2525,
    )


def test_a_bad_smtp_port_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="smtp_port"):
        endpoint({"email": "a@contoso.com", "smtp_port": "submission"})


def test_a_reply_is_one_line_whatever_its_text() -> None:
    assert SmtpReply(451, "4.4.1 Cannot reach\r\nRCPT TO:<x>").line() == (
        "451 4.4.1 Cannot reach RCPT TO:<x>"
    )
