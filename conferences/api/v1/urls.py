from csp.decorators import csp_update
from django.urls import path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)

from . import calls, host, occurrences, recordings, stage, views, webhooks

app_name = "v1"

# Each route answers with and without a trailing slash; the schema lists the bare form.
ROUTES = [
    ("rooms", views.RoomsView, "rooms"),
    ("rooms/<str:room_id>", views.RoomDetailView, "room"),
    ("rooms/<str:room_id>/start", views.RoomStartView, "start"),
    ("rooms/<str:room_id>/stop", views.RoomStopView, "stop"),
    ("rooms/<str:room_id>/host-link/rotate", views.RoomHostLinkRotateView, "host-link-rotate"),
    ("rooms/<str:room_id>/tokens", views.RoomTokensView, "tokens"),
    ("rooms/<str:room_id>/participants", views.RoomParticipantsView, "participants"),
    ("rooms/<str:room_id>/occurrences", occurrences.OccurrencesView, "occurrences"),
    (
        "rooms/<str:room_id>/occurrences/<str:occurrence_id>",
        occurrences.OccurrenceDetailView,
        "occurrence",
    ),
]

# Host controls (waiting room, moderation), authorised by API key, host secret or session.
ROUTES += [
    ("rooms/<str:room_id>/host/waiting", host.WaitingListView, "host-waiting"),
    ("rooms/<str:room_id>/host/waiting/admit-all", host.AdmitAllView, "host-admit-all"),
    ("rooms/<str:room_id>/host/waiting/reject-all", host.RejectAllView, "host-reject-all"),
    ("rooms/<str:room_id>/host/waiting/<str:entry_id>/admit", host.AdmitView, "host-admit"),
    ("rooms/<str:room_id>/host/waiting/<str:entry_id>/reject", host.RejectView, "host-reject"),
    ("rooms/<str:room_id>/host/mute-all", host.MuteAllView, "host-mute-all"),
    ("rooms/<str:room_id>/host/disable-video", host.DisableVideoView, "host-disable-video"),
    (
        "rooms/<str:room_id>/host/participants/<str:identity>/remove",
        host.HostRemoveView,
        "host-remove",
    ),
    ("rooms/<str:room_id>/host/start", host.StartRoomView, "host-start"),
    ("rooms/<str:room_id>/host/end", host.EndRoomView, "host-end"),
    ("rooms/<str:room_id>/host/stage", host.StageLineupView, "host-stage"),
]

# The stage: one view per operation (host.py), authorised like the other host actions.
_P = "rooms/<str:room_id>/participants"
ROUTES += [
    (f"{_P}/hands", stage.HandQueueView, "hands"),
    (f"{_P}/hands/lower-all", host.LowerAllHandsView, "hands-lower-all"),
    (f"{_P}/<str:identity>", host.ParticipantView, "participant"),
    (f"{_P}/<str:identity>/hand", stage.HandView, "participant-hand"),
    (f"{_P}/<str:identity>/invite", host.InviteView, "participant-invite"),
    (f"{_P}/<str:identity>/invite/accept", stage.AcceptInviteView, "participant-accept"),
    (f"{_P}/<str:identity>/invite/decline", stage.DeclineInviteView, "participant-decline"),
    (f"{_P}/<str:identity>/promote", host.PromoteView, "participant-promote"),
    (f"{_P}/<str:identity>/demote", host.DemoteView, "participant-demote"),
]

# Older paths of the same operations (the host page's first stage routes): aliases routed to
# the same views, left out of the schema.
_S = "rooms/<str:room_id>/host/stage"
ALIASES = [
    (f"{_S}/hands/lower-all", host.LowerAllHandsView, "host-stage-lower-all"),
    (f"{_S}/<str:identity>/invite", host.InviteView, "host-stage-invite"),
    (f"{_S}/<str:identity>/promote", host.PromoteView, "host-stage-promote"),
    (f"{_S}/<str:identity>/demote", host.DemoteView, "host-stage-demote"),
    (f"{_S}/<str:identity>/remove", host.RemoveParticipantView, "host-stage-remove"),
]
ALIAS_PREFIX = "/api/v1/rooms/{room_id}/host/stage/"

