"""Rooms that existed before the VideoSDK-compatible API get a roomId each (backfill)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def _videosdk_migration(executor: MigrationExecutor) -> tuple[tuple[str, str], tuple[str, str]]:
    """(the migration before ours, ours), found by name so renumbering does not matter."""
    [ours] = [
        key
        for key in executor.loader.disk_migrations
        if key[0] == "conferences" and key[1].endswith("_videosdk")
    ]
    [before] = [
        dep for dep in executor.loader.disk_migrations[ours].dependencies if dep[0] == "conferences"
    ]
    return before, ours


@pytest.mark.django_db(transaction=True)
def test_existing_rooms_get_unique_room_ids(owner):
    executor = MigrationExecutor(connection)
    before, ours = _videosdk_migration(executor)
    executor.migrate([before])
    Room = executor.loader.project_state([before]).apps.get_model("conferences", "Room")
    for number in range(1, 6):
        Room.objects.create(
            tenant_id=owner.tenant.pk,
            number=number,
            name=f"Old {number}",
            room_type="temporary",
            media_type="both",
            max_participants=10,
            access_type="public",
            status="active",
            video_quality="high",
        )
    executor = MigrationExecutor(connection)
    executor.migrate([ours])
    Room = executor.loader.project_state([ours]).apps.get_model("conferences", "Room")
    ids = list(Room.objects.values_list("meeting_id", flat=True))
    assert len(ids) == 5 and len(set(ids)) == 5
    assert all(re.fullmatch(r"[a-z]{4}-[a-z]{4}-[a-z]{4}", value) for value in ids)
    # Leave the database fully migrated for the tests that follow.
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
