"""Recordings and HLS streams through LiveKit egress, against the LiveKit double."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlparse

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import Client
from django.utils import timezone
from livekit.protocol import egress as proto_egress

from accounts.models import Plan
from conferences import events
from conferences.models import Occurrence, Recording, RecordingStorage, Room, RoomSession
from conferences.services import recordings as recording_services
from conferences.services import rooms as room_services
from conferences.services.errors import InvalidInput
from tests.conftest import Api, assert_error, make_member


@pytest.fixture
def starter(db):
    return make_member("Rec Co", plan="starter")


@pytest.fixture
def rapi(starter):
    return Api(starter.api_key)


@pytest.fixture(autouse=True)
def _recordings_dir(settings, tmp_path):
    settings.RECORDINGS_DIR = tmp_path / "recordings"
    settings.RECORDINGS_EGRESS_DIR = "/out"
    settings.PUBLIC_BASE_URL = "http://parley.test"


def live_room(api, **body) -> dict:
    room = api.post("/api/v1/rooms", {"name": "Recorded", "recording_enabled": True, **body})
    assert room.status_code == 201, room.content
    room_id = room.json()["room_id"]
    assert api.post(f"/api/v1/rooms/{room_id}/start").status_code == 200
    return room.json()


def egress_request(livekit) -> proto_egress.RoomCompositeEgressRequest:
    calls = livekit.calls_to("StartRoomCompositeEgress")
    assert calls, "no egress started"
    return calls[-1].request


class TestStartStopList:
    @pytest.mark.parametrize(
        "layout, lk_layout, template",
        [
            ("grid", "grid", False),
            ("speaker", "speaker", False),
            ("single-speaker", "single-speaker", False),
            ("grid+chat", "grid", True),
        ],
    )
    def test_start_maps_layout_and_stop(self, rapi, livekit, layout, lk_layout, template):
        room = live_room(rapi)
        rid = room["room_id"]
        response = rapi.post(f"/api/v1/rooms/{rid}/recordings", {"layout": layout})
        assert response.status_code == 201, response.content
        rec = response.json()
        assert rec["status"] == "recording" and rec["layout"] == layout
        assert rec["recording_id"].startswith("rec_") and rec["egress_id"].startswith("EG_")
        assert rec["download_url"] is None and rec["started_at"]
        request = egress_request(livekit)
        assert request.room_name == rid and request.layout == lk_layout
        assert bool(request.custom_base_url) is template
        if template:
            assert request.custom_base_url.startswith(
                f"http://parley.test/recording-template/{rid}?layout=grid%2Bchat&sig="
            )
        out = request.file_outputs[0]
        assert out.file_type == proto_egress.MP4
        assert out.filepath.startswith("/out/") and out.filepath.endswith(
            f"/{rid}/{rec['recording_id']}.mp4"
        )
        assert request.preset == proto_egress.H264_1080P_30  # quality med, landscape

        listed = rapi.get(f"/api/v1/rooms/{rid}/recordings").json()["recordings"]
        assert [r["recording_id"] for r in listed] == [rec["recording_id"]]

        stopped = rapi.post(f"/api/v1/rooms/{rid}/recordings/{rec['recording_id']}/stop")
        assert stopped.status_code == 200, stopped.content
        body = stopped.json()
        assert body["status"] == "ready" and body["size"] == 1_048_576
        assert body["ended_at"] and body["duration"] is not None
        assert body["download_url"].startswith(
            f"http://parley.test/recordings/{rec['recording_id']}/download?token="
        )
        assert livekit.get_egress(rec["egress_id"]).status == proto_egress.EGRESS_COMPLETE
        again = rapi.get(f"/api/v1/recordings/{rec['recording_id']}").json()
        assert again["status"] == "ready"

    @pytest.mark.parametrize(
        "options, preset, file_type",
        [
            ({"quality": "low"}, proto_egress.H264_720P_30, proto_egress.MP4),
            ({"quality": "high"}, proto_egress.H264_1080P_60, proto_egress.MP4),
            (
                {"quality": "high", "orientation": "portrait"},
                proto_egress.PORTRAIT_H264_1080P_60,
                proto_egress.MP4,
            ),
            ({"audio_only": True}, proto_egress.H264_1080P_30, proto_egress.OGG),
        ],
    )
    def test_quality_orientation_audio(self, rapi, livekit, options, preset, file_type):
        rid = live_room(rapi)["room_id"]
        assert rapi.post(f"/api/v1/rooms/{rid}/recordings", options).status_code == 201
        request = egress_request(livekit)
        assert request.preset == preset
        assert request.audio_only is bool(options.get("audio_only"))
        assert request.file_outputs[0].file_type == file_type

    def test_room_defaults_are_used_without_a_body(self, rapi, livekit, starter):
        rid = live_room(rapi)["room_id"]
        Room.objects.filter(room_id=rid).update(
            recording_layout="speaker",
            recording_options={"quality": "low", "theme": "LIGHT"},
        )
        rec = rapi.post(f"/api/v1/rooms/{rid}/recordings").json()
        assert rec["layout"] == "speaker" and rec["quality"] == "low"
        assert egress_request(livekit).layout == "speaker-light"


class TestVocabularies:
    """The facades' words, mapped onto Parley's layouts and options in one place."""

    @pytest.mark.parametrize(
        "mode, layout, lk_layout",
        [
            ("ROOM_COMPOSITE_GRID", "grid", "grid"),
            ("ROOM_COMPOSITE_SPEAKER", "speaker", "speaker"),
            ("ROOM_COMPOSITE_AND_CHAT", "grid+chat", "grid"),
        ],
    )
    def test_callaba(self, rapi, starter, livekit, mode, layout, lk_layout):
        rid = live_room(rapi)["room_id"]
        room = Room.objects.get(room_id=rid)
        assert recording_services.layout_from_callaba(mode) == layout
        rec = recording_services.start(
            room=room, layout=recording_services.layout_from_callaba(mode)
        )
        assert rec.layout == layout and egress_request(livekit).layout == lk_layout
        recording_services.stop(recording=rec)
        assert Recording.objects.get(pk=rec.pk).status == "ready"

    @pytest.mark.parametrize(
        "kind, layout, lk_layout",
        [
            ("GRID", "grid", "grid"),
            ("SPOTLIGHT", "single-speaker", "single-speaker"),
            ("SIDEBAR", "speaker", "speaker"),
        ],
    )
    def test_videosdk(self, rapi, starter, livekit, kind, layout, lk_layout):
        rid = live_room(rapi)["room_id"]
        room = Room.objects.get(room_id=rid)
        options = recording_services.videosdk_options(
            {
                "mode": "audio",
                "quality": "high",
                "orientation": "portrait",
                "layout": {"type": kind, "priority": "PIN", "gridSize": 4},
                "awsDirPath": "calls/",
            }
        )
        assert options == {
            "audio_only": True,
            "quality": "high",
            "orientation": "portrait",
            "priority": "PIN",
            "grid_size": 4,
            "prefix": "calls",
        }
        rec = recording_services.start(
            room=room, layout=recording_services.layout_from_videosdk(kind), options=options
        )
        request = egress_request(livekit)
        assert request.layout == lk_layout and request.audio_only
        assert request.preset == proto_egress.PORTRAIT_H264_1080P_60
        assert f"/calls/{rid}/{rec.recording_id}.ogg" in request.file_outputs[0].filepath
        # gridSize and priority are honoured by Parley's template page (LiveKit's built-in
        # layouts have neither).
        template = urlparse(request.custom_base_url)
        assert template.path == f"/recording-template/{rid}"
        query = parse_qs(template.query)
        assert query["grid_size"] == ["4"] and query["priority"] == ["PIN"]
        page = Client().get(f"{template.path}?{template.query}")
        assert page.status_code == 200
        config = page.context["config"]
        assert config["gridSize"] == 4 and config["priority"] == "PIN"
        listed = recording_services.for_room(room)
        assert [r.recording_id for r in listed] == [rec.recording_id]

    def test_unknown_words_are_refused(self):
        with pytest.raises(InvalidInput) as exc:
            recording_services.layout_from_callaba("ROOM_COMPOSITE_MOSAIC")
        assert exc.value.field == "record_mode"
        with pytest.raises(InvalidInput):
            recording_services.layout_from_videosdk("PIP")
        with pytest.raises(InvalidInput) as exc:
            recording_services.videosdk_options({"layout": {"gridSize": 9}})
        assert exc.value.field == "grid_size"


class TestBadInput:
    def test_unknown_layout_and_options(self, rapi, livekit):
        rid = live_room(rapi)["room_id"]
        url = f"/api/v1/rooms/{rid}/recordings"
        assert_error(rapi.post(url, {"layout": "mosaic"}), 400, "INVALID_PARAMETER", "layout")
        assert_error(rapi.post(url, {"quality": "4k"}), 400, "INVALID_PARAMETER", "quality")
        assert_error(rapi.post(url, {"audio_only": "yes"}), 400, "INVALID_PARAMETER", "audio_only")
        assert_error(rapi.post(url, {"bitrate": 5}), 400, "INVALID_PARAMETER", "bitrate")
        assert_error(rapi.post(url, [1]), 400, "INVALID_PARAMETER")
        assert livekit.calls_to("StartRoomCompositeEgress") == []
        assert not Recording.objects.exists()

    def test_room_without_recording_enabled_is_403(self, rapi, livekit):
        rid = live_room(rapi, recording_enabled=False)["room_id"]
        response = rapi.post(f"/api/v1/rooms/{rid}/recordings")
        assert_error(response, 403, "RECORDING_DISABLED", "recording_enabled")
        assert not Recording.objects.exists()

    def test_room_not_live_is_409(self, rapi, livekit):
        room = rapi.post("/api/v1/rooms", {"name": "Idle", "recording_enabled": True}).json()
        response = rapi.post(f"/api/v1/rooms/{room['room_id']}/recordings")
        assert_error(response, 409, "ROOM_NOT_LIVE")

    def test_second_recording_is_409_and_stop_of_finished_is_409(self, rapi, livekit):
        rid = live_room(rapi)["room_id"]
        first = rapi.post(f"/api/v1/rooms/{rid}/recordings").json()
        second = rapi.post(f"/api/v1/rooms/{rid}/recordings")
        assert_error(second, 409, "RECORDING_IN_PROGRESS")
        assert len(livekit.calls_to("StartRoomCompositeEgress")) == 1
        stop_url = f"/api/v1/rooms/{rid}/recordings/{first['recording_id']}/stop"
        assert rapi.post(stop_url).status_code == 200
        assert_error(rapi.post(stop_url), 409, "RECORDING_NOT_ACTIVE")
        # A new one may start once the first has ended.
        assert rapi.post(f"/api/v1/rooms/{rid}/recordings").status_code == 201

    def test_livekit_unavailable_is_503_with_nothing_written(self, rapi, livekit):
        rid = live_room(rapi)["room_id"]
        livekit.fail_with(503, "unavailable")
        response = rapi.post(f"/api/v1/rooms/{rid}/recordings")
        assert_error(response, 503, "LIVEKIT_UNAVAILABLE")
        assert not Recording.objects.exists()
        livekit.clear_failures()
        rec = rapi.post(f"/api/v1/rooms/{rid}/recordings").json()
        livekit.down()
        stop_url = f"/api/v1/rooms/{rid}/recordings/{rec['recording_id']}/stop"
        assert_error(rapi.post(stop_url), 503, "LIVEKIT_UNAVAILABLE")
        assert Recording.objects.get().status == "recording"  # unchanged
        livekit.up()
        assert rapi.post(stop_url).json()["status"] == "ready"

    def test_outsider_gets_404(self, rapi, livekit, outsider):
        rid = live_room(rapi)["room_id"]
        rec = rapi.post(f"/api/v1/rooms/{rid}/recordings").json()
        other = Api(outsider.api_key)
        assert_error(other.get(f"/api/v1/recordings/{rec['recording_id']}"), 404, "NOT_FOUND")
        assert_error(other.get(f"/api/v1/rooms/{rid}/recordings"), 404, "NOT_FOUND")
        assert_error(other.post(f"/api/v1/rooms/{rid}/recordings"), 404, "NOT_FOUND")
        stop = other.post(f"/api/v1/rooms/{rid}/recordings/{rec['recording_id']}/stop")
        assert_error(stop, 404, "NOT_FOUND")
        assert Recording.objects.get().status == "recording"


class TestPlanMinutes:
    def test_free_plan_records_nothing(self, api, livekit):
        rid = live_room(api)["room_id"]
        response = api.post(f"/api/v1/rooms/{rid}/recordings")
        assert_error(response, 403, "PLAN_LIMIT_EXCEEDED")
        assert livekit.calls_to("StartRoomCompositeEgress") == []

    def test_starter_minutes_used_up(self, rapi, starter, livekit):
        assert starter.tenant.plan.recording_minutes_per_month == 300
        rid = live_room(rapi)["room_id"]
        room = Room.objects.get(room_id=rid)
        now = timezone.now()
        Recording.objects.create(
            tenant=starter.tenant,
            room=room,
            room_public_id=rid,
            layout="grid",
            status="ready",
            started_at=now - dt.timedelta(minutes=10, seconds=5),
            ended_at=now,
        )
        assert recording_services.minutes_used(starter.tenant) == 10
        Plan.objects.filter(code="starter").update(recording_minutes_per_month=10)
        assert_error(rapi.post(f"/api/v1/rooms/{rid}/recordings"), 403, "PLAN_LIMIT_EXCEEDED")
        assert livekit.calls_to("StartRoomCompositeEgress") == []
        Plan.objects.filter(code="starter").update(recording_minutes_per_month=11)
        assert rapi.post(f"/api/v1/rooms/{rid}/recordings").status_code == 201

    def test_running_recordings_stop_when_the_minutes_run_out(self, rapi, starter, livekit):
        rid = live_room(rapi)["room_id"]
        rec = rapi.post(f"/api/v1/rooms/{rid}/recordings").json()
        assert recording_services.reconcile()["over_plan"] == 0
        now = timezone.now()
        Recording.objects.create(  # earlier this month
            tenant=starter.tenant,
            room_public_id=rid,
            layout="grid",
            status="ready",
            started_at=now - dt.timedelta(minutes=5, seconds=5),
            ended_at=now,
        )
        Plan.objects.filter(code="starter").update(recording_minutes_per_month=5)
        assert recording_services.reconcile()["over_plan"] == 1
        assert Recording.objects.get(recording_id=rec["recording_id"]).status == "ready"
        assert livekit.get_egress(rec["egress_id"]).status == proto_egress.EGRESS_COMPLETE

    def test_enterprise_is_unlimited(self, livekit, db):
        member = make_member("Big Co", plan="enterprise")
        big = Api(member.api_key)
        rid = live_room(big)["room_id"]
        assert member.tenant.plan.recording_minutes_per_month is None
        assert big.post(f"/api/v1/rooms/{rid}/recordings").status_code == 201


class TestRoomEnds:
    def test_stopping_the_room_stops_its_egress(self, rapi, livekit):
        rid = live_room(rapi)["room_id"]
        rec = rapi.post(f"/api/v1/rooms/{rid}/recordings").json()
        assert rapi.post(f"/api/v1/rooms/{rid}/stop").status_code == 200
        assert livekit.get_egress(rec["egress_id"]).status == proto_egress.EGRESS_COMPLETE
        assert Recording.objects.get().status == "ready"
        stop_calls = livekit.calls_to("StopEgress")
        assert [c.request.egress_id for c in stop_calls] == [rec["egress_id"]]

    def test_deleting_the_room_stops_its_egress_and_keeps_the_recording(self, rapi, livekit):
        rid = live_room(rapi)["room_id"]
        rec = rapi.post(f"/api/v1/rooms/{rid}/recordings").json()
        assert rapi.delete(f"/api/v1/rooms/{rid}").status_code == 200
        assert livekit.get_egress(rec["egress_id"]).status == proto_egress.EGRESS_COMPLETE
        kept = rapi.get(f"/api/v1/recordings/{rec['recording_id']}").json()
        assert kept["status"] == "ready" and kept["room_id"] == rid

    def test_room_stop_with_egress_down_is_503_and_nothing_changes(self, rapi, livekit):
        rid = live_room(rapi)["room_id"]
        rapi.post(f"/api/v1/rooms/{rid}/recordings")
        livekit.down()
        assert_error(rapi.post(f"/api/v1/rooms/{rid}/stop"), 503, "LIVEKIT_UNAVAILABLE")
        livekit.up()
        assert Room.objects.get(room_id=rid).live_since is not None
        assert Recording.objects.get().status == "recording"


class TestStreams:
    def test_hls_stream_start_list_stop(self, rapi, livekit):
        rid = live_room(rapi, recording_enabled=False)["room_id"]
        response = rapi.post(f"/api/v1/rooms/{rid}/streams", {"layout": "speaker"})
        assert response.status_code == 201, response.content
        stream = response.json()
        sid = stream["recording_id"]
        assert stream["kind"] == "hls" and stream["status"] == "recording"
        assert stream["playlist_url"] == f"http://parley.test/hls/{sid}/live.m3u8"
        assert stream["watch_url"] == f"http://parley.test/watch/{sid}"
        request = egress_request(livekit)
        assert not request.file_outputs
        segments = request.segment_outputs[0]
        assert segments.protocol == proto_egress.HLS_PROTOCOL
        assert segments.live_playlist_name == "live.m3u8"
        assert segments.filename_prefix.endswith(f"/{rid}/{sid}/segment")
        assert_error(rapi.post(f"/api/v1/rooms/{rid}/streams"), 409, "STREAM_IN_PROGRESS")
        listed = rapi.get(f"/api/v1/rooms/{rid}/streams").json()["streams"]
        assert [s["recording_id"] for s in listed] == [sid]
        assert rapi.get(f"/api/v1/rooms/{rid}/recordings").json()["recordings"] == []
        done = rapi.post(f"/api/v1/rooms/{rid}/streams/{sid}/stop").json()
        assert done["status"] == "ready"
        assert done["playlist_url"] == f"http://parley.test/hls/{sid}/index.m3u8"

    def test_the_room_carries_the_running_streams_playlist(self, rapi, livekit):
        """v1 room objects (create, get, list, update, start, stop) all carry
        `hls_playlist_url`: the live playlist while a stream runs, null otherwise."""
        created = rapi.post("/api/v1/rooms", {"name": "Streamed"})
        assert created.status_code == 201 and created.json()["hls_playlist_url"] is None
        rid = created.json()["room_id"]
        assert rapi.get(f"/api/v1/rooms/{rid}").json() == created.json()
        assert rapi.post(f"/api/v1/rooms/{rid}/start").json()["hls_playlist_url"] is None
        stream = rapi.post(f"/api/v1/rooms/{rid}/streams").json()
        playlist = stream["playlist_url"]
        assert playlist == f"http://parley.test/hls/{stream['recording_id']}/live.m3u8"
        got = rapi.get(f"/api/v1/rooms/{rid}").json()
        assert got["hls_playlist_url"] == playlist
        (listed,) = rapi.get("/api/v1/rooms").json()["rooms"]
        assert listed == got
        updated = rapi.patch(f"/api/v1/rooms/{rid}", {"name": "Streamed live"}).json()
        assert updated["hls_playlist_url"] == playlist
        # A stopped stream is not running: the room no longer points at it.
        rapi.post(f"/api/v1/rooms/{rid}/streams/{stream['recording_id']}/stop")
        assert rapi.get(f"/api/v1/rooms/{rid}").json()["hls_playlist_url"] is None
        # A new stream: the room carries the new playlist; the room stop ends it.
        again = rapi.post(f"/api/v1/rooms/{rid}/streams").json()
        room_now = rapi.get(f"/api/v1/rooms/{rid}").json()
        assert room_now["hls_playlist_url"] == again["playlist_url"]
        stopped = rapi.post(f"/api/v1/rooms/{rid}/stop").json()
        assert stopped["hls_playlist_url"] is None
        assert livekit.get_egress(again["egress_id"]).status == proto_egress.EGRESS_COMPLETE

    def test_room_playlist_is_in_the_openapi_schema(self):
        schema = Client().get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
        field = schema["components"]["schemas"]["RoomOutput"]["properties"]["hls_playlist_url"]
        assert field["type"] == "string" and field["nullable"] is True

    def test_events_at_each_transition(self, rapi, livekit, django_capture_on_commit_callbacks):
        rid = live_room(rapi, recording_enabled=False)["room_id"]
        layer = get_channel_layer()
        channel = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(events.room_status_group(rid), channel)
        with django_capture_on_commit_callbacks(execute=True):
            sid = rapi.post(f"/api/v1/rooms/{rid}/streams").json()["recording_id"]
        with django_capture_on_commit_callbacks(execute=True):
            rapi.post(f"/api/v1/rooms/{rid}/streams/{sid}/stop")
        names = []
        while True:
            try:
                message = async_to_sync(_receive)(layer, channel)
            except TimeoutError:
                break
            names.append(message["event"])
        assert names == [
            "hls-starting",
            "hls-started",
            "hls-playable",
            "hls-stopping",
            "hls-stopped",
        ]


async def _receive(layer, channel):
    import asyncio

    return await asyncio.wait_for(layer.receive(channel), timeout=0.3)


class TestAutoStart:
    def test_first_join_starts_exactly_once(
        self, rapi, livekit, django_capture_on_commit_callbacks
    ):
        room = rapi.post("/api/v1/rooms", {"name": "Auto", "recording_enabled": True}).json()
        rid = room["room_id"]
        for name in ("Ann", "Bob"):
            with django_capture_on_commit_callbacks(execute=True):
                response = rapi.post(f"/api/v1/rooms/{rid}/tokens", {"name": name})
            assert response.status_code == 200
        assert len(livekit.calls_to("StartRoomCompositeEgress")) == 1
        rec = Recording.objects.get()
        assert rec.auto and rec.status == "recording"
        assert rec.session == RoomSession.objects.get(room__room_id=rid)
        # The reconciliation (a lost callback's safety net) finds nothing more to start.
        session = rec.session
        RoomSession.objects.filter(pk=session.pk).update(
            started_at=timezone.now() - dt.timedelta(minutes=1)
        )
        recording_services.reconcile()
        assert recording_services.auto_start(session_pk=session.pk) == {
            "recording": "already",
            "hls": "not-wanted",
        }
        assert len(livekit.calls_to("StartRoomCompositeEgress")) == 1
        # A new session records again, once.
        rapi.post(f"/api/v1/rooms/{rid}/stop")
        with django_capture_on_commit_callbacks(execute=True):
            rapi.post(f"/api/v1/rooms/{rid}/start")
        assert len(livekit.calls_to("StartRoomCompositeEgress")) == 2

    def test_scheduler_start_records_once_and_hls_too(
        self, starter, livekit, django_capture_on_commit_callbacks
    ):
        start = timezone.now()
        room = room_services.create_room(
            tenant=starter.tenant,
            data={
                "name": "Weekly",
                "room_type": "scheduled",
                "start_time": start,
                "end_time": start + dt.timedelta(hours=1),
                "recording_enabled": True,
            },
        )
        Room.objects.filter(pk=room.pk).update(hls_options={"layout": "speaker"})
        occurrence = Occurrence.objects.get(room=room)
        with django_capture_on_commit_callbacks(execute=True):
            assert room_services.start_occurrence(occurrence_pk=occurrence.pk) == "started"
        with django_capture_on_commit_callbacks(execute=True):
            assert room_services.start_occurrence(occurrence_pk=occurrence.pk) == "already"
        kinds = sorted(Recording.objects.values_list("kind", flat=True))
        assert kinds == ["hls", "recording"]
        assert len(livekit.calls_to("StartRoomCompositeEgress")) == 2
        hls = Recording.objects.get(kind="hls")
        assert hls.layout == "speaker" and hls.auto

    def test_auto_start_while_egress_is_down_is_retried_by_reconcile(
        self, rapi, livekit, django_capture_on_commit_callbacks
    ):
        room = rapi.post("/api/v1/rooms", {"name": "Auto", "recording_enabled": True}).json()
        rid = room["room_id"]
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            rapi.post(f"/api/v1/rooms/{rid}/tokens", {"name": "Ann"})
        livekit.down()
        for callback in callbacks:
            callback()
        assert not Recording.objects.exists()  # nothing half-written; the session stands
        assert Room.objects.get(room_id=rid).live_since is not None
        livekit.up()
        RoomSession.objects.update(started_at=timezone.now() - dt.timedelta(minutes=1))
        assert recording_services.reconcile()["auto_started"] == 1
        assert Recording.objects.get().status == "recording"

    def test_auto_start_over_the_plan_fails_visibly(
        self, api, livekit, django_capture_on_commit_callbacks
    ):
        room = api.post("/api/v1/rooms", {"name": "Free", "recording_enabled": True}).json()
        with django_capture_on_commit_callbacks(execute=True):
            api.post(f"/api/v1/rooms/{room['room_id']}/tokens", {"name": "Ann"})
        rec = Recording.objects.get()
        assert rec.status == "failed" and "plan" in rec.failure_reason
        assert livekit.calls_to("StartRoomCompositeEgress") == []


class TestStatusNeverSticks:
    def test_vanished_egress_is_failed_by_reconcile(self, rapi, livekit):
        rid = live_room(rapi)["room_id"]
        rec = rapi.post(f"/api/v1/rooms/{rid}/recordings").json()
        livekit.forget_egress(rec["egress_id"])
        assert recording_services.reconcile()["settled"] == 1
        body = rapi.get(f"/api/v1/recordings/{rec['recording_id']}").json()
        assert body["status"] == "failed" and body["failure_reason"] == "Egress vanished"
        assert body["ended_at"]

    def test_silent_egress_in_processing_is_settled_after_the_timeout(
        self, rapi, livekit, settings
    ):
        rid = live_room(rapi)["room_id"]
        rec = rapi.post(f"/api/v1/rooms/{rid}/recordings").json()
        livekit.set_egress_status(rec["egress_id"], proto_egress.EGRESS_ENDING)
        recording_services.reconcile()
        assert Recording.objects.get().status == "processing"
        recording_services.reconcile()  # not yet past the timeout
        assert Recording.objects.get().status == "processing"
        later = timezone.now() + dt.timedelta(seconds=settings.RECORDING_SILENCE_TIMEOUT + 1)
        recording_services.reconcile(now=later)
        body = rapi.get(f"/api/v1/recordings/{rec['recording_id']}").json()
        assert body["status"] == "failed"
        assert body["failure_reason"].startswith("Egress reported nothing for")

    def test_failed_egress_is_reported(self, rapi, livekit):
        rid = live_room(rapi)["room_id"]
        rec = rapi.post(f"/api/v1/rooms/{rid}/recordings").json()
        livekit.set_egress_status(rec["egress_id"], proto_egress.EGRESS_FAILED, error="no GPU")
        recording_services.reconcile()
        body = rapi.get(f"/api/v1/recordings/{rec['recording_id']}").json()
        assert body["status"] == "failed" and body["failure_reason"] == "no GPU"


class TestRetention:
    def test_expired_recordings_are_deleted_with_their_files(
        self, rapi, starter, livekit, settings
    ):
        rid = live_room(rapi)["room_id"]
        old = recording_services.start(room=Room.objects.get(room_id=rid))
        recording_services.stop(recording=old)
        young = recording_services.start(room=Room.objects.get(room_id=rid))
        recording_services.stop(recording=young)
        files = {}
        for rec in (old, young):
            rec.refresh_from_db()
            path = settings.RECORDINGS_DIR / rec.file_path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"mp4")
            files[rec.pk] = path
        Recording.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=8))
        assert recording_services.enforce_retention() == 0  # no retention set: kept forever
        RecordingStorage.objects.create(tenant=starter.tenant, retention_days=7)
        assert recording_services.enforce_retention() == 1
        assert list(Recording.objects.values_list("pk", flat=True)) == [young.pk]
        assert not files[old.pk].exists() and files[young.pk].exists()


class TestDownloads:
    def ready_recording(self, rapi, settings) -> dict:
        rid = live_room(rapi)["room_id"]
        rec = rapi.post(f"/api/v1/rooms/{rid}/recordings").json()
        rapi.post(f"/api/v1/rooms/{rid}/recordings/{rec['recording_id']}/stop")
        stored = Recording.objects.get(recording_id=rec["recording_id"])
        path = settings.RECORDINGS_DIR / stored.file_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x00\x00\x00 ftypisom fake mp4")
        return rapi.get(f"/api/v1/recordings/{rec['recording_id']}").json()

    def test_signed_link_downloads_and_expires(self, rapi, livekit, settings):
        rec = self.ready_recording(rapi, settings)
        path = urlparse(rec["download_url"])
        url = f"{path.path}?{path.query}"
        response = Client().get(url)
        assert response.status_code == 200
        assert b"".join(response.streaming_content).endswith(b"fake mp4")
        assert "attachment" in response["Content-Disposition"]
        settings.RECORDING_URL_TTL = -1  # every link is now past its lifetime
        assert Client().get(url).status_code == 403

    def test_forged_or_foreign_links_are_404(self, rapi, livekit, settings, outsider):
        rec = self.ready_recording(rapi, settings)
        token = parse_qs(urlparse(rec["download_url"]).query)["token"][0]
        rid = rec["recording_id"]
        assert Client().get(f"/recordings/{rid}/download?token=x{token}").status_code == 404
        assert Client().get(f"/recordings/{rid}/download").status_code == 404
        assert Client().get(f"/recordings/rec_other/download?token={token}").status_code == 404
        assert_error(Api(outsider.api_key).get(f"/api/v1/recordings/{rid}"), 404, "NOT_FOUND")


class TestS3Storage:
    def test_secret_encrypted_egress_uploads_and_link_is_presigned(self, rapi, starter, livekit):
        target = recording_services.update_storage(
            tenant=starter.tenant,
            endpoint="https://s3.example.test",
            region="eu-west-1",
            bucket="calls",
            prefix="parley/",
            access_key="AKIAEXAMPLE",
            secret="s3cr3t-value",
            retention_days=30,
        )
        assert "s3cr3t-value" not in target.secret_encrypted
        rid = live_room(rapi)["room_id"]
        rec = rapi.post(f"/api/v1/rooms/{rid}/recordings").json()
        output = egress_request(livekit).file_outputs[0]
        assert output.s3.bucket == "calls" and output.s3.secret == "s3cr3t-value"
        assert output.s3.endpoint == "https://s3.example.test" and output.s3.force_path_style
        assert output.filepath == f"parley/{rid}/{rec['recording_id']}.mp4"
        done = rapi.post(f"/api/v1/rooms/{rid}/recordings/{rec['recording_id']}/stop").json()
        url = urlparse(done["download_url"])
        assert url.netloc == "s3.example.test"
        assert url.path == f"/calls/parley/{rid}/{rec['recording_id']}.mp4"
        query = parse_qs(url.query)
        assert query["X-Amz-Expires"] == ["3600"] and query["X-Amz-Signature"][0]
        assert "s3cr3t" not in done["download_url"]
        # Keeping the secret: None leaves it as it was.
        again = recording_services.update_storage(
            tenant=starter.tenant,
            endpoint="https://s3.example.test",
            region="eu-west-1",
            bucket="calls",
            prefix="",
            access_key="AKIAEXAMPLE",
            secret=None,
            retention_days=None,
        )
        assert again.secret_encrypted == target.secret_encrypted


class TestEgressWebhooks:
    def test_signed_egress_webhooks_drive_the_status(self, live_server, rapi, livekit):
        url = f"{live_server.url}/livekit/webhook"
        rid = live_room(rapi)["room_id"]
        # A live server commits, so the room's auto-start recorded when it started.
        auto = Recording.objects.get(room__room_id=rid)
        assert auto.auto and auto.status == "recording"
        rec = {"recording_id": auto.recording_id, "egress_id": auto.egress_id}
        egress_id = rec["egress_id"]
        assert livekit.send_egress_webhook(url, egress_id, "egress_started") == 200
        livekit.set_egress_status(egress_id, proto_egress.EGRESS_ENDING)
        assert livekit.send_egress_webhook(url, egress_id, "egress_updated") == 200
        assert Recording.objects.get().status == "processing"
        livekit.set_egress_status(egress_id, proto_egress.EGRESS_COMPLETE)
        assert livekit.send_egress_webhook(url, egress_id, "egress_ended") == 200
        body = rapi.get(f"/api/v1/recordings/{rec['recording_id']}").json()
        assert body["status"] == "ready" and body["size"] == 1_048_576
        # Late or repeated deliveries never move it back.
        livekit.set_egress_status(egress_id, proto_egress.EGRESS_ACTIVE)
        assert livekit.send_egress_webhook(url, egress_id, "egress_started") == 200
        assert Recording.objects.get().status == "ready"

    def test_egress_failure_webhook(self, live_server, rapi, livekit):
        url = f"{live_server.url}/livekit/webhook"
        rid = live_room(rapi)["room_id"]
        stored = Recording.objects.get(room__room_id=rid)  # the auto-started one
        rec = {"egress_id": stored.egress_id}
        livekit.set_egress_status(rec["egress_id"], proto_egress.EGRESS_FAILED, error="disk full")
        assert livekit.send_egress_webhook(url, rec["egress_id"], "egress_ended") == 200
        stored = Recording.objects.get()
        assert stored.status == "failed" and stored.failure_reason == "disk full"


class TestHostControls:
    def test_host_secret_starts_and_stops(self, rapi, livekit, outsider):
        rid = live_room(rapi)["room_id"]
        secret = Room.objects.get(room_id=rid).host_secret
        host = Client()
        headers = {"X-Host-Secret": secret}
        base = f"/api/v1/rooms/{rid}/host/recordings"
        assert host.get(base, headers=headers).json()["recording"] is False
        started = host.post(f"{base}/start", headers=headers, content_type="application/json")
        assert started.status_code == 201 and started.json()["status"] == "recording"
        assert host.get(base, headers=headers).json()["recording"] is True
        assert_error(
            host.post(f"{base}/start", headers=headers, content_type="application/json"),
            409,
            "RECORDING_IN_PROGRESS",
        )
        assert (
            host.post(f"{base}/stop", headers=headers, content_type="application/json").json()[
                "status"
            ]
            == "ready"
        )
        assert_error(
            host.post(f"{base}/stop", headers=headers, content_type="application/json"),
            409,
            "RECORDING_NOT_ACTIVE",
        )
        wrong = {"X-Host-Secret": "not-the-secret"}
        assert_error(
            host.post(f"{base}/start", headers=wrong, content_type="application/json"),
            404,
            "NOT_FOUND",
        )
        other = {"X-API-Key": outsider.api_key}
        assert_error(
            host.post(f"{base}/start", headers=other, content_type="application/json"),
            404,
            "NOT_FOUND",
        )
        assert Recording.objects.count() == 1


class TestPages:
    def test_recording_template_joins_hidden_and_subscribe_only(self, rapi, livekit):
        rid = live_room(rapi)["room_id"]
        rapi.post(f"/api/v1/rooms/{rid}/recordings", {"layout": "grid+chat"})
        url = urlparse(egress_request(livekit).custom_base_url)
        page = Client().get(f"{url.path}?{url.query}")
        assert page.status_code == 200
        config = page.context["config"]
        assert config["chat"] is True and config["layout"] == "grid+chat"
        claims = livekit.verify_join_token(config["token"], room=rid)
        video = claims["video"]
        assert video["hidden"] is True and video["recorder"] is True
        assert video["canSubscribe"] is True
        assert video.get("canPublish") is False and video.get("canPublishData") is False
        assert 'id="chat"' in page.content.decode()
        # Without a valid signature the page does not exist.
        assert Client().get(f"{url.path}?layout=grid&sig=forged").status_code == 404
        other = live_room(rapi)["room_id"]
        sig = parse_qs(url.query)["sig"][0]
        assert Client().get(f"/recording-template/{other}?sig={sig}").status_code == 404

    def test_watch_page_and_local_hls_files(self, rapi, livekit, settings):
        rid = live_room(rapi, recording_enabled=False)["room_id"]
        stream = rapi.post(f"/api/v1/rooms/{rid}/streams").json()
        sid = stream["recording_id"]
        stored = Recording.objects.get(recording_id=sid)
        folder = settings.RECORDINGS_DIR / stored.file_path
        folder.mkdir(parents=True)
        (folder / "live.m3u8").write_text("#EXTM3U\n#EXTINF:4,\nsegment_00000.ts\n")
        (folder / "segment_00000.ts").write_bytes(b"\x47" * 188)
        page = Client().get(f"/watch/{sid}")
        assert page.status_code == 200
        html = page.content.decode()
        assert "<video" in html and "vendor/hls.js/hls.min.js" in html
        assert page.context["config"]["playlistUrl"] == stream["playlist_url"]
        playlist = Client().get(f"/hls/{sid}/live.m3u8")
        assert playlist.status_code == 200
        assert playlist["Content-Type"] == "application/vnd.apple.mpegurl"
        assert b"".join(playlist.streaming_content).startswith(b"#EXTM3U")
        assert Client().get(f"/hls/{sid}/segment_00000.ts")["Content-Type"] == "video/mp2t"
        assert Client().get(f"/hls/{sid}/..%2Fsecret.m3u8").status_code == 404
        assert Client().get(f"/hls/{sid}/missing.ts").status_code == 404
        assert Client().get("/watch/rec_unknown").status_code == 404

    def test_branded_tenants_record_through_the_template(self, rapi, starter, livekit):
        from branding.models import Brand

        Brand.objects.create(tenant=starter.tenant, product_name="Acme Meet")
        rid = live_room(rapi)["room_id"]
        rapi.post(f"/api/v1/rooms/{rid}/recordings", {"layout": "speaker"})
        request = egress_request(livekit)
        assert request.layout == "speaker"
        assert request.custom_base_url.startswith(
            f"http://parley.test/recording-template/{rid}?layout=speaker&sig="
        )


def test_presigned_urls_match_aws_signature_v4_example():
    """AWS's own example ("Authenticating Requests: Using Query Parameters")."""
    from conferences.storage import presign

    url = presign(
        method="GET",
        endpoint="",
        region="us-east-1",
        bucket="examplebucket",
        key="test.txt",
        access_key="AKIAIOSFODNN7EXAMPLE",
        secret="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        expires=86400,
        now=dt.datetime(2013, 5, 24, tzinfo=dt.UTC),
    )
    assert url.startswith("https://examplebucket.s3.amazonaws.com/test.txt?")
    assert url.endswith(
        "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )


def test_retention_deletes_s3_objects_through_presigned_requests(starter, livekit, rapi):
    import http.server
    import threading

    seen: list[tuple[str, str]] = []

    class S3(http.server.BaseHTTPRequestHandler):
        def do_DELETE(self):  # noqa: N802
            seen.append(("DELETE", self.path))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), S3)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        recording_services.update_storage(
            tenant=starter.tenant,
            endpoint=f"http://127.0.0.1:{server.server_port}",
            region="us-east-1",
            bucket="calls",
            prefix="",
            access_key="AKIA",
            secret="secret",
            retention_days=1,
        )
        rid = live_room(rapi)["room_id"]
        rec = recording_services.start(room=Room.objects.get(room_id=rid))
        recording_services.stop(recording=rec)
        Recording.objects.filter(pk=rec.pk).update(created_at=timezone.now() - dt.timedelta(days=2))
        assert recording_services.enforce_retention() == 1
    finally:
        server.shutdown()
    assert not Recording.objects.exists()
    method, path = seen[0]
    assert path.startswith(f"/calls/{rid}/{rec.recording_id}.mp4?X-Amz-Algorithm=AWS4-HMAC-SHA256")
    assert "X-Amz-Signature=" in path


class TestLostNews:
    def test_stop_after_egress_ended_unnoticed_settles_from_list_egress(self, rapi, livekit):
        rid = live_room(rapi)["room_id"]
        rec = rapi.post(f"/api/v1/rooms/{rid}/recordings").json()
        livekit.set_egress_status(rec["egress_id"], proto_egress.EGRESS_COMPLETE)  # no webhook
        stop_url = f"/api/v1/rooms/{rid}/recordings/{rec['recording_id']}/stop"
        body = rapi.post(stop_url).json()
        assert body["status"] == "ready" and body["size"] == 1_048_576

    def test_room_closed_by_livekit_then_reconciled(self, rapi, livekit):
        rid = live_room(rapi)["room_id"]
        rec = rapi.post(f"/api/v1/rooms/{rid}/recordings").json()
        room = Room.objects.get(room_id=rid)
        room_services.session_ended_by_livekit(room=room, now=timezone.now())
        assert Recording.objects.get().status == "stopping"
        assert livekit.calls_to("StopEgress") == []  # LiveKit ends it with the room
        livekit.set_egress_status(rec["egress_id"], proto_egress.EGRESS_COMPLETE)
        recording_services.reconcile()
        assert Recording.objects.get().status == "ready"
