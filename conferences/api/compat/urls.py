"""Compatibility facades, mounted at the site root (their references fix the paths)."""

from django.urls import path, re_path

from . import callaba, videosdk
from . import interactive_show as show

urlpatterns = [
    path("health", show.health, name="show-health"),
    path("api/rooms/join", show.JoinView.as_view(), name="show-join"),
    path("api/rooms", show.RoomsView.as_view(), name="show-rooms"),
    path("api/rooms/<str:room_name>", show.RoomView.as_view(), name="show-room"),
    path(
        "api/rooms/<str:room_name>/participants",
        show.ParticipantsView.as_view(),
        name="show-participants",
    ),
    path(
        "api/rooms/<str:room_name>/participants/<str:identity>",
        show.ParticipantView.as_view(),
        name="show-participant",
    ),
    path("api/rooms/<str:room_name>/invite", show.InviteView.as_view(), name="show-invite"),
    path("api/rooms/<str:room_name>/demote", show.DemoteView.as_view(), name="show-demote"),
    path(
        "api/rooms/<str:room_name>/remove-guest",
        show.RemoveGuestView.as_view(),
        name="show-remove-guest",
    ),
    path("api/rooms/<str:room_name>/hand-raise", show.HandRaiseView.as_view(), name="show-hand"),
    re_path(r"^api/rooms/(?P<rest>.*)$", show.not_found),
    # VideoSDK-compatible rooms API (reference/videosdk-create-room.txt), with or without
    # a trailing slash.
    re_path(r"^v2/rooms/?$", videosdk.RoomsView.as_view(), name="videosdk-rooms"),
    re_path(
        r"^v2/rooms/validate/(?P<room_id>[^/]+)/?$",
        videosdk.ValidateView.as_view(),
        name="videosdk-validate",
    ),
    re_path(
        r"^v2/rooms/deactivate/?$", videosdk.DeactivateView.as_view(), name="videosdk-deactivate"
    ),
    re_path(r"^v2/rooms/(?P<room_id>[^/]+)/?$", videosdk.RoomView.as_view(), name="videosdk-room"),
    re_path(r"^v2/sessions/?$", videosdk.SessionsView.as_view(), name="videosdk-sessions"),
    re_path(
        r"^v2/sessions/(?P<session_id>[^/]+)/?$",
        videosdk.SessionView.as_view(),
        name="videosdk-session",
    ),
    re_path(r"^v2/(?P<rest>.*)$", videosdk.NotFoundView.as_view()),
]

# Callaba Engine video calls (reference/callaba-video-calls.txt).
_CALLABA = "api/conferences"
urlpatterns += [
    path(f"{_CALLABA}/create", callaba.CreateView.as_view(), name="callaba-create"),
    path(f"{_CALLABA}/getCount", callaba.GetCountView.as_view(), name="callaba-get-count"),
    path(f"{_CALLABA}/getAll", callaba.GetAllView.as_view(), name="callaba-get-all"),
    path(f"{_CALLABA}/getById", callaba.GetByIdView.as_view(), name="callaba-get-by-id"),
    path(f"{_CALLABA}/update", callaba.UpdateView.as_view(), name="callaba-update"),
    path(f"{_CALLABA}/start", callaba.StartView.as_view(), name="callaba-start"),
    path(f"{_CALLABA}/stop", callaba.StopView.as_view(), name="callaba-stop"),
    path(f"{_CALLABA}/remove", callaba.RemoveView.as_view(), name="callaba-remove"),
    path(
        f"{_CALLABA}-public/findLKRoomNameById",
        callaba.FindLKRoomNameView.as_view(),
        name="callaba-find-lk-room-name",
    ),
    path(
        f"{_CALLABA}-public/createToken",
        callaba.CreateTokenView.as_view(),
        name="callaba-create-token",
    ),
    re_path(r"^api/conferences(?:-public)?/(?P<rest>.*)$", callaba.not_found),
]
