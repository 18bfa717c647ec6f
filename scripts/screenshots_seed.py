"""Demo data for `make screenshots` (run inside `manage.py shell -c`, in the screenshot
server's temporary database). Prints a JSON line: the owner's session and the live rooms."""

import datetime as dt
import json
import math

from allauth.account.models import EmailAddress
from django.test import Client
from django.utils import timezone

from accounts import services as account_services
from accounts.models import Membership, Tenant, UsageDay, User
from branding.models import Brand
from conferences.api.v1.serializers import RoomInputSerializer
from conferences.models import Attendance, RoomSession
from conferences.services import rooms as room_services

tenant = Tenant.objects.order_by("-pk").first()
Tenant.objects.filter(pk=tenant.pk).update(name="Northwind Studio", timezone="Europe/Berlin")
tenant.refresh_from_db()
owner = User.objects.filter(memberships__tenant=tenant).order_by("pk").first()


def room(**data):
    s = RoomInputSerializer(data=data, context={"tenant": tenant})
    assert s.is_valid(), s.errors
    return room_services.create_room(tenant=tenant, data=s.validated_data)


now = timezone.now().replace(microsecond=0)
monday = (now - dt.timedelta(days=now.weekday())).replace(hour=8, minute=0, second=0)
room(
    name="Weekly all-hands",
    room_type="scheduled",
    start_time=(monday + dt.timedelta(days=7)).isoformat(),
    end_time=(monday + dt.timedelta(days=7, hours=1)).isoformat(),
    recurring=True,
    recurrence="FREQ=WEEKLY;BYDAY=MO",
    max_participants=100,
)
room(
    name="Design critique",
    room_type="scheduled",
    start_time=(monday + dt.timedelta(days=2, hours=6)).isoformat(),
    recurring=True,
    recurrence="FREQ=WEEKLY;BYDAY=WE,FR;COUNT=12",
    allow_webinar_mode=False,
)
room(
    name="Investor update (webinar)",
    room_type="scheduled",
    allow_webinar_mode=True,
    max_participants=500,
    start_time=(now + dt.timedelta(days=9)).replace(hour=15, minute=0).isoformat(),
)
for name in [
    "Customer onboarding",
    "Support escalations",
    "Audio briefing: ops",
    "Sales pipeline review",
    "Recorded speaker room",
    "Hiring panel",
]:
    room(
        name=name,
        media_type="audio" if "Audio" in name else "both",
        recording_enabled="Recorded" in name,
        access_type="password" if "Hiring" in name else "public",
        **({"password": "panel-2026"} if "Hiring" in name else {}),
    )
live = [room(name="Product standup"), room(name="Partner sync", waiting_room_enabled=True)]
for r in live:
    room_services.start_room(room=r)
for email, role in [
    ("maria@northwind.test", "admin"),
    ("sam@northwind.test", "member"),
    ("auditor@northwind.test", "viewer"),
]:
    u = User.objects.create_user(
        username=email.split("@")[0], email=email, password="x-Long-pass-1"
    )
    EmailAddress.objects.create(user=u, email=email, verified=True, primary=True)
    Membership.objects.create(user=u, tenant=tenant, role=role)
actor = Membership.objects.get(user=owner, tenant=tenant)
account_services.invite_member(
    actor=actor,
    tenant=tenant,
    email="li@northwind.test",
    role="member",
    base_url="http://127.0.0.1",
)
account_services.create_api_key(tenant=tenant, name="Production backend")
today = now.date()
for i in range(30):
    minutes = (
        int(400 + 300 * math.sin(i / 3.0) + 25 * i)
        if (today - dt.timedelta(days=i)).weekday() < 5
        else 40
    )
    UsageDay.objects.create(
        tenant=tenant,
        day=today - dt.timedelta(days=i),
        participant_minutes=max(minutes, 0),
        room_minutes=max(minutes // 6, 0),
        peak_participants=12 + i % 7,
    )
    # Participant-minutes come from attendance: that day's stays, in parallel from 08:00.
    start = dt.datetime.combine(today - dt.timedelta(days=i), dt.time(8), tzinfo=dt.UTC)
    if i == 0 or start + dt.timedelta(minutes=300) > now:
        continue
    day_session = RoomSession.objects.create(
        room=live[0], started_at=start, ended_at=start + dt.timedelta(minutes=300)
    )
    left, n = max(minutes, 0), 0
    while left > 0:
        stay = min(left, 300)
        Attendance.objects.create(
            tenant=tenant, session=day_session, participant_sid=f"PA_seed_{i}_{n}",
            identity=f"guest-{n}", name=f"Guest {n}", joined_at=start,
            left_at=start + dt.timedelta(minutes=stay), left_by="left",
        )  # fmt: skip
        left, n = left - stay, n + 1
Brand.objects.update_or_create(
    tenant=tenant,
    defaults={
        "product_name": "Northwind Meet",
        "primary_color": "#0b5cad",
        "accent_color": "#0f766e",
    },
)
client = Client()
client.force_login(owner)
print(
    json.dumps(
        {
            "session": client.cookies["sessionid"].value,
            "live": [r.room_id for r in live],
            "room": live[0].room_id,
        }
    )
)
