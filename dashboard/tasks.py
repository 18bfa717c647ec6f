"""Celery tasks of the dashboard: translate a beat tick into one call."""

from __future__ import annotations

from celery import shared_task

from . import usage


@shared_task(name="dashboard.meter_usage", ignore_result=True, soft_time_limit=40, time_limit=50)
def meter_usage() -> int:
    """Sample LiveKit's head counts for this minute (claimed once, see usage.meter)."""
    return usage.meter()
