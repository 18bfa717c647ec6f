"""Websocket routes (consumers are added by the live features)."""

websocket_urlpatterns: list = []
