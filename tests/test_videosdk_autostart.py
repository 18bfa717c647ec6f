"""VideoSDK `autoStartConfig.recording` / `.hls` end to end: a room created through
POST /v2/rooms records and streams when its session starts (a VideoSDK participant's first
join, or v1 /start), exactly once per session, with VideoSDK's words mapped onto the egress
request the LiveKit double receives."""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client
from livekit.protocol import egress as proto_egress

from conferences.models import Recording, Room, RoomSession
from conferences.services import recordings as recording_services
from tests.conftest import Api
from tests.videosdk_helpers import REFERENCE_BODY, SigningPair, VideoSdkClient

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _recordings_dir(settings, tmp_path):
    settings.RECORDINGS_DIR = tmp_path / "recordings"
    settings.RECORDINGS_EGRESS_DIR = "/out"
    settings.PUBLIC_BASE_URL = "http://parley.test"


@pytest.fixture
def pair(pro) -> SigningPair:
    """A Pro tenant (3,000 recording minutes a month) and its VideoSDK signing key."""
    return SigningPair(pro.tenant)


@pytest.fixture
def sdk(pair) -> VideoSdkClient:
    return VideoSdkClient(pair.token())


def create(sdk: VideoSdkClient, body: dict[str, Any]) -> Room:
    response = sdk.post("/v2/rooms", body)
    assert response.status_code == 200, response.content
    return Room.objects.get(meeting_id=response.json()["roomId"])


