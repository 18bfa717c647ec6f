"""`manage.py create_tenant NAME --plan PLAN --admin-email EMAIL [--json]`."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from accounts import services


class Command(BaseCommand):
    help = "Create a tenant, its admin user and one API key."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--plan", default="free", choices=["free", "starter", "pro", "enterprise"]
        )
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--json", action="store_true", help="print exactly one JSON line")

    def handle(self, *args, **options):
        try:
            created = services.create_tenant_with_admin(
                name=options["name"], plan_code=options["plan"], admin_email=options["admin_email"]
            )
        except services.AccountError as exc:
            raise CommandError(exc.message) from None
        result = {
            "tenant": created.tenant.name,
            "tenant_id": created.tenant.public_id,
            "plan": created.tenant.plan.code,
            "api_key": created.key.secret if created.key else None,
            "admin_email": created.user.email,
            "admin_password": created.password,
        }
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            for key, value in result.items():
                self.stdout.write(f"{key}: {value}")
