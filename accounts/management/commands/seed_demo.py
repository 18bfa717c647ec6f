"""Seed (or refresh) the demo tenant for `make run` and print how to use it."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from accounts import services
from accounts.models import User

DEMO_EMAIL = "admin@demo.parley.local"


class Command(BaseCommand):
    help = "Create the demo tenant if needed; print its admin login and a fresh API key."

    def handle(self, *args, **options):
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is None:
            created = services.create_tenant_with_admin(
                name="Demo", plan_code="pro", admin_email=DEMO_EMAIL
            )
            password, key = created.password, created.key
            user = created.user
            if not user.is_staff:
                user.is_staff = user.is_superuser = True
                user.save(update_fields=["is_staff", "is_superuser"])
        else:
            password = services.reset_password(user=user)
            membership = user.memberships.select_related("tenant").first()
            assert membership is not None  # the demo user owns the demo tenant
            tenant = membership.tenant
            key = services.create_api_key(tenant=tenant, name="demo (make run)")
        assert key is not None  # create_tenant_with_admin issues one
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "Demo tenant ready.",
                    f"  admin login : {DEMO_EMAIL} / {password}",
                    f"  API key     : {key.secret}",
                    "  try         : curl -X POST http://127.0.0.1:8000/api/v1/rooms "
                    f'-H "X-API-Key: {key.secret}" -H "Content-Type: application/json" '
                    '-d \'{"name": "Sales Team Meeting"}\'',
                    "",
                ]
            )
        )
