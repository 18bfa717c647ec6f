"""v1 stage endpoints under /api/v1/rooms/{room_id}/participants/...: the hand queue, one
participant's stage state, hands and invitation answers on a participant's behalf (API key).
The host's stage actions (invite, promote, demote, remove, lower all) are in `host.py`, one
view each, reached from here and from /host/stage/ alike. Translate only."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from conferences import shapes
from conferences.models import Participant
from conferences.services import stage

from ..fields import StrictBooleanField
from .serializers import StrictSerializer, _field
from .views import V1View

StageParticipantSerializer = shapes.schema(shapes.StageParticipantJSON)


def participant_to_dict(participant: Participant) -> shapes.StageParticipantJSON:
    """Kept for callers written before conferences.shapes."""
    return shapes.stage_participant_json(participant)


class HandInput(StrictSerializer):
    raised = _field(StrictBooleanField, "raised")


class MicOnlyInput(StrictSerializer):
    mic_only = _field(StrictBooleanField, "mic_only", required=False)


class RemoveInput(StrictSerializer):
    """`ban`: the removed guest may not ask to join again until the live session ends."""

    ban = _field(StrictBooleanField, "ban", required=False)


class StageView(V1View):
    def done(self, participant: Participant) -> Response:
        return Response(shapes.stage_participant_json(participant))


class HandQueueView(StageView):
    """Raised hands, first raised first, with how long each has waited."""

    @extend_schema(operation_id="list_raised_hands", responses=shapes.schema(shapes.HandQueueJSON))
    def get(self, request: Request, room_id: str) -> Response:
        return Response(shapes.hand_queue_json(self.get_room(request, room_id)))


class HandView(StageView):
    """Raise or lower this participant's hand."""

    @extend_schema(operation_id="set_hand", request=HandInput, responses=StageParticipantSerializer)
    def post(self, request: Request, room_id: str, identity: str) -> Response:
        room = self.get_room(request, room_id)
        serializer = HandInput(data=self.json_body(request) or {})
        serializer.is_valid(raise_exception=True)
        raised = serializer.validated_data["raised"]
        return self.done(stage.set_hand(room=room, identity=identity, raised=raised))


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
