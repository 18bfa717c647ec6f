"""Real media through Parley's own join pages, on a real livekit-server: two guests hear
each other, an audio-only room refuses a camera at the server, the waiting room keeps a
guest out of LiveKit until a host admits them."""

from __future__ import annotations

import pytest
from livekit.protocol import models as proto

from tests.browser.conftest import off_loop, wait_until
from tests.conftest import make_member
from tests.join_helpers import make_room
from tests.media.conftest import MEDIA_WARNINGS

pytestmark = [pytest.mark.browser, pytest.mark.media, MEDIA_WARNINGS]

MIC = proto.TrackSource.MICROPHONE

# Publish a camera even though the page's own permission check would stop it, so that what
# refuses it is livekit-server. Resolves to "published" or the error's message.
FORCE_CAMERA = """async () => {
    const lp = window.__room.localParticipant;
    lp.hasPermissionsToPublish = () => true;
    const resolution = { width: 320, height: 180 };
    const track = await LivekitClient.createLocalVideoTrack({ resolution });
    const options = { source: LivekitClient.Track.Source.Camera, simulcast: false };
    const attempt = lp.publishTrack(track, options).then(
        () => "published",
        (err) => "refused: " + (err && err.message),
    );
    const timeout = new Promise((resolve) => setTimeout(() => resolve("no answer"), 12000));
    const outcome = await Promise.race([attempt, timeout]);
    track.stop();
    return outcome;
}"""


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


def test_audio_only_room_refuses_a_camera_at_the_server(media):
    member = off_loop(make_member, "Acme")
    room = off_loop(make_room, member, name="Podcast", media_type="audio")
    host = media.open(f"/room/{room.room_id}/host/{room.host_secret}")
    guest = media.open(f"/room/{room.room_id}")
    media.join(host, "Hana")
    media.join(guest, "Gus")
    host_id = media.connected(host)
    guest_id = media.connected(guest)
    assert media.hears(host, guest_id) > 0.02  # the microphone is allowed
    # The page hides the camera; forced past that check, the server refuses it.
    assert guest.locator("#ctl-cam").is_hidden()
    outcome = guest.evaluate(FORCE_CAMERA)
    print("camera publish in an audio-only room:", outcome)
    assert outcome != "published", outcome
    people = {p.identity: p for p in media.participants(room.room_id)}
    assert [t.source for t in people[guest_id].tracks] == [MIC]
    assert proto.TrackSource.CAMERA not in people[guest_id].permission.can_publish_sources
    assert host.evaluate(
        "id => Array.from(window.__room.remoteParticipants.get(id).trackPublications.values())"
        ".map((p) => p.source)",
        guest_id,
    ) == ["microphone"]
    assert host_id in people


def test_waiting_room_keeps_the_guest_out_of_livekit_until_admitted(media):
    member = off_loop(make_member, "Acme")
    room = off_loop(make_room, member, name="Clinic", waiting_room_enabled=True)
    host = media.open(f"/room/{room.room_id}/host/{room.host_secret}")
    media.join(host, "Dr Host")
    host_id = media.connected(host)

    guest = media.open(f"/room/{room.room_id}")
    media.join(guest, "Patient Pat")
    guest.wait_for_selector("#join-app[data-state=waiting]")
    entry = host.locator(".lobby-entry", has_text="Patient Pat")
    entry.wait_for()
    # Waiting: LiveKit has only the host, and the guest's page holds no connection.
    assert [p.identity for p in media.participants(room.room_id)] == [host_id]
    assert guest.evaluate("!window.__room")

    entry.locator(".lobby-admit").click()
    guest_id = media.connected(guest)
    wait_until(
        guest,
        lambda: {p.identity for p in media.participants(room.room_id)} == {host_id, guest_id},
        what="the admitted guest in LiveKit's participant list",
    )
    assert media.hears(host, guest_id) > 0.02
    assert media.hears(guest, host_id) > 0.02