def join(pair: SigningPair, room: Room, participant: str):
    """A VideoSDK participant joins with its JWT at Parley's join endpoint."""
    token = pair.token(roomId=room.meeting_id, participantId=participant)
    response = Client(REMOTE_ADDR="198.51.100.9").post(
        f"/room/{room.meeting_id}/join",
        data="{}",
        content_type="application/json",
        headers={"Authorization": token},
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "admitted"
    return response


def egress_requests(livekit) -> dict[str, proto_egress.RoomCompositeEgressRequest]:
    """The StartRoomCompositeEgress requests by kind (file: recording, segments: hls); each
    kind at most once."""
    by_kind: dict[str, proto_egress.RoomCompositeEgressRequest] = {}
    for call in livekit.calls_to("StartRoomCompositeEgress"):
        kind = "hls" if call.request.segment_outputs else "recording"
        assert kind not in by_kind, f"a second {kind} egress was started"
        by_kind[kind] = call.request
    return by_kind


def test_reference_body_records_and_streams_once_on_first_join(
    sdk, pair, pro, livekit, django_capture_on_commit_callbacks
):
    target = recording_services.update_storage(
        tenant=pro.tenant,
        endpoint="https://s3.example.test",
        region="eu-west-1",
        bucket="calls",
        prefix="parley/",
        access_key="AKIAEXAMPLE",
        secret="s3cr3t-value",
        retention_days=30,
    )
    assert target.uses_s3
    room = create(sdk, REFERENCE_BODY)
    assert livekit.calls_to("StartRoomCompositeEgress") == []  # nothing before a session
    for participant in ("ada", "bob"):
        with django_capture_on_commit_callbacks(execute=True):
            join(pair, room, participant)
    requests = egress_requests(livekit)
    assert set(requests) == {"recording", "hls"}
    assert len(livekit.calls_to("StartRoomCompositeEgress")) == 2

    recording = Recording.objects.get(room=room, kind="recording")
    stream = Recording.objects.get(room=room, kind="hls")
    session = RoomSession.objects.get(room=room)
    assert recording.session == stream.session == session
    assert recording.auto and stream.auto
    assert recording.status == stream.status == Recording.Status.RECORDING

    # recording: SPOTLIGHT -> single-speaker; mode audio -> audio-only (OGG); high + portrait
    # -> the portrait 1080p60 preset; awsDirPath -> prefix under the tenant's S3 prefix.
    rec = requests["recording"]
    assert rec.room_name == room.livekit_name
    assert rec.layout == "single-speaker" and rec.audio_only is True
    assert rec.preset == proto_egress.PORTRAIT_H264_1080P_60
    (output,) = rec.file_outputs
    assert output.file_type == proto_egress.OGG
    key = f"parley/meetings/2026/{room.room_id}/{recording.recording_id}.ogg"
    assert output.filepath == key and recording.file_path == key
    assert output.s3.bucket == "calls" and output.s3.endpoint == "https://s3.example.test"
    # priority and gridSize are honoured by Parley's template page.
    query = parse_qs(urlparse(rec.custom_base_url).query)
    assert query["layout"] == ["single-speaker"]
    assert query["priority"] == ["PIN"] and query["grid_size"] == ["3"]

    # hls: SIDEBAR -> speaker (LIGHT theme); video-and-audio; med + landscape -> 1080p30.
    hls = requests["hls"]
    assert hls.layout == "speaker-light" and hls.audio_only is False
    assert hls.preset == proto_egress.H264_1080P_30
    assert not hls.file_outputs
    (segments,) = hls.segment_outputs
    assert segments.protocol == proto_egress.HLS_PROTOCOL
    assert segments.filename_prefix == f"parley/{room.room_id}/{stream.recording_id}/segment"
    assert segments.s3.bucket == "calls"
    query = parse_qs(urlparse(hls.custom_base_url).query)
    assert query["priority"] == ["SPEAKER"] and query["grid_size"] == ["4"]

    # The v1 room carries the stream's playlist.
    v1 = Api(pro.api_key).get(f"/api/v1/rooms/{room.room_id}").json()
    assert v1["hls_playlist_url"] == (
        f"https://s3.example.test/calls/parley/{room.room_id}/{stream.recording_id}/live.m3u8"
    )


@pytest.mark.parametrize(
    "layout_type, mode, quality, orientation, lk_layout, audio_only, preset",
    [
        ("GRID", "video-and-audio", "low", "landscape", "grid", False, proto_egress.H264_720P_30),
        (
            "SPOTLIGHT",
            "video-and-audio",
            "high",
            "landscape",
            "single-speaker",
            False,
            proto_egress.H264_1080P_60,
        ),
        (
            "SIDEBAR",
            "audio",
            "med",
            "portrait",
            "speaker",
            True,
            proto_egress.PORTRAIT_H264_1080P_30,
        ),
    ],
)
def test_layouts_modes_and_presets_on_v1_start(
    sdk,
    pro,
    livekit,
    django_capture_on_commit_callbacks,
    layout_type,
    mode,
    quality,
    orientation,
    lk_layout,
    audio_only,
    preset,
):
    config = {
        "layout": {"type": layout_type},
        "mode": mode,
        "quality": quality,
        "orientation": orientation,
    }
    room = create(
        sdk,
        {
            "autoStartConfig": {
                "recording": {"config": config, "awsDirPath": "team/calls"},
                "hls": {"config": {"layout": {"type": layout_type}, "quality": quality}},
            }
        },
    )
    api = Api(pro.api_key)
    for _ in range(2):  # the second start finds the room live: nothing more starts
        with django_capture_on_commit_callbacks(execute=True):
            assert api.post(f"/api/v1/rooms/{room.room_id}/start").status_code == 200
    requests = egress_requests(livekit)
    assert set(requests) == {"recording", "hls"}
    rec = requests["recording"]
    assert rec.layout == lk_layout and rec.audio_only is audio_only and rec.preset == preset
    assert rec.custom_base_url == ""  # no priority, gridSize, chat or branding
    recording = Recording.objects.get(room=room, kind="recording")
    ext = "ogg" if audio_only else "mp4"
    # Without an S3 target, awsDirPath is the folder under the tenant's local one.
    assert rec.file_outputs[0].filepath == (
        f"/out/{pro.tenant.public_id}/team/calls/{room.room_id}/{recording.recording_id}.{ext}"
    )
    hls = requests["hls"]
    assert hls.layout == lk_layout and hls.audio_only is False
    assert (
        hls.preset
        == {
            "low": proto_egress.H264_720P_30,
            "med": proto_egress.H264_1080P_30,
            "high": proto_egress.H264_1080P_60,
        }[quality]
    )


def test_once_per_session_and_again_in_the_next(
    sdk, pair, pro, livekit, django_capture_on_commit_callbacks
):
    body = copy.deepcopy(REFERENCE_BODY)
    body["autoCloseConfig"] = {"type": "session-ends", "duration": 60}
    room = create(sdk, body)
    with django_capture_on_commit_callbacks(execute=True):
        join(pair, room, "ada")
    with django_capture_on_commit_callbacks(execute=True):
        join(pair, room, "bob")
    assert len(livekit.calls_to("StartRoomCompositeEgress")) == 2
    first = RoomSession.objects.get(room=room)
    assert recording_services.auto_start(session_pk=first.pk) == {
        "recording": "already",
        "hls": "already",
    }
    assert len(livekit.calls_to("StartRoomCompositeEgress")) == 2
    # Ending the session stops both; the next session records and streams again, once.
    api = Api(pro.api_key)
    assert api.post(f"/api/v1/rooms/{room.room_id}/stop").status_code == 200
    assert len(livekit.calls_to("StopEgress")) == 2
    assert set(Recording.objects.values_list("status", flat=True)) == {"ready"}
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post(f"/api/v1/rooms/{room.room_id}/start").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        join(pair, room, "cy")
    assert len(livekit.calls_to("StartRoomCompositeEgress")) == 4
    second = RoomSession.objects.exclude(pk=first.pk).get(room=room)
    kinds = sorted(Recording.objects.filter(session=second).values_list("kind", flat=True))
    assert kinds == ["hls", "recording"]


def test_without_auto_start_config_nothing_records(
    sdk, pair, livekit, django_capture_on_commit_callbacks
):
    room = create(sdk, {"customRoomId": "plain"})
    with django_capture_on_commit_callbacks(execute=True):
        join(pair, room, "ada")
    assert livekit.calls_to("StartRoomCompositeEgress") == []
    assert not Recording.objects.exists()
