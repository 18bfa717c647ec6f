"""GET /api/v1/rooms: filters, pagination, sorting, and a constant number of queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conferences.models import Recording, Room
from conferences.services import recordings as recording_services
from conferences.services import rooms as room_services
from tests.conftest import Api, assert_error


def make_rooms(tenant, specs):
    rooms = []
    for spec in specs:
        rooms.append(room_services.create_room(tenant=tenant, data=spec))
    return rooms


def test_empty_list_shape(api):
    response = api.get("/api/v1/rooms")
    assert response.status_code == 200
    assert response.json() == {"rooms": [], "total": 0, "limit": 20, "offset": 0}


def test_default_order_is_newest_first_and_limit_20(owner, api):
    make_rooms(owner.tenant, [{"name": f"Room {i:02d}"} for i in range(25)])
    body = api.get("/api/v1/rooms").json()
    assert body["total"] == 25 and body["limit"] == 20 and body["offset"] == 0
    assert [r["name"] for r in body["rooms"]] == [f"Room {i:02d}" for i in range(24, 4, -1)]


def test_offset_and_limit_page_through_everything_once(owner, api):
    make_rooms(owner.tenant, [{"name": f"Room {i:02d}"} for i in range(7)])
    seen = []
    for offset in range(0, 9, 3):
        body = api.get(f"/api/v1/rooms?limit=3&offset={offset}").json()
        assert body["limit"] == 3 and body["offset"] == offset and body["total"] == 7
        seen += [r["room_id"] for r in body["rooms"]]
    assert len(seen) == 7 and len(set(seen)) == 7
    assert api.get("/api/v1/rooms?offset=100").json()["rooms"] == []


def test_sort_by_name_both_ways(owner, api):
    make_rooms(owner.tenant, [{"name": n} for n in ["Charlie", "alpha", "Bravo"]])
    asc = [r["name"] for r in api.get("/api/v1/rooms?sort=name&order=asc").json()["rooms"]]
    desc = [r["name"] for r in api.get("/api/v1/rooms?sort=name&order=desc").json()["rooms"]]
    assert asc == sorted(asc) and desc == list(reversed(asc))


def test_sort_by_start_time_puts_unscheduled_last(owner, api):
    base = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    make_rooms(
        owner.tenant,
        [
            {"name": "late", "room_type": "scheduled", "start_time": base + dt.timedelta(days=2)},
            {"name": "none"},
            {"name": "early", "room_type": "scheduled", "start_time": base},
        ],
    )
    asc = [r["name"] for r in api.get("/api/v1/rooms?sort=start_time&order=asc").json()["rooms"]]
    desc = [r["name"] for r in api.get("/api/v1/rooms?sort=start_time").json()["rooms"]]
    assert asc == ["early", "late", "none"]
    assert desc == ["late", "early", "none"]


def test_sort_by_created_at_ascending(owner, api):
    make_rooms(owner.tenant, [{"name": f"Room {i}"} for i in range(3)])
    body = api.get("/api/v1/rooms?sort=created_at&order=asc").json()
    assert [r["name"] for r in body["rooms"]] == ["Room 0", "Room 1", "Room 2"]


def test_filters_by_status_and_room_type(owner, api):
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    make_rooms(
        owner.tenant,
        [
            {"name": "temp"},
            {"name": "perm", "room_type": "permanent"},
            {"name": "sched", "room_type": "scheduled", "start_time": start},
        ],
    )
    Room.objects.filter(name="perm").update(status=Room.Status.COMPLETED)

    def names(query):
        return sorted(r["name"] for r in api.get(f"/api/v1/rooms?{query}").json()["rooms"])

    assert names("status=active") == ["temp"]
    assert names("status=completed") == ["perm"]
    assert names("status=scheduled") == ["sched"]
    assert names("room_type=permanent") == ["perm"]
    assert names("room_type=scheduled&status=scheduled") == ["sched"]
    assert names("room_type=temporary&status=completed") == []
    assert api.get("/api/v1/rooms?status=active").json()["total"] == 1


def test_list_only_shows_own_rooms(owner, outsider, api):
    make_rooms(outsider.tenant, [{"name": "Their room"}])
    make_rooms(owner.tenant, [{"name": "Our room"}])
    body = api.get("/api/v1/rooms").json()
    assert [r["name"] for r in body["rooms"]] == ["Our room"] and body["total"] == 1


@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("limit=-1", "limit"),
        ("offset=-1", "offset"),
        ("offset=x", "offset"),
        ("sort=size", "sort"),
        ("order=up", "order"),
        ("status=live", "status"),
        ("room_type=forever", "room_type"),
    ],
)
def test_bad_query_parameters(api, query, field):
    assert_error(api.get(f"/api/v1/rooms?{query}"), 400, "INVALID_PARAMETER", field)


@pytest.mark.parametrize("count", [1, 100])
def test_query_count_is_constant(owner, api, count):
    make_rooms(owner.tenant, [{"name": f"Room {i:03d}"} for i in range(count)])
    api.get("/api/v1/rooms")  # first request records the key's last-used time
    with CaptureQueriesContext(connection) as queries:
        response = api.get("/api/v1/rooms?limit=100")
    assert response.status_code == 200 and len(response.json()["rooms"]) == count
    # (the API key with its tenant and plan: from the hot cache the first request filled)
    # 1. COUNT(*) of the tenant's rooms
    # 2. the page of rooms
    # 3. the schedules of those rooms (prefetched, for `recurrence`)
    # 4. the running HLS streams of those rooms (for `hls_playlist_url`)
    assert len(queries) == 4, [q["sql"] for q in queries]
    assert all(room["hls_playlist_url"] is None for room in response.json()["rooms"])


@pytest.mark.parametrize("count", [1, 4])
def test_query_count_is_constant_with_streams_on_s3(pro, livekit, count):
    """Every room streams to the tenant's S3 target: its storage is read once, not per room."""
    api = Api(pro.api_key)
    recording_services.update_storage(
        tenant=pro.tenant,
        endpoint="https://s3.example.test",
        region="eu-west-1",
        bucket="calls",
        prefix="",
        access_key="AKIA",
        secret="secret",
        retention_days=7,
    )
    rooms = make_rooms(pro.tenant, [{"name": f"Room {i}"} for i in range(count)])
    streams = {}
    for room in rooms:
        room_services.start_room(room=room)
        stream = recording_services.start(room=room, kind=Recording.Kind.HLS)
        streams[room.room_id] = stream.file_path
    api.get("/api/v1/rooms")
    with CaptureQueriesContext(connection) as queries:
        response = api.get("/api/v1/rooms?limit=100")
    # 1-4 as above, then 5. the tenant's storage target, once for every S3 stream
    assert len(queries) == 5, [q["sql"] for q in queries]
    urls = {r["room_id"]: r["hls_playlist_url"] for r in response.json()["rooms"]}
    assert urls == {
        rid: f"https://s3.example.test/calls/{path}/live.m3u8" for rid, path in streams.items()
    }
