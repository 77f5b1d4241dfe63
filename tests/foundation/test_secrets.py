"""Secret[T] shows *** on every path that turns an object into text or bytes."""

from __future__ import annotations

import copy
import logging
import pickle

import pytest

from exoimap import secrets
from exoimap.logs import redact
from exoimap.secrets import (
    MASK,
    RedactedSecretError,
    Secret,
    forget_secret_values_except,
    known_secret_values,
    known_secrets_generation,
)

VALUE = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.very-secret-token-value"


def test_reveal_returns_the_value() -> None:
    assert Secret(VALUE).reveal() == VALUE


@pytest.mark.parametrize(
    "render",
    [
        repr,
        str,
        lambda s: f"{s}",
        lambda s: f"{s!r}",
        lambda s: f"{s:>20}",
        lambda s: "%s" % s,  # noqa: UP031 - the old formatting path is what is tested
        lambda s: "{}".format(s),  # noqa: UP032 - str.format is what is tested
        lambda s: str([s]),
        lambda s: str({"k": s}),
    ],
)
def test_text_forms_are_masked(render: object) -> None:
    assert callable(render)
    text = render(Secret(VALUE))
    assert VALUE not in text
    assert MASK in text


def test_logging_shows_mask(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("exoimap.test.secret")
    with caplog.at_level(logging.DEBUG, logger="exoimap.test.secret"):
        logger.info("token is %s", Secret(VALUE))
        logger.info("as repr %r", Secret(VALUE))
    assert VALUE not in caplog.text
    assert caplog.text.count(MASK) == 2


def test_pickle_keeps_only_the_mask() -> None:
    data = pickle.dumps(Secret(VALUE))
    assert VALUE.encode() not in data
    assert MASK.encode() in data
    restored = pickle.loads(data)
    assert str(restored) == MASK
    with pytest.raises(RedactedSecretError):
        restored.reveal()


def test_copies_keep_the_value() -> None:
    secret = Secret(VALUE)
    assert copy.copy(secret).reveal() == VALUE
    assert copy.deepcopy({"s": secret})["s"].reveal() == VALUE


def test_equality_compares_values_without_revealing() -> None:
    assert Secret("abc") == Secret("abc")
    assert Secret("abc") != Secret("abd")
    assert Secret(b"k") == Secret(b"k")
    assert Secret("abc") != "abc"


def test_double_wrap_is_refused() -> None:
    with pytest.raises(TypeError):
        Secret(Secret("x"))


def test_values_are_remembered_for_redaction() -> None:
    Secret("remember-me-please")
    Secret("short")
    assert "remember-me-please" in known_secret_values()
    assert "short" not in known_secret_values()


def test_truthiness() -> None:
    assert Secret("x")
    assert not Secret("")


def test_only_the_newest_values_are_kept_and_every_change_is_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a watch makes new tokens every hour for weeks: what redaction remembers stays bounded
    monkeypatch.setattr(secrets._KNOWN, "limit", 3)
    before = known_secrets_generation()
    for n in range(5):
        Secret(f"hourly-token-{n}")
    known = known_secret_values()
    assert known_secrets_generation() == before + 5
    assert {"hourly-token-3", "hourly-token-4"} <= set(known)
    assert "hourly-token-0" not in known
    assert "hourly-token-1" not in known
    assert len(known) <= 3
    Secret("hourly-token-4")  # known already: nothing changes
    assert known_secrets_generation() == before + 5


def test_a_forgotten_value_is_no_longer_masked_and_a_new_one_is() -> None:
    Secret("first-secret-value")
    assert redact("a first-secret-value b") == "a *** b"
    forget_secret_values_except(frozenset(known_secret_values()) - {"first-secret-value"})
    assert redact("a first-secret-value b") == "a first-secret-value b"
    Secret("second-secret-value")
    assert redact("x second-secret-value,second-secret-values") == "x ***,second-secret-values"
