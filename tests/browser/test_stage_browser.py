"""The webinar stage in real headless Chromium, host and viewer in two browser contexts: the
viewer raises a hand and it appears in the host's queue; the host invites and the viewer is
asked to speak; accepting makes the server promote the viewer live (asserted on the LiveKit
double), and the page turns its microphone and camera on from the new permissions.

No LiveKit server runs here: as in the join tests' stubbed meeting, livekit-client's connect
is stubbed at the page boundary, the viewer's token is connected to the LiveKit double, and
what livekit-server would push to the client after an UpdateParticipant (permissions and
attributes) is pushed into the page from what the double holds for that participant."""

from __future__ import annotations

import pytest
from livekit.protocol import models as proto
from playwright.sync_api import expect

from tests.browser.conftest import off_loop, wait_until
from tests.conftest import make_member
from tests.join_helpers import make_room

pytestmark = pytest.mark.browser
expect.set_options(timeout=15_000)

STUB_CONNECT = """() => {
    const Room = LivekitClient.Room;
    LivekitClient.Room = class extends Room {
        constructor(options) {
            super(options);
            window.__room = this;
            this.connect = async (url, token) => { window.__joined = { url, token }; };
        }
    };
}"""

# What livekit-client does with a ParticipantUpdate for itself: new permissions, attributes.
PUSH = """([permission, attributes]) => {
    const lp = window.__room.localParticipant;
    lp.setPermissions(permission);
    lp._setAttributes(attributes);
}"""


def pushed(info: proto.ParticipantInfo) -> list:
    """The double's view of a participant, shaped as livekit-client's ParticipantPermission
    and attributes (TrackSource numbers as on the wire)."""
    p = info.permission
    permission = {
        "canSubscribe": p.can_subscribe,
        "canPublish": p.can_publish,
        "canPublishData": p.can_publish_data,
        "canPublishSources": [int(s) for s in p.can_publish_sources],
        "hidden": p.hidden,
        "recorder": p.recorder,
        "canUpdateMetadata": p.can_update_metadata,
        "canSubscribeMetrics": False,
    }
    return [permission, dict(info.attributes)]


def updates(livekit, identity: str) -> list:
    return [c for c in livekit.calls_to("UpdateParticipant") if c.request.identity == identity]


def test_raise_hand_invite_accept_and_demote(open_page, livekit):
    member = off_loop(make_member, "Acme")
    room = off_loop(make_room, member, name="Town hall", allow_webinar_mode=True, max_speakers=3)
    host, _ = open_page(f"/room/{room.room_id}/host/{room.host_secret}")
    expect(host.locator("#hands-empty")).to_be_visible()

    viewer, _ = open_page(f"/room/{room.room_id}")
    expect(viewer.locator("#role-note")).to_contain_text("raise your hand")
    viewer.evaluate(STUB_CONNECT)
    viewer.fill("#name-input", 'Vera "V" Viewer')
    viewer.click("#join-button")
    expect(viewer.locator("#join-app")).to_have_attribute("data-state", "meeting")
    token = wait_until(viewer, lambda: viewer.evaluate("window.__joined && window.__joined.token"))
    claims = livekit.verify_join_token(token, room=room.room_id)
    identity = claims["sub"]
    assert claims["attributes"]["role"] == "viewer" and claims["video"]["canPublish"] is False
    # LiveKit admits the viewer with its token's grants.
    viewer.evaluate(PUSH, pushed(livekit.join(token, room=room.room_id)))
    expect(viewer.locator("#ctl-mic")).to_be_hidden()
    expect(viewer.locator("#ctl-cam")).to_be_hidden()
    expect(viewer.locator("#audience .audience-member")).to_contain_text('Vera "V" Viewer (you)')

    # Raise a hand: the host's queue shows it live; the server writes the `hand` attribute.
    viewer.click("#ctl-hand")
    expect(viewer.locator("#ctl-hand")).to_have_text("Lower hand")
    entry = host.locator("#hands-list .hand-entry")
    expect(entry).to_have_count(1)
    expect(entry.locator(".hand-name")).to_have_text('1. Vera "V" Viewer')
    expect(entry.locator(".hand-meta")).to_have_text("raised just now")
    wait_until(viewer, lambda: updates(livekit, identity), what="the hand attribute")
    viewer.evaluate(PUSH, pushed(livekit.get_participant(room.room_id, identity)))
    expect(viewer.locator("#audience .audience-hand")).to_be_visible()

    # The host invites; the viewer is asked on its page.
    entry.locator(".hand-invite").click()
    prompt = viewer.locator("#stage-invite")
    expect(prompt).to_be_visible()
    expect(prompt).to_contain_text("You are invited to speak")
    expect(entry.locator(".tag")).to_have_text("invited")

    # Accepting: the server promotes live, with the speaker's whole permission set.
    viewer.click("#stage-accept")
    expect(prompt).to_be_hidden()
    promotion = wait_until(
        viewer,
        lambda: [c for c in updates(livekit, identity) if c.request.HasField("permission")],
        what="UpdateParticipant with permissions",
    )[-1]
    S = proto.TrackSource
    assert promotion.request.permission == proto.ParticipantPermission(
        can_subscribe=True,
        can_publish=True,
        can_publish_data=True,
        can_publish_sources=[S.CAMERA, S.MICROPHONE, S.SCREEN_SHARE, S.SCREEN_SHARE_AUDIO],
    )
    assert dict(promotion.request.attributes) == {"role": "speaker", "hand": ""}
    assert promotion.request.room == room.room_id
    expect(host.locator("#speakers-list .speaker-entry")).to_contain_text('Vera "V" Viewer')
    expect(host.locator("#hands-list .hand-entry")).to_have_count(0)

    # LiveKit tells the client; the page shows the controls, without reconnecting.
    viewer.evaluate(PUSH, pushed(livekit.get_participant(room.room_id, identity)))
    expect(viewer.locator("#ctl-mic")).to_be_visible()
    expect(viewer.locator("#ctl-cam")).to_be_visible()
    expect(viewer.locator("#ctl-hand")).to_be_hidden()
    expect(viewer.locator("#tiles .tile.local .tile-badge")).to_have_text("Speaker")
    assert viewer.evaluate("window.__joined.token") == token  # the same connection

    # The host moves her back to the audience: the controls go away.
    host.locator("#speakers-list .speaker-demote").click()
    wait_until(
        viewer,
        lambda: updates(livekit, identity)[-1].request.permission.can_publish is False,
        what="the demotion",
    )
    viewer.evaluate(PUSH, pushed(livekit.get_participant(room.room_id, identity)))
    expect(viewer.locator("#ctl-mic")).to_be_hidden()
    expect(viewer.locator("#ctl-cam")).to_be_hidden()
    expect(viewer.locator("#ctl-hand")).to_be_visible()
    expect(host.locator("#speakers-empty")).to_be_visible()
