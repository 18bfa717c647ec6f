from django.contrib import admin

from .models import Brand


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    list_display = ["tenant", "product_name", "white_label", "updated_at"]
    list_select_related = ["tenant"]
