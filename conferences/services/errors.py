"""Errors raised by the conference services: the project's one hierarchy (`parley.errors`)
and the kinds only rooms have. Each interface translates them to its own format."""

from __future__ import annotations

from parley.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidState,
    LimitExceeded,
    LockedOut,
    NotFound,
    ServiceError,
    Unauthorized,
    Unavailable,
)

__all__ = [
    "AccessRequired",
    "Conflict",
    "ControlDisabled",
    "Forbidden",
    "InvalidInput",
    "InvalidState",
    "LimitExceeded",
    "LockedOut",
    "NotFound",
    "RoomFull",
    "ServiceError",
    "Unauthorized",
    "Unavailable",
    "WrongCredentials",
]


class AccessRequired(ServiceError):
    """The visitor has not (or no longer) met the room's access policy. `code` says what is
    missing: PASSWORD_REQUIRED, EMAIL_VERIFICATION_REQUIRED, NOT_ON_GUEST_LIST, LOGIN_REQUIRED."""

    status = 403
    code = "ACCESS_REQUIRED"


class WrongCredentials(ServiceError):
    status = 403
    code = "WRONG_PASSWORD"


class RoomFull(ServiceError):
    status = 409
    code = "ROOM_FULL"


class ControlDisabled(ServiceError):
    """The room's host_controls switch this action off for hosts."""

    status = 403
    code = "HOST_CONTROL_DISABLED"
