from django.contrib import admin

from .models import Recording, Room, RoomSession


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


@admin.register(Recording)
class RecordingAdmin(admin.ModelAdmin):
    # Read-only: recordings change through the recording service (egress reports) only.
    list_display = ["recording_id", "kind", "room_public_id", "tenant", "status", "created_at"]
    list_filter = ["status", "kind"]
    search_fields = ["recording_id", "room_public_id", "egress_id"]
    list_select_related = ["tenant"]

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
