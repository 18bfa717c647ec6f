"""allauth adapter: signing up creates a tenant owned by the new user; the client address of
allauth's rate limits (sign-in failures, ...) is Parley's one (`parley.clientip`)."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from django.db import transaction
from django.http import HttpRequest

from parley.clientip import client_ip

from . import services


class AccountAdapter(DefaultAccountAdapter):
    @transaction.atomic
    def save_user(self, request, user, form, commit=True):  # type: ignore[override]
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            name = f"{user.email.split('@')[0]}'s team"
            services.create_tenant(name=name, plan_code="free", owner=user)
        return user

    def get_client_ip(self, request: HttpRequest) -> str:
        return client_ip(request) or "unknown"
