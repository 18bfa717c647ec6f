from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import views

app_name = "v1"

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="v1:schema"), name="docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="v1:schema"), name="redoc"),
    re_path(r"^rooms/?$", views.RoomsView.as_view(), name="rooms"),
    re_path(r"^rooms/(?P<room_id>[^/]+)/?$", views.RoomDetailView.as_view(), name="room"),
    re_path(r"^rooms/(?P<room_id>[^/]+)/start/?$", views.RoomStartView.as_view(), name="start"),
    re_path(r"^rooms/(?P<room_id>[^/]+)/stop/?$", views.RoomStopView.as_view(), name="stop"),
    re_path(r"^rooms/(?P<room_id>[^/]+)/tokens/?$", views.RoomTokensView.as_view(), name="tokens"),
    re_path(
        r"^rooms/(?P<room_id>[^/]+)/participants/?$",
        views.RoomParticipantsView.as_view(),
        name="participants",
    ),
]
