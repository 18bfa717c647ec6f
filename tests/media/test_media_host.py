"""Real media, the host's side, on a real livekit-server: the webinar stage (a viewer's
publish refused by the server, promotion brings their microphone to the host, demotion
unpublishes it without a reconnect), host controls (mute all, remove, max_participants,
end for everyone), and LiveKit's own webhooks updating Parley."""

from __future__ import annotations

import logging

import pytest
from livekit.protocol import models as proto

from accounts.models import UsageDay
from conferences.models import Participant, Room, RoomSession
from conferences.services import rooms as room_services
from conferences.services import stage as stage_services
from dashboard import usage
from tests.browser.conftest import off_loop, wait_until
from tests.conftest import make_member
from tests.join_helpers import make_room
from tests.media.conftest import MEDIA_WARNINGS, poll, rooms

pytestmark = [pytest.mark.browser, pytest.mark.media, MEDIA_WARNINGS]

MIC = proto.TrackSource.MICROPHONE

# Publish the microphone even though the page's own permission check would stop it, so that
# what refuses it is livekit-server. Resolves to "published" or why not.
FORCE_MIC = """async () => {
    const lp = window.__room.localParticipant;
    lp.hasPermissionsToPublish = () => true;
    const track = await LivekitClient.createLocalAudioTrack();
    const options = { source: LivekitClient.Track.Source.Microphone };
    const attempt = lp.publishTrack(track, options).then(
        () => "published",
        (err) => "refused: " + (err && err.message),
    );
    const timeout = new Promise((resolve) => setTimeout(() => resolve("no answer"), 12000));
    const outcome = await Promise.race([attempt, timeout]);
    delete lp.hasPermissionsToPublish;
    track.stop();
    return outcome;
}"""

REMOTE_SOURCES = """id => {
    const p = window.__room.remoteParticipants.get(id);
    return p ? Array.from(p.trackPublications.values()).map((t) => t.source) : null;
}"""

RECONNECTS = """() => window.__events.filter(
    (e) => e[0] !== "Connected").map((e) => e[0])"""


def by_identity(media, room) -> dict:
    return {p.identity: p for p in media.participants(room.room_id)}


def test_webinar_stage_promote_and_demote_on_the_real_server(media):
    member = off_loop(make_member, "Acme")
    room = off_loop(make_room, member, name="Town hall", allow_webinar_mode=True, max_speakers=3)
    host = media.open(f"/room/{room.room_id}/host/{room.host_secret}")
    media.join(host, "Hosta")
    host_id = media.connected(host)
    viewer = media.open(f"/room/{room.room_id}")
    media.join(viewer, "Vera")
    viewer_id = media.connected(viewer)
    assert media.hears(viewer, host_id) > 0.02  # the audience hears the stage

    # A viewer's publish attempt is refused by the server.
    outcome = viewer.evaluate(FORCE_MIC)
    assert outcome != "published", outcome
    people = by_identity(media, room)
    assert not people[viewer_id].tracks and not people[viewer_id].permission.can_publish
    assert host.evaluate(REMOTE_SOURCES, viewer_id) == []
    sid = people[viewer_id].sid

    # Promoted: the page offers the microphone; turned on, it reaches the host.
    off_loop(stage_services.promote, room=room, identity=viewer_id, mic_only=True)
    mic = viewer.locator("#ctl-mic")
    mic.wait_for(state="visible")
    wait_until(viewer, lambda: mic.is_enabled(), what="the microphone button")
    mic.click()
    assert media.hears(host, viewer_id) > 0.02
    assert [t.source for t in by_identity(media, room)[viewer_id].tracks] == [MIC]

    # Demoted: LiveKit unpublishes the microphone; the host stops receiving it; the viewer
    # stayed connected all along (same participant, no reconnect).
    off_loop(stage_services.demote, room=room, identity=viewer_id)
    wait_until(
        host,
        lambda: host.evaluate(REMOTE_SOURCES, viewer_id) == [],
        what="the host to lose the demoted viewer's microphone",
    )
    after = by_identity(media, room)[viewer_id]
    assert not after.tracks and not after.permission.can_publish
    assert after.sid == sid
    assert viewer.evaluate(RECONNECTS) == []
    assert viewer.evaluate("window.__room.state") == "connected"


