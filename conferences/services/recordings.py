"""Recordings and HLS live streams: composite LiveKit egress of a room.

A `Recording` row is one egress (kind `recording`: a file; kind `hls`: a segmented live
stream). Its status only moves forward, starting -> recording -> stopping -> processing ->
ready | failed, driven by what LiveKit reports (the start and stop answers, the
`egress_started|updated|ended` webhooks, and a periodic `ListEgress` reconciliation that
settles anything LiveKit forgot or went silent about). Each transition emits the outbound
events `recording-starting|started|stopping|stopped|failed` (`hls-*` for streams, plus
`hls-playable`) on commit.

Rules enforced here, for every interface alike: the layout and options in Parley's
vocabulary (facades map theirs with the helpers below); a recording needs the room's
`recording_enabled` (403 RECORDING_DISABLED); one recording and one stream at a time per
room (409 RECORDING_IN_PROGRESS / STREAM_IN_PROGRESS); the room must be live (409
ROOM_NOT_LIVE); the plan's monthly recording minutes (403 PLAN_LIMIT_EXCEEDED); LiveKit is
called before anything is written (503, nothing half-written).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import crypto
from accounts.models import Tenant
from conferences import events, livekit, storage
from conferences.models import Recording, RecordingStorage, Room, RoomSession

from .errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    InvalidState,
    LimitExceeded,
    NotFound,
    Unavailable,
)

logger = logging.getLogger(__name__)

STORAGE_PURPOSE = "storage"
DOWNLOAD_SALT = "parley.recording-download"
TEMPLATE_SALT = "parley.recording-template"

# --- vocabularies -----------------------------------------------------------------------------

LAYOUTS = tuple(Room.RecordingLayout.values)  # grid | speaker | single-speaker | grid+chat
QUALITIES = ("low", "med", "high")
ORIENTATIONS = ("landscape", "portrait")
THEMES = ("DARK", "LIGHT", "DEFAULT")
PRIORITIES = ("SPEAKER", "PIN")

# Callaba `record_mode` -> Parley layout.
CALLABA_LAYOUTS = {
    "ROOM_COMPOSITE_GRID": "grid",
    "ROOM_COMPOSITE_SPEAKER": "speaker",
    "ROOM_COMPOSITE_AND_CHAT": "grid+chat",
}
# VideoSDK `layout.type` -> Parley layout.
VIDEOSDK_LAYOUTS = {"GRID": "grid", "SPOTLIGHT": "single-speaker", "SIDEBAR": "speaker"}


def layout_from_callaba(record_mode: str) -> str:
    """Parley's layout for a Callaba record_mode; InvalidInput when unknown."""
    try:
        return CALLABA_LAYOUTS[record_mode]
    except KeyError:
        raise InvalidInput(
            f"record_mode must be one of: {', '.join(CALLABA_LAYOUTS)}", field="record_mode"
        ) from None


def layout_from_videosdk(layout_type: str) -> str:
    """Parley's layout for a VideoSDK layout type; InvalidInput when unknown."""
    try:
        return VIDEOSDK_LAYOUTS[layout_type]
    except KeyError:
        raise InvalidInput(
            f"layout.type must be one of: {', '.join(VIDEOSDK_LAYOUTS)}", field="layout"
        ) from None


def videosdk_options(config: dict[str, Any]) -> dict[str, Any]:
    """VideoSDK's recording/hls config (mode, quality, orientation, layout.priority,
    layout.gridSize, theme, awsDirPath) as Parley recording options."""
    options: dict[str, Any] = {}
    if config.get("mode") == "audio":
        options["audio_only"] = True
    for key in ("quality", "orientation", "theme"):
        if key in config:
            options[key] = config[key]
    layout = config.get("layout") or {}
    if "priority" in layout:
        options["priority"] = layout["priority"]
    if "gridSize" in layout:
        options["grid_size"] = layout["gridSize"]
    if "awsDirPath" in config:
        options["prefix"] = config["awsDirPath"]
    return clean_options(options)


def clean_layout(layout: Any) -> str:
    if layout not in LAYOUTS:
        raise InvalidInput(f"layout must be one of: {', '.join(LAYOUTS)}", field="layout")
    return str(layout)


