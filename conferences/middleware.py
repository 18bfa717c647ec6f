"""Request ids on every response, and the error envelope for anything under /api/v1/."""

from __future__ import annotations

import logging
import re
import secrets

from django.http import HttpRequest, HttpResponse

from .api.errors import json_error

logger = logging.getLogger(__name__)

_CLIENT_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
API_PREFIX = "/api/v1/"


class RequestIDMiddleware:
    """Give each request an id (or keep a sane one the client sent) and echo it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        sent = request.headers.get("X-Request-ID", "")
        request.request_id = sent if _CLIENT_ID.match(sent) else f"req_{secrets.token_hex(10)}"
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


class ApiExceptionMiddleware:
    """Under /api/v1/, Django-level 404s and crashes answer with the error envelope."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
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
        logger.exception("Unhandled error on %s (request %s)", request.path, request.request_id)
        return json_error(
            request,
            status_code=500,
            code="INTERNAL_ERROR",
            message="An internal error occurred; quote the request_id when reporting it",
        )
