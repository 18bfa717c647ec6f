"""v1 host controls: the waiting room and moderation, under /api/v1/rooms/{room_id}/host/.

Three kinds of caller may act as a room's host, and nobody else can tell the room exists
(404, as for a missing room):

* the tenant's backend, with its `X-API-Key` (counted against the plan's rate limit);
* the holder of the room's host link, with the link's secret in `X-Host-Secret`;
* a signed-in member of the tenant, with the session cookie and a CSRF token
  (`X-CSRFToken`); viewers may read the queue but not act.

Each view translates: authenticate, `access.room_for_host`, one service call, JSON out.
The stage actions are also reached under /participants/{identity}/ (the same view classes).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import authentication, exceptions, serializers
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import ApiKey
from conferences import access, selectors, shapes
from conferences.models import Participant, Room
from conferences.services import lobby, moderation, stage
from conferences.services.errors import NotFound

from ..auth import ApiKeyAuthentication
from ..errors import ApiError
from .serializers import RoomOutputSerializer
from .stage import MicOnlyInput, RemoveInput, StageParticipantSerializer
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
        reason = check.process_view(django_request, lambda r: None, (), {})  # type: ignore[arg-type,return-value]
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
    """Base of every host action: the caller is the tenant (API key), the room's host secret
    or a signed-in member (read-only for viewers: GET only)."""

    authentication_classes = [HostAuthentication]
    permission_classes: list = []

    def host_room(self, request: Request, room_id: str) -> Room:
        auth = request.auth
        return access.room_for_host(
            room_id=room_id,
            tenant=self.tenant(request) if isinstance(auth, ApiKey) else None,
            host_secret=str(auth) if isinstance(auth, HostSecret) else None,
            user=request.user if auth is None else None,  # type: ignore[arg-type]
            write=request.method not in SAFE_METHODS,
        )

    def by_tenant(self, request: Request) -> bool:
        """The tenant itself (its API key), not one of the room's hosts."""
        return isinstance(request.auth, ApiKey)

    def mic_only(self, request: Request) -> bool:
        serializer = MicOnlyInput(data=self.json_body(request) or {})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data.get("mic_only", False)

    def done(self, participant: Participant) -> Response:
        return Response(shapes.stage_participant_json(participant))


def lobby_payload(room: Room) -> shapes.LobbyJSON:
    """The host's view of the queue (also what the host socket sends)."""
    return shapes.lobby_json(lobby.queue_for_host(room=room))


def stage_payload(room: Room) -> shapes.StageJSON:
    return shapes.stage_json(room)


def _decisions(decisions: list[lobby.Decision]) -> dict[str, Any]:
    return {
        "admitted": [d.entry_id for d in decisions if d.admitted],
        "rejected": [
            {"entry_id": d.entry_id, "reason": d.reason} for d in decisions if not d.admitted
        ],
    }


LOBBY = shapes.schema(shapes.LobbyJSON)
DECISIONS = inline_serializer(
    "LobbyDecisions",
    {
        "admitted": serializers.ListField(child=serializers.CharField()),
        "rejected": serializers.ListField(child=serializers.DictField()),
    },
)


class WaitingListView(HostView):
    """Who waits in the room's lobby, first come first."""

    @extend_schema(operation_id="host_waiting_list", responses=LOBBY)
    def get(self, request: Request, room_id: str) -> Response:
        return Response(lobby_payload(self.host_room(request, room_id)))


class AdmitView(HostView):
    """Let one waiting guest in (its access is checked again first)."""

    @extend_schema(operation_id="host_admit", request=None, responses=DECISIONS)
    def post(self, request: Request, room_id: str, entry_id: str) -> Response:
        room = self.host_room(request, room_id)
        return Response(_decisions(lobby.admit(room=room, entry_id=entry_id)))


class RejectView(HostView):
    """Turn one waiting guest away."""

    @extend_schema(operation_id="host_reject", request=None, responses=DECISIONS)
    def post(self, request: Request, room_id: str, entry_id: str) -> Response:
        room = self.host_room(request, room_id)
        return Response(_decisions(lobby.reject(room=room, entry_id=entry_id)))


