"""Encryption at rest: round trip, purposes are separate, tampering and foreign keys fail."""

from __future__ import annotations

import pytest
from django.test import override_settings

from accounts.crypto import DecryptionError, decrypt, encrypt


def test_round_trip_and_no_plaintext():
    token = encrypt("whsec_very-secret", purpose="webhook")
    assert "very-secret" not in token
    assert decrypt(token, purpose="webhook") == "whsec_very-secret"
    assert encrypt("x", purpose="webhook") != encrypt("x", purpose="webhook")  # random IV


def test_purposes_use_different_keys():
    token = encrypt("s", purpose="webhook")
    with pytest.raises(DecryptionError):
        decrypt(token, purpose="storage")


def test_tampered_or_foreign_values_are_refused():
    token = encrypt("s")
    with pytest.raises(DecryptionError):
        decrypt(token[:-4] + ("BBBB" if token.endswith("AAAA") else "AAAA"))
    with override_settings(SECRET_KEY="another-server-entirely-" * 3):
        with pytest.raises(DecryptionError):
            decrypt(token)


def test_old_secret_key_in_fallbacks_still_decrypts():
    with override_settings(SECRET_KEY="old-key-" * 8):
        token = encrypt("s")
    with override_settings(SECRET_KEY="new-key-" * 8, SECRET_KEY_FALLBACKS=["old-key-" * 8]):
        assert decrypt(token) == "s"
