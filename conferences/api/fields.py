"""Strict DRF fields: JSON types are checked as sent, never coerced ("50" is not 50)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conferences.shapes import format_datetime

__all__ = ["format_datetime"]  # the one datetime format, kept importable from here


def _quote(field: serializers.Field) -> str:
    return f"'{field.field_name}'"


@extend_schema_field(OpenApiTypes.STR)
class StrictCharField(serializers.Field):
    def __init__(self, *, min_length: int = 0, max_length: int = 10_000, strip: bool = True, **kw):
        self.min_length, self.max_length, self.strip = min_length, max_length, strip
        super().__init__(**kw)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError(f"The {_quote(self)} must be a string")
        value = data.strip() if self.strip else data
        if not self.min_length <= len(value) <= self.max_length:
            raise serializers.ValidationError(
                f"The {_quote(self)} must be between {self.min_length} and "
                f"{self.max_length} characters"
            )
        if "\x00" in value:
            raise serializers.ValidationError(f"The {_quote(self)} contains a NUL character")
        return value

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(OpenApiTypes.BOOL)
class StrictBooleanField(serializers.Field):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            raise serializers.ValidationError(f"The {_quote(self)} must be true or false")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(OpenApiTypes.INT)
class StrictIntegerField(serializers.Field):
    def __init__(self, *, min_value: int, max_value: int, **kw):
        self.min_value, self.max_value = min_value, max_value
        super().__init__(**kw)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            if isinstance(data, float) and data.is_integer():
                data = int(data)
            else:
                raise serializers.ValidationError(f"The {_quote(self)} must be an integer")
        if not self.min_value <= data <= self.max_value:
            raise serializers.ValidationError(
                f"The {_quote(self)} must be between {self.min_value} and {self.max_value}"
            )
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class StrictChoiceField(serializers.ChoiceField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) or data not in self.choices:
            options = ", ".join(str(c) for c in self.choices)
            raise serializers.ValidationError(f"The {_quote(self)} must be one of: {options}")
        return data


@extend_schema_field(OpenApiTypes.DATETIME)
class OffsetDateTimeField(serializers.Field):
    """ISO 8601 date-time that states its UTC offset (`Z` or `+hh:mm`); stored as UTC."""

    def to_internal_value(self, data: Any) -> dt.datetime:
        if not isinstance(data, str):
            raise serializers.ValidationError(
                f"The {_quote(self)} must be an ISO 8601 date-time string"
            )
        try:
            value = dt.datetime.fromisoformat(data.strip())
        except ValueError:
            raise serializers.ValidationError(
                f"The {_quote(self)} must be an ISO 8601 date-time, e.g. 2025-07-03T14:00:00Z"
            ) from None
        if value.tzinfo is None or value.utcoffset() is None:
            raise serializers.ValidationError(
                f"The {_quote(self)} must include a UTC offset, e.g. 2025-07-03T14:00:00Z"
            )
        if not 1970 <= value.year <= 9998:
            raise serializers.ValidationError(f"The {_quote(self)} is out of range")
        return value.astimezone(dt.UTC).replace(microsecond=0)

    def to_representation(self, value: Any) -> Any:
        return format_datetime(value)
