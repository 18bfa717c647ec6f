"""Public brand assets: the uploaded logo, served from the database."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from .models import BrandLogo


@require_GET
def logo(request: HttpRequest, sha: str) -> HttpResponse:
    """A logo by the hash of its bytes: immutable, so cached for a year."""
    if len(sha) != 64:
        raise Http404("No such logo")
    item = BrandLogo.objects.filter(sha=sha).only("data", "content_type").first()
    if item is None:
        raise Http404("No such logo")
    response = HttpResponse(bytes(item.data), content_type=item.content_type)
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"  # custom domains show it too
    return response
