"""Helpers for the VideoSDK-compatible API tests: signing keys, JWTs, and a client that sends
`Authorization: <JWT>` with no prefix, as VideoSDK's servers do."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
from django.test import Client

from accounts import signing_keys

# The reference's example body, with "webhook", "autoCloseConfig" and "autoStartConfig"
# filled in as its sections show (transcription and summary off: Parley has none).
REFERENCE_BODY: dict[str, Any] = {
    "customRoomId": "aaa-bbb-ccc",
    "webhook": {
        "endPoint": "https://hooks.example.com/videosdk",
        "events": ["participant-joined", "participant-left", "session-started", "session-ended"],
    },
    "autoCloseConfig": {"type": "session-end-and-deactivate", "duration": 60},
    "autoStartConfig": {
        "recording": {
            "transcription": {
                "enabled": False,
                "summary": {"enabled": False, "prompt": "Write summary in sections"},
            },
            "config": {
                "layout": {"type": "SPOTLIGHT", "priority": "PIN", "gridSize": 3},
                "theme": "DARK",
                "mode": "audio",
                "quality": "high",
                "orientation": "portrait",
            },
            "awsDirPath": "meetings/2026",
        },
        "hls": {
            "transcription": {"enabled": False, "summary": {"enabled": False}},
            "config": {
                "layout": {"type": "SIDEBAR", "priority": "SPEAKER", "gridSize": 4},
                "theme": "LIGHT",
                "mode": "video-and-audio",
                "quality": "med",
                "orientation": "landscape",
                "recording": {"enabled": "false"},
            },
        },
    },
}


class SigningPair:
    def __init__(self, tenant, name: str = "server") -> None:
        issued = signing_keys.create_signing_key(tenant=tenant, name=name)
        self.key = issued.key
        self.key_id = issued.key.key_id
        self.secret = issued.secret

    def token(self, *, secret: str | None = None, lifetime: int = 600, **claims: Any) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "apikey": self.key_id,
            "permissions": ["allow_join"],
            "version": 2,
            "iat": now,
            "exp": now + lifetime,
        }
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, secret or self.secret, algorithm="HS256")


class VideoSdkClient:
    def __init__(self, token: str | None) -> None:
        self.client = Client()
        self.token = token

    def _headers(self, token: str | None) -> dict[str, str]:
        token = self.token if token is None else token
        return {"Authorization": token} if token else {}

    def get(self, path: str, *, token: str | None = None):
        return self.client.get(path, headers=self._headers(token))

    def post(
        self, path: str, body: Any = None, *, token: str | None = None, raw: str | None = None
    ):
        data = raw if raw is not None else json.dumps({} if body is None else body)
        return self.client.post(
            path, data=data, content_type="application/json", headers=self._headers(token)
        )


def assert_videosdk_error(response, status: int, message: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content)
    body = response.json()
    assert set(body) == {"statusCode", "error", "message"}, body
    assert body["statusCode"] == status and body["error"] and body["message"]
    if message is not None:
        assert message in body["message"], body
    return body
