"""X-API-Key authentication and per-plan rate limiting for the tenant APIs, and the throttle
on failed authentications per client address (every key-carrying surface: v1, Callaba's
x-access-token, VideoSDK's Authorization, Interactive Show)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiKey, Tenant
from accounts.services import authenticate_api_key
from conferences.access import client_key
from parley import ratelimit
from parley.clientip import client_ip

from .errors import AuthThrottled

AUTH_FAILURES_ALLOWED = 20  # failed authentications per client address per window
AUTH_FAILURE_WINDOW = 600  # seconds
# The ASGI scope key under which the join-token fast path (conferences.api.fasttokens)
# leaves the (allowed, RateState) it counted before handing a request to Django.
RATE_SCOPE_KEY = "parley.rate"


def failure_window(address: str) -> ratelimit.Window:
    return ratelimit.window("auth-fail", client_key(address), seconds=AUTH_FAILURE_WINDOW)


def failing_wait(address: str) -> int | None:
    """Seconds until `address` may try again while it is over its failed-authentication
    budget; None while it is not."""
    w = failure_window(address)
    if ratelimit.used(w) >= AUTH_FAILURES_ALLOWED:
        return max(1, math.ceil(w.reset - time.time()))
    return None


def refuse_if_failing(request: Request) -> None:
    """Raise AuthThrottled while this address is over its failed-authentication budget."""
    wait = failing_wait(client_ip(request))
    if wait is not None:
        raise AuthThrottled(
            wait=wait,
            detail=f"Too many failed authentications from your address. Try again in {wait} s.",
        )


def count_failure(request: Request) -> None:
    ratelimit.hit(failure_window(client_ip(request)))


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`X-API-Key: pk_...` resolves to the key's tenant; request.auth is the ApiKey."""

    header = "X-API-Key"

    def authenticate(self, request: Request) -> tuple[None, ApiKey] | None:
        raw = request.headers.get(self.header, "")
        if not raw:
            raise exceptions.NotAuthenticated("Missing API key: send it in the X-API-Key header")
        refuse_if_failing(request)
        api_key = authenticate_api_key(raw.strip())
        if api_key is None:
            count_failure(request)
            raise exceptions.AuthenticationFailed("Invalid or revoked API key")
        request.tenant = api_key.tenant  # type: ignore[attr-defined]
        return (None, api_key)

    def authenticate_header(self, request: Request) -> str:
        return 'APIKey header="X-API-Key"'


def request_tenant(request: Request) -> Tenant:
    """The tenant ApiKeyAuthentication (or a facade's own authentication) set on `request`."""
    tenant: Tenant = request.tenant  # type: ignore[attr-defined]
    return tenant


class HasTenant(permissions.BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        if getattr(request, "tenant", None) is None:
            raise exceptions.NotAuthenticated("Missing API key: send it in the X-API-Key header")
        return True


@dataclass(frozen=True)
class RateState:
    limit: int | None  # None: unlimited
    remaining: int | None
    reset: int  # unix time the window ends

    def headers(self) -> dict[str, str]:
        if self.limit is None:
            return {
                "X-RateLimit-Limit": "unlimited",
                "X-RateLimit-Remaining": "unlimited",
                "X-RateLimit-Reset": str(self.reset),
            }
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.remaining or 0, 0)),
            "X-RateLimit-Reset": str(self.reset),
        }


def consume_request(tenant: Tenant, *, now: float | None = None) -> tuple[bool, RateState]:
    """Count one request against the tenant's hourly allowance (fixed window, in the cache).

    Atomic with Redis (INCR) and with the local-memory cache (locked). Returns whether the
    request is allowed and the state for the X-RateLimit-* headers.
    """
    return consume_requests(tenant, 1, now=now)[0]


def consume_requests(
    tenant: Tenant, count: int, *, now: float | None = None
) -> list[tuple[bool, RateState]]:
    """consume_request for `count` requests of the tenant at once (one INCRBY), in order:
    each is allowed, with its headers, as if they had been counted one after another."""
    w = ratelimit.api_window(tenant.pk, now=now)
    limit = tenant.plan.requests_per_hour
    if limit is None:
        return [(True, RateState(limit=None, remaining=None, reset=w.reset))] * count
    last = ratelimit.hit(w, count)
    return [
        (used <= limit, RateState(limit=limit, remaining=limit - min(used, limit), reset=w.reset))
        for used in range(last - count + 1, last + 1)
    ]


class PlanRateThrottle(throttling.BaseThrottle):
    """DRF throttle that applies the tenant plan's requests/hour and remembers the state."""

    def allow_request(self, request: Request, view: object) -> bool:
        tenant = getattr(request, "tenant", None)
        if tenant is None:
            return True
        # Counted already by the join-token fast path (conferences.api.fasttokens), which
        # then handed the request to this path: count it once.
        counted = getattr(request._request, "scope", {}).get(RATE_SCOPE_KEY)
        allowed, state = counted if counted is not None else consume_request(tenant)
        request.rate_state = state  # type: ignore[attr-defined]
        self._wait = max(1, math.ceil(state.reset - time.time()))
        return allowed

    def wait(self) -> float:
        return self._wait


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {"type": "apiKey", "in": "header", "name": "X-API-Key"}


class TenantAPIView(APIView):
    """Base of every X-API-Key view (v1 and the compatibility facades): the key's tenant, the
    plan's hourly allowance, and X-RateLimit-* headers on every answer."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasTenant]
    throttle_classes = [PlanRateThrottle]

    def tenant(self, request: Request) -> Tenant:
        """The caller's tenant (its API key's), set by ApiKeyAuthentication."""
        return request_tenant(request)

    def finalize_response(self, request: Request, response: Response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        state = getattr(request, "rate_state", None)
        if state is not None:
            for header, value in state.headers().items():
                response[header] = value
        return response
