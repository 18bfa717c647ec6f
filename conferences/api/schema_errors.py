"""OpenAPI postprocessing: every operation documents the errors it can answer.

The views declare their success bodies; the errors every operation may answer (bad input,
a missing key, another tenant's object, throttles, LiveKit down) are the same per surface,
so they are added here once, each in its surface's shape: the v1 envelope
`{"error": {"code", "message", "field", "request_id"}}`, or the Callaba facade's
`{"success": false, "message"}`. Schemathesis checks every answer against them
(tests/test_api_fuzz.py)."""

from __future__ import annotations

from typing import Any

ERRORS = {
    "400": "Bad input: malformed JSON, a wrong type or value (`field` names it)",
    "401": "Missing or invalid credentials (API key, host secret, token)",
    "403": "Not allowed: a plan limit, a role, or the room's access rules",
    "404": "Not found, or another tenant's (the two look the same)",
    "405": "Method not allowed",
    "406": "The Accept header asks for something other than JSON",
    "409": "The room or object is not in a state that allows this",
    "413": "Request body too large",
    "415": "Send JSON with Content-Type: application/json",
    "429": "Rate limit or lockout (Retry-After says when to try again)",
    "503": "LiveKit (or the mail server) is unreachable; nothing was changed",
}

V1_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "field", "request_id"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string", "nullable": True},
                "request_id": {"type": "string"},
            },
        }
    },
}
CALLABA_ERROR = {
    "type": "object",
    "required": ["success", "message"],
    "properties": {"success": {"type": "boolean", "enum": [False]}, "message": {"type": "string"}},
}


def add_error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorEnvelope"] = V1_ERROR
    schemas["CallabaError"] = CALLABA_ERROR
    for path, operations in result.get("paths", {}).items():
        name = "CallabaError" if path.startswith("/api/conferences") else "ErrorEnvelope"
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in ERRORS.items():
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {
                            "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}
                        },
                    },
                )
    return result
