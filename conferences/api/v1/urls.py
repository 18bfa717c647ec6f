from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import host, occurrences, stage, views, webhooks

app_name = "v1"

# Each route answers with and without a trailing slash; the schema lists the bare form.
ROUTES = [
    ("rooms", views.RoomsView, "rooms"),
    ("rooms/<str:room_id>", views.RoomDetailView, "room"),
    ("rooms/<str:room_id>/start", views.RoomStartView, "start"),
    ("rooms/<str:room_id>/stop", views.RoomStopView, "stop"),
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
        host.RemoveParticipantView,
        "host-remove",
    ),
    ("rooms/<str:room_id>/host/start", host.StartRoomView, "host-start"),
    ("rooms/<str:room_id>/host/end", host.EndRoomView, "host-end"),
]

# The host's stage controls (webinar rooms), authorised like the other host actions.
_S = "rooms/<str:room_id>/host/stage"
ROUTES += [
    (_S, host.StageLineupView, "host-stage"),
    (f"{_S}/hands/lower-all", host.StageLowerAllView, "host-stage-lower-all"),
    (f"{_S}/<str:identity>/invite", host.StageInviteView, "host-stage-invite"),
    (f"{_S}/<str:identity>/promote", host.StagePromoteView, "host-stage-promote"),
    (f"{_S}/<str:identity>/demote", host.StageDemoteView, "host-stage-demote"),
    (f"{_S}/<str:identity>/remove", host.StageRemoveView, "host-stage-remove"),
]

# The stage (webinar raise hand / promote), API key only.
_P = "rooms/<str:room_id>/participants"
ROUTES += [
    (f"{_P}/hands", stage.HandQueueView, "hands"),
    (f"{_P}/hands/lower-all", stage.LowerAllHandsView, "hands-lower-all"),
    (f"{_P}/<str:identity>", stage.ParticipantStageView, "participant"),
    (f"{_P}/<str:identity>/hand", stage.HandView, "participant-hand"),
    (f"{_P}/<str:identity>/invite", stage.InviteView, "participant-invite"),
    (f"{_P}/<str:identity>/invite/accept", stage.AcceptInviteView, "participant-accept"),
    (f"{_P}/<str:identity>/invite/decline", stage.DeclineInviteView, "participant-decline"),
    (f"{_P}/<str:identity>/promote", stage.PromoteView, "participant-promote"),
    (f"{_P}/<str:identity>/demote", stage.DemoteView, "participant-demote"),
]

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

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="v1:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="v1:schema"), name="redoc"),
]
for route, view, name in ROUTES:
    urlpatterns += [
        path(route, view.as_view(), name=name),
        path(f"{route}/", view.as_view(), name=f"{name}-slash"),
    ]


def schema_without_slash_aliases(endpoints, **kwargs):
    """drf-spectacular preprocessing hook: document /api/v1/ only (the compatibility facades
    follow their own references), each route once."""
    return [
        e
        for e in endpoints
        if e[0].startswith("/api/v1/")
        and not (
            e[0].startswith(("/api/v1/rooms", "/api/v1/webhooks", "/api/v1/usage"))
            and e[0].endswith("/")
        )
    ]
