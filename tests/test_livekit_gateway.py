"""The LiveKit gateway against the double, where the real server's behaviour (checked by
tests/media/test_livekit_conformance.py) needs handling in Parley."""

from __future__ import annotations

import pytest
from livekit.protocol import models as proto

from conferences import livekit as gateway

MIC = proto.TrackSource.MICROPHONE


def test_muting_skips_a_participant_who_left_meanwhile(livekit):
    livekit.add_participant("r", "stays")
    stays = livekit.publish_track("r", "stays", source=MIC)
    livekit.add_participant("r", "leaves")
    leaves = livekit.publish_track("r", "leaves", source=MIC)
    livekit.remove_participant_local("r", "leaves")
    tracks = [("stays", stays.sid), ("leaves", leaves.sid)]
    assert gateway.mute_published_tracks(room="r", tracks=tracks) == 1
    # livekit-server answers "unavailable: no response from servers" for the one who left.
    [gone] = [c for c in livekit.calls_to("MutePublishedTrack") if c.request.identity == "leaves"]
    assert (gone.status, gone.error_code) == (503, "unavailable")
    assert livekit.get_participant("r", "stays").tracks[0].muted


def test_muting_during_an_outage_is_unavailable(livekit):
    livekit.add_participant("r", "bob")
    track = livekit.publish_track("r", "bob", source=MIC)
    livekit.fail_with(503, "unavailable")
    with pytest.raises(gateway.LiveKitUnavailable):
        gateway.mute_published_tracks(room="r", tracks=[("bob", track.sid)])
