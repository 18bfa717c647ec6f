"""Domain errors raised by services; each interface translates them to its own format."""

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


class LimitExceeded(ServiceError):
    status = 403
    code = "PLAN_LIMIT_EXCEEDED"


class InvalidState(ServiceError):
    status = 409
    code = "INVALID_ROOM_STATE"


class Unavailable(ServiceError):
    status = 503
    code = "LIVEKIT_UNAVAILABLE"


class NotFound(ServiceError):
    status = 404
    code = "NOT_FOUND"


class Forbidden(ServiceError):
    status = 403
    code = "FORBIDDEN"


class InvalidInput(ServiceError):
    status = 400
    code = "INVALID_PARAMETER"


class Conflict(ServiceError):
    status = 409
    code = "CONFLICT"
