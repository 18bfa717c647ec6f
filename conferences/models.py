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


def new_object_id() -> str:
    """A Mongo-style object id (24 hex characters, 96 random bits): Callaba's `_id`."""
    return secrets.token_hex(12)


MEETING_ID_ALPHABET = string.ascii_lowercase


def new_meeting_id() -> str:
    """A VideoSDK-shaped room id: three groups of four lower-case letters (`abcd-efgh-ijkl`)."""
    groups = ("".join(secrets.choice(MEETING_ID_ALPHABET) for _ in range(4)) for _ in range(3))
    return "-".join(groups)


def new_host_secret() -> str:
    return secrets.token_urlsafe(24)  # 192 bits


def default_host_controls() -> dict[str, bool]:
    return {"mute_all": True, "disable_video": True, "kick_participants": True}


class RoomQuerySet(models.QuerySet["Room"]):
    def for_tenant(self, tenant: Tenant) -> RoomQuerySet:
        return self.filter(tenant=tenant)

    def live(self) -> RoomQuerySet:
        return self.filter(live_since__isnull=False)

    def listed(self) -> RoomQuerySet:
        """Rooms the tenant made: without the rooms behind direct calls (see Call)."""
        return self.filter(call__isnull=True)


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
    # "authenticated" rooms admit members of the room's tenant, and signed-in accounts whose
    # verified address is in one of these domains (lower case, no @).
    allowed_email_domains = models.JSONField(default=list, blank=True)
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
    # The room's id in the Callaba-compatible API (`_id`/`id`): 24 hex characters, random.
    object_id = models.CharField(max_length=24, unique=True, default=new_object_id)
    # LiveKit's sid of the room while a session runs (from CreateRoom); "" otherwise.
    livekit_sid = models.CharField(max_length=64, blank=True, default="")
    # Set when the scheduler pre-created the LiveKit room in the look-ahead window of a
    # scheduled start (empty until the start; livekit_sid holds its sid once CreateRoom
    # answered). Cleared when the room goes live, or released (LiveKit room deleted) when
    # no scheduled start is due any more (cancelled, moved, rescheduled).
    prepared_at = models.DateTimeField(null=True, blank=True)
    # The room's id in the VideoSDK-compatible API (`roomId`, `abcd-efgh-ijkl`), stable and
    # unique like room_id; and the caller's own `customRoomId` (unique per tenant when set).
    meeting_id = models.CharField(max_length=14, unique=True, default=new_meeting_id)
    custom_room_id = models.CharField(max_length=100, blank=True)

    objects = RoomQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "number"], name="unique_room_number"),
            models.UniqueConstraint(
                fields=["tenant", "custom_room_id"],
                condition=~models.Q(custom_room_id=""),
                name="unique_custom_room_id",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "created_at"]),
            models.Index(fields=["tenant", "start_time"]),
            models.Index(fields=["tenant", "name"]),
            models.Index(fields=["tenant", "status"]),
            models.Index(fields=["tenant", "live_since"]),
            models.Index(fields=["prepared_at"]),
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
    # One read of the system's random source for the 16 characters (a burst of scheduled
    # starts makes a thousand at once): bytes below 248 = 4 * 62 map evenly onto the alphabet.
    chars: list[str] = []
    while len(chars) < 16:
        chars.extend(ROOM_ID_ALPHABET[b % 62] for b in secrets.token_bytes(24) if b < 248)
    return "se_" + "".join(chars[:16])


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
        REMOVED = "removed"  # let in, then removed by a host: the admission is over
        BANNED = "banned"  # removed with a ban: may not ask again during this live session

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
    # access.client_key() of the address that asked: the admission's token goes only there.
    client_key = models.CharField(max_length=64, blank=True)
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


# --- Recordings and HLS live streams (LiveKit egress) ----------------------------------------


def new_recording_id() -> str:
    return "rec_" + "".join(secrets.choice(ROOM_ID_ALPHABET) for _ in range(16))


