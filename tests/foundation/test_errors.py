"""The exception tree: one root, and the attributes callers rely on."""

from __future__ import annotations

import inspect

import pytest

from exoimap import errors
from exoimap.errors import (
    AuditChainBroken,
    ConfigError,
    ErrorScope,
    ExoimapError,
    FolderError,
    ImapAuthenticationFailed,
    MessageError,
    StoreError,
    Throttled,
)


def test_every_exception_has_the_one_root() -> None:
    classes = [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, BaseException)
    ]
    assert len(classes) >= 25
    for cls in classes:
        assert issubclass(cls, ExoimapError), cls


def test_every_class_is_drawn_in_the_docstring() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        if name in {"ErrorScope"}:
            continue
        assert name in doc, f"{name} missing from the tree in the module docstring"


def test_config_error_names_file_and_key() -> None:
    exc = ConfigError("expected an integer", path="/x/config.toml", key="accounts.a.imap_port")
    assert str(exc) == "/x/config.toml: accounts.a.imap_port: expected an integer"
    assert exc.key == "accounts.a.imap_port"


def test_throttled_carries_backoff() -> None:
    exc = Throttled(300.0)
    assert exc.backoff == 300.0
    assert exc.retryable
    assert "300" in str(exc)


@pytest.mark.parametrize(
    ("cls", "scope"),
    [
        (MessageError, ErrorScope.MESSAGE),
        (FolderError, ErrorScope.FOLDER),
        (StoreError, ErrorScope.STORE),
    ],
)
def test_store_errors_say_scope(cls: type[StoreError], scope: ErrorScope) -> None:
    exc = cls("x", retryable=True, folder="INBOX", uid=7)
    assert exc.scope is scope
    assert exc.retryable
    assert (exc.folder, exc.uid) == ("INBOX", 7)


def test_store_error_scope_can_be_overridden() -> None:
    assert StoreError("x", scope=ErrorScope.FOLDER).scope is ErrorScope.FOLDER
    assert not StoreError("x").retryable


def test_imap_auth_failure_lists_causes() -> None:
    exc = ImapAuthenticationFailed("AUTHENTICATE failed.", causes=("a", "b"))
    assert str(exc) == "AUTHENTICATE failed. Likely causes: a; b."


def test_audit_chain_broken_names_record() -> None:
    exc = AuditChainBroken("bad", record=12, kind="modified")
    assert (exc.record, exc.kind) == (12, "modified")
