"""Direct calls: the videochat handshake (`/ws/videochat`, reference
`videochat-handshake-ws.txt`).

A tenant's server vouches for its end users (`vouch_user`, `POST /api/v1/call-tokens`); their
sockets ring each other through these functions, the only writers of CallUser, CallSocket,
Call, CallMember and CallRequest. A call is backed by an ordinary Parley room of the tenant,
created when the call is answered through `rooms.create_room` and joined with tokens from
`rooms.issue_token` (the one grants function); it is hidden from room lists and from the join
pages. All state is in the database; sockets are told through the channel layer on commit
(per-user groups `videochat-user.<pk>`, and the asking socket's own channel), so any number of
web processes behave as one.

Domain events (`emit_on_commit`, so also outbound webhooks): `call.requested`,
`call.invited`, `call.accepted`, `call.merged`, `call.declined`, `call.cancelled`,
`call.missed`, `call.ended`. Their `room_id` is the call's room once it has one, else "".
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass
from typing import Any, TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from accounts import crypto
from accounts.models import Tenant
from conferences import events
from conferences.models import (
    Call,
    CallMember,
    CallRequest,
    CallSocket,
    CallUser,
    Participant,
    Room,
)
from conferences.roles import HOST_ROLES, Role, grants_for

from . import rooms as room_services
from .errors import LimitExceeded, ServiceError, Unavailable

logger = logging.getLogger(__name__)

TOKEN_SALT = "parley.videochat.call-token"
SECRET_PURPOSE = "videochat-e2ee"
MAX_LISTED_PARTICIPANTS = 10  # the reference: participants (max 10)

# Error codes of the handshake's error object. 1021 and 10011 are the reference's own.
INVALID_FRAME = 1000
UNKNOWN_TYPE = 1001
INVALID_DATA = 1002
NOT_AUTHENTICATED = 1003
INVALID_TOKEN = 1004
RATE_LIMITED = 1005
REQUEST_NOT_FOUND = 1010
NOT_ALLOWED = 1011
REQUEST_CLOSED = 1012
VIDEOCHAT_NOT_FOUND = 1013
CANNOT_CALL_SELF = 1014
PLAN_LIMIT = 1015
MEDIA_UNAVAILABLE = 1016
INTERNAL_ERROR = 1017
USER_NOT_FOUND = 1021
USER_NOT_AVAILABLE = 10011


class CallError(Exception):
    """A refusal the socket answers with `{"status": true, "code", "message"}`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Avatar3D(TypedDict, total=False):
    assetId: str
    assetSkins: dict[str, str]
    avatarUrl: str
    avatarUserId: str


class UserSimple(TypedDict, total=False):
    id: str
    firstName: str
    lastName: str
    privacyMode: int
    avatar: str
    avatar3D: Avatar3D
    companyName: str
    companyTitle: str


def _usable(value: Any, max_length: int) -> bool:
    """A non-empty string the database can hold (PostgreSQL refuses NUL) of sane length."""
    return isinstance(value, str) and 0 < len(value) <= max_length and "\x00" not in value


def user_group(user_pk: int) -> str:
    """Every open socket of one end user (phone, laptop, tabs)."""
    return f"videochat-user.{user_pk}"


def ring_seconds() -> int:
    return int(getattr(settings, "VIDEOCHAT_RING_SECONDS", 45))


def _presence_window() -> dt.timedelta:
    return dt.timedelta(seconds=int(getattr(settings, "VIDEOCHAT_PRESENCE_SECONDS", 150)))


def simple(user: CallUser) -> UserSimple:
    """The reference's user simple structure (avatar3D omitted when empty)."""
    p = user.profile
    out: UserSimple = {
        "id": user.external_id,
        "firstName": p.get("firstName", ""),
        "lastName": p.get("lastName", ""),
        "privacyMode": int(p.get("privacyMode", 0)),
        "avatar": p.get("avatar", ""),
        "companyName": p.get("companyName", ""),
        "companyTitle": p.get("companyTitle", ""),
    }
    if p.get("avatar3D"):
        out["avatar3D"] = p["avatar3D"]
    return out


def display_name(user: CallUser) -> str:
    p = user.profile
    name = f"{p.get('firstName', '')} {p.get('lastName', '')}".strip()
    return (name or user.external_id)[:100]


