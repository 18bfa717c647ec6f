from django.urls import path

from . import views

urlpatterns = [
    path("logo/<str:sha>", views.logo, name="brand-logo"),
]
