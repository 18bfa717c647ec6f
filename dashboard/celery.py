"""Celery app: configuration from Django settings (CELERY_*), tasks autodiscovered."""

import os
from pathlib import Path

from celery import Celery

from .kombu_fs import register as register_filesystem_broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
register_filesystem_broker()

app = Celery("parley")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def ensure_broker_folders() -> None:
    """The filesystem broker needs its folders to exist before worker or beat start."""
    options = app.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


ensure_broker_folders()
