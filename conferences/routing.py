"""Websocket routes (consumers are added by the live features)."""

from django.urls import path

from . import consumers, videochat

websocket_urlpatterns: list = [
    path("ws/rooms/<str:room_id>/status", consumers.RoomStatusConsumer.as_asgi()),
    path("ws/rooms/<str:room_id>/lobby/<str:entry_id>", consumers.LobbyConsumer.as_asgi()),
    path("ws/rooms/<str:room_id>/host", consumers.HostConsumer.as_asgi()),
    path("ws/rooms/<str:room_id>/stage", consumers.StageConsumer.as_asgi()),
    # Direct calls: the videochat handshake (reference videochat-handshake-ws.txt).
    path("ws/videochat", videochat.VideochatConsumer.as_asgi()),
]
