"""The four plans of videochatapi-v1.txt "Rate Limits" (None = unlimited)."""

from django.db import migrations

PLANS = [
    # code, name, requests/hour, concurrent rooms, participants/room
    ("free", "Free", 100, 5, 10),
    ("starter", "Starter", 1000, 25, 50),
    ("pro", "Pro", 10000, 100, 100),
    ("enterprise", "Enterprise", None, None, 1000),
]


def seed(apps, schema_editor):
    Plan = apps.get_model("accounts", "Plan")
    for order, (code, name, rph, rooms, participants) in enumerate(PLANS):
        Plan.objects.update_or_create(
            code=code,
            defaults={
                "name": name,
                "requests_per_hour": rph,
                "max_concurrent_rooms": rooms,
                "max_participants_per_room": participants,
                "sort_order": order,
            },
        )


def unseed(apps, schema_editor):
    apps.get_model("accounts", "Plan").objects.filter(code__in=[p[0] for p in PLANS]).delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
