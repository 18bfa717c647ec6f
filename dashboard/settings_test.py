"""Test settings: the real settings with fast password hashing and quiet logs."""

import os

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING["root"]["level"] = "WARNING"  # type: ignore[index]  # noqa: F405
ACCOUNT_RATE_LIMITS = False
WEBHOOK_ALLOW_PRIVATE_TARGETS = True  # the signed receivers of the tests listen on loopback
WEBHOOK_QUEUE_ON_COMMIT = False  # tests run deliveries themselves (or a real worker does)

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    # The suite's own connections name themselves, so the flush between transactional tests
    # can tell them from connections a test's subprocesses left behind (tests/conftest.py),
    # and a statement waiting on a lock errors after a minute instead of waiting forever.
    DATABASES["default"].setdefault("OPTIONS", {}).update(  # noqa: F405
        {"application_name": f"parley-tests-{os.getpid()}", "options": "-c lock_timeout=60000"}
    )