def test_host_controls_on_the_real_server(media):
    member = off_loop(make_member, "Acme")
    room = off_loop(make_room, member, name="Controls", max_participants=3)
    host = media.open(f"/room/{room.room_id}/host/{room.host_secret}")
    host.on("dialog", lambda dialog: dialog.accept())
    media.join(host, "Hosta")
    host_id = media.connected(host)
    pages = {}
    for name in ("Gina", "Gale"):
        page = media.open(f"/room/{room.room_id}")
        media.join(page, name)
        pages[media.connected(page)] = page
    gina_id, gale_id = list(pages)
    for identity in pages:
        assert media.hears(host, identity) > 0.02

    # max_participants is LiveKit's: a fourth connection with a valid token is refused.
    token = off_loop(room_services.issue_token, room=room, name="Extra").token
    extra = media.open(f"/room/{room.room_id}", instrument=False)
    refused = extra.evaluate(
        """async ([url, token]) => {
            const room = new LivekitClient.Room();
            try { await room.connect(url, token); return "connected"; }
            catch (err) { return "refused: " + err.message; }
        }""",
        [media.server.ws_url, token],
    )
    assert refused.startswith("refused"), refused
    assert len(media.participants(room.room_id)) == 3

    # Mute everyone: the guests' microphones are muted at the server.
    host.click("#host-mute-all")
    wait_until(
        host,
        lambda: all(
            p.tracks and p.tracks[0].muted
            for i, p in by_identity(media, room).items()
            if i != host_id
        ),
        what="the guests' microphones muted on LiveKit",
    )
    for page in pages.values():
        wait_until(
            page,
            lambda page=page: page.evaluate(
                "window.__room.localParticipant.getTrackPublication('microphone').isMuted"
            ),
            what="the guest's page to see its microphone muted",
        )

    # Remove one guest: disconnected by the server, told so.
    host.locator(f".tile[data-identity='{gale_id}'] .tile-remove").click()
    gale = pages[gale_id]
    gale.wait_for_selector("#join-app[data-state=left]")
    assert gale.inner_text("#left-title") == "You were removed from the meeting"
    wait_until(
        host,
        lambda: set(by_identity(media, room)) == {host_id, gina_id},
        what="the removed guest gone from LiveKit",
    )

    # End the meeting: everyone still in is disconnected, LiveKit's room is gone.
    host.click("#host-end")
    for page in (host, pages[gina_id]):
        page.wait_for_selector("#join-app[data-state=left]")
        assert page.inner_text("#left-title") == "The meeting has ended"
    assert media.participants(room.room_id) == []
    assert off_loop(lambda: Room.objects.get(pk=room.pk).status) == "completed"


def test_livekit_webhooks_update_participants_sessions_and_usage(media, caplog):
    caplog.set_level(logging.INFO, logger="conferences.webhooks")
    member = off_loop(make_member, "Acme")
    room = off_loop(make_room, member, name="Hooks")
    ada = media.open(f"/room/{room.room_id}")
    bob = media.open(f"/room/{room.room_id}")
    media.join(ada, "Ada")
    media.join(bob, "Bob")
    ada_id, bob_id = media.connected(ada), media.connected(bob)

    def applied_message(message: str, event: str, result: str) -> bool:
        return message == f"LiveKit webhook {event} for {room.room_id}: {result}"

    def applied(event: str, result: str) -> bool:
        return any(applied_message(r.getMessage(), event, result) for r in caplog.records)

    # participant_joined from the server reached Parley for both (tracked participants).
    def joined() -> int:
        hooks = [r.getMessage() for r in caplog.records]
        return sum(applied_message(m, "participant_joined", "joined") for m in hooks)

    wait_until(ada, lambda: joined() == 2, what="both participant_joined webhooks applied")

    # Usage is metered from the real server's head count (ListRooms; livekit-server
    # refreshes a room's counts every 5 s, so wait for them first).
    poll(
        lambda: [r.num_participants for r in rooms(media.server, room.room_id)] == [2],
        what="LiveKit's room head count",
    )
    off_loop(usage.meter)
    day = off_loop(lambda: UsageDay.objects.get(tenant=member.tenant))
    assert day.participant_minutes == 2 and day.room_minutes == 1 and day.peak_participants == 2

    # Bob leaves: participant_left marks him gone; Ada stays.
    bob.click("#ctl-leave")
    poll(
        lambda: off_loop(lambda: Participant.objects.get(room_id=room.pk, identity=bob_id).left_at),
        what="Bob marked as left by the participant_left webhook",
    )
    assert (
        off_loop(lambda: Participant.objects.get(room_id=room.pk, identity=ada_id).left_at) is None
    )
    # The handler logs its result after its transaction commits: wait for the line too.
    poll(lambda: applied("participant_left", "left"), what="participant_left logged")

    # Ada leaves too: the server closes the room (departure timeout) and room_finished ends
    # Parley's session.
    ada.click("#ctl-leave")
    poll(
        lambda: off_loop(lambda: Room.objects.get(pk=room.pk).live_since is None),
        timeout=30,
        what="room_finished ending the session",
    )
    session = off_loop(lambda: RoomSession.objects.get(room_id=room.pk))
    assert session.ended_at is not None
    poll(lambda: applied("room_finished", "ended"), what="room_finished logged")
    assert off_loop(lambda: Room.objects.get(pk=room.pk).status) == "completed"
