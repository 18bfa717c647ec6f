from django.contrib import admin

from .models import Room, RoomSession


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["name", "room_id", "tenant", "room_type", "status", "created_at"]
    list_filter = ["status", "room_type", "media_type"]
    search_fields = ["name", "room_id"]
    list_select_related = ["tenant"]
    exclude = ["password_hash", "host_secret"]
    readonly_fields = ["room_id", "number", "live_since", "started_at", "ended_at"]


@admin.register(RoomSession)
class RoomSessionAdmin(admin.ModelAdmin):
    list_display = ["room", "started_at", "ended_at"]
    list_select_related = ["room"]
