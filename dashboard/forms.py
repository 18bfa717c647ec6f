"""Dashboard forms.

`RoomForm` has no validation rules of its own: its fields are generated from the v1
`RoomInputSerializer` (so every API field is on the form, and a field added to the API shows
up here), form input is translated into the JSON the API would receive, the serializer
validates it, and its messages are put on the form's fields. One validation path, not two.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from functools import cache
from typing import Any

from django import forms
from rest_framework import serializers as drf

from accounts.models import Membership, Tenant
from conferences.api import fields as api_fields
from conferences.api.v1 import serializers as v1
from conferences.api.v1.serializers import RoomInputSerializer, room_to_dict
from conferences.models import Room

# --- labels and help of the v1 fields ---------------------------------------------------------

LABELS: dict[str, str] = {
    "name": "Room name",
    "room_type": "Room type",
    "media_type": "Media",
    "max_participants": "Max participants",
    "access_type": "Who can join",
    "password": "Room password",
    "whitelist_emails": "Allowed emails",
    "allowed_email_domains": "Also allowed email domains",
    "start_time": "Starts",
    "end_time": "Ends",
    "recurring": "Repeats",
    "recurrence": "Repeat rule",
    "timezone": "Time zone",
    "recording_enabled": "Recording",
    "screen_sharing_enabled": "Screen sharing",
    "chat_enabled": "Chat",
    "waiting_room_enabled": "Waiting room",
    "video_quality": "Video quality",
    "audio_only_mode": "Audio-only mode",
    "host_controls": "Host controls",
    "custom_logo_url": "Logo URL for this room",
    "auto_close_config": "Auto close",
    "join_before_minutes": "Join before start (minutes)",
    "allow_webinar_mode": "Webinar mode",
    "max_speakers": "Max speakers on stage",
}
HELP: dict[str, str] = {
    "name": "3-100 characters; guests see it on the join page.",
    "max_participants": "Empty: your plan's limit per room.",
    "password": "Guests type it to get in. Leave empty to keep the current one.",
    "whitelist_emails": "One address per line; each proves it with a one-time code.",
    "allowed_email_domains": "Signed-in accounts with a verified address in these domains "
    "(one per line, e.g. partner.example) may join besides your workspace's members.",
    "recurrence": "An RFC 5545 rule, e.g. FREQ=WEEKLY;BYDAY=MO,WE;COUNT=10.",
    "waiting_room_enabled": "A host admits each guest.",
    "allow_webinar_mode": "Only hosts and promoted speakers publish; the audience raises hands.",
    "join_before_minutes": "How early guests may enter a scheduled room.",
    "custom_logo_url": "Overrides the workspace logo on this room's join page.",
}
CHOICE_LABELS: dict[str, dict[str, str]] = {
    "media_type": {"both": "Audio and video", "audio": "Audio only", "video": "Video only"},
    "access_type": {
        "public": "Anyone with the link",
        "password": "People with the password",
        "whitelist": "Listed emails only",
        "authenticated": "Signed-in members of this workspace",
    },
    "room_type": {
        "temporary": "Temporary",
        "permanent": "Permanent",
        "scheduled": "Scheduled",
    },
    "video_quality": {"low": "Low", "medium": "Medium", "high": "High", "hd": "HD"},
}
HOST_CONTROL_LABELS = {
    "mute_all": "Hosts can mute everyone",
    "disable_video": "Hosts can turn off everyone's video",
    "kick_participants": "Hosts can remove participants",
}
AUTO_CLOSE_LABELS = {
    "session-ends": "End the session",
    "session-end-and-deactivate": "End the session and deactivate the room",
}
# Form groups, in page order; fields of the serializer not named here go to "More".
GROUPS: list[tuple[str, list[str]]] = [
    ("Basics", ["name", "room_type", "media_type", "max_participants", "video_quality"]),
    ("Access", ["access_type", "password", "whitelist_emails", "allowed_email_domains",
                "waiting_room_enabled"]),
    ("Schedule", ["timezone", "start_time", "end_time", "recurring", "recurrence",
                  "join_before_minutes", "auto_close_type", "auto_close_duration"]),
    ("In the room", ["chat_enabled", "screen_sharing_enabled", "recording_enabled",
                     "audio_only_mode", "allow_webinar_mode", "max_speakers", "host_controls",
                     "custom_logo_url"]),
]  # fmt: skip

# The four room shapes of the Callaba reference (team, webinar, audio briefing, recorded
# speaker room), in v1 vocabulary. Fields the API does not have are skipped.
PRESETS: dict[str, dict[str, Any]] = {
    "team": {
        "label": "Team room",
        "description": "Small team: audio and video, chat and screen sharing.",
        "values": {"name": "Team standup room", "media_type": "both", "max_participants": 20,
                   "allow_webinar_mode": False, "chat_enabled": True,
                   "screen_sharing_enabled": True, "recording_enabled": False},
    },
    "webinar": {
        "label": "Webinar room",
        "description": "Up to 200 guests watch; speakers are promoted from the audience.",
        "values": {"name": "Guest webinar room", "media_type": "both", "max_participants": 200,
                   "allow_webinar_mode": True, "chat_enabled": True,
                   "screen_sharing_enabled": False, "recording_enabled": False},
    },
    "audio": {
        "label": "Audio briefing",
        "description": "Audio only, like a conference call, with chat.",
        "values": {"name": "Audio briefing room", "media_type": "audio", "max_participants": 50,
                   "allow_webinar_mode": False, "chat_enabled": True,
                   "screen_sharing_enabled": False, "recording_enabled": False},
    },
    "recorded": {
        "label": "Recorded speaker room",
        "description": "Speakers on stage with screen sharing, recorded.",
        "values": {"name": "Recorded speaker room", "media_type": "both", "max_participants": 50,
                   "allow_webinar_mode": True, "chat_enabled": True,
                   "screen_sharing_enabled": True, "recording_enabled": True},
    },
}  # fmt: skip

LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


@cache
def timezone_choices() -> list[tuple[str, str]]:
    zones = sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC")
    return [(z, z.replace("_", " ")) for z in zones]


def _serializer_fields() -> dict[str, drf.Field]:
    return dict(RoomInputSerializer().fields)


def preset_values(plan_limit: int) -> dict[str, dict[str, Any]]:
    """Presets for the page: only fields the API has; participants capped by the plan."""
    known = set(_serializer_fields())
    out: dict[str, dict[str, Any]] = {}
    for key, preset in PRESETS.items():
        values = {k: v for k, v in preset["values"].items() if k in known}
        if "max_participants" in values:
            values["max_participants"] = min(values["max_participants"], plan_limit)
        out[key] = {
            "label": preset["label"],
            "description": preset["description"],
            "values": values,
            "capped": preset["values"].get("max_participants", 0) > plan_limit,
        }
    return out


class RoomForm(forms.Form):
    """Every field of RoomInputSerializer, as form fields that only carry input."""

    def __init__(self, *args: Any, tenant: Tenant, room: Room | None = None, **kwargs: Any):
        self.tenant = tenant
        self.room = room
        self.payload: dict[str, Any] = {}  # validated, for the service
        self.body: dict[str, Any] = {}  # what was sent to the serializer, as JSON
        super().__init__(*args, **kwargs)
        self.api_fields = _serializer_fields()
        for name, api_field in self.api_fields.items():
            for form_name, form_field in self._form_fields(name, api_field):
                self.fields[form_name] = form_field

    # --- building the fields ----------------------------------------------------------------

    def _form_fields(self, name: str, api_field: drf.Field) -> list[tuple[str, forms.Field]]:
        label = LABELS.get(name, name.replace("_", " ").capitalize())
        help_text = HELP.get(name, "")
        common: dict[str, Any] = {"label": label, "required": False, "help_text": help_text}
        if isinstance(api_field, v1.AutoCloseField):
            return [
                ("auto_close_type", forms.CharField(
                    label="When the time is up", required=False,
                    widget=forms.Select(choices=list(AUTO_CLOSE_LABELS.items())))),
                ("auto_close_duration", forms.CharField(
                    label="Close after (minutes)", required=False,
                    help_text="Used when a session has no end time; 1-10080.",
                    widget=forms.NumberInput(attrs={"min": 1, "max": 10080}))),
            ]  # fmt: skip
        if isinstance(api_field, v1.HostControlsField):
            return [
                (name, forms.MultipleChoiceField(
                    choices=list(HOST_CONTROL_LABELS.items()),
                    widget=forms.CheckboxSelectMultiple, **common)),
            ]  # fmt: skip
        if isinstance(api_field, api_fields.StrictBooleanField):
            return [(name, forms.BooleanField(**common))]
        if isinstance(api_field, api_fields.StrictChoiceField):
            labels = CHOICE_LABELS.get(name, {})
            choices = [(c, labels.get(str(c), str(c).capitalize())) for c in api_field.choices]
            return [(name, forms.CharField(widget=forms.Select(choices=choices), **common))]
        if isinstance(api_field, api_fields.StrictIntegerField):
            attrs = {"min": api_field.min_value, "max": api_field.max_value}
            if name == "max_participants":
                attrs["max"] = min(api_field.max_value, self.tenant.plan.max_participants_per_room)
                common["help_text"] = (
                    f"Up to {attrs['max']} on your {self.tenant.plan.name} plan; "
                    "empty: the plan's limit."
                )
            return [(name, forms.CharField(widget=forms.NumberInput(attrs=attrs), **common))]
        if isinstance(api_field, api_fields.OffsetDateTimeField):
            widget: forms.Widget = forms.DateTimeInput(
                attrs={"type": "datetime-local"}, format=LOCAL_FORMAT
            )
            return [(name, forms.CharField(widget=widget, **common))]
        if isinstance(api_field, v1.EmailListField):
            widget = forms.Textarea(attrs={"rows": 3, "autocomplete": "off"})
            return [(name, forms.CharField(widget=widget, strip=False, **common))]
        if isinstance(api_field, v1.LogoUrlField):
            return [(name, forms.CharField(widget=forms.URLInput, **common))]
        if isinstance(api_field, v1.RecurrenceField):  # RRULE, and EXDATE lines
            widget = forms.Textarea(attrs={"rows": 2, "spellcheck": "false"})
            return [(name, forms.CharField(widget=widget, **common))]
        if name == "timezone":
            return [(name, forms.CharField(widget=forms.Select(choices=timezone_choices()),
                                           **common))]  # fmt: skip
        if name == "password":
            widget = forms.PasswordInput(render_value=True, attrs={"autocomplete": "new-password"})
            return [(name, forms.CharField(widget=widget, strip=False, **common))]
        return [(name, forms.CharField(strip=False, **common))]

    def groups(self) -> list[tuple[str, list[forms.BoundField]]]:
        """The bound fields in page order, grouped; fields not named in GROUPS come last."""
        placed: set[str] = set()
        out = []
        for title, names in GROUPS:
            fields = [self[n] for n in names if n in self.fields]
            placed.update(names)
            if fields:
                out.append((title, fields))
        rest = [self[n] for n in self.fields if n not in placed]
        if rest:
            out.append(("More", rest))
        return out

    # --- initial values from a room -----------------------------------------------------------

    @staticmethod
    def initial_for(room: Room | None, tenant: Tenant) -> dict[str, Any]:
        if room is None:
            return {
                "room_type": Room.RoomType.TEMPORARY,
                "media_type": Room.MediaType.BOTH,
                "access_type": Room.AccessType.PUBLIC,
                "video_quality": Room.VideoQuality.HIGH,
                "chat_enabled": True,
                "screen_sharing_enabled": True,
                "timezone": tenant.timezone,
                "host_controls": list(HOST_CONTROL_LABELS),
                "auto_close_type": "session-ends",
                "auto_close_duration": "480",
                "join_before_minutes": "10",
            }
        data = room_to_dict(room, "", hls_playlist_url=None)  # not a form field: not read
        zone = _zone(room.timezone)
        initial: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("start_time", "end_time"):
                moment = getattr(room, key)
                initial[key] = moment.astimezone(zone).strftime(LOCAL_FORMAT) if moment else ""
            elif key == "host_controls":
                initial[key] = [k for k, on in (value or {}).items() if on]
            elif key in ("whitelist_emails", "allowed_email_domains"):
                initial[key] = "\n".join(value or [])
            elif key == "auto_close_config":
                initial["auto_close_type"] = value["type"]
                initial["auto_close_duration"] = str(value["duration"])
            elif isinstance(value, bool):
                initial[key] = value
            elif value is None:
                initial[key] = ""
            else:
                initial[key] = str(value) if isinstance(value, int) else value
        initial["password"] = ""
        return initial

    # --- translating input to the API's JSON ----------------------------------------------------

    def _json(self, values: dict[str, Any]) -> dict[str, Any]:
        """The v1 request body for form `values` (cleaned data or initial)."""
        body: dict[str, Any] = {}
        zone_name = values.get("timezone") or self.tenant.timezone
        for name, api_field in self.api_fields.items():
            if isinstance(api_field, v1.AutoCloseField):
                body[name] = {
                    "type": values.get("auto_close_type") or "session-ends",
                    "duration": _number(values.get("auto_close_duration"), default=480),
                }
                continue
            raw = values.get(name)
            if isinstance(api_field, v1.HostControlsField):
                chosen = set(raw or [])
                body[name] = {key: key in chosen for key in HOST_CONTROL_LABELS}
            elif isinstance(api_field, api_fields.StrictBooleanField):
                body[name] = bool(raw)
            elif isinstance(api_field, api_fields.StrictIntegerField):
                if raw not in (None, ""):
                    body[name] = _number(raw)
                elif api_field.allow_null:
                    body[name] = None
            elif isinstance(api_field, api_fields.OffsetDateTimeField):
                body[name] = _aware(raw, zone_name) if raw else None
            elif isinstance(api_field, v1.EmailListField):
                body[name] = [e for e in re.split(r"[\s,;]+", raw or "") if e]
            elif isinstance(api_field, v1.LogoUrlField | v1.RecurrenceField):
                body[name] = (raw or "").strip() or None
            elif raw not in (None, ""):
                body[name] = raw
        # Settings that do not apply to the chosen access or repetition are not sent, as an
        # API client would not send them.
        if body.get("access_type") != Room.AccessType.PASSWORD or not body.get("password"):
            body.pop("password", None)
        if body.get("access_type") != Room.AccessType.WHITELIST:
            body.pop("whitelist_emails", None)
        if body.get("access_type") != Room.AccessType.AUTHENTICATED:
            body.pop("allowed_email_domains", None)
        if not body.get("recurring"):
            body.pop("recurrence", None)
        return body

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        body = self._json(cleaned)
        partial = self.room is not None
        if partial:
            before = self._json(self.initial_for(self.room, self.tenant))
            body = {k: v for k, v in body.items() if k == "password" or before.get(k) != v}
        self.body = body
        serializer = RoomInputSerializer(
            data=body,
            partial=partial,
            context={"tenant": self.tenant, "instance": self.room},
        )
        if not serializer.is_valid():
            self._add_api_errors(serializer.errors)
        else:
            self.payload = dict(serializer.validated_data)
        return cleaned

    def _add_api_errors(self, errors: dict[str, Any]) -> None:
        for key, messages in errors.items():
            target = {"auto_close_config": "auto_close_duration"}.get(key, key)
            text = [str(m) for m in (messages if isinstance(messages, list) else [messages])]
            if target not in self.fields:
                target = None  # type: ignore[assignment]
            for message in text:
                self.add_error(target, message)


def _zone(name: str) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _number(raw: Any, default: Any = None) -> Any:
    """An integer when the input is one, else the input itself (the API then says why)."""
    if raw in (None, ""):
        return default
    text = str(raw).strip()
    return int(text) if re.fullmatch(r"-?\d{1,9}", text) else text


def _aware(raw: str, zone_name: str) -> str:
    """A datetime-local value in `zone_name` as ISO 8601 with its offset; other text is
    passed on unchanged so the API's message explains what is wrong."""
    try:
        local = dt.datetime.strptime(raw.strip()[:16], LOCAL_FORMAT)
    except ValueError:
        return raw
    try:
        zone = zoneinfo.ZoneInfo(zone_name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return raw
    return local.replace(tzinfo=zone).isoformat()


# --- other dashboard forms ----------------------------------------------------------------------

ROLE_CHOICES = [
    (Membership.Role.VIEWER, "Viewer: sees everything, changes nothing"),
    (Membership.Role.MEMBER, "Member: runs rooms"),
    (Membership.Role.ADMIN, "Admin: also keys, members and branding"),
    (Membership.Role.OWNER, "Owner: also manages owners"),
]


class InviteForm(forms.Form):
    email = forms.CharField(
        label="Email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    role = forms.ChoiceField(label="Role", choices=ROLE_CHOICES, initial="member")  # fmt: skip


class RoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=[(r, r.capitalize()) for r, _ in ROLE_CHOICES])


class ApiKeyForm(forms.Form):
    name = forms.CharField(label="Key name", max_length=200, required=False,
                           help_text="Where it is used, e.g. “production backend”.")  # fmt: skip


class WorkspaceForm(forms.Form):
    name = forms.CharField(label="Workspace name", max_length=200, required=False)
    timezone = forms.CharField(
        label="Time zone", required=False, widget=forms.Select(choices=timezone_choices()),
        help_text="The schedule and usage are shown in this zone; new rooms default to it.",
    )  # fmt: skip


class NewWorkspaceForm(forms.Form):
    name = forms.CharField(label="Workspace name", max_length=200, required=False)


class BrandForm(forms.Form):
    product_name = forms.CharField(
        label="Product name",
        max_length=200,
        required=False,
        help_text="Shown on join pages and in emails instead of “Parley”.",
    )
    primary_color = forms.CharField(
        label="Primary colour",
        max_length=20,
        required=False,
        help_text="Buttons and links; white text must stay readable.",
    )
    accent_color = forms.CharField(label="Accent colour", max_length=20, required=False)
    white_label = forms.BooleanField(
        label="White label: never show “Parley” on join pages and emails", required=False
    )
    logo_url = forms.CharField(
        label="Logo URL",
        max_length=600,
        required=False,
        widget=forms.URLInput,
        help_text="Or upload a file below; an upload replaces the URL.",
    )
    logo = forms.FileField(
        label="Upload a logo",
        required=False,
        help_text="PNG, JPEG, GIF or WebP, at most 512 KB.",
        widget=forms.ClearableFileInput(
            attrs={"accept": "image/png,image/jpeg,image/gif,image/webp"}
        ),
    )


class DomainForm(forms.Form):
    domain = forms.CharField(
        label="Domain",
        max_length=300,
        required=False,
        help_text="A host name you control, e.g. meet.example.com.",
    )