def clean_options(data: dict[str, Any]) -> dict[str, Any]:
    """Validated recording options (the keys of Room.recording_options); unknown values are
    refused with the field named."""
    out: dict[str, Any] = {}
    if data.get("audio_only") is not None:
        if not isinstance(data["audio_only"], bool):
            raise InvalidInput("audio_only must be a boolean", field="audio_only")
        out["audio_only"] = data["audio_only"]
    choices = {
        "quality": QUALITIES,
        "orientation": ORIENTATIONS,
        "theme": THEMES,
        "priority": PRIORITIES,
    }
    for key, allowed in choices.items():
        if data.get(key) is not None:
            if data[key] not in allowed:
                raise InvalidInput(f"{key} must be one of: {', '.join(allowed)}", field=key)
            out[key] = data[key]
    if data.get("grid_size") is not None:
        size = data["grid_size"]
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 4:
            raise InvalidInput("grid_size must be an integer from 1 to 4", field="grid_size")
        out["grid_size"] = size
    if data.get("prefix"):
        prefix = data["prefix"]
        if not isinstance(prefix, str) or len(prefix) > 200 or ".." in prefix:
            raise InvalidInput(
                "prefix must be a folder path of up to 200 characters", field="prefix"
            )
        out["prefix"] = prefix.strip("/")
    return out


def livekit_layout(layout: str, theme: str = "") -> str:
    """LiveKit's built-in template layout for a Parley layout (light variants on request)."""
    base = {"grid": "grid", "speaker": "speaker", "single-speaker": "single-speaker"}.get(
        layout, "grid"
    )
    return f"{base}-light" if theme == "LIGHT" else base


# --- payloads -----------------------------------------------------------------------------


class RecordingDict(TypedDict):
    recording_id: str
    kind: str
    room_id: str
    status: str
    auto: bool
    layout: str
    audio_only: bool
    quality: str
    orientation: str
    egress_id: str
    started_at: datetime | None
    ended_at: datetime | None
    duration: int | None
    size: int | None
    failure_reason: str
    download_url: str | None
    playlist_url: str | None
    created_at: datetime


def as_dict(recording: Recording, *, base_url: str) -> RecordingDict:
    options = recording.options or {}
    return {
        "recording_id": recording.recording_id,
        "kind": recording.kind,
        "room_id": recording.room_public_id,
        "status": recording.status,
        "auto": recording.auto,
        "layout": recording.layout,
        "audio_only": bool(options.get("audio_only", False)),
        "quality": options.get("quality", "med"),
        "orientation": options.get("orientation", "landscape"),
        "egress_id": recording.egress_id,
        "started_at": recording.started_at,
        "ended_at": recording.ended_at,
        "duration": duration_seconds(recording),
        "size": recording.size_bytes,
        "failure_reason": recording.failure_reason,
        "download_url": download_url(recording, base_url=base_url),
        "playlist_url": playlist_url(recording, base_url=base_url),
        "created_at": recording.created_at,
    }


def duration_seconds(recording: Recording, now: datetime | None = None) -> int | None:
    if recording.duration_seconds is not None:
        return recording.duration_seconds
    if recording.started_at is None:
        return None
    end = recording.ended_at or now or timezone.now()
    return max(0, int((end - recording.started_at).total_seconds()))


def _event_data(recording: Recording) -> dict[str, Any]:
    data: dict[str, Any] = {
        "recording_id": recording.recording_id,
        "kind": recording.kind,
        "status": recording.status,
        "egress_id": recording.egress_id,
    }
    if recording.failure_reason:
        data["reason"] = recording.failure_reason
    if recording.kind == Recording.Kind.HLS:
        data["playlist_url"] = playlist_url(recording, base_url=_base_url())
    return data


_EVENT_OF_STATUS = {
    "starting": "starting",
    "recording": "started",
    "stopping": "stopping",
    "ready": "stopped",
    "failed": "failed",
}
_ORDER = {"starting": 0, "recording": 1, "stopping": 2, "processing": 3, "ready": 4, "failed": 4}


def _emit(recording: Recording, status: str) -> None:
    suffix = _EVENT_OF_STATUS.get(status)
    if suffix is None:
        return
    prefix = "hls" if recording.kind == Recording.Kind.HLS else "recording"
    data = _event_data(recording)
    events.emit_on_commit(
        f"{prefix}-{suffix}",
        tenant_id=recording.tenant_id,
        room_id=recording.room_public_id,
        data=data,
    )
    if recording.kind == Recording.Kind.HLS and suffix == "started":
        events.emit_on_commit(
            "hls-playable",
            tenant_id=recording.tenant_id,
            room_id=recording.room_public_id,
            data=data,
        )


