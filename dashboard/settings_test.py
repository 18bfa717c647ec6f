"""Test settings: the real settings with fast password hashing and quiet logs."""

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING["root"]["level"] = "WARNING"  # type: ignore[index]  # noqa: F405
ACCOUNT_RATE_LIMITS = False
WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the signed receivers of the tests listen on loopback
WEBHOOK_QUEUE_ON_COMMIT = False  # tests run deliveries themselves (or a real worker does)
