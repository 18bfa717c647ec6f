"""Browser pages of a room (join page, host link, API tester) and the small JSON endpoints
the join page calls. They only translate: the session and request in, one service call,
HTML or JSON out. JSON errors use the v1 envelope; pages show a plain message.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware, get_token
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt, ensure_csrf_cookie

from accounts.models import Membership
from branding.selectors import cached_brand_for_room
from parley import jsontext
from parley.clientip import client_ip
from parley.headers import media_page

from . import access, roles, selectors, sessions, shapes
from .api.errors import json_error
from .models import Room
from .roles import Role
from .services import access as access_services
from .services import lobby, stage
from .services.errors import InvalidInput, LockedOut, NotFound, ServiceError, Unauthorized
from .shapes import format_datetime, own_stage_json

MAX_BODY = 16 * 1024


def _room_or_404(room_id: str, *, cached: bool = False) -> Room:
    try:
        if cached:
            return access.room_for_join_page(room_id=room_id)
        return access.room_for_join_link(room_id=room_id)
    except NotFound:
        raise Http404("Room not found") from None


def _client(request: HttpRequest) -> str:
    return access.client_key(client_ip(request))


def _visitor(request: HttpRequest, room: Room) -> access.Visitor:
    return sessions.visitor_for(request.session, request.user, room.room_id, _client(request))


# --- pages ------------------------------------------------------------------------------------


def _page_config(
    request: HttpRequest, room: Room, visitor: access.Visitor, host_secret: str | None
) -> dict[str, Any]:
    state = selectors.room_state(room)
    role = access.host_role(room, visitor)
    problem = None if role else access.access_problem(room, visitor)
    base = f"/room/{room.room_id}"
    user = request.user if request.user.is_authenticated else None
    return {
        "roomId": room.room_id,
        "name": room.name,
        "status": state.status,
        "startsAt": format_datetime(state.starts_at),
        "full": state.full,
        "maxParticipants": room.max_participants,
        "accessType": room.access_type,
        "access": {
            "granted": problem is None,
            "needs": problem.code if problem else None,
            "message": problem.message if problem else "",
            "email": visitor.email,
        },
        "isHost": role is not None,
        "role": role or Role.PARTICIPANT,
        # Only on the host link's own page: host actions send it as X-Host-Secret.
        "hostSecret": host_secret or "",
        "waitingRoom": room.waiting_room_enabled,
        # Webinar mode: guests watch, raise a hand, and hosts bring them on stage.
        "webinar": room.allow_webinar_mode,
        "maxSpeakers": room.max_speakers,
        "media": {
            "type": room.media_type,
            "videoQuality": room.video_quality,
            "audioOnly": room.audio_only_mode,
            "screenShare": roles.screen_share_allowed(room),
            "chat": room.chat_enabled,
        },
        "hostControls": {
            key: bool((room.host_controls or {}).get(key, False))
            for key in ("mute_all", "disable_video", "kick_participants")
        },
        "user": {"name": (user.get_full_name() or user.email) if user else ""},
        "csrfToken": get_token(request),
        "urls": {
            "state": f"{base}/state",
            "password": f"{base}/password",
            "email": f"{base}/email",
            "code": f"{base}/code",
            "join": f"{base}/join",
            "lobbyLeave": f"{base}/lobby/",
            "hostApi": f"/api/v1/rooms/{room.room_id}/host",
            "wsStatus": f"/ws/rooms/{room.room_id}/status",
            "wsLobby": f"/ws/rooms/{room.room_id}/lobby/",
            "wsHost": f"/ws/rooms/{room.room_id}/host",
            "wsStage": f"/ws/rooms/{room.room_id}/stage",
            "stageHand": f"{base}/stage/hand",
            "stageAccept": f"{base}/stage/invite/accept",
            "stageDecline": f"{base}/stage/invite/decline",
            "login": f"{reverse('account_login')}?next={base}",
        },
    }


ACCESS_VIEWS = {
    "PASSWORD_REQUIRED": "password",
    "EMAIL_VERIFICATION_REQUIRED": "email",
    "LOGIN_REQUIRED": "login",
}


def _initial_view(config: dict[str, Any]) -> str:
    """The part of the join page shown before its script runs (and without one)."""
    if config["status"] in ("ended", "scheduled"):
        return config["status"]
    if config["full"]:
        return "full"
    if not config["isHost"] and not config["access"]["granted"]:
        return ACCESS_VIEWS.get(config["access"]["needs"], "denied")
    return "prejoin"


def _render_join(
    request: HttpRequest, room: Room, *, host_secret: str | None = None
) -> HttpResponse:
    visitor = _visitor(request, room)
    config = _page_config(request, room, visitor, host_secret)
    response = render(
        request,
        "conferences/join.html",
        {
            "room": room,
            "config": config,
            "brand": cached_brand_for_room(room),
            "initial_view": _initial_view(config),
        },
    )
    response["Cache-Control"] = "no-store"
    return response


@media_page
@ensure_csrf_cookie
def join_page(request: HttpRequest, room_id: str) -> HttpResponse:
    # Every viewer of a webinar loads this page at once: the room from the hot cache.
    return _render_join(request, _room_or_404(room_id, cached=True))


@media_page
@ensure_csrf_cookie
def host_page(request: HttpRequest, room_id: str, secret: str) -> HttpResponse:
    """The host link: makes this browser the room's host (its session keeps a proof)."""
    room = _room_or_404(room_id)
    if not access.host_secret_matches(room, secret):
        raise Http404("Room not found")
    sessions.remember_host(request.session, room)
    response = _render_join(request, room, host_secret=secret)
    response["Referrer-Policy"] = "no-referrer"  # the secret is in this page's URL
    return response


