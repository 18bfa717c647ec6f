from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import occurrences, views

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
    """drf-spectacular preprocessing hook: document each route once."""
    return [e for e in endpoints if not (e[0].startswith("/api/v1/rooms") and e[0].endswith("/"))]
