"""The "LiveKit Interactive Show" API (reference/interactive-show-api.txt), served exactly:
paths, bodies, responses, status codes and `{"error": "..."}` messages. A thin facade over
the same services as /api/v1/, authenticated with the tenant's X-API-Key.

A show is addressed by `roomName`: the tenant's newest open room of that name, created on the
first join (webinar mode, one guest at a time). Identities are the participant names given
at join. The host is whoever joined as host first; the guest is the one promoted viewer.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.http import JsonResponse
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Tenant
from conferences import access, livekit
from conferences.models import Participant, Room
from conferences.roles import HOST_ROLES, Role
from conferences.services import moderation, stage
from conferences.services import rooms as room_services
from conferences.services.errors import ServiceError

from ..auth import TenantAPIView
from ..errors import AuthThrottled

logger = logging.getLogger(__name__)


class ShowError(ServiceError):
    """An error in this reference's own words (the project's error base, any status)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ShowView(TenantAPIView):
    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, ServiceError):
            status, message = exc.status, exc.message
        elif isinstance(exc, exceptions.ParseError):
            status, message = 400, "Request body is not valid JSON"
        elif isinstance(exc, AuthThrottled):
            status, message = 429, str(exc.detail)
        elif isinstance(exc, exceptions.Throttled):
            status, message = 429, "Too many requests"
        elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            status, message = 401, "Missing or invalid API key"
        elif isinstance(exc, exceptions.APIException):
            status, message = exc.status_code, str(exc.detail)
        else:
            logger.exception("Interactive-show API crashed")
            status, message = 500, "Internal server error"
        response = Response({"error": message}, status=status)
        wait = getattr(exc, "wait", None)  # set by DRF on Throttled
        if isinstance(exc, exceptions.Throttled) and wait:
            response["Retry-After"] = str(int(wait))
        return response

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if any("\x00" in str(value) for value in kwargs.values()):
            raise ShowError(404, "Not found")

    def body(self, request: Request) -> dict[str, Any]:
        return _json_object(request.data)

    def show(self, request: Request, room_name: str) -> Room:
        room = _open_show(self.tenant(request), room_name)
        if room is None:
            raise ShowError(404, "Room not found")
        return room

    def member(self, room: Room, identity: str) -> Participant:
        participant = Participant.objects.present().filter(room=room, identity=identity).first()
        if participant is None:
            raise ShowError(404, "Participant not found")
        return participant

    def moved(self, room: Room, target: Participant, role: str, message: str) -> Response:
        """The answer to a role change: the participant's new token and a message."""
        issued = room_services.issue_token(
            room=room, name=target.name, identity=target.identity, role=role
        )
        return Response(
            {"success": True, "token": issued.token, "wsUrl": issued.ws_url, "message": message}
        )

    def require_host(self, room: Room, identity: str, message: str) -> None:
        if (
            not Participant.objects.present()
            .filter(room=room, identity=identity, role__in=HOST_ROLES)
            .exists()
        ):
            raise ShowError(403, message)


def _text(data: dict[str, Any], *names: str) -> list[str] | None:
    values = [data.get(n) for n in names]
    texts = [v.strip() for v in values if isinstance(v, str) and "\x00" not in v]
    if len(texts) != len(values) or not all(texts):
        return None
    return texts


def _open_show(tenant: Tenant, room_name: str) -> Room | None:
    """The tenant's newest open room of that name."""
    return access.open_room_named(tenant=tenant, name=room_name)


def _json_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ShowError(400, "Request body must be a JSON object")
    return data


def join_input(data: Any) -> tuple[str, str, str]:
    """(roomName, participantName, role) of a join body, or the ShowError that refuses it."""
    names = _text(_json_object(data), "roomName", "participantName")
    if names is None:
        raise ShowError(400, "roomName and participantName are required")
    room_name, participant_name = names
    role = data.get("role", "viewer")
    if role not in ("host", "viewer"):
        raise ShowError(400, "role must be 'host' or 'viewer'")
    if not 3 <= len(room_name) <= 100 or len(participant_name) > 100:
        raise ShowError(400, "roomName must be 3-100 and participantName 1-100 characters")
    return room_name, participant_name, role


def join_answer(issued: room_services.IssuedToken, room_name: str, role: str) -> dict[str, str]:
    return {"token": issued.token, "wsUrl": issued.ws_url, "roomName": room_name, "role": role}


class JoinView(ShowView):
    def post(self, request: Request) -> Response:
        room_name, participant_name, role = join_input(request.data)
        room = access.open_room_named(tenant=self.tenant(request), name=room_name, cached=True)
        if room is None:
            room = room_services.create_room(
                tenant=self.tenant(request),
                data={"name": room_name, "allow_webinar_mode": True, "max_speakers": 1},
            )
        if role == "host":
            taken = (
                Participant.objects.present()
                .filter(room=room, role__in=HOST_ROLES)
                .exclude(identity=participant_name)
                .exists()
            )
            if taken:
                raise ShowError(409, "Room already has a host")
        issued = room_services.issue_token(
            room=room,
            name=participant_name,
            identity=participant_name,
            role=Role.HOST if role == "host" else Role.VIEWER,
        )
        return Response(join_answer(issued, room_name, role))