@login_required
@media_page
def api_tester(request: HttpRequest) -> HttpResponse:
    """Create a room with a pasted API key, then test live audio in it (key never stored)."""
    memberships = list(
        Membership.objects.filter(user=request.user)  # type: ignore[misc]  # login_required
        .select_related("tenant")
        .order_by("id")
    )
    response = render(
        request,
        "conferences/api_tester.html",
        {"memberships": memberships, "config": {"csrfToken": get_token(request)}},
        status=200 if memberships else 403,
    )
    response["Cache-Control"] = "no-store"
    return response


# --- JSON endpoints of the join page ----------------------------------------------------------


def _csrf_failure(request: HttpRequest) -> bool:
    check = CsrfViewMiddleware(lambda r: HttpResponse())
    check.process_request(request)
    return check.process_view(request, lambda r: HttpResponse(), (), {}) is not None


def _body(request: HttpRequest) -> dict[str, Any] | JsonResponse:
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not length.isdigit() or int(length) > MAX_BODY:
        return json_error(
            request,
            status_code=413,
            code="PAYLOAD_TOO_LARGE",
            message="The request body is too large",
        )
    if request.content_type != "application/json":
        return json_error(
            request,
            status_code=415,
            code="UNSUPPORTED_MEDIA_TYPE",
            message="Send the body as JSON with Content-Type: application/json",
        )
    try:
        data = jsontext.loads(request.body or b"{}")
    except jsontext.InvalidJSON:
        return json_error(
            request, status_code=400, code="INVALID_JSON", message="Request body is not valid JSON"
        )
    if not isinstance(data, dict):
        return json_error(
            request,
            status_code=400,
            code="INVALID_JSON",
            message="Request body must be a JSON object",
        )
    return data


Handler = Callable[..., JsonResponse]


# Authorization schemes browsers send on their own: never a participant token.
AMBIENT_AUTH_SCHEMES = frozenset({"basic", "digest", "negotiate", "ntlm"})


def _signed_token(request: HttpRequest) -> str | None:
    """A VideoSDK-style participant token sent as `Authorization: <JWT>` (or with a Bearer
    prefix); None when the request carries no Authorization header."""
    raw = request.headers.get("Authorization")
    if raw is None:
        return None
    scheme, _, rest = raw.strip().partition(" ")
    if scheme.lower() in AMBIENT_AUTH_SCHEMES:
        return None  # a browser's own credentials (e.g. basic auth in front of a staging site)
    return rest.strip() if scheme.lower() == "bearer" else raw.strip()


