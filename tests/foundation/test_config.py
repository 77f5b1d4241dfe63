"""Config: paths, validation errors that name the file and key, no secrets in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from exoimap.config import AccountConfig, Paths, account_to_table, load_config, parse_config
from exoimap.errors import ConfigError


def write(tmp_path: Path, text: str) -> Paths:
    (tmp_path / "config.toml").write_text(text, encoding="utf-8")
    return Paths(config_dir=tmp_path, data_dir=tmp_path)


def test_exoimap_home_holds_everything(tmp_path: Path) -> None:
    paths = Paths.from_env({"EXOIMAP_HOME": str(tmp_path)})
    assert paths.config_file == tmp_path / "config.toml"
    assert paths.data_dir == tmp_path
    assert paths.vault_dir == tmp_path / "vault"


def test_xdg_dirs_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    paths = Paths.from_env({})
    assert paths.config_file == tmp_path / "cfg" / "exoimap" / "config.toml"
    assert paths.data_dir == tmp_path / "data" / "exoimap"


def test_missing_file_is_empty_config(tmp_path: Path) -> None:
    config = load_config(Paths(config_dir=tmp_path, data_dir=tmp_path))
    assert config.accounts == {}


def test_full_account_parses(tmp_path: Path) -> None:
    paths = write(
        tmp_path,
        """
[logging]
level = "debug"

[audit]
office_hours = "07-19"

[accounts.work]
email = "alice@contoso.com"
cloud = "gcc-high"
tenant = "contoso.onmicrosoft.com"
client_id = "00000000-1111-2222-3333-444444444444"
flow = "client-certificate"
certificate = "~/certs/app.pem"
imap_port = 993
archive = "/srv/backup/work"
""",
    )
    config = load_config(paths)
    account = config.account("work")
    assert account.cloud == "gcc-high"
    assert account.certificate == Path("~/certs/app.pem").expanduser()
    assert config.logging.level == "debug"
    assert config.audit.office_hours == (7, 19)


@pytest.mark.parametrize(
    ("body", "key", "words"),
    [
        ('[accounts.a]\nemail = "a@b.c"\ncolour = "red"\n', "accounts.a.colour", "unknown key"),
        (
            '[accounts.a]\nemail = "a@b.c"\nimap_port = "993"\n',
            "accounts.a.imap_port",
            "expected an integer port, got a string",
        ),
        (
            '[accounts.a]\nemail = "a@b.c"\nimap_port = 70000\n',
            "accounts.a.imap_port",
            "outside 1-65535",
        ),
        (
            '[accounts.a]\nemail = "a@b.c"\nflow = "password"\n',
            "accounts.a.flow",
            "'password' is not one of",
        ),
        ('[accounts.a]\nemail = "nobody"\n', "accounts.a.email", "not an email address"),
        ('[accounts.a]\ncloud = "worldwide"\n', "accounts.a.email", "missing required key"),
        (
            '[accounts.a]\nemail = "a@b.c"\nclient_secret = "abc"\n',
            "accounts.a.client_secret",
            "secrets are never stored in the config file",
        ),
        (
            '[accounts.a]\nemail = "a@b.c"\nflow = "token-command"\n',
            "accounts.a.token_command",
            "needs token_command",
        ),
        (
            '[accounts.a]\nemail = "a@b.c"\ncloud = "custom"\n',
            "accounts.a.authority",
            "needs authority",
        ),
        (
            '[accounts.a]\nemail = "a@b.c"\nflow = "client-secret"\n',
            "accounts.a.tenant",
            "app-only",
        ),
        (
            '[accounts.a]\nemail = "a@b.c"\nauthority = "http://x/t"\n',
            "accounts.a.authority",
            "must be an https:// URL",
        ),
        ('[accounts."bad name"]\nemail = "a@b.c"\n', "accounts.bad name", "account names"),
        # "$" with .match() used to let a name end in a newline
        ('[accounts."abc\\n"]\nemail = "a@b.c"\n', "accounts.'abc\\n'", "account names"),
        ('[accounts."abc\\u0000"]\nemail = "a@b.c"\n', "accounts.'abc\\x00'", "account names"),
        ('[accounts."abc\\u0000x"]\nemail = "a@b.c"\n', "accounts.'abc\\x00x'", "account names"),
        ('[audit]\noffice_hours = "19-07"\n', "audit.office_hours", "start < end"),
        ('[logging]\nlevel = "loud"\n', "logging.level", "not one of"),
        ("colour = 1\n", "colour", "unknown key"),
    ],
)
def test_errors_name_file_key_and_problem(tmp_path: Path, body: str, key: str, words: str) -> None:
    paths = write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_config(paths)
    message = str(info.value)
    assert message.startswith(f"{paths.config_file}: {key}: "), message
    assert words in message
    assert info.value.key == key


def test_toml_syntax_error_names_file(tmp_path: Path) -> None:
    paths = write(tmp_path, "[accounts.a\nemail=")
    with pytest.raises(ConfigError, match="invalid TOML") as info:
        load_config(paths)
    assert str(paths.config_file) in str(info.value)


def test_token_command_without_cloud_needs_only_imap_host(tmp_path: Path) -> None:
    paths = write(
        tmp_path,
        """
[accounts.dove]
email = "alice@lab.test"
flow = "token-command"
token_command = "mint-token --user alice"
imap_host = "127.0.0.1"
""",
    )
    account = load_config(paths).account("dove")
    assert account.token_command == ("mint-token", "--user", "alice")
    assert account.cloud == "custom"


def test_unknown_account_lists_known(tmp_path: Path) -> None:
    config = parse_config({"accounts": {"a": {"email": "a@b.c"}}}, tmp_path / "c.toml")
    with pytest.raises(ConfigError, match="no account named 'b' \\(accounts: a\\)"):
        config.account("b")


def test_account_round_trips_through_table(tmp_path: Path) -> None:
    account = AccountConfig(
        name="x",
        email="x@y.z",
        flow="browser",
        imap_port=1993,
        token_command=None,
        archive=Path("/a"),
    )
    table = account_to_table(account)
    assert table == {"email": "x@y.z", "flow": "browser", "imap_port": 1993, "archive": "/a"}
    again = parse_config({"accounts": {"x": table}}, tmp_path / "c.toml").account("x")
    assert again == account
