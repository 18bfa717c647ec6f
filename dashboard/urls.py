from django.contrib import admin
from django.urls import include, path

from conferences import views as conference_views

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/v1/", include("conferences.api.v1.urls")),
    path("dashboard/", views.dashboard_home, name="dashboard"),
    path("room/<str:room_id>", conference_views.join_page, name="join"),
    path("room/<str:room_id>/host/<str:secret>", conference_views.host_page, name="host"),
]
