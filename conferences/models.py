"""Rooms and their live sessions."""

from __future__ import annotations

import secrets
import string

from django.db import models

from accounts.models import Tenant

ROOM_ID_ALPHABET = string.ascii_letters + string.digits
ROOM_ID_LENGTH = 12


def new_room_id() -> str:
    return "".join(secrets.choice(ROOM_ID_ALPHABET) for _ in range(ROOM_ID_LENGTH))


def new_host_secret() -> str:
    return secrets.token_urlsafe(24)  # 192 bits


def default_host_controls() -> dict[str, bool]:
    return {"mute_all": True, "disable_video": True, "kick_participants": True}


class RoomQuerySet(models.QuerySet["Room"]):
    def for_tenant(self, tenant: Tenant) -> RoomQuerySet:
        return self.filter(tenant=tenant)

    def live(self) -> RoomQuerySet:
        return self.filter(live_since__isnull=False)


class Room(models.Model):
    class RoomType(models.TextChoices):
        TEMPORARY = "temporary"
        PERMANENT = "permanent"
        SCHEDULED = "scheduled"

    class MediaType(models.TextChoices):
        AUDIO = "audio"
        VIDEO = "video"
        BOTH = "both"

    class AccessType(models.TextChoices):
        PUBLIC = "public"
        PASSWORD = "password"
        WHITELIST = "whitelist"
        AUTHENTICATED = "authenticated"

    class VideoQuality(models.TextChoices):
        LOW = "low"
        MEDIUM = "medium"
        HIGH = "high"
        HD = "hd"

    class Status(models.TextChoices):
        SCHEDULED = "scheduled"
        ACTIVE = "active"
        COMPLETED = "completed"

    class RecordingLayout(models.TextChoices):
        GRID = "grid"
        SPEAKER = "speaker"
        SINGLE_SPEAKER = "single-speaker"
        GRID_CHAT = "grid+chat"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="rooms")
    room_id = models.CharField(max_length=ROOM_ID_LENGTH, unique=True, default=new_room_id)
    number = models.PositiveIntegerField(help_text="n-th room of the tenant; the API's `id`")
    name = models.CharField(max_length=100)
    room_type = models.CharField(max_length=10, choices=RoomType.choices)
    media_type = models.CharField(max_length=5, choices=MediaType.choices)
    max_participants = models.PositiveIntegerField()
    access_type = models.CharField(max_length=13, choices=AccessType.choices)
    password_hash = models.CharField(max_length=256, blank=True)
    whitelist_emails = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    recurring = models.BooleanField(default=False)
    recording_enabled = models.BooleanField(default=False)
    screen_sharing_enabled = models.BooleanField(default=True)
    chat_enabled = models.BooleanField(default=True)
    waiting_room_enabled = models.BooleanField(default=False)
    video_quality = models.CharField(max_length=6, choices=VideoQuality.choices)
    audio_only_mode = models.BooleanField(default=False)
    host_controls = models.JSONField(default=default_host_controls)
    custom_logo_url = models.URLField(max_length=500, blank=True)
    host_secret = models.CharField(max_length=64, default=new_host_secret)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    # Minutes before an occurrence's start when its join page opens (hosts may start earlier).
    join_before_minutes = models.PositiveSmallIntegerField(default=10)
    # videosdk autoCloseConfig: close a session at end_time or after `auto_close_duration`
    # minutes; "session-end-and-deactivate" also deactivates the room for good.
    auto_close_type = models.CharField(
        max_length=26,
        choices=[
            ("session-ends", "session-ends"),
            ("session-end-and-deactivate", "session-end-and-deactivate"),
        ],
        default="session-ends",
    )
    auto_close_duration = models.PositiveIntegerField(default=480)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    # Webinar mode: guests join as viewers (subscribe + data), raise a hand, and hosts bring
    # them on stage; at most `max_speakers` speakers at once (null: no cap).
    allow_webinar_mode = models.BooleanField(default=False)
    max_speakers = models.PositiveSmallIntegerField(null=True, blank=True, default=None)
    # Set while a live session runs (LiveKit has the room with our settings); cleared on stop.
    # Plans cap how many rooms of a tenant are live at once.
    live_since = models.DateTimeField(null=True, blank=True)
    # How the room is recorded (composite egress layout), in Parley's vocabulary; each API's
    # own words map onto it (Callaba ROOM_COMPOSITE_*, VideoSDK GRID/SPOTLIGHT/SIDEBAR).
    recording_layout = models.CharField(
        max_length=14, choices=RecordingLayout.choices, default=RecordingLayout.GRID
    )
    # Options of the recording started automatically with a session (audio_only, quality,
    # orientation, prefix ...) and of an automatic HLS stream; owned by the recording service.
    recording_options = models.JSONField(default=dict, blank=True)
    hls_options = models.JSONField(null=True, blank=True, default=None)
    # A per-room outbound webhook endpoint (VideoSDK's `webhook: {endPoint, events}`): the
    # room's events in `webhook_events` also go there, signed and retried like tenant endpoints.
    webhook_url = models.URLField(max_length=500, blank=True)
    webhook_events = models.JSONField(default=list, blank=True)

    objects = RoomQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "number"], name="unique_room_number"),
        ]
        indexes = [
            models.Index(fields=["tenant", "created_at"]),
            models.Index(fields=["tenant", "start_time"]),
            models.Index(fields=["tenant", "name"]),
            models.Index(fields=["tenant", "status"]),
            models.Index(fields=["tenant", "live_since"]),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.room_id})"

    @property
    def livekit_name(self) -> str:
        """The room's name on LiveKit: its public id, unique across tenants."""
        return self.room_id


