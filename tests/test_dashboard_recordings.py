"""Recordings in the dashboard: the room page's list and buttons, storage settings, usage."""

from __future__ import annotations

from accounts import crypto
from conferences.models import Recording, RecordingStorage, Room
from conferences.services import recordings as recording_services
from conferences.services import rooms as room_services
from tests.dashboard_cast import Cast


def _recording_room(cast: Cast, settings, tmp_path) -> Room:
    settings.RECORDINGS_DIR = tmp_path
    cast.tenant.plan = type(cast.tenant.plan).objects.get(code="starter")
    cast.tenant.save(update_fields=["plan"])
    Room.objects.filter(pk=cast.room.pk).update(recording_enabled=True)
    room_services.start_room(room=cast.room)
    return Room.objects.get(pk=cast.room.pk)


def test_member_starts_and_stops_and_sees_download(cast: Cast, settings, tmp_path, livekit):
    room = _recording_room(cast, settings, tmp_path)
    member = cast.client("member")
    response = member.post(f"/dashboard/rooms/{room.room_id}/recordings/start/")
    assert response.status_code == 302
    rec = Recording.objects.get()
    assert rec.status == "recording"
    page = member.get(f"/dashboard/rooms/{room.room_id}/").content.decode()
    assert "Recordings and streams" in page and "Stop</button>" in page
    member.post(f"/dashboard/rooms/{room.room_id}/recordings/{rec.recording_id}/stop/")
    rec.refresh_from_db()
    assert rec.status == "ready"
    page = member.get(f"/dashboard/rooms/{room.room_id}/").content.decode()
    assert f"/recordings/{rec.recording_id}/download?token=" in page and "Play" in page


def test_viewer_cannot_start_and_outsider_gets_404(cast: Cast, settings, tmp_path, livekit):
    room = _recording_room(cast, settings, tmp_path)
    assert (
        cast.client("viewer").post(f"/dashboard/rooms/{room.room_id}/recordings/start/").status_code
        == 403
    )
    assert (
        cast.client("outsider")
        .post(f"/dashboard/rooms/{room.room_id}/recordings/start/")
        .status_code
        == 404
    )
    rec = recording_services.start(room=room)
    stop = f"/dashboard/rooms/{room.room_id}/recordings/{rec.recording_id}/stop/"
    assert cast.client("outsider").post(stop).status_code == 404
    other = f"/dashboard/rooms/{cast.other_room.room_id}/recordings/{rec.recording_id}/stop/"
    assert cast.client("owner").post(other).status_code == 404
    assert Recording.objects.get().status == "recording"


def test_storage_settings_keep_the_secret_encrypted_and_hidden(cast: Cast):
    admin = cast.client("admin")
    data = {
        "endpoint": "https://minio.example.test",
        "region": "us-east-1",
        "bucket": "meetings",
        "key_prefix": "acme",
        "access_key": "AKIA123",
        "secret": "very-secret-key",
        "retention_days": "30",
    }
    assert admin.post("/dashboard/recordings/storage/", data).status_code == 302
    stored = RecordingStorage.objects.get(tenant=cast.tenant)
    assert stored.uses_s3 and stored.retention_days == 30
    assert "very-secret-key" not in stored.secret_encrypted
    assert crypto.decrypt(stored.secret_encrypted, purpose="storage") == "very-secret-key"
    page = admin.get("/dashboard/recordings/storage/").content.decode()
    assert "very-secret-key" not in page and "A secret key is stored" in page
    assert "meetings" in page
    # Saving without a secret keeps it.
    assert admin.post("/dashboard/recordings/storage/", {**data, "secret": ""}).status_code == 302
    assert (
        RecordingStorage.objects.get(tenant=cast.tenant).secret_encrypted == stored.secret_encrypted
    )
    # A bucket without any secret is refused with the field named.
    RecordingStorage.objects.all().delete()
    response = cast.client("owner").post("/dashboard/recordings/storage/", {**data, "secret": ""})
    assert response.status_code == 200 and "needs a secret key" in response.content.decode()
    assert not RecordingStorage.objects.exists()
    # Members and viewers cannot change it; the outsider's page is its own tenant's.
    assert cast.client("member").post("/dashboard/recordings/storage/", data).status_code == 403
    assert cast.client("viewer").post("/dashboard/recordings/storage/", data).status_code == 403
    assert (
        "meetings"
        not in cast.client("outsider").get("/dashboard/recordings/storage/").content.decode()
    )


def test_usage_page_shows_recording_minutes(cast: Cast):
    page = cast.client("owner").get("/dashboard/usage/").content.decode()
    assert "Recording minutes this month" in page and "Not included in your plan" in page
    assert "Recording minutes per month" in page and "3000" in page
