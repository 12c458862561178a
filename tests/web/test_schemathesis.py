"""Schemathesis against the OpenAPI document: never a 500, and every response that the
document describes matches its schema (SPEC §13 "never a 500 for bad input").

The office is seeded once per module (schemathesis drives hypothesis, which reruns the test
body many times with one fixture value) and the calls carry the office user's bearer token,
so they reach the handlers instead of stopping at 401. The number of examples is bounded:
this is a net for server errors run on every suite, not an exhaustive search.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.result import Ok

from tests.web.conftest import Office, make_office

EXAMPLES = 40  # per operation and mode; ~12 operations, well under a minute on a loaded 2-core machine


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    db = Path(tmp_path_factory.mktemp("schemathesis")) / "duban.db"
    o = make_office(f"sqlite:///{db}")
    yield o
    o.app.db.dispose()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_server_error_and_responses_match_the_document(seeded: Office, mode: GenerationMode) -> None:
    """Every operation with valid inputs and with inputs that break the document: no 5xx,
    and a documented response matches its schema. (schemathesis' own pytest fixture
    loader does not work under pytest 9, so each operation gets a hypothesis run here.)"""
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", seeded.web)
    results = list(schema.get_all_operations())
    assert all(isinstance(r, Ok) for r in results), results  # the document itself is valid
    operations = [r.ok() for r in results if isinstance(r, Ok)]
    assert len(operations) >= 8, [op.label for op in operations]
    headers = seeded.token("wang")
    called: set[str] = set()
    succeeded: set[str] = set()  # the token works and valid input gets through, not just 4xx

    for operation in operations:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case[Any]) -> None:
            response = case.call(headers=headers)
            called.add(case.operation.label)
            if response.status_code < 300:
                succeeded.add(case.operation.label)
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

        try:
            run()
        except Unsatisfiable:  # every value its document allows is valid (a bare string id): nothing to break
            assert mode is GenerationMode.NEGATIVE, operation.label
    assert len(called) >= (len(operations) if mode is GenerationMode.POSITIVE else 4), sorted(called)
    if mode is GenerationMode.POSITIVE:
        assert {"GET /api/v1/me", "GET /api/v1/cases", "GET /api/v1/audit/verify"} <= succeeded, sorted(succeeded)