class Schedule(models.Model):
    """A room's recurrence rule, in force from `start` on (a series split starts a new one).

    A one-off scheduled room has a schedule with an empty rule: one occurrence at `start`.
    """

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="schedules")
    start = models.DateTimeField(help_text="first occurrence (UTC); its local time is the rule's")
    duration = models.DurationField(null=True, blank=True)
    timezone = models.CharField(max_length=64)
    rule = models.TextField(blank=True, help_text="RRULE and EXDATE lines; empty: one-off")
    # Occurrences exist for every start before this instant (the rolling window).
    generated_until = models.DateTimeField(null=True, blank=True)
    # False once the rule can produce nothing more (ended, superseded by a split, or one-off).
    open_ended = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["open_ended", "generated_until"])]


def new_occurrence_id() -> str:
    return "oc_" + "".join(secrets.choice(ROOM_ID_ALPHABET) for _ in range(12))


class Occurrence(models.Model):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled"
        LIVE = "live"
        COMPLETED = "completed"
        CANCELLED = "cancelled"
        MISSED = "missed"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="occurrences")
    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="occurrences")
    occurrence_id = models.CharField(max_length=16, unique=True, default=new_occurrence_id)
    # The start the rule gave (UTC): identifies the occurrence even after it is moved.
    original_start = models.DateTimeField()
    start_time = models.DateTimeField()
    end_time = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    modified = models.BooleanField(default=False, help_text="moved off the rule")
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["schedule", "original_start"], name="unique_occurrence_per_rule_start"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "start_time"]),
            models.Index(fields=["room", "start_time"]),
        ]


def new_session_id() -> str:
    return "se_" + "".join(secrets.choice(ROOM_ID_ALPHABET) for _ in range(16))


class RoomSession(models.Model):
    """One live run of a room, from start to stop."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="sessions")
    # Public id (API and dashboard); the integer key never leaves the database.
    session_id = models.CharField(max_length=20, default=new_session_id, db_index=True)
    # LiveKit's sid of the room for this run (from its room_started webhook).
    livekit_sid = models.CharField(max_length=64, blank=True)
    occurrence = models.ForeignKey(
        Occurrence, null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions"
    )
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    # When auto-close ends this session (end_time, or started_at + auto_close_duration).
    close_at = models.DateTimeField(null=True, blank=True)
    close_dispatched_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["room", "started_at"]),
            models.Index(fields=["ended_at", "close_at"]),
        ]


# --- Joining: the lobby, one-time codes and access attempts (browser join experience) -------


def new_entry_id() -> str:
    return "we_" + "".join(secrets.choice(ROOM_ID_ALPHABET) for _ in range(16))


class WaitingEntry(models.Model):
    """A guest in a room's server-side lobby. No LiveKit token exists for it until a host
    admits it; the evidence it joined with is kept so admission can re-check the policy."""

    class Status(models.TextChoices):
        WAITING = "waiting"
        ADMITTED = "admitted"
        REJECTED = "rejected"
        LEFT = "left"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="waiting_entries")
    entry_id = models.CharField(max_length=20, unique=True, default=new_entry_id)
    identity = models.CharField(max_length=64)
    name = models.CharField(max_length=64)
    role = models.CharField(max_length=16)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.WAITING)
    # Evidence of access at join time, re-checked against the room's policy on admission.
    user = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    email = models.EmailField(blank=True)
    password_fingerprint = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["room", "status", "created_at"])]


class JoinCode(models.Model):
    """A one-time code mailed to prove an address for a whitelist room. Stored as an HMAC."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="join_codes")
    email = models.EmailField()
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    # Set when a newer code for the same address replaces this one, or too many wrong tries.
    revoked_at = models.DateTimeField(null=True, blank=True)
    failed_attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["room", "email", "created_at"])]


class AccessAttempt(models.Model):
    """One try at a room's access check from one client (a keyed hash of its address), so
    wrong passwords and codes can be limited per room and client."""

    class Kind(models.TextChoices):
        PASSWORD = "password"
        CODE = "code"
        CODE_REQUEST = "code_request"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="access_attempts")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    client_key = models.CharField(max_length=64)
    succeeded = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["room", "kind", "client_key", "created_at"])]


# --- The stage: who is in a room with which role (webinar raise hand / promote) -------------


class ParticipantQuerySet(models.QuerySet["Participant"]):
    def present(self) -> ParticipantQuerySet:
        return self.filter(left_at__isnull=True)


