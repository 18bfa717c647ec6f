"""`POST /api/v1/call-tokens`: a tenant's server vouches for one of its end users, who then
connects to `/ws/videochat` with the short-lived token (reference: videochat-handshake-ws.txt,
user simple structure)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from conferences.services import calls as call_services

from ..fields import StrictCharField, StrictIntegerField, format_datetime
from .serializers import StrictSerializer, _field
from .views import V1View

DEFAULT_TTL = 3600
MIN_TTL, MAX_TTL = 60, 86400


@extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
class SkinsField(serializers.Field):
    """`assetSkins`: a map of variant -> selected skin, both strings."""

    def to_internal_value(self, data: Any) -> dict[str, str]:
        if not isinstance(data, dict) or len(data) > 100:
            raise serializers.ValidationError("The 'assetSkins' must be an object of strings")
        for key, value in data.items():
            if not isinstance(value, str) or len(key) > 100 or len(value) > 500:
                raise serializers.ValidationError("The 'assetSkins' must be an object of strings")
        return dict(data)

    def to_representation(self, value: Any) -> Any:
        return value


class Avatar3DSerializer(StrictSerializer):
    assetId = _field(StrictCharField, "assetId", max_length=200, required=False)
    assetSkins = SkinsField(required=False)
    avatarUrl = _field(StrictCharField, "avatarUrl", max_length=2000, required=False)
    avatarUserId = _field(StrictCharField, "avatarUserId", max_length=200, required=False)


class CallTokenInputSerializer(StrictSerializer):
    """The user simple structure, plus how long the token lives (`expires_in`, seconds)."""

    id = _field(StrictCharField, "id", min_length=1, max_length=128)
    firstName = _field(StrictCharField, "firstName", max_length=100, required=False, default="")
    lastName = _field(StrictCharField, "lastName", max_length=100, required=False, default="")
    privacyMode = _field(
        StrictIntegerField, "privacyMode", min_value=0, max_value=1, required=False, default=0
    )
    avatar = _field(StrictCharField, "avatar", max_length=2000, required=False, default="")
    avatar3D = Avatar3DSerializer(required=False, allow_null=True)
    companyName = _field(StrictCharField, "companyName", max_length=200, required=False, default="")
    companyTitle = _field(
        StrictCharField, "companyTitle", max_length=200, required=False, default=""
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        def has_nul(value: Any) -> bool:
            if isinstance(value, str):
                return "\x00" in value
            if isinstance(value, dict):
                return any(has_nul(k) or has_nul(v) for k, v in value.items())
            return False

        for name, value in attrs.items():
            if has_nul(value):
                raise serializers.ValidationError({name: [f"The '{name}' must not contain NUL"]})
        return attrs

    expires_in = _field(
        StrictIntegerField,
        "expires_in",
        min_value=MIN_TTL,
        max_value=MAX_TTL,
        required=False,
        default=DEFAULT_TTL,
    )


class CallTokensView(V1View):
    """Vouch for an end user of the tenant's app: a short-lived token for `/ws/videochat`."""

    @extend_schema(
        operation_id="create_call_token",
        request=CallTokenInputSerializer,
        responses={
            201: inline_serializer(
                "CallToken",
                {
                    "token": serializers.CharField(),
                    "expires_at": serializers.DateTimeField(),
                    "ws_path": serializers.CharField(),
                    "user": serializers.DictField(),
                },
            )
        },
    )
    def post(self, request: Request) -> Response:
        serializer = CallTokenInputSerializer(data=self.json_body(request))
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        ttl = data.pop("expires_in")
        if not data.get("avatar3D"):
            data.pop("avatar3D", None)
        issued = call_services.vouch_user(tenant=request.tenant, profile=data, ttl_seconds=ttl)  # type: ignore[arg-type, attr-defined]
        return Response(
            {
                "token": issued.token,
                "expires_at": format_datetime(issued.expires_at),
                "ws_path": "/ws/videochat",
                "user": call_services.simple(issued.user),
            },
            status=201,
        )
