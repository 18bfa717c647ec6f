"""What a browser session has proven about rooms, for the join pages and their sockets.

The session keeps proofs, never secrets: keyed fingerprints of a room's password hash and
host secret (so changing either voids old proofs), the email address a one-time code
proved, and the lobby entries this browser created. `visitor_for` turns them into the
`access.Visitor` the services decide on.
"""

from __future__ import annotations

import time
from typing import Any

from conferences import access
from conferences.models import Room

ACCESS = "parley.access"  # {room_id: {"password": fingerprint} | {"email": address}}
HOSTS = "parley.hosts"  # {room_id: {"fp": host fingerprint, "since": unix time opened}}
LOBBY = "parley.lobby"  # {entry_id: room_id}
KEEP = 50  # rooms (or entries) remembered per session; the oldest are dropped


def _bounded_put(session: Any, key: str, name: str, value: Any) -> None:
    data = dict(session.get(key) or {})
    data.pop(name, None)
    data[name] = value
    while len(data) > KEEP:
        data.pop(next(iter(data)))
    session[key] = data


def visitor_for(session: Any, user: Any, room_id: str, client: str = "") -> access.Visitor:
    proofs = (session.get(ACCESS) or {}).get(room_id) or {}
    host = (session.get(HOSTS) or {}).get(room_id)
    host = host if isinstance(host, dict) else {}  # an older session's bare fingerprint: void
    return access.Visitor(
        user=user if user is not None and getattr(user, "is_authenticated", False) else None,
        password_fingerprint=str(proofs.get("password", "")),
        email=str(proofs.get("email", "")),
        host_fingerprint=str(host.get("fp", "")),
        host_since=float(host.get("since", 0) or 0),
        client=client,
        entries=tuple(entries_for(session, room_id)),
    )


def remember_password(session: Any, room: Room, fingerprint: str) -> None:
    _bounded_put(session, ACCESS, room.room_id, {"password": fingerprint})


def remember_email(session: Any, room: Room, email: str) -> None:
    _bounded_put(session, ACCESS, room.room_id, {"email": email})


def remember_host(session: Any, room: Room) -> None:
    """The host link was opened: a host proof for the room's life (access.host_proof_current)."""
    proof = {"fp": access.host_fingerprint(room), "since": time.time()}
    _bounded_put(session, HOSTS, room.room_id, proof)


def remember_entry(session: Any, room: Room, entry_id: str) -> None:
    _bounded_put(session, LOBBY, entry_id, room.room_id)


def owns_entry(session: Any, room_id: str, entry_id: str) -> bool:
    return (session.get(LOBBY) or {}).get(entry_id) == room_id


def entries_for(session: Any, room_id: str) -> list[str]:
    """This browser's lobby entries in the room (at most one is still waiting)."""
    return [entry for entry, room in (session.get(LOBBY) or {}).items() if room == room_id]
