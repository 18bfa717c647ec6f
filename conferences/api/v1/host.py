"""v1 host controls: the waiting room and moderation, under /api/v1/rooms/{room_id}/host/.

Three kinds of caller may act as a room's host, and nobody else can tell the room exists
(404, as for a missing room):

* the tenant's backend, with its `X-API-Key` (counted against the plan's rate limit);
* the holder of the room's host link, with the link's secret in `X-Host-Secret`;
* a signed-in member of the tenant, with the session cookie and a CSRF token
  (`X-CSRFToken`); viewers may read the queue but not act.

Each view translates: authenticate, `joining.authorize_host`, one service call, JSON out.
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import authentication, exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import ApiKey
from conferences.models import Participant, Room, WaitingEntry
from conferences.services import joining, stage

from ..auth import ApiKeyAuthentication
from ..fields import format_datetime
from .serializers import RoomOutputSerializer
from .stage import MicOnlyInput, StageParticipantSerializer, participant_to_dict
from .views import V1View

HOST_SECRET_HEADER = "X-Host-Secret"


class HostSecret(str):
    """request.auth when the caller presented a host secret (checked per room)."""


class HostAuthentication(authentication.BaseAuthentication):
    """X-API-Key (a tenant), else X-Host-Secret (one room's host), else the Django session
    of a signed-in user (CSRF enforced, as for any cookie-authenticated write)."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        key = request.headers.get(ApiKeyAuthentication.header, "")
        if key:
            if not (key.isascii() and key.isprintable()):
                # Keys are ASCII; anything else (a NUL byte) must not reach a query.
                raise exceptions.AuthenticationFailed("Invalid or revoked API key")
            return ApiKeyAuthentication().authenticate(request)
        secret = request.headers.get(HOST_SECRET_HEADER, "")
        if secret:
            return (None, HostSecret(secret.strip()))
        user = getattr(request._request, "user", None)
        if user is not None and user.is_authenticated:
            self._enforce_csrf(request)
            return (user, None)
        raise exceptions.NotAuthenticated(
            "Send the room's host secret in X-Host-Secret, an API key in X-API-Key, or sign in"
        )

    def _enforce_csrf(self, request: Request) -> None:
        # As DRF's SessionAuthentication: a session is ambient, so writes need the token.
        # Checked on Django's request, so a body the JSON parser refuses cannot mask it.
        check = authentication.CSRFCheck(lambda r: None)  # type: ignore[arg-type]
        django_request = request._request
        check.process_request(django_request)
        reason = check.process_view(django_request, None, (), {})
        if reason:
            raise exceptions.PermissionDenied(f"CSRF failed: {reason}")

    def authenticate_header(self, request: Request) -> str:
        return 'HostSecret header="X-Host-Secret"'


class HostSecretScheme(OpenApiAuthenticationExtension):
    target_class = HostAuthentication
    name = "HostSecret"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        # X-API-Key and a member's session work too; the schema names the header only.
        return {"type": "apiKey", "in": "header", "name": HOST_SECRET_HEADER}


class HostView(V1View):
    authentication_classes = [HostAuthentication]
    permission_classes: list = []
    writes = True  # False: viewers (read-only members) may call it too

    def host_room(self, request: Request, room_id: str) -> Room:
        auth = request.auth
        return joining.authorize_host(
            room_id=room_id,
            tenant=request.tenant if isinstance(auth, ApiKey) else None,  # type: ignore[attr-defined]
            host_secret=str(auth) if isinstance(auth, HostSecret) else None,
            user=request.user if auth is None else None,
            write=self.writes,
        )


def _entry(entry: WaitingEntry, now) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id,
        "identity": entry.identity,
        "name": entry.name,
        "email": entry.email or None,
        "waiting_since": format_datetime(entry.created_at),
        "waiting_seconds": max(0, int((now - entry.created_at).total_seconds())),
    }


def lobby_payload(room: Room) -> dict[str, Any]:
    """The host's view of the queue (also sent over the host socket)."""
    now = timezone.now()
    return {
        "entries": [_entry(e, now) for e in joining.waiting_list(room=room)],
        "server_time": format_datetime(now),
    }


def _decisions(decisions: list[joining.Decision]) -> dict[str, Any]:
    return {
        "admitted": [d.entry_id for d in decisions if d.admitted],
        "rejected": [
            {"entry_id": d.entry_id, "reason": d.reason} for d in decisions if not d.admitted
        ],
    }