def room_json(
    method: str, *, signed_token: bool = False, cached_room: bool = False
) -> Callable[[Handler], Callable[..., JsonResponse]]:
    """A JSON endpoint under /room/<room_id>/: method check, CSRF (with a JSON answer), room
    lookup, JSON body, and service errors translated to the envelope. With `signed_token`,
    a request carrying an Authorization header is authorised by that token instead of the
    session, so the CSRF check (which protects ambient cookies) does not apply to it. With
    `cached_room`, the room comes from the hot cache (access.room_for_join_page: read-only,
    for views that show it or hand it to a service that only decides on it)."""

    def decorate(view: Handler) -> Callable[..., JsonResponse]:
        @csrf_exempt  # checked below, so a failure answers JSON rather than an HTML page
        @wraps(view)
        def wrapper(request: HttpRequest, room_id: str, **kwargs: Any) -> JsonResponse:
            if request.method != method:
                response = json_error(
                    request, status_code=405, code="METHOD_NOT_ALLOWED", message=f"Use {method}"
                )
                response["Allow"] = method
                return response
            token_auth = signed_token and _signed_token(request) is not None
            if method == "POST" and not token_auth and _csrf_failure(request):
                return json_error(
                    request,
                    status_code=403,
                    code="CSRF_FAILED",
                    message="Reload the page and try again",
                )
            try:
                if cached_room:
                    room: Room | None = access.room_for_join_page(room_id=room_id)
                else:
                    room = access.room_by_public_id(room_id)
            except NotFound:
                room = None
            if room is None:
                return json_error(
                    request, status_code=404, code="NOT_FOUND", message=access.ROOM_NOT_FOUND
                )
            body: dict[str, Any] = {}
            if method == "POST":
                parsed = _body(request)
                if isinstance(parsed, JsonResponse):
                    return parsed
                body = parsed
            try:
                return view(request, room, body, **kwargs)
            except ServiceError as exc:
                response = json_error(
                    request,
                    status_code=exc.status,
                    code=exc.code,
                    message=exc.message,
                    field=exc.field,
                )
                if isinstance(exc, LockedOut):
                    response["Retry-After"] = str(exc.retry_after)
                if isinstance(exc, Unauthorized):
                    response["WWW-Authenticate"] = 'Bearer realm="room"'
                return response

        return wrapper

    return decorate


@room_json("GET", cached_room=True)
def room_state(request: HttpRequest, room: Room, body: dict[str, Any]) -> JsonResponse:
    state = selectors.room_state(room)
    return JsonResponse(
        {
            "status": state.status,
            "starts_at": format_datetime(state.starts_at),
            "full": state.full,
            "server_time": format_datetime(timezone.now()),
        },
        headers={"Cache-Control": "no-store"},
    )


@room_json("POST")
def check_password(request: HttpRequest, room: Room, body: dict[str, Any]) -> JsonResponse:
    fingerprint = access_services.verify_password(
        room=room, password=body.get("password"), client=_client(request)
    )
    sessions.remember_password(request.session, room, fingerprint)
    return JsonResponse({"ok": True})


@room_json("POST")
def send_code(request: HttpRequest, room: Room, body: dict[str, Any]) -> JsonResponse:
    email = access_services.request_code(
        room=room, email=body.get("email"), client=_client(request)
    )
    return JsonResponse({"sent": True, "email": email, "expires_in": 600})


@room_json("POST")
def check_code(request: HttpRequest, room: Room, body: dict[str, Any]) -> JsonResponse:
    email = access_services.verify_code(
        room=room, email=body.get("email"), code=body.get("code"), client=_client(request)
    )
    sessions.remember_email(request.session, room, email)
    return JsonResponse({"ok": True, "email": email})


@room_json("POST", signed_token=True, cached_room=True)  # a webinar's audience at once
def join(request: HttpRequest, room: Room, body: dict[str, Any]) -> JsonResponse:
    token = _signed_token(request)
    if token is not None:
        # A participant token from the tenant's server (VideoSDK-style): no session at all.
        visitor = access_services.signed_participant(
            room=room, token=token, client=_client(request)
        )
        assert visitor.vouched is not None
        name = body.get("name", visitor.vouched.participant_id)
        result = lobby.join(room=room, name=name, visitor=visitor)
        return _admitted(result)
    # Asking again replaces this browser's earlier place in the queue.
    for entry_id in sessions.entries_for(request.session, room.room_id):
        lobby.withdraw(room_id=room.room_id, entry_id=entry_id)
    result = lobby.join(room=room, name=body.get("name"), visitor=_visitor(request, room))
    if result.entry is not None:
        entry = result.entry
        sessions.remember_entry(request.session, room, entry.entry_id)
        return JsonResponse(
            {
                "status": "waiting",
                "entry_id": entry.entry_id,
                "identity": entry.identity,
                "name": entry.name,
            },
            status=202,
        )
    return _admitted(result)