class Participant(models.Model):
    """An identity's role in a room. The role is stored so the identity's next token carries
    it; hand and invitation state drive the stage queue. Written only by services."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="participants")
    identity = models.CharField(max_length=128)
    name = models.CharField(max_length=100, blank=True)
    role = models.CharField(max_length=12)
    mic_only = models.BooleanField(default=False, help_text="promoted to speak without camera")
    hand_raised_at = models.DateTimeField(null=True, blank=True)
    invited_at = models.DateTimeField(null=True, blank=True)
    invite_mic_only = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    left_at = models.DateTimeField(null=True, blank=True)

    objects = ParticipantQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["room", "identity"], name="unique_room_identity"),
        ]
        indexes = [
            models.Index(fields=["room", "hand_raised_at"]),
            models.Index(fields=["room", "role"]),
        ]

    def __str__(self) -> str:
        return f"{self.identity} ({self.role}) in {self.room_id}"


# --- Events out: outbound webhooks (transactional outbox) and attendance from LiveKit ------


def new_endpoint_id() -> str:
    return "wh_" + "".join(secrets.choice(ROOM_ID_ALPHABET) for _ in range(16))


def new_event_id() -> str:
    return "evt_" + "".join(secrets.choice(ROOM_ID_ALPHABET) for _ in range(20))


def new_delivery_id() -> str:
    return "dlv_" + "".join(secrets.choice(ROOM_ID_ALPHABET) for _ in range(20))


class WebhookEndpoint(models.Model):
    """Where a tenant wants its events: a URL, the event types it subscribes to and a signing
    secret (encrypted at rest with accounts.crypto, purpose "webhook"). A rotated secret keeps
    signing alongside the new one until `previous_secret_expires_at`. An endpoint with a
    `room` is the room's own endpoint (Room.webhook_url), kept in step by the outbox."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="webhook_endpoints")
    room = models.ForeignKey(
        Room, null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    endpoint_id = models.CharField(max_length=20, unique=True, default=new_endpoint_id)
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list, help_text="subscribed event types; ['*']: all")
    description = models.CharField(max_length=200, blank=True)
    secret_encrypted = models.TextField()
    previous_secret_encrypted = models.TextField(blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True)
    # Set at the first failure after a success; 24 h later the endpoint is disabled.
    failing_since = models.DateTimeField(null=True, blank=True)
    # One worker at a time delivers an endpoint's events, in order (a lease, not a lock:
    # a worker killed mid-delivery loses it when it expires).
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"])]

    def __str__(self) -> str:
        return f"{self.url} ({self.endpoint_id})"


class WebhookEvent(models.Model):
    """One outbound event, written in the transaction of the change that caused it. The
    payload is frozen at that moment; `event_id` lets receivers drop duplicates."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="webhook_events")
    event_id = models.CharField(max_length=24, unique=True, default=new_event_id)
    type = models.CharField(max_length=64)
    room_id = models.CharField(max_length=ROOM_ID_LENGTH, blank=True)
    payload = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"])]


class WebhookDelivery(models.Model):
    """One event for one endpoint. Pending until a 2xx (succeeded, never sent again) or
    until retries run out or the endpoint is disabled (failed, can be replayed)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(WebhookEvent, on_delete=models.CASCADE, related_name="deliveries")
    delivery_id = models.CharField(max_length=24, unique=True, default=new_delivery_id)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Event time, copied so an endpoint's queue is ordered by one index.
    event_created_at = models.DateTimeField()
    next_attempt_at = models.DateTimeField()
    first_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="unique_delivery"),
        ]
        indexes = [
            models.Index(fields=["endpoint", "status", "event_created_at"]),
            models.Index(fields=["status", "next_attempt_at"]),
        ]


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery: when, the status (null: no answer), how long, and the
    first KiB of the answer (or the error)."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    response_excerpt = models.TextField(blank=True)
    error = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [models.Index(fields=["delivery", "at"])]


class Attendance(models.Model):
    """One participant's stay in one session, from LiveKit's webhooks (and reconciliation).
    Keyed by LiveKit's participant sid: a rejoin is a new row."""

    class LeftBy(models.TextChoices):
        LEFT = "left"
        ABORTED = "aborted"
        SESSION_ENDED = "session-ended"
        RECONCILED = "reconciled"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="attendances")
    session = models.ForeignKey(RoomSession, on_delete=models.CASCADE, related_name="attendances")
    participant_sid = models.CharField(max_length=64)
    identity = models.CharField(max_length=128)
    name = models.CharField(max_length=100, blank=True)
    joined_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)
    left_by = models.CharField(max_length=14, choices=LeftBy.choices, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["session", "participant_sid"], name="unique_attendance_per_sid"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "joined_at"]),
            models.Index(fields=["session", "joined_at"]),
            models.Index(fields=["left_at"]),
        ]


class LiveKitWebhookReceipt(models.Model):
    """The id of every LiveKit webhook applied, so a repeated one changes nothing."""

    event_id = models.CharField(max_length=64, unique=True)
    event = models.CharField(max_length=40)
    received_at = models.DateTimeField(auto_now_add=True)
