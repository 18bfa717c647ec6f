"""Item 11 of #17: schemathesis over the whole OpenAPI schema (v1 and the facades it
documents), valid and invalid input alike, with a fixed seed: no answer is a 5xx, and every
answer conforms to the schema (status codes, content types, bodies).

PARLEY_FUZZ_EXAMPLES examples per operation: a few in `make test` (cheap), a few hundred in
`make fuzz` (run once by .ci/run)."""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import given
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conferences.services import rooms as room_services
from tests.fuzzing import fuzz_settings

FUZZ = fuzz_settings(3)
FULL = FUZZ.max_examples >= 100
PHASES = ["examples", "coverage", "fuzzing"] if FULL else ["fuzzing"]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _load_schema() -> schemathesis.BaseSchema:
    """The schema the app serves at /api/v1/schema/, built without a request (at collection
    no database is allowed), then called through the app's WSGI handler."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer

    document = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(public=True)))
    loaded = schemathesis.openapi.from_dict(document)
    loaded.app = WSGIHandler()
    loaded.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], deterministic=True
    )
    # The coverage phase (every boundary value the schema defines) costs seconds per
    # operation: only in the full run (`make fuzz`).
    loaded.config.phases.update(phases=PHASES)
    return loaded


schema = _load_schema()


@pytest.fixture
def fuzzed_tenant(owner, livekit, settings):
    """The caller: a tenant without a plan throttle, with one room. Requests go through the
    WSGI handler, so, as Django's test client does, the connection is not closed after each
    (it holds the test's transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    settings.ALLOWED_HOSTS = ["*"]
    plan = owner.tenant.plan
    plan.requests_per_hour = None  # no plan throttle: thousands of requests
    plan.save()
    room_services.create_room(tenant=owner.tenant, data={"name": "Fuzzed"})
    yield owner
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _call(case, member) -> None:
    key = member.api_key
    case.call_and_validate(headers={"X-API-Key": key, "x-access-token": key}, checks=CHECKS)


@pytest.mark.skipif(FULL, reason="the full run below covers it")
def test_every_operation_quickly(fuzzed_tenant):
    """`make test`: every operation, valid and invalid input, in one test (one setup)."""
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @FUZZ
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                _call(case, fuzzed_tenant)

            run()


@pytest.mark.skipif(not FULL, reason="`make fuzz` (PARLEY_FUZZ_EXAMPLES >= 100)")
@schema.parametrize()
@FUZZ
def test_no_5xx_and_answers_match_the_schema(case, fuzzed_tenant):
    """`make fuzz`: each operation on its own, with the examples and coverage phases too."""
    _call(case, fuzzed_tenant)
