"""The dashboard's VideoSDK-style signing keys: created by admins with the secret shown once,
stored encrypted, revoked with confirmation; other tenants' keys are 404."""

from __future__ import annotations

import re

from accounts import crypto, signing_keys
from accounts.models import SigningKey
from tests.dashboard_cast import Cast
from tests.videosdk_helpers import SigningPair, VideoSdkClient


def test_a_new_signing_key_is_shown_once_and_works(cast: Cast):
    client = cast.client("admin")
    response = client.post("/dashboard/api-keys/signing/", {"signing-name": "VideoSDK server"})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    page = response.content.decode()
    key_id = re.search(r'id="new-signing-id" type="text" readonly value="([^"]+)"', page)[1]
    secret = re.search(
        r'id="new-signing-secret" type="text" readonly value="([0-9a-f]{64})"', page
    )[1]
    key = SigningKey.objects.get(tenant=cast.tenant, key_id=key_id)
    assert secret not in key.secret_encrypted
    assert crypto.decrypt(key.secret_encrypted, purpose="videosdk") == secret
    pair = SigningPair.__new__(SigningPair)
    pair.key, pair.key_id, pair.secret = key, key_id, secret
    assert VideoSdkClient(pair.token()).get("/v2/rooms").status_code == 200
    listing = client.get("/dashboard/api-keys/").content.decode()
    assert key_id in listing and "VideoSDK server" in listing and secret not in listing


def test_name_is_required(cast: Cast):
    response = cast.client("owner").post("/dashboard/api-keys/signing/", {"signing-name": " "})
    assert response.status_code == 400 and "1-100 characters" in response.content.decode()
    assert not SigningKey.objects.exists()


def test_members_cannot_create_or_revoke(cast: Cast):
    assert (
        cast.client("member")
        .post("/dashboard/api-keys/signing/", {"signing-name": "x"})
        .status_code
        == 403
    )
    key = signing_keys.create_signing_key(tenant=cast.tenant, name="k").key
    response = cast.client("viewer").post(
        f"/dashboard/api-keys/signing/{key.key_id}/revoke/", {"confirm": "yes"}
    )
    assert response.status_code == 403
    assert SigningKey.objects.get(pk=key.pk).revoked_at is None


def test_revoke_with_confirmation(cast: Cast):
    pair = SigningPair(cast.tenant)
    token = pair.token()
    client = cast.client("admin")
    url = f"/dashboard/api-keys/signing/{pair.key_id}/revoke/"
    assert client.post(url).status_code == 200  # asks first
    assert SigningKey.objects.get(pk=pair.key.pk).revoked_at is None
    assert client.post(url, {"confirm": "yes"}).status_code == 302
    assert SigningKey.objects.get(pk=pair.key.pk).revoked_at is not None
    assert VideoSdkClient(token).get("/v2/rooms").status_code == 401


def test_another_tenants_signing_key_is_404(cast: Cast):
    theirs = signing_keys.create_signing_key(tenant=cast.other, name="theirs").key
    response = cast.client("owner").post(
        f"/dashboard/api-keys/signing/{theirs.key_id}/revoke/", {"confirm": "yes"}
    )
    assert response.status_code == 404
    assert SigningKey.objects.get(pk=theirs.pk).revoked_at is None
    assert theirs.key_id not in cast.client("owner").get("/dashboard/api-keys/").content.decode()