def _admitted(result: lobby.JoinResult) -> JsonResponse:
    issued = result.token
    assert issued is not None
    return JsonResponse(
        {"status": "admitted", **shapes.token_json(issued)}, headers={"Cache-Control": "no-store"}
    )


@room_json("POST")
def leave_lobby(
    request: HttpRequest, room: Room, body: dict[str, Any], entry_id: str
) -> JsonResponse:
    if not sessions.owns_entry(request.session, room.room_id, entry_id):
        return json_error(
            request, status_code=404, code="NOT_FOUND", message="Unknown waiting-room entry"
        )
    return JsonResponse({"left": lobby.leave_lobby(room_id=room.room_id, entry_id=entry_id)})


# --- the stage, from a guest's page (webinar rooms) -------------------------------------------
# Authorised by the guest's own LiveKit join token (`Authorization: Bearer <token>`), which
# names its identity and room; the session plays no part, so there is no CSRF check.

StageHandler = Callable[[HttpRequest, Room, str, dict[str, Any]], JsonResponse]


def _bearer(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _stage_error(request: HttpRequest, exc: ServiceError) -> JsonResponse:
    response = json_error(
        request, status_code=exc.status, code=exc.code, message=exc.message, field=exc.field
    )
    if isinstance(exc, LockedOut):
        response["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthorized):
        response["WWW-Authenticate"] = 'Bearer realm="room"'
    return response


def stage_json(fields: frozenset[str]) -> Callable[[StageHandler], Callable[..., JsonResponse]]:
    """A POST endpoint of a guest's stage actions: the join token first (401 without a valid
    one, 404 for another room's), then an optional JSON body with only `fields`."""

    def decorate(view: StageHandler) -> Callable[..., JsonResponse]:
        @csrf_exempt  # a bearer token, not a cookie, authorises these
        @wraps(view)
        def wrapper(request: HttpRequest, room_id: str) -> JsonResponse:
            if request.method != "POST":
                response = json_error(
                    request, status_code=405, code="METHOD_NOT_ALLOWED", message="Use POST"
                )
                response["Allow"] = "POST"
                return response
            try:
                room, identity = access.room_for_guest_token(
                    room_id=room_id, token=_bearer(request)
                )
                body: dict[str, Any] = {}
                if (request.META.get("CONTENT_LENGTH") or "0") != "0":
                    parsed = _body(request)
                    if isinstance(parsed, JsonResponse):
                        return parsed
                    body = parsed
                unknown = sorted(set(body) - fields)
                if unknown:
                    raise InvalidInput(f"Unknown field '{unknown[0][:64]}'", field=unknown[0][:64])
                stage.count_stage_action(room=room, identity=identity)
                return view(request, room, identity, body)
            except ServiceError as exc:
                return _stage_error(request, exc)

        return wrapper

    return decorate


@stage_json(frozenset({"raised"}))
def stage_hand(
    request: HttpRequest, room: Room, identity: str, body: dict[str, Any]
) -> JsonResponse:
    raised = body.get("raised")
    if not isinstance(raised, bool):
        raise InvalidInput("'raised' must be true or false", field="raised")
    return JsonResponse(own_stage_json(stage.set_hand(room=room, identity=identity, raised=raised)))


@stage_json(frozenset())
def stage_accept(
    request: HttpRequest, room: Room, identity: str, body: dict[str, Any]
) -> JsonResponse:
    participant = stage.respond_to_invite(room=room, identity=identity, accept=True)
    return JsonResponse(own_stage_json(participant))


@stage_json(frozenset())
def stage_decline(
    request: HttpRequest, room: Room, identity: str, body: dict[str, Any]
) -> JsonResponse:
    participant = stage.respond_to_invite(room=room, identity=identity, accept=False)
    return JsonResponse(own_stage_json(participant))
