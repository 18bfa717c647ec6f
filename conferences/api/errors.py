"""The v1 error envelope: `{"error": {"code", "message", "field", "request_id"}}`.

Every error of `/api/v1/` goes through here: DRF exceptions via `exception_handler`, Django
404s and crashes via `conferences.middleware`. Compatibility facades format their own errors.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from parley.errors import LockedOut, NotFound, ServiceError

logger = logging.getLogger(__name__)


class ApiError(ServiceError):
    """A request error found by the API layer itself (a bad query parameter, ...): the
    project's one error base, with an explicit status and optional extra headers."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "INVALID_PARAMETER",
        status_code: int = status.HTTP_400_BAD_REQUEST,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, code=code, field=field)
        self.status = status_code
        self.headers = headers or {}


def request_id_of(request: HttpRequest | None) -> str:
    return getattr(request, "request_id", "") if request is not None else ""


def error_body(
    *, code: str, message: str, field: str | None, request: HttpRequest | None
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "field": field,
            "request_id": request_id_of(request),
        }
    }


def json_error(
    request: HttpRequest | None,
    *,
    status_code: int,
    code: str,
    message: str,
    field: str | None = None,
) -> JsonResponse:
    return JsonResponse(
        error_body(code=code, message=message, field=field, request=request), status=status_code
    )


def _first_validation_error(detail: Any, prefix: str = "") -> tuple[str | None, str]:
    """(field, message) of the first error in a DRF ValidationError detail tree."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = None if key in ("non_field_errors", "__all__") else f"{prefix}{key}"
            field, message = _first_validation_error(value, f"{name}." if name else prefix)
            return (field if field is not None else name), message
    if isinstance(detail, list) and detail:
        return _first_validation_error(detail[0], prefix)
    return None, str(detail)


class AuthThrottled(exceptions.Throttled):
    """Too many failed authentications from this address (conferences.api.auth): every try,
    even with a good key, answers 429 until the window ends, so keys cannot be guessed."""

    default_detail = "Too many failed authentications from your address"


_GENERIC = {
    exceptions.ParseError: (400, "INVALID_JSON"),
    exceptions.AuthenticationFailed: (401, "UNAUTHORIZED"),
    exceptions.NotAuthenticated: (401, "UNAUTHORIZED"),
    exceptions.PermissionDenied: (403, "FORBIDDEN"),
    exceptions.NotFound: (404, "NOT_FOUND"),
    exceptions.MethodNotAllowed: (405, "METHOD_NOT_ALLOWED"),
    exceptions.NotAcceptable: (406, "NOT_ACCEPTABLE"),
    exceptions.UnsupportedMediaType: (415, "UNSUPPORTED_MEDIA_TYPE"),
    exceptions.Throttled: (429, "RATE_LIMIT_EXCEEDED"),
    AuthThrottled: (429, "TOO_MANY_FAILED_AUTHENTICATIONS"),
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    request = context.get("request")
    headers: dict[str, str] = {}
    if isinstance(exc, Http404):
        exc = NotFound("Not found")
    if isinstance(exc, ServiceError):
        status_code, code, message, field = exc.status, exc.code, exc.message, exc.field
        headers.update(getattr(exc, "headers", {}))
        if isinstance(exc, LockedOut):
            headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, exceptions.ValidationError):
        field, message = _first_validation_error(exc.detail)
        status_code, code = 400, "INVALID_PARAMETER"
    elif isinstance(exc, exceptions.APIException):
        status_code, code = _GENERIC.get(type(exc), (exc.status_code, "ERROR"))
        message, field = str(exc.detail), None
        if isinstance(exc, exceptions.ParseError):
            message = "Request body is not valid JSON"
        wait = getattr(exc, "wait", None)  # set by DRF on Throttled
        if isinstance(exc, exceptions.Throttled) and wait is not None:
            headers["Retry-After"] = str(int(wait))
    else:
        return None  # a crash: ApiExceptionMiddleware answers 500 with the envelope
    response = Response(
        error_body(code=code, message=message, field=field, request=request),
        status=status_code,
        headers=headers,
    )
    return response
