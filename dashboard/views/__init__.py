"""Pages of the site root and the tenant dashboard (`/dashboard/`, see dashboard_urls.py).

Every dashboard view is wrapped by `base.dashboard_view`: sign-in, the current tenant (the
session's choice among the user's memberships), the role check for writes (viewers: 403),
and a Server-Timing header. Views only translate: form in, one service call, page out.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "home.html")


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def admin_login(request: HttpRequest) -> HttpResponse:
    """`/admin/login/`: Django admin has no sign-in form of its own. Everyone signs in through
    allauth's page, so its rate limits, lockout and two-factor step apply to admins too (one
    lock for both doors); a POST of credentials here signs nobody in."""
    target = request.GET.get("next") or request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ) or not target.startswith("/"):
        target = reverse("admin:index")
    user = request.user
    if user.is_authenticated:
        if user.is_active and user.is_staff:
            return redirect(target)
        return HttpResponseForbidden("This account cannot use the admin site.")
    return redirect(f"{reverse('account_login')}?{urlencode({'next': target})}")