def _move(recording: Recording, status: str, now: datetime, *, reason: str = "") -> bool:
    """Move `recording` forward to `status` (never back, never out of a final state), emit
    its event. The caller saves. True if it moved."""
    if recording.status in Recording.FINAL or _ORDER[status] <= _ORDER[recording.status]:
        return False
    recording.status = status
    recording.egress_seen_at = now
    if status == Recording.Status.RECORDING and recording.started_at is None:
        recording.started_at = now
    if status in Recording.FINAL and recording.ended_at is None:
        recording.ended_at = now
    if status == Recording.Status.FAILED:
        recording.failure_reason = (reason or "Egress failed")[:300]
    _emit(recording, status)
    return True


def _from_ns(value: int) -> datetime | None:
    return dt.datetime.fromtimestamp(value / 1e9, tz=dt.UTC) if value else None


def _apply_state(recording: Recording, state: livekit.EgressState, now: datetime) -> bool:
    """Bring `recording` in line with LiveKit's `state`. True if anything changed."""
    changed = False
    if state.location and recording.kind == Recording.Kind.RECORDING:
        recording.location = state.location[:1000]
        changed = True
    if state.size:
        recording.size_bytes = state.size
    if state.duration_seconds:
        recording.duration_seconds = state.duration_seconds
    if state.status == "active":
        changed |= _move(recording, Recording.Status.RECORDING, now)
        if recording.started_at is not None and state.started_at:
            recording.started_at = _from_ns(state.started_at) or recording.started_at
    elif state.status == "ending":
        changed |= _move(recording, Recording.Status.PROCESSING, now)
    elif state.status == "complete" or (state.status == "limit_reached" and state.location):
        if state.ended_at:
            recording.ended_at = _from_ns(state.ended_at)
        changed |= _move(recording, Recording.Status.READY, now)
    elif state.status in ("failed", "aborted", "limit_reached"):
        reason = state.error or f"Egress {state.status.replace('_', ' ')}"
        changed |= _move(recording, Recording.Status.FAILED, now, reason=reason)
    return changed


# --- storage, links -------------------------------------------------------------------------


def _base_url() -> str:
    return settings.PUBLIC_BASE_URL or "http://localhost:8000"


def storage_of(tenant: Tenant | int) -> RecordingStorage | None:
    tenant_id = tenant if isinstance(tenant, int) else tenant.pk
    return RecordingStorage.objects.filter(tenant_id=tenant_id).first()


def _s3_target(target: RecordingStorage) -> livekit.S3Target:
    return livekit.S3Target(
        endpoint=target.endpoint,
        region=target.region,
        bucket=target.bucket,
        access_key=target.access_key,
        secret=crypto.decrypt(target.secret_encrypted, purpose=STORAGE_PURPOSE),
    )


def _s3_args(target: RecordingStorage, key: str) -> dict[str, str]:
    return {
        "endpoint": target.endpoint,
        "region": target.region,
        "bucket": target.bucket,
        "key": key,
        "access_key": target.access_key,
        "secret": crypto.decrypt(target.secret_encrypted, purpose=STORAGE_PURPOSE),
    }


def download_url(recording: Recording, *, base_url: str) -> str | None:
    """A signed link to a ready recording's file, valid RECORDING_URL_TTL seconds."""
    if recording.kind != Recording.Kind.RECORDING or recording.status != Recording.Status.READY:
        return None
    if recording.storage == Recording.Storage.S3:
        target = storage_of(recording.tenant_id)
        if target is None or not target.uses_s3:
            return None
        return storage.presign(
            method="GET",
            expires=settings.RECORDING_URL_TTL,
            **_s3_args(target, recording.file_path),  # type: ignore[arg-type]
        )
    token = signing.TimestampSigner(salt=DOWNLOAD_SALT).sign(recording.recording_id)
    return f"{base_url}/recordings/{recording.recording_id}/download?token={token}"


def playlist_url(
    recording: Recording,
    *,
    base_url: str,
    targets: dict[int, RecordingStorage | None] | None = None,
) -> str | None:
    """Where players read an HLS stream (the live playlist while it runs). `targets`, a
    cache of storage targets by tenant id, spares a query per stream in lists."""
    if recording.kind != Recording.Kind.HLS:
        return None
    name = "index.m3u8" if recording.status == Recording.Status.READY else "live.m3u8"
    if recording.storage == Recording.Storage.S3:
        if targets is None:
            targets = {}
        if recording.tenant_id not in targets:
            targets[recording.tenant_id] = storage_of(recording.tenant_id)
        target = targets[recording.tenant_id]
        if target is None:
            return None
        key = f"{recording.file_path}/{name}"
        return storage.public_url(
            endpoint=target.endpoint, region=target.region, bucket=target.bucket, key=key
        )
    return f"{base_url}/hls/{recording.recording_id}/{name}"