# --- call tokens --------------------------------------------------------------------------


@dataclass(frozen=True)
class CallToken:
    token: str
    expires_at: dt.datetime
    user: CallUser


@transaction.atomic
def vouch_user(*, tenant: Tenant, profile: UserSimple, ttl_seconds: int) -> CallToken:
    """Store (or refresh) the tenant's end user `profile["id"]` and sign a token for it.

    The token is signed (HMAC with SECRET_KEY, its own salt), names the tenant and the user's
    row, and carries its expiry: nothing secret is stored, so there is nothing to hash."""
    external_id = profile["id"]
    stored = {k: v for k, v in profile.items() if k != "id"}
    user, created = CallUser.objects.get_or_create(
        tenant=tenant, external_id=external_id, defaults={"profile": stored}
    )
    if not created and user.profile != stored:
        user.profile = stored
        user.save(update_fields=["profile", "updated_at"])
    expires_at = timezone.now().replace(microsecond=0) + dt.timedelta(seconds=ttl_seconds)
    token = signing.dumps(
        {"t": tenant.pk, "u": user.pk, "x": int(expires_at.timestamp())}, salt=TOKEN_SALT
    )
    return CallToken(token=token, expires_at=expires_at, user=user)


def user_for_token(*, token: str) -> CallUser | None:
    """The end user a valid, unexpired call token names (with its tenant), else None."""
    if not isinstance(token, str) or not token or len(token) > 1000:
        return None
    try:
        claims = signing.loads(token, salt=TOKEN_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(claims, dict):
        return None
    try:
        tenant_pk, user_pk, expires = int(claims["t"]), int(claims["u"]), int(claims["x"])
    except (KeyError, TypeError, ValueError):
        return None
    if expires <= timezone.now().timestamp():
        return None
    return CallUser.objects.select_related("tenant").filter(pk=user_pk, tenant_id=tenant_pk).first()


# --- sockets (presence) -------------------------------------------------------------------


def socket_opened(*, user_pk: int, channel_name: str) -> None:
    """One INSERT: a channel name is unique to its socket (and authenticates once)."""
    CallSocket.objects.create(channel_name=channel_name, user_id=user_pk, seen_at=timezone.now())


def sockets_seen(*, channel_names: list[str]) -> None:
    """Heartbeat of one process's live sockets (a row not seen within the presence window no
    longer counts): one UPDATE per 500 sockets, not one per socket."""
    now = timezone.now()
    for start in range(0, len(channel_names), 500):
        CallSocket.objects.filter(channel_name__in=channel_names[start : start + 500]).update(
            seen_at=now
        )


@transaction.atomic
def socket_closed(*, channel_name: str) -> int:
    """Forget the socket, and cancel the requests it made that are still ringing (a caller
    who hangs up before an answer). Returns how many were cancelled."""
    CallSocket.objects.filter(channel_name=channel_name).delete()
    cancelled = 0
    for request in CallRequest.objects.select_related("call", "caller", "target").filter(
        origin_channel=channel_name, status=CallRequest.Status.RINGING
    ):
        if _close_request(request, CallRequest.Status.CANCELLED, "cancelled"):
            cancelled += 1
    return cancelled


def _online(user: CallUser, now: dt.datetime) -> bool:
    return CallSocket.objects.filter(user=user, seen_at__gte=now - _presence_window()).exists()


# --- notifications ------------------------------------------------------------------------


def _deliver_on_commit(target: str, message: dict[str, Any], *, channel: bool = False) -> None:
    """Send `message` to a group (or one socket's channel) once the transaction commits."""

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            if channel:
                async_to_sync(layer.send)(target, message)
            else:
                async_to_sync(layer.group_send)(target, message)
        except Exception:  # the write happened; a lost notice must not undo it
            logger.exception("Could not notify %s", target)

    transaction.on_commit(send)


def _event_to_user(
    user_pk: int, event: str, data: dict[str, Any], *, except_channel: str = ""
) -> None:
    _deliver_on_commit(
        user_group(user_pk),
        {"type": "videochat.event", "event": event, "data": data, "except": except_channel},
    )


def _emit(event: str, call: Call, **data: Any) -> None:
    events.emit_on_commit(
        event,
        tenant_id=call.tenant_id,
        room_id=call.room.room_id if call.room_id and call.room else "",
        data={"call_id": call.call_id, **data},
    )


# --- ringing ------------------------------------------------------------------------------


def _target(tenant_id: int, caller: CallUser, target_id: Any, now: dt.datetime) -> CallUser:
    """The tenant's user `target_id`, locked, if it can be rung now (1021 / 10011)."""
    if not _usable(target_id, 128):
        raise CallError(USER_NOT_FOUND, "User not found")
    target = (
        CallUser.objects.select_for_update(of=("self",))
        .filter(tenant_id=tenant_id, external_id=target_id)
        .first()
    )
    if target is None:
        raise CallError(USER_NOT_FOUND, "User not found")
    if target.pk == caller.pk:
        raise CallError(CANNOT_CALL_SELF, "You cannot call yourself")
    if int(target.profile.get("privacyMode", 0)) == 1 or not _online(target, now):
        raise CallError(USER_NOT_AVAILABLE, "User is not available")
    ringing = CallRequest.objects.filter(
        target=target, status=CallRequest.Status.RINGING, expires_at__gt=now
    )
    if ringing.exists():
        raise CallError(USER_NOT_AVAILABLE, "User is not available")
    return target


def _present_members(call: Call) -> list[CallMember]:
    return list(
        CallMember.objects.filter(call=call, left_at__isnull=True)
        .select_related("user")
        .order_by("joined_at", "pk")
    )


def _ring(request: CallRequest) -> None:
    """Every socket of the target hears `videochatRequested`."""
    members = _present_members(request.call)
    _event_to_user(
        request.target_id,
        "videochat:videochatRequested",
        {
            "videochatRequestId": request.request_id,
            "user": simple(request.caller),
            "participants": [simple(m.user) for m in members[:MAX_LISTED_PARTICIPANTS]],
            "counter": len(members),
        },
    )


def _fresh_user(caller: CallUser) -> CallUser:
    """The caller as stored now. Not locked: only the target's row is, so two users calling
    each other at the same moment cannot deadlock."""
    user = CallUser.objects.filter(pk=caller.pk).first()
    if user is None:
        raise CallError(NOT_AUTHENTICATED, "Unknown user; connect with a new call token")
    return user


@transaction.atomic
def request_direct(*, caller: CallUser, target_id: Any, channel_name: str) -> CallRequest:
    """Ring `target_id` for a new call: the request and its call (ringing) are stored, the
    caller is the call's owner, and the target's sockets ring."""
    now = timezone.now()
    caller = _fresh_user(caller)
    target = _target(caller.tenant_id, caller, target_id, now)
    call = Call.objects.create(
        tenant_id=caller.tenant_id,
        caller=caller,
        callee=target,
        shared_secret=crypto.encrypt(secrets.token_urlsafe(32), purpose=SECRET_PURPOSE),
    )
    CallMember.objects.create(call=call, user=caller, role=Role.OWNER, joined_at=now)
    request = CallRequest.objects.create(
        tenant_id=caller.tenant_id,
        call=call,
        caller=caller,
        target=target,
        kind=CallRequest.Kind.DIRECT,
        origin_channel=channel_name,
        expires_at=now + dt.timedelta(seconds=ring_seconds()),
    )
    _ring(request)
    _emit("call.requested", call, caller=caller.external_id, callee=target.external_id)
    return request


def _member_call(user: CallUser, call_id: Any) -> Call:
    """A running call of the user's tenant that the user is in (1013 otherwise)."""
    if not _usable(call_id, 40):
        raise CallError(VIDEOCHAT_NOT_FOUND, "Videochat not found")
    call = (
        Call.objects.select_for_update(of=("self",))
        .select_related("room", "tenant")
        .filter(tenant_id=user.tenant_id, call_id=call_id, status=Call.Status.ACTIVE)
        .first()
    )
    if (
        call is None
        or call.room is None
        or not CallMember.objects.filter(call=call, user=user, left_at__isnull=True).exists()
    ):
        raise CallError(VIDEOCHAT_NOT_FOUND, "Videochat not found")
    return call


@transaction.atomic
def invite(*, caller: CallUser, target_id: Any, call_id: Any, channel_name: str) -> CallRequest:
    """A participant of a running call rings a third user into it."""
    now = timezone.now()
    caller = _fresh_user(caller)
    call = _member_call(caller, call_id)
    target = _target(caller.tenant_id, caller, target_id, now)
    if CallMember.objects.filter(call=call, user=target, left_at__isnull=True).exists():
        raise CallError(USER_NOT_AVAILABLE, "User is already in this videochat")
    request = CallRequest.objects.create(
        tenant_id=caller.tenant_id,
        call=call,
        caller=caller,
        target=target,
        kind=CallRequest.Kind.INVITE,
        origin_channel=channel_name,
        expires_at=now + dt.timedelta(seconds=ring_seconds()),
    )
    _ring(request)
    _emit("call.invited", call, caller=caller.external_id, invitee=target.external_id)
    return request


# --- answering ----------------------------------------------------------------------------


class Permissions(TypedDict):
    isModerator: bool
    isOwner: bool
    isPanelist: bool
    isPresenter: bool
    isCoPresenter: bool
    isPromoted: bool
    isParticipant: bool
    isListener: bool


def permissions_for(role: str, room: Room) -> Permissions:
    """The reference's permission flags, from Parley's role vocabulary and the grants the
    role has in the room (owner > host (panelist) > speaker > participant > viewer)."""
    publishes = grants_for(role, room).can_publish
    return {
        "isModerator": role in HOST_ROLES,
        "isOwner": role == Role.OWNER,
        "isPanelist": role == Role.HOST,
        "isPresenter": False,
        "isCoPresenter": False,
        "isPromoted": publishes,
        "isParticipant": role != Role.VIEWER,
        "isListener": not publishes,
    }


def _payload(call: Call, user: CallUser, role: str) -> dict[str, Any]:
    """The full join payload for one user: a LiveKit token from the one grants function."""
    assert call.room is not None
    try:
        issued = room_services.issue_token(
            room=call.room, name=display_name(user), identity=user.external_id, role=role
        )
    except Unavailable:
        raise CallError(MEDIA_UNAVAILABLE, "The media server is unavailable; try again") from None
    except LimitExceeded as exc:
        raise CallError(PLAN_LIMIT, exc.message) from None
    except ServiceError as exc:
        raise CallError(VIDEOCHAT_NOT_FOUND, exc.message) from None
    return {
        "videochatId": call.call_id,
        "videochatMode": call.mode,
        "videochatEngine": "livekit",
        "videochatAppId": "",
        "videochatUrl": issued.ws_url,
        "room": issued.room_name,
        "identity": issued.identity,
        "uid": user.pk,
        "token": issued.token,
        "sharedSecret": crypto.decrypt(call.shared_secret, purpose=SECRET_PURPOSE),
        "user": simple(user),
        "permissions": permissions_for(role, call.room),
    }


def _ringing_request(user: CallUser, request_id: Any, now: dt.datetime) -> CallRequest:
    """The tenant's request `request_id`, locked; 1010 if unknown, 1012 if decided."""
    if not _usable(request_id, 40):
        raise CallError(REQUEST_NOT_FOUND, "Videochat request not found")
    request = (
        CallRequest.objects.select_for_update(of=("self",))
        .select_related("call", "caller", "target")
        .filter(tenant_id=user.tenant_id, request_id=request_id)
        .first()
    )
    if request is None or user.pk not in (request.caller_id, request.target_id):
        raise CallError(REQUEST_NOT_FOUND, "Videochat request not found")
    if request.status == CallRequest.Status.RINGING and request.expires_at <= now:
        # Not answered in time; the expiry sweep (any worker) tells both sides.
        raise CallError(REQUEST_CLOSED, "Videochat request is expired")
    if request.status != CallRequest.Status.RINGING:
        raise CallError(REQUEST_CLOSED, f"Videochat request is {request.status}")
    return request


def _open_room(call: Call) -> None:
    """The call's Parley room, through the one create service (no LiveKit call yet)."""
    name = f"Call: {display_name(call.caller)} → {display_name(call.callee or call.caller)}"
    call.room = room_services.create_room(
        tenant=call.tenant,
        data={"name": name[:100], "room_type": Room.RoomType.TEMPORARY},
    )


def _add_member(call: Call, user: CallUser, role: str, now: dt.datetime) -> None:
    CallMember.objects.update_or_create(
        call=call, user=user, defaults={"role": role, "joined_at": now, "left_at": None}
    )
    if CallMember.objects.filter(call=call, left_at__isnull=True).count() > 2:
        call.mode = Call.Mode.CONFERENCE


@transaction.atomic
def accept(*, user: CallUser, request_id: Any, channel_name: str) -> dict[str, Any]:
    """The callee answers: the call goes active (its room is created on the first answer),
    the callee joins it and gets its payload; the caller's asking socket is told to fetch its
    own (`directVideochatRequestAccepted`) and the callee's other sockets stop ringing."""
    now = timezone.now()
    request = _ringing_request(user, request_id, now)
    if request.target_id != user.pk:
        raise CallError(NOT_ALLOWED, "Only the called user may accept this videochat request")
    call = (
        Call.objects.select_for_update(of=("self",))
        .select_related("tenant", "caller", "callee")
        .get(pk=request.call_id)
    )
    if request.kind == CallRequest.Kind.INVITE and call.status != Call.Status.ACTIVE:
        raise CallError(REQUEST_CLOSED, "The videochat has ended")
    if call.room is None:
        _open_room(call)
    if call.status == Call.Status.RINGING:
        call.status, call.answered_at = Call.Status.ACTIVE, now
    _add_member(call, request.target, Role.PARTICIPANT, now)
    call.save()
    payload = _payload(call, request.target, Role.PARTICIPANT)  # LiveKit failure: rollback
    CallRequest.objects.filter(pk=request.pk).update(
        status=CallRequest.Status.ACCEPTED, decided_at=now
    )
    done = {"videochatRequestId": request.request_id}
    _event_to_user(user.pk, "videochat:videochatAccepted", done, except_channel=channel_name)
    if request.kind == CallRequest.Kind.DIRECT:
        _deliver_on_commit(
            request.origin_channel,
            {"type": "videochat.joined", "call_id": call.call_id, "request_id": done},
            channel=True,
        )
    _emit(
        "call.accepted",
        call,
        request_id=request.request_id,
        user=user.external_id,
        kind=request.kind,
        mode=call.mode,
    )
    return payload


def join_payload(*, user: CallUser, call_id: str) -> dict[str, Any]:
    """The payload of a user who is in a running call (the caller's, after an answer)."""
    with transaction.atomic():
        call = _member_call(user, call_id)
        member = CallMember.objects.get(call=call, user=user)
        return _payload(call, user, member.role)


@transaction.atomic
def merge(*, user: CallUser, call_id: Any, request_id: Any) -> None:
    """`user`, in the running call `call_id`, takes its incoming direct request's caller into
    that call instead of starting a new one."""
    now = timezone.now()
    call = _member_call(user, call_id)
    request = _ringing_request(user, request_id, now)
    if request.target_id != user.pk or request.kind != CallRequest.Kind.DIRECT:
        raise CallError(NOT_ALLOWED, "Only an incoming direct request can be merged")
    _add_member(call, request.caller, Role.PARTICIPANT, now)
    call.save(update_fields=["mode"])
    CallRequest.objects.filter(pk=request.pk).update(
        status=CallRequest.Status.MERGED, decided_at=now, reason="merged"
    )
    Call.objects.filter(pk=request.call_id, status=Call.Status.RINGING).update(
        status=Call.Status.MERGED, ended_at=now, end_reason="merged", merged_into=call
    )
    CallMember.objects.filter(call_id=request.call_id).update(left_at=now)
    done = {"videochatRequestId": request.request_id}
    _event_to_user(user.pk, "videochat:videochatAccepted", done)
    _deliver_on_commit(
        request.origin_channel,
        {"type": "videochat.joined", "call_id": call.call_id, "request_id": done},
        channel=True,
    )
    _emit(
        "call.merged",
        call,
        request_id=request.request_id,
        merged_call_id=request.call.call_id,
        user=request.caller.external_id,
        mode=call.mode,
    )


@transaction.atomic
def decline(*, user: CallUser, request_id: Any) -> None:
    """Either side says no (the caller's is a cancel): both sides' sockets are told."""
    request = _ringing_request(user, request_id, timezone.now())
    by_caller = user.pk == request.caller_id and user.pk != request.target_id
    if by_caller:
        _close_request(request, CallRequest.Status.CANCELLED, "cancelled")
    else:
        _close_request(request, CallRequest.Status.DECLINED, "declined")


CALL_OUTCOME = {
    CallRequest.Status.DECLINED: (Call.Status.DECLINED, "call.declined"),
    CallRequest.Status.CANCELLED: (Call.Status.CANCELLED, "call.cancelled"),
    CallRequest.Status.EXPIRED: (Call.Status.MISSED, "call.missed"),
}


def _close_request(request: CallRequest, status: str, reason: str) -> bool:
    """Ringing -> `status` exactly once (a conditional UPDATE); both sides hear
    `videochatDeclined` with the reason; a direct call that never started ends with it."""
    now = timezone.now()
    claimed = CallRequest.objects.filter(pk=request.pk, status=CallRequest.Status.RINGING).update(
        status=status, decided_at=now, reason=reason
    )
    if claimed != 1:
        return False
    request.status, request.reason = status, reason
    data = {"videochatRequestId": request.request_id, "reason": reason}
    for pk in {request.caller_id, request.target_id}:
        _event_to_user(pk, "videochat:videochatDeclined", data)
    call_status, event = CALL_OUTCOME[CallRequest.Status(status)]
    call = request.call
    if request.kind == CallRequest.Kind.DIRECT:
        if Call.objects.filter(pk=call.pk, status=Call.Status.RINGING).update(
            status=call_status, ended_at=now, end_reason=reason
        ):
            CallMember.objects.filter(call=call, left_at__isnull=True).update(left_at=now)
    _emit(
        event,
        call,
        request_id=request.request_id,
        kind=request.kind,
        caller=request.caller.external_id,
        callee=request.target.external_id,
        reason=reason,
    )
    return True


def expire_due(*, now: dt.datetime | None = None) -> int:
    """Requests nobody answered in time: each is claimed once (any number of workers may run
    this at once), both sides are told. Returns how many expired."""
    now = now or timezone.now()
    expired = 0
    due = CallRequest.objects.filter(
        status=CallRequest.Status.RINGING, expires_at__lte=now
    ).values_list("pk", flat=True)[:500]
    for pk in list(due):
        with transaction.atomic():
            request = (
                CallRequest.objects.select_related("call", "caller", "target")
                .filter(pk=pk, status=CallRequest.Status.RINGING)
                .first()
            )
            if request is not None and _close_request(
                request, CallRequest.Status.EXPIRED, "expired"
            ):
                expired += 1
    return expired


# --- the end of a call --------------------------------------------------------------------


def member_left_room(*, room: Room, identity: str) -> None:
    """LiveKit says `identity` left the call's room (the room is locked by the caller): it
    leaves the call, and a call with fewer than two people left in the room ends."""
    call = Call.objects.filter(room=room, status=Call.Status.ACTIVE).first()
    if call is None:
        return
    now = timezone.now()
    CallMember.objects.filter(call=call, user__external_id=identity, left_at__isnull=True).update(
        left_at=now
    )
    present = Participant.objects.filter(room=room, left_at__isnull=True).count()
    if present < 2:
        room_services.stop_room(room=room)  # its end of session ends the call (session_ended)


def session_ended(*, room: Room, now: dt.datetime) -> None:
    """The call's room ended (stopped, auto-closed, or closed by LiveKit): the call ends."""
    call = Call.objects.filter(room=room, status=Call.Status.ACTIVE).first()
    if call is None:
        return
    Call.objects.filter(pk=call.pk).update(
        status=Call.Status.ENDED, ended_at=now, end_reason="room ended"
    )
    CallMember.objects.filter(call=call, left_at__isnull=True).update(left_at=now)
    call.room = room
    for request in CallRequest.objects.select_related("call", "caller", "target").filter(
        call=call, status=CallRequest.Status.RINGING
    ):  # invitations into the call stop ringing
        _close_request(request, CallRequest.Status.CANCELLED, "videochat ended")
    duration = int((now - call.answered_at).total_seconds()) if call.answered_at else 0
    _emit("call.ended", call, duration_seconds=duration)


# --- reads (the dashboard) ----------------------------------------------------------------


def calls_for_tenant(tenant: Tenant):  # noqa: ANN201 (a QuerySet of Call)
    """The tenant's calls, newest first, with caller, callee and head count in one query."""
    return (
        Call.objects.filter(tenant=tenant)
        .select_related("caller", "callee", "room")
        .annotate(people=Count("members", filter=Q(members__joined_at__isnull=False)))
        .order_by("-created_at", "-pk")
    )
