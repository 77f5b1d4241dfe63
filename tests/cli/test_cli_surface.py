"""The command line's surface: every command, option and argument, their help, defaults, usage
errors, exit codes, and which modules a command imports."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from exoimap import __version__
from exoimap.cli import COMMANDS, app, main

# Every command and its options and arguments (as written in --help), as of the typer CLI
# this replaced: scripts depend on them, so none may disappear or change its spelling.
SURFACE: dict[str, list[str]] = {
    "": ["--verbose", "-v", "--quiet", "-q", "--version"],
    "account": [],
    "account add": [
        "NAME", "--email", "--flow", "--cloud", "--tenant", "--client-id", "--certificate",
        "--token-command", "--authority", "--imap-host", "--imap-port", "--smtp-host",
        "--smtp-port", "--ca-file", "--archive",
        "--username", "--mechanism", "--starttls", "--no-starttls", "--max-connections",
        "--replace", "--no-replace",
    ],
    "account list": [],
    "account set-secret": ["NAME"],
    "agent": [],
    "agent serve": [
        "--idle-timeout", "--watch", "NAMES", "--all", "--idle-interval", "--poll-interval",
        "--full-sync-interval", "--health-file", "--metrics-port",
    ],
    "agent start": [
        "--idle-timeout", "--watch", "NAMES", "--all", "--idle-interval", "--poll-interval",
        "--full-sync-interval", "--health-file", "--metrics-port",
    ],
    "agent status": [],
    "agent stop": ["--timeout"],
    "archive": [],
    "archive stats": ["NAMES", "--all", "--json"],
    "console": ["--listen", "--cert", "--key", "--settings"],
    "export": [
        "NAME", "OUT", "--format", "--folder", "--exclude", "--since", "--until",
        "--include-deleted",
    ],
    "audit": [],
    "audit export": [
        "--format", "--output", "-o", "--since", "--until", "--account", "--event", "--outcome",
    ],
    "audit query": ["--since", "--until", "--account", "--event", "--outcome", "--format"],
    "audit recover": ["--reason"],
    "audit report": ["--since", "--until", "--format"],
    "audit tail": ["-n", "--lines", "--account", "--event", "--format"],
    "audit verify": ["--no-key"],
    "config": [],
    "config path": [],
    "config show": [],
    "login": ["NAMES", "--all", "--timeout", "--smtp", "--no-smtp"],
    "logout": ["NAMES", "--all"],
    "migrate": ["SOURCE", "TARGET", "--folder", "--exclude", "--map", "--dry-run"],
    "proxy": [
        "--listen", "--cert", "--key", "--plaintext-on-loopback", "--max-per-mailbox",
        "--starttls-listen", "--smtp-listen", "--smtp-tls", "--metrics-port",
    ],
    "proxy ca": ["--path"],
    "proxy password": [],
    "proxy password add": ["LABEL", "--account"],
    "proxy password list": [],
    "proxy password revoke": ["LABEL"],
    "restore": [
        "NAME", "--to", "--folder", "--exclude", "--since", "--until", "--message-id",
        "--include-deleted", "--merge", "--into", "--max-size", "--dry-run",
    ],
    "sandbox": [],
    "sandbox app": [],
    "sandbox app add": [
        "NAME", "--public", "--confidential", "--redirect-uri", "--delegated", "--application",
        "--admin-consent", "--state",
    ],
    "sandbox app assign": ["NAME", "UPN", "ROLE", "--state"],
    "sandbox app role": ["NAME", "VALUES", "--state"],
    "sandbox app cert": ["NAME", "--state"],
    "sandbox app grant": [
        "NAME", "--delegated", "--application", "--admin-consent", "--no-admin-consent", "--state",
    ],
    "sandbox app redirect-uri": ["NAME", "URI", "--state"],
    "sandbox app secret": ["NAME", "--days", "--state"],
    "sandbox approve": ["USER_CODE", "--as", "--decline", "--state"],
    "sandbox clock": [],
    "sandbox clock advance": ["DURATION", "--state"],
    "sandbox clock reset": ["--state"],
    "sandbox clock show": ["--state"],
    "sandbox exchange": [],
    "sandbox exchange faults": [
        "--drop-after-bytes", "--drop-probability", "--delay", "--seed", "--clear", "--state",
    ],
    "sandbox exchange grant": ["MAILBOX", "PRINCIPAL", "--state"],
    "sandbox exchange register": ["NAME", "--object-id", "--state"],
    "sandbox exchange revoke": ["MAILBOX", "PRINCIPAL", "--state"],
    "sandbox fail-next": ["CODE", "--user", "--app", "--count", "--state"],
    "sandbox info": ["--state"],
    "sandbox seed-maildir": ["PATH", "--messages", "--seed", "--owner"],
    "sandbox settings": [
        "--access-token-lifetime", "--id-token-lifetime", "--refresh-token-inactivity",
        "--refresh-token-max-age", "--auth-code-lifetime", "--device-code-lifetime",
        "--device-code-interval", "--http-keep-alive", "--state",
    ],
    "sandbox up": [
        "--state", "--host", "--port", "--imap-port", "--messages", "--persist", "--no-persist",
        "--basic-auth", "--no-basic-auth", "--imap-settings",
    ],
    "sandbox user": [],
    "sandbox user add": ["UPN", "--password", "--mfa", "--state"],
    "sandbox user revoke": ["UPN", "--state"],
    "sandbox user set": ["UPN", "--mfa", "--no-mfa", "--blocked", "--not-blocked", "--state"],
    "sync": [
        "NAMES", "--all", "--folder", "--exclude", "--dry-run", "--mirror", "--metrics-port",
        "--json", "--no-agent",
    ],
    "tenant": [],
    "tenant add": [
        "NAME", "--tenant", "--client-id", "--certificate", "--archive-root", "--cloud",
        "--authority", "--imap-host", "--imap-port", "--ca-file", "--graph-url", "--include",
        "--exclude", "--max-parallel", "--tenant-requests", "--mailbox-requests",
        "--budget-window", "--database",
    ],
    "tenant backup": ["NAME", "--database", "--redis"],
    "tenant discover": ["NAME", "--page-size", "--database", "--redis"],
    "tenant status": ["NAME", "--database"],
    "tenant verify": ["NAME", "--deep", "--parallel", "--database"],
    "token": [],
    "token print": ["NAME", "--format", "--json", "--force", "--no-agent", "--min-validity"],
    "token show": ["NAMES", "--all"],
    "vault": [],
    "vault create-key-file": ["PATH"],
    "vault status": [],
    "verify": ["NAMES", "--all", "--deep", "--restore", "--to", "--repair", "--json"],
    "schedule": [],
    "schedule install": ["NAMES", "--all", "--every", "--watch", "--agent", "--print"],
    "schedule remove": [],
    "schedule status": [],
    "doctor": ["NAMES", "--all", "--json", "--max-clock-skew", "--min-free", "--min-free-days"],
    "watch": [
        "NAMES", "--all", "--idle-interval", "--poll-interval", "--full-sync-interval",
        "--health-file", "--metrics-port",
    ],
    "worker": [
        "--concurrency", "--lease-seconds", "--heartbeat-seconds", "--retry-seconds",
        "--database", "--redis",
    ],
}  # fmt: skip

# Defaults that --help states.
DEFAULTS: dict[str, list[str]] = {
    "": ["[default: 0]"],
    "agent serve": ["[default: 3600.0; x>=0]"],
    "agent start": ["[default: 3600.0; x>=0]"],
    "agent stop": ["[default: 600.0; x>=0]"],
    "audit export": ["[default: jsonl]"],
    "audit report": ["[default: text]"],
    "audit tail": ["[default: 20]", "[default: table]"],
    "console": ["[default: 127.0.0.1:8443]"],
    "login": ["[default: 300.0; x>=1]"],
    "proxy": ["[default: 127.0.0.1:1993]", "[default: 16; 1<=x<=1000]"],
    "sandbox app add": ["[default: public]"],
    "sandbox app secret": ["[default: 730]"],
    "sandbox fail-next": ["[default: 1]"],
    "sandbox seed-maildir": ["[default: 1000]", "[default: 0]", "[default: adele@contoso.example]"],
    "tenant discover": ["[default: 999; 1<=x<=999]"],
    "worker": ["[default: 2; 1<=x<=256]", "[default: 60.0; 1<=x<=3600]"],
    "sandbox up": [
        "[default: 127.0.0.1]", "[default: the last run's, else any]", "[default: 200]",
        "[default: persist]",
        "[default: no-basic-auth]",
    ],
}  # fmt: skip


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EXOIMAP_HOME", str(tmp_path))
    monkeypatch.setenv("EXOIMAP_NO_KEYRING", "1")
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal: never prompt
    return tmp_path


def _walk(command: click.Command, path: tuple[str, ...] = ()) -> dict[str, click.Command]:
    found = {" ".join(path): command}
    if isinstance(command, click.Group):
        context = click.Context(command)
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            assert sub is not None, name
            found.update(_walk(sub, (*path, name)))
    return found


def _squeeze(text: str) -> str:
    """Text without whitespace: help is re-wrapped to the terminal, even at hyphens."""
    return re.sub(r"\s+", "", text)


def test_every_command_and_option_is_there() -> None:
    commands = _walk(app)
    assert sorted(commands) == sorted(SURFACE)
    for path, command in commands.items():
        written = [
            name.upper() if isinstance(param, click.Argument) else name
            for param in command.params
            for name in (
                [param.name or ""]
                if isinstance(param, click.Argument)
                else [*param.opts, *param.secondary_opts]
            )
        ]
        assert written == SURFACE[path], path


@pytest.mark.parametrize("path", sorted(SURFACE))
def test_help_shows_every_option_with_its_help(
    path: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    command = _walk(app)[path]
    assert main([*path.split(), "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: exoimap {path}".replace("  ", " ").rstrip())
    assert _squeeze(command.help or "").split(".")[0] in _squeeze(out)
    for word in SURFACE[path]:
        assert re.search(rf"(^|[\s\[,/]){re.escape(word)}\b", out), (path, word)
    for param in command.params:
        help_text = getattr(param, "help", None)
        if help_text:
            assert _squeeze(help_text) in _squeeze(out), (path, param.name)
    for default in DEFAULTS.get(path, []):
        assert _squeeze(default) in _squeeze(out), (path, default)
    if isinstance(command, click.Group):
        for name in command.list_commands(click.Context(command)):
            assert re.search(rf"^\s+{re.escape(name)}\s", out, re.MULTILINE), (path, name)


def test_root_help_lists_each_command_with_its_whole_first_sentence(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "login Sign in (device code, browser, or app-only credentials) and store the " in out
    assert "tokens encrypted." in out
    assert "..." not in out.split("Commands:")[1]


@pytest.mark.parametrize("args", [[], ["account"], ["sandbox"], ["sandbox", "user"]])
def test_a_group_with_no_arguments_prints_its_help_and_exits_2(
    args: list[str], home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: exoimap {' '.join(args)}".rstrip())
    assert "Commands:" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-command"], "No such command 'no-such-command'."),
        (["sync", "--bogus"], "No such option '--bogus'"),
        (["audit", "tail", "--format", "xml"], "'xml' is not one of 'table', 'json'"),
        (["account", "add"], "Missing argument 'NAME'"),
        (["sandbox", "fail-next", "abc"], "'abc' is not a valid integer"),
        (["sandbox", "exchange"], "Missing command"),
        (["-q"], "Missing command"),
    ],
)
def test_usage_errors_exit_2_and_say_what_is_wrong(
    args: list[str], message: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert "Usage: exoimap" in captured.err


def test_version(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"exoimap {__version__}\n"


def test_tri_state_flags_are_written_only_when_given(home: Path) -> None:
    base = ["account", "add", "--email", "a@contoso.example", "--flow", "token-command"]
    base += ["--token-command", "broker", "--imap-host", "mail.test"]
    assert main([*base[:2], "unset", *base[2:]]) == 0
    assert main([*base[:2], "on", *base[2:], "--starttls", "--imap-port", "143"]) == 0
    text = (home / "config.toml").read_text()
    unset, on = text.split("[accounts.on]")
    assert "starttls" not in unset
    assert "starttls = true" in on
    assert "imap_port = 143" in on
    # --replace defaults to off: adding the same name again is refused
    assert main([*base[:2], "on", *base[2:]]) == 2


def test_end_of_input_at_a_prompt_aborts_with_1(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from exoimap.cli import account

    monkeypatch.setattr(account, "_interactive", lambda: True)  # a terminal, then Ctrl-D
    assert main(["account", "add", "asked"]) == 1
    assert "exoimap: aborted" in capsys.readouterr().err
    assert not (home / "config.toml").exists()


def test_ctrl_c_exits_130(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from exoimap.cli import config_cmd

    def interrupted() -> None:
        raise KeyboardInterrupt  # what Python raises on SIGINT

    monkeypatch.setattr(config_cmd.Paths, "from_env", staticmethod(interrupted))
    assert main(["config", "path"]) == 130
    assert "exoimap: interrupted" in capsys.readouterr().err


def _modules_loaded_by(args: list[str], home: Path) -> set[str]:
    code = (
        "import sys; from exoimap.cli import main; code = main(sys.argv[1:]);"
        "print('modules:', ' '.join(sys.modules)); sys.exit(code)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        env={"EXOIMAP_HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("modules: ")
    return set(last.split()[1:])


def test_sync_help_imports_only_what_sync_needs(home: Path) -> None:
    loaded = _modules_loaded_by(["sync", "--help"], home)
    assert "exoimap.cli.sync_cmd" in loaded
    other_commands = {m for m, _ in COMMANDS.values()} - {"exoimap.cli.sync_cmd"}
    unwanted = other_commands | {"msal", "rich", "typer", "pydantic", "exoimap.cli.audit"}
    assert not loaded & unwanted


def test_root_help_imports_every_command(home: Path) -> None:
    loaded = _modules_loaded_by(["--help"], home)
    assert {m for m, _ in COMMANDS.values()} <= loaded