def watch_url(recording: Recording, *, base_url: str) -> str:
    return f"{base_url}/watch/{recording.recording_id}"


@dataclass(frozen=True)
class Download:
    path: Any  # pathlib.Path
    filename: str


def resolve_download(*, recording_id: str, token: str) -> Download:
    """The local file a download link names. NotFound for a bad, foreign or forged link (or
    a file that is gone); Forbidden (LINK_EXPIRED) once the link has expired."""
    signer = signing.TimestampSigner(salt=DOWNLOAD_SALT)
    try:
        value = signer.unsign(token, max_age=settings.RECORDING_URL_TTL)
    except signing.SignatureExpired:
        if _unsigned(signer, token) == recording_id:
            raise Forbidden("This download link has expired", code="LINK_EXPIRED") from None
        raise NotFound("Recording not found") from None
    except signing.BadSignature:
        raise NotFound("Recording not found") from None
    if value != recording_id:
        raise NotFound("Recording not found")
    recording = Recording.objects.filter(
        recording_id=recording_id,
        kind=Recording.Kind.RECORDING,
        status=Recording.Status.READY,
        storage=Recording.Storage.LOCAL,
    ).first()
    path = storage.local_path(recording.file_path) if recording else None
    if recording is None or path is None or not path.is_file():
        raise NotFound("Recording not found")
    return Download(path=path, filename=path.name)


def _unsigned(signer: signing.TimestampSigner, token: str) -> str:
    try:
        return signer.unsign(token)
    except signing.BadSignature:
        return ""


def template_url(room: Room, layout: str, options: dict[str, Any] | None = None) -> str:
    """The recording template page egress opens (chat, tenant branding, a tile cap or an
    ordering): it joins with a hidden, subscribe-only token minted for the signature it
    carries."""
    token = signing.TimestampSigner(salt=TEMPLATE_SALT).sign(room.room_id)
    params: dict[str, Any] = {"layout": layout}
    for key in ("grid_size", "priority", "theme"):
        if (options or {}).get(key):
            params[key] = (options or {})[key]
    params["sig"] = token
    query = urlencode(params)
    base = settings.RECORDING_TEMPLATE_BASE_URL or _base_url()
    return f"{base}/recording-template/{room.room_id}?{query}"


def room_for_template(*, room_id: str, sig: str) -> Room | None:
    """The room a recording template link was signed for (valid for a day)."""
    try:
        value = signing.TimestampSigner(salt=TEMPLATE_SALT).unsign(sig, max_age=86400)
    except signing.BadSignature:
        return None
    if value != room_id:
        return None
    return Room.objects.filter(room_id=room_id).first()


def hls_folder(recording: Recording) -> Any:
    """The local folder of a stream's playlists and segments, or None."""
    if recording.kind != Recording.Kind.HLS or recording.storage != Recording.Storage.LOCAL:
        return None
    return storage.local_path(recording.file_path)


# --- plan minutes -------------------------------------------------------------------------


