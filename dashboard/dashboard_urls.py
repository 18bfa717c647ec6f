"""Routes of the tenant dashboard, under /dashboard/ (namespace `dash`; the overview is also
named `dashboard`)."""

from django.urls import path

from .views import branding, calls, overview, recordings, rooms, schedule, team, webhooks

app_name = "dash"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("live", overview.live, name="live"),
    path("welcome/", team.welcome, name="welcome"),
    path("switch/", team.switch, name="switch"),
    path("workspaces/new/", team.workspace_create, name="workspace-create"),
    path("settings/", team.workspace, name="settings"),
    # rooms
    path("rooms/", rooms.room_list, name="rooms"),
    path("rooms/new/", rooms.room_create, name="room-create"),
    path("rooms/<str:room_id>/", rooms.room_detail, name="room"),
    path("rooms/<str:room_id>/edit/", rooms.room_edit, name="room-edit"),
    path("rooms/<str:room_id>/participants/", rooms.room_participants, name="room-participants"),
    path("rooms/<str:room_id>/start/", rooms.room_start, name="room-start"),
    path("rooms/<str:room_id>/stop/", rooms.room_stop, name="room-stop"),
    path(
        "rooms/<str:room_id>/host-link/rotate/",
        rooms.room_host_link_rotate,
        name="room-host-link-rotate",
    ),
    path("rooms/<str:room_id>/delete/", rooms.room_delete, name="room-delete"),
    path("rooms/<str:room_id>/mute/", rooms.room_mute_all, name="room-mute"),
    path(
        "rooms/<str:room_id>/participants/<str:identity>/remove/",
        rooms.participant_remove,
        name="participant-remove",
    ),
    path(
        "rooms/<str:room_id>/participants/<str:identity>/stage/",
        rooms.participant_stage,
        name="participant-stage",
    ),
    # recordings
    path(
        "rooms/<str:room_id>/recordings/start/",
        recordings.recording_start,
        name="recording-start",
    ),
    path(
        "rooms/<str:room_id>/recordings/<str:recording_id>/stop/",
        recordings.recording_stop,
        name="recording-stop",
    ),
    path("recordings/storage/", recordings.storage_settings, name="recording-storage"),
    # direct calls (the videochat handshake)
    path("calls/", calls.call_list, name="calls"),
    path("calls/<str:call_id>/", calls.call_detail, name="call"),
    path("rooms/<str:room_id>/sessions/", webhooks.room_sessions, name="room-sessions"),
    path(
        "rooms/<str:room_id>/sessions/<str:session_id>/attendance.csv",
        webhooks.attendance_csv,
        name="attendance-csv",
    ),
    # schedule
    path("schedule/", schedule.schedule, name="schedule"),
    # API keys
    path("api-keys/", team.api_keys, name="api-keys"),
    path("api-keys/<str:prefix>/revoke/", team.api_key_revoke, name="api-key-revoke"),
    path("api-keys/<str:prefix>/rename/", team.api_key_rename, name="api-key-rename"),
    # VideoSDK-style signing keys (JWTs of the /v2 API)
    path("api-keys/signing/", team.signing_key_create, name="signing-key-create"),
    path(
        "api-keys/signing/<str:key_id>/revoke/",
        team.signing_key_revoke,
        name="signing-key-revoke",
    ),
    # members
    path("members/", team.members, name="members"),
    path("members/<int:member_id>/role/", team.member_role, name="member-role"),
    path("members/<int:member_id>/remove/", team.member_remove, name="member-remove"),
    path("invitations/<str:public_id>/revoke/", team.invitation_revoke, name="invitation-revoke"),
    path("invitations/<str:token>/", team.invitation_accept, name="invitation"),
    # plan and usage
    path("usage/", team.plan_usage, name="usage"),
    # webhooks
    path("webhooks/", webhooks.webhook_list, name="webhooks"),
    path("webhooks/<str:endpoint_id>/", webhooks.webhook_detail, name="webhook"),
    path("webhooks/<str:endpoint_id>/rotate/", webhooks.webhook_rotate, name="webhook-rotate"),
    path("webhooks/<str:endpoint_id>/test/", webhooks.webhook_test, name="webhook-test"),
    path("webhooks/<str:endpoint_id>/toggle/", webhooks.webhook_toggle, name="webhook-toggle"),
    path("webhooks/<str:endpoint_id>/delete/", webhooks.webhook_delete, name="webhook-delete"),
    path("webhooks/<str:endpoint_id>/replay/", webhooks.webhook_replay, name="webhook-replay"),
    path(
        "webhooks/<str:endpoint_id>/deliveries/<str:delivery_id>/replay/",
        webhooks.delivery_replay,
        name="webhook-delivery-replay",
    ),
    # branding
    path("branding/", branding.branding, name="branding"),
    path("branding/logo/", branding.logo_remove, name="branding-logo-remove"),
    path("branding/domain/", branding.domain_add, name="domain-add"),
    path("branding/domain/verify/", branding.domain_verify, name="domain-verify"),
    path("branding/domain/remove/", branding.domain_remove, name="domain-remove"),
]