class AdmitAllView(HostView):
    """Let everyone waiting in (each checked against the access policy again)."""

    @extend_schema(operation_id="host_admit_all", request=None, responses=DECISIONS)
    def post(self, request: Request, room_id: str) -> Response:
        room = self.host_room(request, room_id)
        return Response(_decisions(lobby.admit(room=room)))


class RejectAllView(HostView):
    """Turn everyone waiting away."""

    @extend_schema(operation_id="host_reject_all", request=None, responses=DECISIONS)
    def post(self, request: Request, room_id: str) -> Response:
        room = self.host_room(request, room_id)
        return Response(_decisions(lobby.reject(room=room)))


COUNT = inline_serializer("HostActionCount", {"muted": serializers.IntegerField()})


class MuteAllView(HostView):
    """Mute every microphone but the hosts' (needs host_controls.mute_all)."""

    @extend_schema(operation_id="host_mute_all", request=None, responses=COUNT)
    def post(self, request: Request, room_id: str) -> Response:
        room = self.host_room(request, room_id)
        return Response({"muted": moderation.mute_all(room=room)})


class DisableVideoView(HostView):
    """Turn off every camera but the hosts' (needs host_controls.disable_video)."""

    @extend_schema(operation_id="host_disable_video", request=None, responses=COUNT)
    def post(self, request: Request, room_id: str) -> Response:
        room = self.host_room(request, room_id)
        return Response({"muted": moderation.disable_video(room=room)})


class EndRoomView(HostView):
    """End the room for everyone and close its waiting room (as v1 /stop does)."""

    @extend_schema(operation_id="host_end_room", request=None, responses=RoomOutputSerializer)
    def post(self, request: Request, room_id: str) -> Response:
        room = moderation.end_room(room=self.host_room(request, room_id))
        return self.room_response(request, room)


class StartRoomView(HostView):
    """Open the room now (a scheduled room started early by its host)."""

    @extend_schema(operation_id="host_start_room", request=None, responses=RoomOutputSerializer)
    def post(self, request: Request, room_id: str) -> Response:
        room = moderation.start_room(room=self.host_room(request, room_id))
        return self.room_response(request, room)


# --- removing a participant -----------------------------------------------------------------


def _removed(identity: str, participant: Participant | None) -> shapes.StageParticipantJSON:
    if participant is not None:
        return shapes.stage_participant_json(participant)
    # Someone LiveKit had in the room without a token from Parley: nothing stored about them.
    return {
        "identity": identity,
        "name": "",
        "role": "",
        "mic_only": False,
        "hand_raised": False,
        "hand_raised_at": None,
        "invited": False,
        "present": False,
    }


BOOLEAN_WORDS = {"true": True, "1": True, "false": False, "0": False}
BAN_PARAMETER = OpenApiParameter(
    "ban",
    bool,
    description="Also ban: the guest may not ask to join again until the live session ends",
)


