from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import ApiKey, Membership, Plan, Tenant, User

admin.site.register(User, UserAdmin)


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "code",
        "requests_per_hour",
        "max_concurrent_rooms",
        "max_participants_per_room",
    ]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "public_id", "plan", "created_at"]
    list_filter = ["plan"]
    search_fields = ["name", "public_id"]
    inlines = [MembershipInline]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "tenant", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "key_hash", "created_at", "last_used_at"]
    list_select_related = ["tenant"]
