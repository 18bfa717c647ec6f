"""Real media through Parley's own join pages: two guests hear each other, an audio-only
room refuses a camera at the server, the waiting room keeps a guest out of LiveKit until
admitted."""

from __future__ import annotations

import pytest
from livekit.protocol import models as proto

from conferences.models import WaitingEntry
from tests.browser.conftest import off_loop, wait_until
from tests.conftest import make_member
from tests.join_helpers import make_room
from tests.media.conftest import poll

pytestmark = [pytest.mark.browser, pytest.mark.media]

MIC = proto.TrackSource.MICROPHONE


def test_two_guests_hear_each_other(media):
    member = off_loop(make_member, "Acme")
    room = off_loop(make_room, member, name="Real call")
    ada = media.open(f"/room/{room.room_id}")
    bob = media.open(f"/room/{room.room_id}")
    media.join(ada, "Ada")
    media.join(bob, "Bob")
    ada_id = media.connected(ada)
    bob_id = media.connected(bob)
    # Each page's analyser on the other's audio rises above silence.
    assert media.hears(ada, bob_id) > 0.02
    assert media.hears(bob, ada_id) > 0.02
    # LiveKit itself has both, each with a published microphone track.
    people = {p.identity: p for p in media.participants(room.room_id)}
    assert set(people) == {ada_id, bob_id}
    for person in people.values():
        assert [t.source for t in person.tracks] == [MIC], person
        assert person.is_publisher and not person.tracks[0].muted
    assert {people[ada_id].name, people[bob_id].name} == {"Ada", "Bob"}