class RoomsView(ShowView):
    def get(self, request: Request) -> Response:
        live = list(Room.objects.for_tenant(self.tenant(request)).listed().live().order_by("pk"))
        if not live:
            return Response({"rooms": []})
        on_livekit = {r["name"]: r for r in _livekit_rooms([room.livekit_name for room in live])}
        rooms = []
        for room in live:
            info = on_livekit.get(room.livekit_name)
            if info is not None:
                rooms.append(
                    {
                        "name": room.name,
                        "sid": info["sid"],
                        "numParticipants": info["num_participants"],
                        "creationTime": str(info["creation_time"]),
                    }
                )
        return Response({"rooms": rooms})


def _livekit_rooms(names: list[str]) -> list[livekit.RoomDict]:
    return livekit.list_rooms(names=names)


class RoomView(ShowView):
    def get(self, request: Request, room_name: str) -> Response:
        room = self.show(request, room_name)
        present = Participant.objects.present().filter(room=room)
        info = _livekit_rooms([room.livekit_name]) if room.live_since else []
        return Response(
            {
                "room": {
                    "name": room.name,
                    "sid": info[0]["sid"] if info else "",
                    "numParticipants": info[0]["num_participants"] if info else 0,
                    "hasHost": present.filter(role__in=HOST_ROLES).exists(),
                    "hasGuest": present.filter(role=Role.SPEAKER).exists(),
                }
            }
        )

    def delete(self, request: Request, room_name: str) -> Response:
        room = self.show(request, room_name)
        moderation.end_room(room=room)
        return Response({"success": True})


class ParticipantsView(ShowView):
    def get(self, request: Request, room_name: str) -> Response:
        room = self.show(request, room_name)
        people = room_services.live_participants(room=room) if room.live_since else []
        return Response(
            {
                "participants": [
                    {
                        "sid": p["sid"],
                        "identity": p["identity"],
                        "name": p["name"],
                        "metadata": p["metadata"],
                        "joinedAt": str(p["joined_at"]),
                    }
                    for p in people
                ]
            }
        )


class ParticipantView(ShowView):
    def delete(self, request: Request, room_name: str, identity: str) -> Response:
        room = self.show(request, room_name)
        self.member(room, identity)
        moderation.remove_participant(room=room, identity=identity, by_tenant=True)
        return Response({"success": True})


class InviteView(ShowView):
    def post(self, request: Request, room_name: str) -> Response:
        names = _text(self.body(request), "viewerIdentity", "hostIdentity")
        if names is None:
            raise ShowError(400, "viewerIdentity and hostIdentity are required")
        viewer, host = names
        room = self.show(request, room_name)
        self.require_host(room, host, "Only the host can promote viewers to guest")
        if (
            Participant.objects.present()
            .filter(room=room, role=Role.SPEAKER)
            .exclude(identity=viewer)
            .exists()
        ):
            raise ShowError(403, "Room already has a guest")
        target = self.member(room, viewer)
        stage.promote(room=room, identity=viewer)
        return self.moved(room, target, Role.SPEAKER, f"{viewer} has been promoted to guest")


class DemoteView(ShowView):
    def post(self, request: Request, room_name: str) -> Response:
        names = _text(self.body(request), "guestIdentity", "hostIdentity")
        if names is None:
            raise ShowError(400, "guestIdentity and hostIdentity are required")
        guest, host = names
        room = self.show(request, room_name)
        self.require_host(room, host, "Only the host can demote guests")
        target = self.member(room, guest)
        stage.demote(room=room, identity=guest)
        return self.moved(room, target, Role.VIEWER, f"{guest} has been demoted to viewer")


class RemoveGuestView(ShowView):
    def post(self, request: Request, room_name: str) -> Response:
        names = _text(self.body(request), "guestIdentity", "hostIdentity")
        if names is None:
            raise ShowError(400, "guestIdentity and hostIdentity are required")
        guest, host = names
        room = self.show(request, room_name)
        self.require_host(room, host, "Only the host can remove guests")
        self.member(room, guest)
        moderation.remove_participant(room=room, identity=guest, by_tenant=True)
        return Response({"success": True, "message": f"{guest} has been removed from the room"})


class HandRaiseView(ShowView):
    def post(self, request: Request, room_name: str) -> Response:
        data = self.body(request)
        names = _text(data, "participantIdentity")
        raised = data.get("raised")
        if names is None or not isinstance(raised, bool):
            raise ShowError(400, "participantIdentity and raised are required")
        room = self.show(request, room_name)
        self.member(room, names[0])
        stage.set_hand(room=room, identity=names[0], raised=raised)
        return Response({"success": True, "handRaised": raised})


def health(request) -> JsonResponse:
    now = dt.datetime.now(dt.UTC)
    return JsonResponse(
        {"status": "ok", "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
    )


def not_found(request, rest: str = "") -> JsonResponse:
    return JsonResponse({"error": "Not found"}, status=404)
