"""Secrets Parley must use again (webhook signing secrets, VideoSDK-style signing secrets,
storage keys) are encrypted at rest with a key derived from the server's SECRET_KEY.

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) gives authenticated encryption; the
key is derived with HKDF so a leaked database alone reveals nothing, and a different `purpose`
gives an unrelated key. Values written under an older SECRET_KEY listed in
SECRET_KEY_FALLBACKS still decrypt (key rotation), and new values use the current key.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

__all__ = ["DecryptionError", "decrypt", "encrypt"]


class DecryptionError(Exception):
    """The stored value was not written with any of this server's keys (or was altered)."""


def _derive(secret: str, purpose: str) -> bytes:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"parley-at-rest-v1", info=purpose.encode()
    ).derive(secret.encode())
    return base64.urlsafe_b64encode(key)


@lru_cache(maxsize=32)
def _fernet(secret_key: str, fallbacks: tuple[str, ...], purpose: str) -> MultiFernet:
    keys = [Fernet(_derive(s, purpose)) for s in (secret_key, *fallbacks)]
    return MultiFernet(keys)


def _current(purpose: str) -> MultiFernet:
    fallbacks = tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ()) or ())
    return _fernet(settings.SECRET_KEY, fallbacks, purpose)


def encrypt(plaintext: str, *, purpose: str = "default") -> str:
    """An opaque ASCII token for `plaintext`; store it, never the plaintext."""
    return _current(purpose).encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str, *, purpose: str = "default") -> str:
    """The plaintext of a value from `encrypt` with the same `purpose`."""
    try:
        return _current(purpose).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError, ValueError) as exc:
        raise DecryptionError("stored secret cannot be decrypted with this server's keys") from exc
