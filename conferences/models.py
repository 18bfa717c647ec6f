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
        choices=[("session-ends", "session-ends"),
                 ("session-end-and-deactivate", "session-end-and-deactivate")],
        default="session-ends",
    )  # fmt: skip
    auto_close_duration = models.PositiveIntegerField(default=480)
    deactivated_at = models.DateTimeField(null=True, blank=True)
    # Set while a live session runs (LiveKit has the room with our settings); cleared on stop.
    # Plans cap how many rooms of a tenant are live at once.
    live_since = models.DateTimeField(null=True, blank=True)

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


class RoomSession(models.Model):
    """One live run of a room, from start to stop."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="sessions")
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
