from django.contrib import admin
from django.urls import include, path

from conferences import recording_views
from conferences import views as conference_views
from conferences.webhooks import livekit_webhook

from . import views
from .views import overview as dashboard_overview

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # Admin signs in through allauth (its rate limits and lockout): dashboard.views.admin_login
    path("admin/login/", views.admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include("conferences.api.v1.urls")),
    path("", include("conferences.api.compat.urls")),
    path("livekit/webhook", livekit_webhook, name="livekit-webhook"),
    path("dashboard/", dashboard_overview.overview, name="dashboard"),
    path("dashboard/", include("dashboard.dashboard_urls")),
    path("brand/", include("branding.urls")),
    path("room/<str:room_id>", conference_views.join_page, name="join"),
    path("room/<str:room_id>/host/<str:secret>", conference_views.host_page, name="host"),
    path("room/<str:room_id>/state", conference_views.room_state, name="join-state"),
    path("room/<str:room_id>/password", conference_views.check_password, name="join-password"),
    path("room/<str:room_id>/email", conference_views.send_code, name="join-email"),
    path("room/<str:room_id>/code", conference_views.check_code, name="join-code"),
    path("room/<str:room_id>/join", conference_views.join, name="join-join"),
    path(
        "room/<str:room_id>/lobby/<str:entry_id>/leave",
        conference_views.leave_lobby,
        name="join-lobby-leave",
    ),
    # A webinar guest's stage actions, authorised by its join token (Bearer).
    path("room/<str:room_id>/stage/hand", conference_views.stage_hand, name="stage-hand"),
    path(
        "room/<str:room_id>/stage/invite/accept",
        conference_views.stage_accept,
        name="stage-accept",
    ),
    path(
        "room/<str:room_id>/stage/invite/decline",
        conference_views.stage_decline,
        name="stage-decline",
    ),
    path("api-tester/", conference_views.api_tester, name="api-tester"),
    # Recordings and HLS streams (conferences/recording_views.py).
    path(
        "recordings/<str:recording_id>/download",
        recording_views.download,
        name="recording-download",
    ),
    path("hls/<str:recording_id>/<str:name>", recording_views.hls_file, name="hls-file"),
    path("watch/<str:recording_id>", recording_views.watch, name="watch"),
    path(
        "recording-template/<str:room_id>",
        recording_views.recording_template,
        name="recording-template",
    ),
]
