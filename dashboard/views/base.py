"""What every dashboard view shares: the tenant context, role checks, confirmation of
destructive actions, and translating service errors into messages."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts import services as account_services
from accounts.models import Membership, Tenant, User

SESSION_TENANT = "parley.dashboard.tenant"
Role = Membership.Role


@dataclass
class Dash:
    """The dashboard's view of one request: who, in which tenant, with which role."""

    membership: Membership
    memberships: list[Membership] = field(default_factory=list)

    @property
    def tenant(self) -> Tenant:
        return self.membership.tenant

    @property
    def role(self) -> str:
        return self.membership.role

    def can(self, minimum: str) -> bool:
        return account_services.role_at_least(self.role, minimum)

    # Shortcuts for templates.
    @property
    def can_edit_rooms(self) -> bool:
        return self.can(Role.MEMBER)

    @property
    def can_admin(self) -> bool:
        return self.can(Role.ADMIN)

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER


class DashRequest(HttpRequest):
    """The request a dashboard view receives (for type checking): signed in, with the tenant
    context `dashboard_view` attaches."""

    user: User
    dash: Dash
    dash_nav: str


View = Callable[..., HttpResponse]


def dashboard_view(*, write: str = Role.MEMBER, nav: str = "") -> Callable[[View], View]:
    """Sign-in required; `request.dash` is the current tenant context. A non-GET request
    needs at least the role `write` (else 403). Adds Server-Timing with the view's time."""

    def decorate(view: View) -> View:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            started = time.perf_counter()
            memberships = account_services.memberships_of(request.user)  # type: ignore[arg-type]  # login_required
            if not memberships:
                return redirect("dash:welcome")
            chosen = request.session.get(SESSION_TENANT)
            membership = account_services.pick_membership(memberships, chosen)
            request.dash = Dash(membership=membership, memberships=memberships)  # type: ignore[attr-defined]
            request.dash_nav = nav  # type: ignore[attr-defined]
            if request.method not in ("GET", "HEAD") and not request.dash.can(write):  # type: ignore[attr-defined]
                raise PermissionDenied(f"Your role ({membership.role}) cannot do this")
            response = view(request, *args, **kwargs)
            elapsed = (time.perf_counter() - started) * 1000
            response["Server-Timing"] = f"app;dur={elapsed:.1f}"
            response.setdefault("Cache-Control", "private, no-cache")
            return response

        return wrapper

    return decorate


def base_url(request: HttpRequest) -> str:
    return settings.PUBLIC_BASE_URL or request.build_absolute_uri("/").rstrip("/")


def confirmed(request: HttpRequest) -> bool:
    """Destructive actions carry confirm=yes (the page's dialog adds it)."""
    return request.POST.get("confirm") == "yes"


def confirm_page(
    request: HttpRequest, *, title: str, message: str, action_label: str, cancel_url: str
) -> HttpResponse:
    """Without the confirmation (no script), ask on a page of its own before acting."""
    fields = {k: v for k, v in request.POST.items() if k not in ("csrfmiddlewaretoken", "confirm")}
    return render(
        request,
        "dashboard/confirm.html",
        {
            "title": title,
            "message": message,
            "action_label": action_label,
            "cancel_url": cancel_url,
            "fields": fields,
        },
    )


def service_error(request: HttpRequest, exc: Exception) -> None:
    """Show a service's refusal as a message (the page then redirects or re-renders)."""
    text = getattr(exc, "message", None) or str(exc)
    messages.error(request, text)


def forbid(exc: account_services.NotAllowed) -> PermissionDenied:
    return PermissionDenied(exc.message)