class RemoveParticipantView(HostView):
    """Disconnect a participant and clear their stage state. Hosts need
    host_controls.kick_participants; the tenant's API key does not."""

    def remove(self, request: Request, room_id: str, identity: str) -> Participant | None:
        room = self.host_room(request, room_id)
        ban = self.ban(request)
        return moderation.remove_participant(
            room=room, identity=identity, by_tenant=self.by_tenant(request), ban=ban
        )

    def ban(self, request: Request) -> bool:
        """`{"ban": true}` in the body, or `?ban=true` (DELETE has no body)."""
        raw = request.query_params.get("ban")
        if raw is not None:
            if raw.lower() not in BOOLEAN_WORDS:
                raise ApiError("'ban' must be true or false", field="ban")
            return BOOLEAN_WORDS[raw.lower()]
        if request.method != "POST" or request.content_type.split(";")[0] != "application/json":
            return False  # removal never needed a body: other bodies are ignored, as before
        serializer = RemoveInput(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        return bool(serializer.validated_data.get("ban", False))

    @extend_schema(
        operation_id="host_stage_remove",
        request=RemoveInput,
        parameters=[BAN_PARAMETER],
        responses=StageParticipantSerializer,
    )
    def post(self, request: Request, room_id: str, identity: str) -> Response:
        return Response(_removed(identity, self.remove(request, room_id, identity)))


class ParticipantView(RemoveParticipantView):
    """One participant's stored role and stage state; DELETE removes them from the room."""

    http_method_names = ["get", "delete", "options"]

    @extend_schema(operation_id="get_stage_participant", responses=StageParticipantSerializer)
    def get(self, request: Request, room_id: str, identity: str) -> Response:
        room = self.host_room(request, room_id)
        participant = selectors.stored_participant(room=room, identity=identity)
        if participant is None:
            raise NotFound("No such participant in this room", code="PARTICIPANT_NOT_FOUND")
        return self.done(participant)

    @extend_schema(
        operation_id="remove_participant",
        request=None,
        parameters=[BAN_PARAMETER],
        responses=StageParticipantSerializer,
    )
    def delete(self, request: Request, room_id: str, identity: str) -> Response:
        return self.post(request, room_id, identity)


class HostRemoveView(RemoveParticipantView):
    """The host panel's removal: answers `{"removed": identity}`."""

    @extend_schema(
        operation_id="host_remove_participant",
        request=RemoveInput,
        parameters=[BAN_PARAMETER],
        responses=inline_serializer("Removed", {"removed": serializers.CharField()}),
    )
    def post(self, request: Request, room_id: str, identity: str) -> Response:
        self.remove(request, room_id, identity)
        return Response({"removed": identity})


# --- the stage (webinar rooms): hands, invitations, promotion -------------------------------
# One view per operation; each is routed under /participants/{identity}/ and, as an alias,
# under /host/stage/{identity}/.

STAGE = shapes.schema(shapes.StageJSON)


class StageLineupView(HostView):
    """Raised hands (first raised first), speakers and open invitations."""

    @extend_schema(operation_id="host_stage", responses=STAGE)
    def get(self, request: Request, room_id: str) -> Response:
        return Response(stage_payload(self.host_room(request, room_id)))


class LowerAllHandsView(HostView):
    """Lower every raised hand."""

    @extend_schema(
        operation_id="lower_all_hands",
        request=None,
        responses=inline_serializer("Lowered", {"lowered": serializers.IntegerField()}),
    )
    def post(self, request: Request, room_id: str) -> Response:
        room = self.host_room(request, room_id)
        return Response({"lowered": stage.lower_all_hands(room=room)})


class InviteView(HostView):
    """Invite an audience member on stage (optionally microphone only); they accept or
    decline on their page, and a decline is told over the host socket."""

    @extend_schema(
        operation_id="invite_to_stage", request=MicOnlyInput, responses=StageParticipantSerializer
    )
    def post(self, request: Request, room_id: str, identity: str) -> Response:
        room = self.host_room(request, room_id)
        mic_only = self.mic_only(request)
        return self.done(stage.invite(room=room, identity=identity, mic_only=mic_only))


class PromoteView(HostView):
    """Bring a participant on stage now: camera and microphone as the room allows, or the
    microphone only. 409 SPEAKER_LIMIT_REACHED past the room's max_speakers."""

    @extend_schema(
        operation_id="promote_participant",
        request=MicOnlyInput,
        responses=StageParticipantSerializer,
    )
    def post(self, request: Request, room_id: str, identity: str) -> Response:
        room = self.host_room(request, room_id)
        mic_only = self.mic_only(request)
        return self.done(stage.promote(room=room, identity=identity, mic_only=mic_only))


class DemoteView(HostView):
    """Back to the audience (LiveKit unpublishes their tracks)."""

    @extend_schema(
        operation_id="demote_participant", request=None, responses=StageParticipantSerializer
    )
    def post(self, request: Request, room_id: str, identity: str) -> Response:
        room = self.host_room(request, room_id)
        return self.done(stage.demote(room=room, identity=identity))