ENTRY_FIELDS = {
    "entry_id": serializers.CharField(),
    "identity": serializers.CharField(),
    "name": serializers.CharField(),
    "email": serializers.EmailField(allow_null=True),
    "waiting_since": serializers.DateTimeField(),
    "waiting_seconds": serializers.IntegerField(),
}
LOBBY = inline_serializer(
    "WaitingRoom",
    {
        "entries": inline_serializer("WaitingEntry", ENTRY_FIELDS, many=True),
        "server_time": serializers.DateTimeField(),
    },
)
DECISIONS = inline_serializer(
    "LobbyDecisions",
    {
        "admitted": serializers.ListField(child=serializers.CharField()),
        "rejected": serializers.ListField(child=serializers.DictField()),
    },
)


class WaitingListView(HostView):
    """Who waits in the room's lobby, first come first."""

    writes = False

    @extend_schema(operation_id="host_waiting_list", responses=LOBBY)
    def get(self, request: Request, room_id: str) -> Response:
        return Response(lobby_payload(self.host_room(request, room_id)))


class AdmitView(HostView):
    """Let one waiting guest in (its access is checked again first)."""

    @extend_schema(operation_id="host_admit", request=None, responses=DECISIONS)
    def post(self, request: Request, room_id: str, entry_id: str) -> Response:
        room = self.host_room(request, room_id)
        return Response(_decisions(joining.admit(room=room, entry_id=entry_id)))


class RejectView(HostView):
    """Turn one waiting guest away."""

    @extend_schema(operation_id="host_reject", request=None, responses=DECISIONS)
    def post(self, request: Request, room_id: str, entry_id: str) -> Response:
        room = self.host_room(request, room_id)
        return Response(_decisions(joining.reject(room=room, entry_id=entry_id)))


class AdmitAllView(HostView):
    """Let everyone waiting in (each checked against the access policy again)."""

    @extend_schema(operation_id="host_admit_all", request=None, responses=DECISIONS)
    def post(self, request: Request, room_id: str) -> Response:
        room = self.host_room(request, room_id)
        return Response(_decisions(joining.admit(room=room)))


class RejectAllView(HostView):
    """Turn everyone waiting away."""

    @extend_schema(operation_id="host_reject_all", request=None, responses=DECISIONS)
    def post(self, request: Request, room_id: str) -> Response:
        room = self.host_room(request, room_id)
        return Response(_decisions(joining.reject(room=room)))


COUNT = inline_serializer("HostActionCount", {"muted": serializers.IntegerField()})


class MuteAllView(HostView):
    """Mute every microphone but the hosts' (needs host_controls.mute_all)."""

    @extend_schema(operation_id="host_mute_all", request=None, responses=COUNT)
    def post(self, request: Request, room_id: str) -> Response:
        room = self.host_room(request, room_id)
        return Response({"muted": joining.mute_all(room=room)})


class DisableVideoView(HostView):
    """Turn off every camera but the hosts' (needs host_controls.disable_video)."""

    @extend_schema(operation_id="host_disable_video", request=None, responses=COUNT)
    def post(self, request: Request, room_id: str) -> Response:
        room = self.host_room(request, room_id)
        return Response({"muted": joining.disable_video(room=room)})


class RemoveParticipantView(HostView):
    """Disconnect one participant (needs host_controls.kick_participants)."""

    @extend_schema(
        operation_id="host_remove_participant",
        request=None,
        responses=inline_serializer("Removed", {"removed": serializers.CharField()}),
    )
    def post(self, request: Request, room_id: str, identity: str) -> Response:
        room = self.host_room(request, room_id)
        joining.remove_participant(room=room, identity=identity)
        return Response({"removed": identity})


class EndRoomView(HostView):
    """End the room for everyone and close its waiting room."""

    @extend_schema(operation_id="host_end_room", request=None, responses=RoomOutputSerializer)
    def post(self, request: Request, room_id: str) -> Response:
        room = joining.end_room(room=self.host_room(request, room_id))
        return self.room_response(request, room)


class StartRoomView(HostView):
    """Open the room now (a scheduled room started early by its host)."""

    @extend_schema(operation_id="host_start_room", request=None, responses=RoomOutputSerializer)
    def post(self, request: Request, room_id: str) -> Response:
        room = joining.start_room(room=self.host_room(request, room_id))
        return self.room_response(request, room)


# --- the stage (webinar rooms): hands, invitations, promotion -------------------------------


def _hand(hand: stage.Hand, now) -> dict[str, Any]:
    return {
        "identity": hand.identity,
        "name": hand.name,
        "position": hand.position,
        "raised_at": format_datetime(hand.raised_at),
        "waiting_seconds": max(0, int((now - hand.raised_at).total_seconds())),
    }


