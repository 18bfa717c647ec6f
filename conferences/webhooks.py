"""The endpoint LiveKit posts its webhooks to (configure `<PUBLIC_BASE_URL>/livekit/webhook`
in livekit-server's `webhook.urls`, signed with the same API key)."""

from __future__ import annotations

import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import livekit
from .services import livekit_events

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def livekit_webhook(request: HttpRequest) -> JsonResponse:
    try:
        notice = livekit.receive_webhook(
            body=request.body, authorization=request.headers.get("Authorization", "")
        )
    except livekit.LiveKitError:
        return JsonResponse({"error": "invalid webhook signature"}, status=401)
    result = livekit_events.apply(notice)
    logger.info("LiveKit webhook %s for %s: %s", notice.event, notice.room, result)
    return JsonResponse({"ok": True, "result": result})
