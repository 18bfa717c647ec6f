"""The one error hierarchy of Parley.

Services (of every app) raise a `ServiceError` subclass; each interface translates it to its
own format: the v1 envelope (`conferences.api.errors`), a facade's reference shape, a
dashboard message, a websocket `{"type": "error"}`. `status` is the HTTP status the v1 API
answers with, `code` the envelope's code, `field` the offending input (if any).
"""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    code = "INVALID_REQUEST"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code


class InvalidInput(ServiceError):
    status = 400
    code = "INVALID_PARAMETER"


class Unauthorized(ServiceError):
    status = 401
    code = "UNAUTHORIZED"


class Forbidden(ServiceError):
    status = 403
    code = "FORBIDDEN"


class LimitExceeded(ServiceError):
    status = 403
    code = "PLAN_LIMIT_EXCEEDED"


class NotFound(ServiceError):
    """Missing, or not the caller's: the two look the same."""

    status = 404
    code = "NOT_FOUND"


class Conflict(ServiceError):
    status = 409
    code = "CONFLICT"


class InvalidState(ServiceError):
    status = 409
    code = "INVALID_ROOM_STATE"


class LockedOut(ServiceError):
    """Too many tries; `retry_after` seconds until the next one counts."""

    status = 429
    code = "TOO_MANY_ATTEMPTS"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class Unavailable(ServiceError):
    """An outside service (LiveKit) could not answer; nothing was written."""

    status = 503
    code = "LIVEKIT_UNAVAILABLE"
