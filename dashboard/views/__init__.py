"""Pages of the site root and the tenant dashboard (`/dashboard/`, see dashboard_urls.py).

Every dashboard view is wrapped by `base.dashboard_view`: sign-in, the current tenant (the
session's choice among the user's memberships), the role check for writes (viewers: 403),
and a Server-Timing header. Views only translate: form in, one service call, page out.
"""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "home.html")


def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
