"""Former home of the join page's services, split along its seams (issue 9):

* `conferences.access`: rooms by credential, visitors' proofs, the access policy;
* `conferences.selectors`: room state, the waiting room's queue, the stage's reads;
* `conferences.services.access`: passwords and one-time codes, with their attempt limits,
  and signed participant tokens;
* `conferences.services.lobby`: joining and the waiting room;
* `conferences.services.moderation`: remove, mute all, disable video, start, end, deactivate;
* `conferences.services.stage`: the stage, including guests' own actions.

Only names are re-exported here, for code written against this module; new code imports
the modules above.
"""

# ruff: noqa: F401  (re-exports)

from __future__ import annotations

from conferences import selectors
from conferences.access import (
    Visitor,
    Vouched,
    access_problem,
    client_key,
    host_fingerprint,
    host_role,
    host_secret_matches,
    password_fingerprint,
    room_by_public_id,
)
from conferences.access import room_for_guest_token as stage_member
from conferences.access import room_for_host as authorize_host
from conferences.access import room_for_host_visitor as host_room_for
from conferences.selectors import (
    LOBBY_MAX_AGE,
    LOBBY_SHOWN,
    SOCKET_GRACE,
    RoomState,
    lobby_entry,
    next_start,
    own_stage_state,
    room_phase,
    room_state,
    waiting_list,
)

from .access import (
    ATTEMPT_WINDOW,
    CODE_MAX_TRIES,
    CODE_TTL,
    MAX_CODE_REQUESTS,
    MAX_WRONG_CODES,
    MAX_WRONG_PASSWORDS,
    normalize_email,
    request_code,
    signed_participant,
    verify_code,
    verify_password,
)
from .errors import (
    AccessRequired,
    ControlDisabled,
    Forbidden,
    InvalidInput,
    InvalidState,
    LockedOut,
    NotFound,
    RoomFull,
    ServiceError,
    Unauthorized,
    Unavailable,
    WrongCredentials,
)
from .lobby import (
    ADMISSION_TTL,
    LOBBY_MAX,
    LOBBY_PER_CLIENT,
    Decision,
    JoinResult,
    admit,
    clean_display_name,
    join,
    leave_lobby,
    lobby_socket_connected,
    reject,
    token_for_entry,
)
from .moderation import (
    deactivate_room,
    disable_video,
    end_room,
    mute_all,
    remove_participant,
    start_room,
)
from .stage import STAGE_ACTIONS_PER_MINUTE, count_stage_action


def stage_socket_member(*, room_id: str, token: object) -> tuple[object, str] | None:
    """(room, identity) for a guest page's stage socket: a valid token for this room whose
    identity is in the room now; None otherwise."""
    try:
        room, identity = stage_member(room_id=room_id, token=token)
    except ServiceError:
        return None
    if selectors.present_participant(room=room, identity=identity) is None:
        return None
    return room, identity