class RecordingQuerySet(models.QuerySet["Recording"]):
    def for_tenant(self, tenant: Tenant) -> RecordingQuerySet:
        return self.filter(tenant=tenant)

    def active(self) -> RecordingQuerySet:
        return self.filter(status__in=Recording.ACTIVE)


class Recording(models.Model):
    """One composite egress of a room: a file recording or an HLS live stream. Its status
    always reaches `ready` or `failed` (egress webhooks, then periodic ListEgress)."""

    class Kind(models.TextChoices):
        RECORDING = "recording"
        HLS = "hls"

    class Status(models.TextChoices):
        STARTING = "starting"
        RECORDING = "recording"
        STOPPING = "stopping"
        PROCESSING = "processing"
        READY = "ready"
        FAILED = "failed"

    ACTIVE = ("starting", "recording", "stopping")
    FINAL = ("ready", "failed")

    class Storage(models.TextChoices):
        LOCAL = "local"
        S3 = "s3"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="recordings")
    # A deleted room's recordings stay (until retention removes them): the room's public id
    # is kept with them.
    room = models.ForeignKey(
        Room, null=True, blank=True, on_delete=models.SET_NULL, related_name="recordings"
    )
    room_public_id = models.CharField(max_length=ROOM_ID_LENGTH)
    session = models.ForeignKey(
        RoomSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="recordings"
    )
    recording_id = models.CharField(max_length=24, unique=True, default=new_recording_id)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.RECORDING)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.STARTING)
    # Started by the room's auto-start (once per session) rather than by a person.
    auto = models.BooleanField(default=False)
    layout = models.CharField(max_length=14, choices=Room.RecordingLayout.choices)
    options = models.JSONField(default=dict, blank=True)
    egress_id = models.CharField(max_length=64, blank=True, db_index=True)
    storage = models.CharField(max_length=5, choices=Storage.choices, default=Storage.LOCAL)
    # Local: path under RECORDINGS_DIR; S3: object key (HLS: the playlist's key).
    file_path = models.CharField(max_length=500, blank=True)
    # Where egress says it put the result (S3 URL or file path), for the record.
    location = models.CharField(max_length=1000, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    failure_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # The last time egress told us anything (webhook or ListEgress): silence past a timeout
    # makes the reconciliation settle the recording.
    egress_seen_at = models.DateTimeField(null=True, blank=True)

    objects = RecordingQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["session", "kind"],
                condition=models.Q(auto=True),
                name="one_auto_egress_per_session_and_kind",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "created_at"]),
            models.Index(fields=["room", "created_at"]),
            models.Index(fields=["status", "updated_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.recording_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class RecordingStorage(models.Model):
    """A tenant's recording settings: an S3-compatible target (empty bucket: the server's
    local recordings folder) and how many days recordings are kept (null: forever). The
    secret key is encrypted at rest (accounts.crypto, purpose "storage") and never shown."""

    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, related_name="recording_storage"
    )
    endpoint = models.URLField(max_length=300, blank=True)
    region = models.CharField(max_length=64, blank=True)
    bucket = models.CharField(max_length=63, blank=True)
    prefix = models.CharField(max_length=200, blank=True)
    access_key = models.CharField(max_length=128, blank=True)
    secret_encrypted = models.TextField(blank=True)
    retention_days = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    @property
    def uses_s3(self) -> bool:
        return bool(self.bucket and self.access_key and self.secret_encrypted)


# --- Direct calls: the videochat handshake (/ws/videochat) ----------------------------------


def new_call_id() -> str:
    return "vc_" + "".join(secrets.choice(ROOM_ID_ALPHABET) for _ in range(16))


def new_call_request_id() -> str:
    return "vr_" + "".join(secrets.choice(ROOM_ID_ALPHABET) for _ in range(16))


class CallUser(models.Model):
    """An end user of a tenant's app, as the tenant's server last vouched for it (call
    tokens). Scoped to the tenant: the same `external_id` in two tenants is two people."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="call_users")
    external_id = models.CharField(max_length=128)
    # The reference's user simple structure, as last vouched (firstName, privacyMode, ...).
    profile = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "external_id"], name="unique_call_user"),
        ]

    def __str__(self) -> str:
        return f"{self.external_id} of tenant {self.tenant_id}"


def _call_user_name(user: CallUser) -> str:
    name = f"{user.profile.get('firstName', '')} {user.profile.get('lastName', '')}".strip()
    return name or user.external_id


class CallSocket(models.Model):
    """One open /ws/videochat socket of a user: presence shared by every web process. A
    process that dies leaves its rows behind; they stop counting once `seen_at` is old."""

    user = models.ForeignKey(CallUser, on_delete=models.CASCADE, related_name="sockets")
    channel_name = models.CharField(max_length=200, unique=True)
    connected_at = models.DateTimeField(auto_now_add=True)
    seen_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["user", "seen_at"])]


class Call(models.Model):
    """One call: a direct request and, once answered, a Parley room (temporary, hidden from
    room lists, joinable only with tokens from the handshake) on LiveKit."""

    class Status(models.TextChoices):
        RINGING = "ringing"
        ACTIVE = "active"
        ENDED = "ended"
        DECLINED = "declined"
        MISSED = "missed"
        CANCELLED = "cancelled"
        MERGED = "merged"

    class Mode(models.TextChoices):
        VIDEOCHAT = "videochat"
        CONFERENCE = "conference"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="calls")
    call_id = models.CharField(max_length=20, unique=True, default=new_call_id)
    room = models.OneToOneField(
        Room, null=True, blank=True, on_delete=models.SET_NULL, related_name="call"
    )
    caller = models.ForeignKey(CallUser, on_delete=models.CASCADE, related_name="calls_made")
    callee = models.ForeignKey(
        CallUser, on_delete=models.CASCADE, related_name="calls_received", null=True
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RINGING)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.VIDEOCHAT)
    # Per-call key for LiveKit end-to-end encryption, encrypted at rest (accounts.crypto).
    shared_secret = models.TextField()
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=40, blank=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "created_at"])]

    @property
    def caller_name(self) -> str:
        return _call_user_name(self.caller)

    @property
    def callee_name(self) -> str:
        return _call_user_name(self.callee) if self.callee is not None else "—"

    @property
    def duration_seconds(self) -> int | None:
        """From the answer to the end (or until now while the call runs); None if unanswered."""
        if self.answered_at is None:
            return None
        from django.utils import timezone

        return int(((self.ended_at or timezone.now()) - self.answered_at).total_seconds())

    @property
    def duration_display(self) -> str:
        seconds = self.duration_seconds
        if seconds is None:
            return "—"
        hours, rest = divmod(seconds, 3600)
        return (
            f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
            if hours
            else f"{rest // 60}:{rest % 60:02d}"
        )


class CallMember(models.Model):
    """Who is (or was) in which call, with their role (the caller owns it)."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(CallUser, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=12)
    joined_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["call", "user"], name="unique_call_member"),
        ]


class CallRequest(models.Model):
    """One ringing: a direct request (a new call) or an invitation into a running call."""

    class Kind(models.TextChoices):
        DIRECT = "direct"
        INVITE = "invite"

    class Status(models.TextChoices):
        RINGING = "ringing"
        ACCEPTED = "accepted"
        DECLINED = "declined"
        EXPIRED = "expired"
        CANCELLED = "cancelled"
        MERGED = "merged"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="call_requests")
    request_id = models.CharField(max_length=20, unique=True, default=new_call_request_id)
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="requests")
    caller = models.ForeignKey(CallUser, on_delete=models.CASCADE, related_name="+")
    target = models.ForeignKey(CallUser, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=6, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RINGING)
    # The socket that asked: it gets the caller's payload on accept; closing it cancels.
    origin_channel = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=40, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["target", "status"]),
            models.Index(fields=["origin_channel", "status"]),
        ]


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
