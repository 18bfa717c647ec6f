"""Helpers for the join-experience tests: rooms made through the service, and a browser-like
client for the join page's JSON endpoints (session cookie, CSRF token, client address)."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from conferences.models import Room
from conferences.services import rooms as room_services


def make_room(member, **data: Any) -> Room:
    return room_services.create_room(tenant=member.tenant, data={"name": "Standup", **data})


class Browser:
    """One browser: its own cookies (session, CSRF) and address, CSRF checks enforced."""

    def __init__(self, room: Room, ip: str = "198.51.100.7") -> None:
        self.room = room
        self.client = Client(enforce_csrf_checks=True, REMOTE_ADDR=ip)

    @property
    def base(self) -> str:
        return f"/room/{self.room.room_id}"

    def page(self, suffix: str = ""):
        return self.client.get(self.base + suffix)

    def host_page(self, secret: str | None = None):
        return self.client.get(f"{self.base}/host/{secret or self.room.host_secret}")

    def csrf(self) -> str:
        if "csrftoken" not in self.client.cookies:
            self.page()
        return self.client.cookies["csrftoken"].value

    def post(self, action: str, body: Any = None, *, raw: bytes | None = None, **kw: Any):
        data = raw if raw is not None else json.dumps({} if body is None else body)
        headers = {"X-CSRFToken": self.csrf(), **kw.pop("headers", {})}
        return self.client.post(
            f"{self.base}/{action}",
            data=data,
            content_type=kw.pop("content_type", "application/json"),
            headers=headers,
            **kw,
        )

    def join(self, name: str = "Ada Lovelace"):
        return self.post("join", {"name": name})

    def config(self) -> dict[str, Any]:
        """The join page's embedded configuration (json_script)."""
        return page_config(self.page())


def page_config(response) -> dict[str, Any]:
    html = response.content.decode()
    start = html.index('<script id="parley-config" type="application/json">')
    start = html.index(">", start) + 1
    end = html.index("</script>", start)
    return json.loads(html[start:end])