# Recordings and HLS live streams (LiveKit egress), API key only.
ROUTES += [
    ("rooms/<str:room_id>/recordings", recordings.RoomRecordingsView, "recordings"),
    (
        "rooms/<str:room_id>/recordings/<str:recording_id>/stop",
        recordings.RoomRecordingStopView,
        "recording-stop",
    ),
    ("recordings/<str:recording_id>", recordings.RecordingDetailView, "recording"),
    ("rooms/<str:room_id>/streams", recordings.RoomStreamsView, "streams"),
    (
        "rooms/<str:room_id>/streams/<str:recording_id>/stop",
        recordings.RoomStreamStopView,
        "stream-stop",
    ),
    ("rooms/<str:room_id>/host/recordings", recordings.HostRecordingsView, "host-recordings"),
    (
        "rooms/<str:room_id>/host/recordings/start",
        recordings.HostRecordingStartView,
        "host-recording-start",
    ),
    (
        "rooms/<str:room_id>/host/recordings/stop",
        recordings.HostRecordingStopView,
        "host-recording-stop",
    ),
]

# Direct calls: an end user's token for the /ws/videochat handshake.
ROUTES += [("call-tokens", calls.CallTokensView, "call-tokens")]

# Outbound webhooks, sessions and attendance, usage.
_W = "webhooks/<str:endpoint_id>"
ROUTES += [
    ("webhooks", webhooks.WebhooksView, "webhooks"),
    (_W, webhooks.WebhookDetailView, "webhook"),
    (f"{_W}/rotate", webhooks.WebhookRotateView, "webhook-rotate"),
    (f"{_W}/test", webhooks.WebhookTestView, "webhook-test"),
    (f"{_W}/replay", webhooks.WebhookReplayView, "webhook-replay"),
    (f"{_W}/deliveries", webhooks.WebhookDeliveriesView, "webhook-deliveries"),
    (
        f"{_W}/deliveries/<str:delivery_id>/replay",
        webhooks.DeliveryReplayView,
        "webhook-delivery-replay",
    ),
    ("rooms/<str:room_id>/sessions", webhooks.RoomSessionsView, "sessions"),
    (
        "rooms/<str:room_id>/sessions/<str:session_id>/attendance",
        webhooks.SessionAttendanceView,
        "session-attendance",
    ),
    ("usage", webhooks.UsageView, "usage"),
]

_DOCS_STYLES = csp_update({"style-src": ["'unsafe-inline'"]})

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Under the site's CSP: Swagger UI's setup script is served from `docs/?script` (no inline
    # script); both viewers style their widgets inline, so these two pages allow inline styles.
    path(
        "docs/",
        _DOCS_STYLES(SpectacularSwaggerSplitView.as_view(url_name="v1:schema")),
        name="docs",
    ),
    path("redoc/", _DOCS_STYLES(SpectacularRedocView.as_view(url_name="v1:schema")), name="redoc"),
]
for route, view, name in ROUTES + ALIASES:
    urlpatterns += [
        path(route, view.as_view(), name=name),
        path(f"{route}/", view.as_view(), name=f"{name}-slash"),
    ]


# Compatibility facades documented in the same schema (their paths are their references').
DOCUMENTED_FACADES = ("/api/conferences/", "/api/conferences-public/")


def schema_without_slash_aliases(endpoints, **kwargs):
    """drf-spectacular preprocessing hook: document /api/v1/ and the facades listed in
    DOCUMENTED_FACADES (their catch-all 404 routes left out), each route once."""
    return [
        e
        for e in endpoints
        if (
            e[0].startswith("/api/v1/")
            or (e[0].startswith(DOCUMENTED_FACADES) and "{rest}" not in e[0])
        )
        and not (
            e[0].startswith(
                (
                    "/api/v1/rooms",
                    "/api/v1/recordings",
                    "/api/v1/call-tokens",
                    "/api/v1/webhooks",
                    "/api/v1/usage",
                )
            )
            and e[0].endswith("/")
        )
        and not e[0].startswith(ALIAS_PREFIX)
    ]
