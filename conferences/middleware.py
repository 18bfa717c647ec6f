"""Request ids on every response, and the error envelope for anything under /api/v1/.

Both are sync- and async-capable so an ASGI request does not switch threads for them.
"""

from __future__ import annotations

import logging
import re
import secrets

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from .api.errors import json_error, request_id_of

logger = logging.getLogger(__name__)

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
API_PREFIX = "/api/v1/"


class _Middleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self._acall(request)
        self.before(request)
        return self.after(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        self.before(request)
        return self.after(request, await self.get_response(request))

    def before(self, request: HttpRequest) -> None:
        pass

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        return response


def new_request_id(sent: str) -> str:
    """The request's id: the one the client sent when it is sane, else a new one."""
    return sent if _CLIENT_ID.match(sent) else f"req_{secrets.token_hex(10)}"


class RequestIDMiddleware(_Middleware):
    """Give each request an id (or keep a sane one the client sent) and echo it back."""

    def before(self, request: HttpRequest) -> None:
        request.request_id = new_request_id(request.headers.get("X-Request-ID", ""))  # type: ignore[attr-defined]

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response["X-Request-ID"] = request_id_of(request)
        return response


class ApiExceptionMiddleware(_Middleware):
    """Under /api/v1/, Django-level 404s and crashes answer with the error envelope."""

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if (
            request.path.startswith(API_PREFIX)
            and response.status_code == 404
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            return json_error(request, status_code=404, code="NOT_FOUND", message="Not found")
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PREFIX):
            return None
        logger.exception("Unhandled error on %s (request %s)", request.path, request_id_of(request))
        return json_error(
            request,
            status_code=500,
            code="INTERNAL_ERROR",
            message="An internal error occurred; quote the request_id when reporting it",
        )
