"""v1 stage endpoints under /api/v1/rooms/{room_id}/participants/...: hands, invitations,
promotion, demotion and removal. Translate only; conferences.services.stage does the work."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from conferences.models import Participant
from conferences.services import stage

from ..fields import StrictBooleanField, format_datetime
from .serializers import StrictSerializer, _field
from .views import V1View


def participant_to_dict(participant: Participant) -> dict[str, Any]:
    return {
        "identity": participant.identity,
        "name": participant.name,
        "role": participant.role,
        "mic_only": participant.mic_only,
        "hand_raised": participant.hand_raised_at is not None,
        "hand_raised_at": format_datetime(participant.hand_raised_at),
        "invited": participant.invited_at is not None,
        "present": participant.left_at is None,
    }


def own_stage_state(participant: Participant) -> dict[str, Any]:
    """A guest's own stage state, as its page receives it (stage endpoints and socket)."""
    return {
        "identity": participant.identity,
        "role": participant.role,
        "mic_only": participant.mic_only,
        "hand_raised": participant.hand_raised_at is not None,
        "hand_raised_at": format_datetime(participant.hand_raised_at),
        "invited": participant.invited_at is not None,
        "invite_mic_only": participant.invite_mic_only,
    }


class StageParticipantSerializer(serializers.Serializer):
    identity = serializers.CharField()
    name = serializers.CharField()
    role = serializers.CharField()
    mic_only = serializers.BooleanField()
    hand_raised = serializers.BooleanField()
    hand_raised_at = serializers.DateTimeField(allow_null=True)
    invited = serializers.BooleanField()
    present = serializers.BooleanField()


class HandInput(StrictSerializer):
    raised = _field(StrictBooleanField, "raised")


class MicOnlyInput(StrictSerializer):
    mic_only = _field(StrictBooleanField, "mic_only", required=False)


class StageView(V1View):
    def body(self, request: Request, serializer_class: type[serializers.Serializer]):
        serializer = serializer_class(data=self.json_body(request) or {})
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def done(self, participant: Participant) -> Response:
        return Response(participant_to_dict(participant))


class HandQueueView(StageView):
    """Raised hands, first raised first, with how long each has waited."""

    @extend_schema(
        operation_id="list_raised_hands",
        responses=inline_serializer(
            "HandQueue",
            {
                "hands": inline_serializer(
                    "Hand",
                    {
                        "identity": serializers.CharField(),
                        "name": serializers.CharField(),
                        "raised_at": serializers.DateTimeField(),
                        "waiting_seconds": serializers.IntegerField(),
                        "position": serializers.IntegerField(),
                    },
                    many=True,
                )
            },
        ),
    )
    def get(self, request: Request, room_id: str) -> Response:
        room = self.get_room(request, room_id)
        now = timezone.now()
        return Response(
            {
                "hands": [
                    {
                        "identity": h.identity,
                        "name": h.name,
                        "raised_at": format_datetime(h.raised_at),
                        "waiting_seconds": int((now - h.raised_at).total_seconds()),
                        "position": h.position,
                    }
                    for h in stage.hand_queue(room=room)
                ]
            }
        )


class LowerAllHandsView(StageView):
    """Lower every raised hand."""

    @extend_schema(
        operation_id="lower_all_hands",
        request=None,
        responses=inline_serializer("Lowered", {"lowered": serializers.IntegerField()}),
    )
    def post(self, request: Request, room_id: str) -> Response:
        room = self.get_room(request, room_id)
        return Response({"lowered": stage.lower_all_hands(room=room)})


class ParticipantStageView(StageView):
    """One participant's stored role and stage state; DELETE removes them from the room."""

    @extend_schema(operation_id="get_stage_participant", responses=StageParticipantSerializer)
    def get(self, request: Request, room_id: str, identity: str) -> Response:
        room = self.get_room(request, room_id)
        participant = Participant.objects.filter(room=room, identity=identity).first()
        if participant is None:
            raise stage.NotFound("No such participant in this room", code="PARTICIPANT_NOT_FOUND")
        return self.done(participant)

    @extend_schema(operation_id="remove_participant", responses=StageParticipantSerializer)
    def delete(self, request: Request, room_id: str, identity: str) -> Response:
        room = self.get_room(request, room_id)
        return self.done(stage.remove(room=room, identity=identity))


class HandView(StageView):
    """Raise or lower this participant's hand."""

    @extend_schema(operation_id="set_hand", request=HandInput, responses=StageParticipantSerializer)
    def post(self, request: Request, room_id: str, identity: str) -> Response:
        room = self.get_room(request, room_id)
        data = self.body(request, HandInput)
        return self.done(stage.set_hand(room=room, identity=identity, raised=data["raised"]))


class InviteView(StageView):
    """Invite an audience member on stage; they accept or decline."""

    @extend_schema(
        operation_id="invite_to_stage", request=MicOnlyInput, responses=StageParticipantSerializer
    )
    def post(self, request: Request, room_id: str, identity: str) -> Response:
        room = self.get_room(request, room_id)
        data = self.body(request, MicOnlyInput)
        return self.done(
            stage.invite(room=room, identity=identity, mic_only=data.get("mic_only", False))
        )


class InviteAnswerView(StageView):
    """Accept (promoted live) or decline (the host is told) an invitation."""

    accept = True

    @extend_schema(request=None, responses=StageParticipantSerializer)
    def post(self, request: Request, room_id: str, identity: str) -> Response:
        room = self.get_room(request, room_id)
        return self.done(stage.respond_to_invite(room=room, identity=identity, accept=self.accept))


class AcceptInviteView(InviteAnswerView):
    accept = True


class DeclineInviteView(InviteAnswerView):
    accept = False


class PromoteView(StageView):
    """Bring a participant on stage now (optionally microphone only)."""

    @extend_schema(
        operation_id="promote_participant",
        request=MicOnlyInput,
        responses=StageParticipantSerializer,
    )
    def post(self, request: Request, room_id: str, identity: str) -> Response:
        room = self.get_room(request, room_id)
        data = self.body(request, MicOnlyInput)
        return self.done(
            stage.promote(room=room, identity=identity, mic_only=data.get("mic_only", False))
        )


class DemoteView(StageView):
    """Back to the audience; LiveKit unpublishes their tracks."""

    @extend_schema(
        operation_id="demote_participant", request=None, responses=StageParticipantSerializer
    )
    def post(self, request: Request, room_id: str, identity: str) -> Response:
        room = self.get_room(request, room_id)
        return self.done(stage.demote(room=room, identity=identity))
