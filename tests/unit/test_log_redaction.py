"""No secret in a log line (SPEC §12): a field named like a secret is redacted by the log
pipeline itself, whatever the caller passed."""

from __future__ import annotations

import logging

import pytest

from duban.logconfig import configure, get_logger


def test_a_field_named_like_a_secret_is_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure(default_level="INFO")
    get_logger("duban.test").warning("probe", token="tok-SECRET-123", password="pw-SECRET", user="fgj")
    for handler in logging.getLogger().handlers:
        handler.flush()
    err = capsys.readouterr().err
    assert "probe" in err and "fgj" in err
    assert "SECRET" not in err
    assert "[redacted]" in err