def month_start(now: datetime) -> datetime:
    return now.astimezone(dt.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def minutes_used(tenant: Tenant, now: datetime | None = None) -> int:
    """Egress minutes (recordings and streams) of the tenant in the current UTC month."""
    now = now or timezone.now()
    start = month_start(now)
    rows = (
        Recording.objects.for_tenant(tenant)
        .filter(started_at__isnull=False)
        .exclude(ended_at__lt=start)
    )
    seconds = 0.0
    for started_at, ended_at in rows.values_list("started_at", "ended_at"):
        if started_at is None:  # filtered out above; for the type checker
            continue
        begin = max(started_at, start)
        seconds += max(0.0, ((ended_at or now) - begin).total_seconds())
    return int(seconds // 60)


def minutes_limit(tenant: Tenant) -> int | None:
    return tenant.plan.recording_minutes_per_month


def _check_minutes(tenant: Tenant) -> None:
    limit = minutes_limit(tenant)
    if limit is None:
        return
    if limit == 0:
        raise LimitExceeded(f"Your {tenant.plan.name} plan does not include recording")
    if minutes_used(tenant) >= limit:
        raise LimitExceeded(
            f"Your {tenant.plan.name} plan's {limit} recording minutes this month are used up"
        )


# --- start and stop -----------------------------------------------------------------------


def _paths(recording: Recording, room: Room, target: RecordingStorage | None) -> tuple[str, str]:
    """(Parley's file path or key, the path egress writes) of a new recording."""
    prefix_parts = []
    if target is not None and target.uses_s3 and target.prefix:
        prefix_parts.append(target.prefix.strip("/"))
    if recording.options.get("prefix"):
        prefix_parts.append(recording.options["prefix"])
    if target is None or not target.uses_s3:
        prefix_parts.insert(0, room.tenant.public_id)
    folder = "/".join([*prefix_parts, room.room_id])
    if recording.kind == Recording.Kind.HLS:
        relative = f"{folder}/{recording.recording_id}"
    else:
        ext = "ogg" if recording.options.get("audio_only") else "mp4"
        relative = f"{folder}/{recording.recording_id}.{ext}"
    if recording.storage == Recording.Storage.S3:
        return relative, relative
    return relative, f"{settings.RECORDINGS_EGRESS_DIR}/{relative}"


def _needs_template(room: Room, layout: str, options: dict[str, Any]) -> bool:
    """LiveKit's built-in layouts know neither chat, nor branding, nor a tile cap or an
    ordering: those recordings go through Parley's template page."""
    from branding.models import Brand

    if layout == Room.RecordingLayout.GRID_CHAT or "grid_size" in options or "priority" in options:
        return True
    return Brand.objects.filter(tenant_id=room.tenant_id).exists()


def _open_session(room: Room) -> RoomSession | None:
    return RoomSession.objects.filter(room=room, ended_at__isnull=True).order_by("-pk").first()


def _begin(
    *,
    room: Room,
    kind: str,
    layout: str,
    options: dict[str, Any],
    session: RoomSession | None,
    auto: bool,
) -> Recording:
    """Room is locked by the caller and checks passed: start the egress, then write."""
    target = storage_of(room.tenant_id)
    recording = Recording(
        tenant_id=room.tenant_id,
        room=room,
        room_public_id=room.room_id,
        session=session,
        kind=kind,
        auto=auto,
        layout=layout,
        options=options,
        storage=Recording.Storage.S3 if target and target.uses_s3 else Recording.Storage.LOCAL,
    )
    relative, egress_path = _paths(recording, room, target)
    recording.file_path = relative
    preset = livekit.encoding_preset(
        options.get("quality", "med"), options.get("orientation", "landscape")
    )
    try:
        state = livekit.start_room_composite_egress(
            room=room.livekit_name,
            layout=livekit_layout(layout, options.get("theme", "")),
            audio_only=bool(options.get("audio_only", False)),
            preset=preset,
            custom_base_url=template_url(room, layout, options)
            if _needs_template(room, layout, options)
            else "",
            file_path=egress_path if kind == Recording.Kind.RECORDING else "",
            hls_prefix=f"{egress_path}/segment" if kind == Recording.Kind.HLS else "",
            s3=_s3_target(target) if target and recording.storage == Recording.Storage.S3 else None,
        )
    except livekit.LiveKitUnavailable:
        raise Unavailable("Recording is unavailable (the media server or egress is down)") from None
    now = timezone.now()
    recording.egress_id = state.egress_id
    recording.egress_seen_at = now
    recording.save()
    _emit(recording, Recording.Status.STARTING)
    if _apply_state(recording, state, now):
        recording.save()
    return recording


def _locked_room(room: Room) -> Room:
    return Room.objects.select_for_update().select_related("tenant__plan").get(pk=room.pk)


@transaction.atomic
def start(
    *,
    room: Room,
    kind: str = Recording.Kind.RECORDING,
    layout: str | None = None,
    options: dict[str, Any] | None = None,
    require_enabled: bool = True,
) -> Recording:
    """Start recording (or streaming) a live room now. `layout` and `options` are in
    Parley's vocabulary (None: the room's own). `require_enabled=False` lets a facade whose
    API records any room skip the room's `recording_enabled` check."""
    layout = clean_layout(layout if layout is not None else room.recording_layout)
    options = clean_options(options if options is not None else room.recording_options or {})
    room = _locked_room(room)
    if kind == Recording.Kind.RECORDING and require_enabled and not room.recording_enabled:
        raise Forbidden(
            "Recording is not enabled for this room (set recording_enabled)",
            code="RECORDING_DISABLED",
            field="recording_enabled",
        )
    if room.live_since is None:
        raise InvalidState(
            "The room is not live: start it (or let someone join) first", code="ROOM_NOT_LIVE"
        )
    if Recording.objects.filter(room=room, kind=kind).active().exists():
        what = "recording" if kind == Recording.Kind.RECORDING else "stream"
        raise Conflict(
            f"A {what} of this room is already running",
            code="RECORDING_IN_PROGRESS" if what == "recording" else "STREAM_IN_PROGRESS",
        )
    _check_minutes(room.tenant)
    return _begin(
        room=room,
        kind=kind,
        layout=layout,
        options=options,
        session=_open_session(room),
        auto=False,
    )


@transaction.atomic
def stop(*, recording: Recording) -> Recording:
    """Stop a running recording or stream. 409 RECORDING_NOT_ACTIVE once it has ended;
    stopping one already stopping changes nothing."""
    recording = Recording.objects.select_for_update().get(pk=recording.pk)
    if not recording.is_active:
        raise Conflict("The recording has already ended", code="RECORDING_NOT_ACTIVE")
    if recording.status == Recording.Status.STOPPING:
        return recording
    _stop_one(recording, timezone.now(), on_livekit=True)
    return recording


def _stop_one(recording: Recording, now: datetime, *, on_livekit: bool) -> None:
    state = None
    if on_livekit and recording.egress_id:
        try:
            state = livekit.stop_egress(egress_id=recording.egress_id)
            if state is None:
                found = livekit.list_egress(egress_id=recording.egress_id)
                state = found[0] if found else None
                if state is None:
                    _move(recording, Recording.Status.FAILED, now, reason="Egress vanished")
        except livekit.LiveKitUnavailable:
            raise Unavailable(
                "Recording is unavailable (the media server or egress is down)"
            ) from None
    _move(recording, Recording.Status.STOPPING, now)
    if state is not None:
        _apply_state(recording, state, now)
    recording.save()


def stop_all_for_room(*, room: Room, on_livekit: bool = True) -> int:
    """Stop every running recording and stream of `room` (it is ending or being deleted).
    Called inside the room's transaction, before its LiveKit room goes: a LiveKit failure
    raises Unavailable and the caller writes nothing. Returns how many were stopped."""
    now = timezone.now()
    running = list(
        Recording.objects.select_for_update()
        .filter(room=room, status__in=(Recording.Status.STARTING, Recording.Status.RECORDING))
        .order_by("pk")
    )
    for recording in running:
        _stop_one(recording, now, on_livekit=on_livekit)
    return len(running)


# --- auto-start ---------------------------------------------------------------------------


def wanted_kinds(room: Room) -> list[str]:
    kinds: list[str] = []
    if room.recording_enabled:
        kinds.append(Recording.Kind.RECORDING)
    if room.hls_options is not None:
        kinds.append(Recording.Kind.HLS)
    return kinds


def session_started(*, room: Room, session: RoomSession) -> None:
    """A session began (first join, host start or the scheduler): once it commits, start
    what the room records automatically. A failure here never undoes the session; the
    reconciliation tries again while the session lasts."""
    if not wanted_kinds(room):
        return
    session_pk = session.pk

    def run() -> None:
        try:
            auto_start(session_pk=session_pk)
        except Exception:  # the session is committed; the reconciliation retries
            logger.exception("Auto-start of recording failed for session %s", session_pk)

    transaction.on_commit(run)


def auto_start(*, session_pk: int) -> dict[str, str]:
    """Start the session's automatic recording and stream, each exactly once per session
    (the room's row lock plus a unique constraint). Returns what happened per kind:
    started | already | failed | unavailable | gone."""
    results: dict[str, str] = {}
    for kind in (Recording.Kind.RECORDING, Recording.Kind.HLS):
        try:
            results[kind] = _auto_start_one(session_pk, kind)
        except Unavailable:
            results[kind] = "unavailable"
        except IntegrityError:
            results[kind] = "already"
    return results


@transaction.atomic
def _auto_start_one(session_pk: int, kind: str) -> str:
    session = RoomSession.objects.filter(pk=session_pk, ended_at__isnull=True).first()
    if session is None:
        return "gone"
    room = _locked_room(session.room)
    if kind not in wanted_kinds(room):
        return "not-wanted"
    if Recording.objects.filter(session=session, kind=kind).exists():
        return "already"
    if room.live_since is None:
        return "gone"
    if kind == Recording.Kind.HLS:
        config = dict(room.hls_options or {})
        layout, options = config.pop("layout", room.recording_layout), config
    else:
        layout, options = room.recording_layout, room.recording_options or {}
    try:
        layout, options = clean_layout(layout), clean_options(options)
        _check_minutes(room.tenant)
        if Recording.objects.filter(room=room, kind=kind).active().exists():
            raise Conflict("Another recording of this room is already running")
    except (InvalidInput, LimitExceeded, Conflict) as exc:
        failed = Recording.objects.create(
            tenant_id=room.tenant_id,
            room=room,
            room_public_id=room.room_id,
            session=session,
            kind=kind,
            auto=True,
            layout=layout if layout in LAYOUTS else Room.RecordingLayout.GRID,
            options={},
        )
        _emit(failed, Recording.Status.STARTING)
        _move(failed, Recording.Status.FAILED, timezone.now(), reason=exc.message)
        failed.save()
        return "failed"
    _begin(room=room, kind=kind, layout=layout, options=options, session=session, auto=True)
    return "started"


# --- LiveKit's reports: webhooks and reconciliation -----------------------------------------


@transaction.atomic
def egress_reported(*, state: livekit.EgressState) -> str:
    """Apply an egress webhook (egress_started|updated|ended). Idempotent and order-proof:
    status only moves forward."""
    recording = Recording.objects.select_for_update().filter(egress_id=state.egress_id).first()
    if recording is None:
        return "unknown-egress"
    now = timezone.now()
    changed = _apply_state(recording, state, now)
    recording.egress_seen_at = now
    recording.save()
    return recording.status if changed else "unchanged"


def reconcile(*, now: datetime | None = None) -> dict[str, int]:
    """Settle recordings LiveKit forgot or went silent about, and start automatic ones a
    lost callback never started. Safe to run any time, from any number of workers."""
    now = now or timezone.now()
    counts = {"checked": 0, "settled": 0, "auto_started": 0, "over_plan": 0}
    timeout = timedelta(seconds=settings.RECORDING_SILENCE_TIMEOUT)
    pending = Recording.objects.filter(
        status__in=(*Recording.ACTIVE, Recording.Status.PROCESSING)
    ).values_list("pk", "egress_id")
    for pk, egress_id in list(pending):
        counts["checked"] += 1
        try:
            found = livekit.list_egress(egress_id=egress_id) if egress_id else []
        except livekit.LiveKitUnavailable:
            logger.warning("LiveKit unavailable: recordings not reconciled")
            break
        if _settle(pk, found[0] if found else None, now, timeout):
            counts["settled"] += 1
    counts["over_plan"] = _stop_over_plan(now)
    grace = now - timedelta(seconds=10)  # leave the on-commit auto-start its moment
    sessions = RoomSession.objects.filter(ended_at__isnull=True, started_at__lte=grace).filter(
        room__live_since__isnull=False
    )
    candidates = sessions.filter(room__recording_enabled=True) | sessions.filter(
        room__hls_options__isnull=False
    )
    for session_pk in candidates.values_list("pk", flat=True).distinct():
        results = auto_start(session_pk=session_pk)
        counts["auto_started"] += sum(1 for r in results.values() if r in ("started", "failed"))
    return counts


def _stop_over_plan(now: datetime) -> int:
    """Stop running recordings of tenants whose month's minutes are used up (the plan is
    enforced at start, and again here while they run)."""
    stopped = 0
    used: dict[int, int] = {}
    running = Recording.objects.filter(
        status__in=(Recording.Status.STARTING, Recording.Status.RECORDING)
    ).select_related("tenant__plan")
    for recording in running:
        limit = recording.tenant.plan.recording_minutes_per_month
        if limit is None:
            continue
        if recording.tenant_id not in used:
            used[recording.tenant_id] = minutes_used(recording.tenant, now)
        if used[recording.tenant_id] < limit:
            continue
        try:
            stop(recording=recording)
        except (Unavailable, Conflict):
            continue  # LiveKit down: the next run tries again
        stopped += 1
    return stopped


@transaction.atomic
def _settle(pk: int, state: livekit.EgressState | None, now: datetime, timeout: timedelta) -> bool:
    recording = Recording.objects.select_for_update().filter(pk=pk).first()
    if recording is None or recording.status in Recording.FINAL:
        return False
    before = recording.status
    if state is None:
        # LiveKit has no such egress any more: it ended without telling us.
        if recording.location:
            _move(recording, Recording.Status.READY, now)
        else:
            _move(recording, Recording.Status.FAILED, now, reason="Egress vanished")
    else:
        _apply_state(recording, state, now)
        silent_since = recording.egress_seen_at or recording.updated_at
        if (
            recording.status not in Recording.FINAL
            and recording.status != Recording.Status.RECORDING
            and now - silent_since > timeout
        ):
            minutes = int(timeout.total_seconds() // 60)
            if recording.status == Recording.Status.STARTING and state.status in ("starting",):
                reason = f"Egress did not start within {minutes} minutes"
            else:
                reason = f"Egress reported nothing for {minutes} minutes"
            if recording.location and recording.status == Recording.Status.PROCESSING:
                _move(recording, Recording.Status.READY, now)
            else:
                _move(recording, Recording.Status.FAILED, now, reason=reason)
    recording.save()
    return recording.status != before


# --- retention ----------------------------------------------------------------------------


def enforce_retention(*, now: datetime | None = None) -> int:
    """Delete recordings (files and rows) older than their tenant's retention. A file that
    cannot be deleted now keeps its row, so the next run tries again."""
    now = now or timezone.now()
    deleted = 0
    for target in RecordingStorage.objects.filter(retention_days__isnull=False):
        cutoff = now - timedelta(days=target.retention_days or 0)
        expired = Recording.objects.filter(
            tenant_id=target.tenant_id, status__in=Recording.FINAL, created_at__lt=cutoff
        )
        for recording in expired:
            if _delete_files(recording, target):
                recording.delete()
                deleted += 1
    return deleted


def _delete_files(recording: Recording, target: RecordingStorage) -> bool:
    if not recording.file_path:
        return True
    if recording.storage == Recording.Storage.LOCAL:
        storage.delete_local(recording.file_path)
        return True
    if not target.uses_s3:
        return True
    keys = (
        [f"{recording.file_path}/index.m3u8", f"{recording.file_path}/live.m3u8"]
        if recording.kind == Recording.Kind.HLS
        else [recording.file_path]
    )
    return all(storage.delete_object(**_s3_args(target, key)) for key in keys)


# --- tenant storage settings --------------------------------------------------------------


@transaction.atomic
def update_storage(
    *,
    tenant: Tenant,
    endpoint: str,
    region: str,
    bucket: str,
    prefix: str,
    access_key: str,
    secret: str | None,
    retention_days: int | None,
) -> RecordingStorage:
    """Set the tenant's recording storage. `secret` None keeps the stored one; an empty
    bucket means the server's local folder (and drops any stored credentials)."""
    target, _ = RecordingStorage.objects.select_for_update().get_or_create(tenant=tenant)
    if bucket and not access_key:
        raise InvalidInput("An S3 target needs an access key", field="access_key")
    if bucket and not (secret or target.secret_encrypted):
        raise InvalidInput("An S3 target needs a secret key", field="secret")
    target.endpoint, target.region, target.bucket = endpoint, region, bucket
    target.prefix, target.access_key = prefix.strip("/"), access_key
    target.retention_days = retention_days
    if secret:
        target.secret_encrypted = crypto.encrypt(secret, purpose=STORAGE_PURPOSE)
    if not bucket:
        target.access_key, target.secret_encrypted = "", ""
    target.save()
    return target


# --- reads ----------------------------------------------------------------------------------


def for_room(room: Room) -> list[Recording]:
    return list(Recording.objects.filter(room=room).order_by("-created_at", "-pk"))


def get_for_tenant(tenant: Tenant, recording_id: str) -> Recording | None:
    return Recording.objects.for_tenant(tenant).filter(recording_id=recording_id).first()


def live_playlist_url(room: Room, *, base_url: str) -> str | None:
    """The playlist of the room's running HLS stream, if any."""
    return live_playlist_urls([room], base_url=base_url)[room.pk]


def live_playlist_urls(rooms: Sequence[Room], *, base_url: str) -> dict[int, str | None]:
    """The playlist URL of each room's running HLS stream (None where none runs), by room
    pk, in a constant number of queries: one for the rooms' running streams, and one for
    the storage target only when a stream writes to S3."""
    urls: dict[int, str | None] = {room.pk: None for room in rooms}
    if not urls:
        return urls
    streams = (
        Recording.objects.filter(room__in=list(urls), kind=Recording.Kind.HLS)
        .active()
        .order_by("pk")
    )
    targets: dict[int, RecordingStorage | None] = {}
    for stream in streams:  # by pk: the newest stream of a room wins
        assert stream.room_id is not None  # filtered on room
        urls[stream.room_id] = playlist_url(stream, base_url=base_url, targets=targets)
    return urls


def indicator(room: Room) -> dict[str, bool]:
    """Whether the room is being recorded / streamed now (every participant is told).
    A recording counts from the moment it is asked for until it is stopped."""
    kinds = set(
        Recording.objects.filter(
            room=room, status__in=(Recording.Status.STARTING, Recording.Status.RECORDING)
        ).values_list("kind", flat=True)
    )
    return {
        "recording": Recording.Kind.RECORDING in kinds,
        "streaming": Recording.Kind.HLS in kinds,
    }