def _on_stage(participant: Participant) -> dict[str, Any]:
    return {
        "identity": participant.identity,
        "name": participant.name,
        "role": participant.role,
        "mic_only": participant.mic_only,
        "invite_mic_only": participant.invite_mic_only,
    }


def stage_payload(room: Room) -> dict[str, Any]:
    """The host's view of the stage (also sent over the host socket): raised hands first
    raised first with how long each has waited, speakers, and open invitations."""
    now = timezone.now()
    lineup = stage.lineup(room=room)
    return {
        "hands": [_hand(h, now) for h in lineup.hands],
        "hands_total": lineup.hands_total,
        "speakers": [_on_stage(p) for p in lineup.speakers],
        "invited": [_on_stage(p) for p in lineup.invited],
        "max_speakers": room.max_speakers,
        "server_time": format_datetime(now),
    }


STAGE_PERSON = {
    "identity": serializers.CharField(),
    "name": serializers.CharField(),
    "role": serializers.CharField(),
    "mic_only": serializers.BooleanField(),
    "invite_mic_only": serializers.BooleanField(),
}
STAGE = inline_serializer(
    "HostStage",
    {
        "hands": inline_serializer(
            "HostHand",
            {
                "identity": serializers.CharField(),
                "name": serializers.CharField(),
                "position": serializers.IntegerField(),
                "raised_at": serializers.DateTimeField(),
                "waiting_seconds": serializers.IntegerField(),
            },
            many=True,
        ),
        "hands_total": serializers.IntegerField(),
        "speakers": inline_serializer("HostSpeaker", STAGE_PERSON, many=True),
        "invited": inline_serializer("HostInvited", STAGE_PERSON, many=True),
        "max_speakers": serializers.IntegerField(allow_null=True),
        "server_time": serializers.DateTimeField(),
    },
)


class StageHostView(HostView):
    def mic_only(self, request: Request) -> bool:
        serializer = MicOnlyInput(data=self.json_body(request) or {})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data.get("mic_only", False)

    def done(self, participant: Participant) -> Response:
        return Response(participant_to_dict(participant))


class StageLineupView(HostView):
    """Raised hands (first raised first), speakers and open invitations."""

    writes = False

    @extend_schema(operation_id="host_stage", responses=STAGE)
    def get(self, request: Request, room_id: str) -> Response:
        return Response(stage_payload(self.host_room(request, room_id)))


class StageLowerAllView(HostView):
    """Lower every raised hand."""

    @extend_schema(
        operation_id="host_lower_all_hands",
        request=None,
        responses=inline_serializer("HostLowered", {"lowered": serializers.IntegerField()}),
    )
    def post(self, request: Request, room_id: str) -> Response:
        room = self.host_room(request, room_id)
        return Response({"lowered": stage.lower_all_hands(room=room)})


class StageInviteView(StageHostView):
    """Invite an audience member on stage (optionally microphone only); they accept or
    decline on their page, and a decline is told over the host socket."""

    @extend_schema(
        operation_id="host_stage_invite", request=MicOnlyInput, responses=StageParticipantSerializer
    )
    def post(self, request: Request, room_id: str, identity: str) -> Response:
        room = self.host_room(request, room_id)
        mic_only = self.mic_only(request)
        return self.done(stage.invite(room=room, identity=identity, mic_only=mic_only))


class StagePromoteView(StageHostView):
    """Bring a participant on stage now: camera and microphone as the room allows, or the
    microphone only. 409 SPEAKER_LIMIT_REACHED past the room's max_speakers."""

    @extend_schema(
        operation_id="host_stage_promote",
        request=MicOnlyInput,
        responses=StageParticipantSerializer,
    )
    def post(self, request: Request, room_id: str, identity: str) -> Response:
        room = self.host_room(request, room_id)
        mic_only = self.mic_only(request)
        return self.done(stage.promote(room=room, identity=identity, mic_only=mic_only))


class StageDemoteView(StageHostView):
    """Back to the audience (LiveKit unpublishes their tracks)."""

    @extend_schema(
        operation_id="host_stage_demote", request=None, responses=StageParticipantSerializer
    )
    def post(self, request: Request, room_id: str, identity: str) -> Response:
        room = self.host_room(request, room_id)
        return self.done(stage.demote(room=room, identity=identity))


class StageRemoveView(StageHostView):
    """Disconnect a participant and clear their stage state (needs
    host_controls.kick_participants)."""

    @extend_schema(
        operation_id="host_stage_remove", request=None, responses=StageParticipantSerializer
    )
    def post(self, request: Request, room_id: str, identity: str) -> Response:
        room = self.host_room(request, room_id)
        return self.done(joining.remove_from_stage(room=room, identity=identity))
