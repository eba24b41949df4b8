"""The API fuzzed from its own schema: schemathesis against a live `iras serve`.

Every operation `/openapi.json` lists is called with inputs Hypothesis generates from
its schema, valid ones and invalid ones, multipart bodies included (schemathesis sends
tiny real JPEG, PNG, GIF and WebP files as well as random bytes, PDFs and ZIPs); then
sequences of calls follow the document's links (an accepted `POST /v1/classify` to its
job and to its first result, and the links schemathesis infers). Every answer must be one
the document describes: a status the operation lists, a 5xx only the documented 503 and
504, its media type, a body valid against its schema, its headers; and a job it accepted
must then be found. The gateway is the real CLI with its embedded AWS and a real worker,
started once for the module; afterwards it must still answer the course upload with the
model's own label.

Bounded for the suite: IRAS_FUZZ_EXAMPLES (default 300) examples per operation and mode,
and as many stateful scenarios, derandomized, so a failure reproduces anywhere. A longer
run raises it (README, Development).

schemathesis's own pytest integration (`schemathesis.pytest.from_fixture`, for a schema
known only once a fixture has started the server) fails on pytest 9.2 (it sets a node's
`_nodeid`, which pytest no longer has), so the operations are parametrized here and
each is fuzzed with `APIOperation.as_strategy`, its public Hypothesis strategy.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import hypothesis
import pytest
import pytest_asyncio
import schemathesis
from hypothesis import HealthCheck
from prometheus_client.parser import text_string_to_metric_families
from schemathesis.generation import GenerationMode

from iras.bench.serve_process import free_port
from iras.config import Settings
from iras.messages import name_stem
from iras.model import Classifier, Prediction
from iras.web import create_app
from tests.support import image_bytes
from tests.web.conftest import Service, iras_serve

#: Examples per operation and mode; scenarios of the stateful run.
EXAMPLES = int(os.environ.get("IRAS_FUZZ_EXAMPLES", "300"))
#: The most one call may take: a waiting upload or a deep readiness check takes seconds.
CALL_TIMEOUT_S = 60

#: The checks run on every answer; schemathesis's others are off. (`negative_data_rejection`
#: and `positive_data_acceptance` judge what a route should accept, not what the document
#: says it answers: the latter calls a schema-valid upload of random bytes, refused 415,
#: a failure; the former also flags bodies whose invalid part its multipart encoder
#: dropped, which a longer run finds.)
CHECKS: dict[str, dict[str, Any]] = {
    # The only 5xx the document lists: 503 (`not_ready`, `aws_unavailable`, a deep
    # check's failures) and 504 (`result_timeout`); `status_code_listed` (below) checks
    # that the operation lists the one it got.
    "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "503", "504"]},
    "status_code_conformance": {},
    "content_type_conformance": {},
    "response_schema_conformance": {},
    "response_headers_conformance": {},
    # Stateful: after a 200 of `POST /v1/classify`, its job is found along the link.
    "ensure_resource_availability": {},
}


def status_code_listed(ctx: Any, response: Any, case: Any) -> None:
    """The status is one the operation lists itself.

    `status_code_conformance` passes any status when a `default` response exists, and
    every operation has one (the body of any other error, e.g. a 405 for a method the
    document does not list): on its own it could never fail here.
    """
    listed = [code for code in case.operation.responses.status_codes if code != "default"]
    if str(response.status_code) not in listed:
        raise AssertionError(
            f"{case.operation.label} answered {response.status_code}, which it does not "
            f"list (it lists {', '.join(listed)})"
        )


SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,  # a live server over HTTP: an example takes what its call takes
    derandomize=True,  # the same cases every run, on every machine
    database=None,  # nothing carried over between runs: what fails in CI fails here
    print_blob=False,
    stateful_step_count=6,
    suppress_health_check=[
        HealthCheck.too_slow,  # the same: each example is a call
        # schemathesis filters what it generates (headers it cannot send, for one).
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)


#: Answers the valid inputs of an operation must have drawn, or the run did not get far:
#: an upload's multipart body is the one the route reads (the document's), a tiny real
#: image is classified, and random bytes are refused as what they are.
MUST_REACH = {
    ("post", "/upload"): {200, 415},
    ("post", "/"): {200, 415},
    ("post", "/v1/classify"): {200, 415},
}


def documented_cases() -> list[tuple[str, str, GenerationMode]]:
    """(method, path, mode) of every operation, read from the same app the CLI serves:
    valid inputs for each, invalid ones for those with inputs that can be invalid (a query
    or a body; a path's id is any string)."""
    document = create_app(Settings(), static_dir=None).openapi()
    cases = []
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            cases.append((method, path, GenerationMode.POSITIVE))
            query = [p for p in operation.get("parameters", []) if p["in"] == "query"]
            if query or "requestBody" in operation:
                cases.append((method, path, GenerationMode.NEGATIVE))
    return cases


def test_the_uploads_document_their_body_and_where_a_job_leads() -> None:
    """What the fuzzing below depends on: without the body, schemathesis sends no image;
    without the links, the stateful run only follows what it infers."""
    document = create_app(Settings(), static_dir=None).openapi()
    for path, field in [("/upload", "myfile"), ("/", "inputFile"), ("/v1/classify", "files")]:
        body = document["paths"][path]["post"]["requestBody"]
        schema = body["content"]["multipart/form-data"]["schema"]
        assert body["required"] and schema["required"] == [field], path
        assert schema["additionalProperties"] is False  # another field is refused, 400
    links = document["paths"]["/v1/classify"]["post"]["responses"]["200"]["links"]
    targets = {name: link["operationRef"].split("/") for name, link in links.items()}
    for name, (_, _, pointer, method) in targets.items():
        path = pointer.replace("~1", "/").replace("~0", "~")
        parameter = next(iter(links[name]["parameters"]))
        operation = document["paths"][path][method]
        assert [p["name"] for p in operation["parameters"]] == [parameter], name


#: The fuzzed gateway's settings besides the defaults. The per-client rate limit is off:
#: a token bucket answers by the clock, not by the request, and Hypothesis needs the same
#: draws to lead to the same answers. With it on, a stateful run of 1000 scenarios failed
#: with `FlakyStrategyDefinition` (an upload that was a 200 became a 429 on replay, so its
#: links could no longer be followed), and `GET /v1/jobs/{job_id}` spent 40-80% of its
#: examples on 429s (each lookup is charged per S3 call) instead of on the route. A 429 is
#: the limiter's one answer (`rate_limited`, Retry-After), checked in tests/web/test_access.py
#: and tests/web/test_lookups.py.
FUZZED_ENV = {"IRAS_RATE_LIMIT_PER_S": "0"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fuzzed_gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    """`iras serve` (embedded AWS, autoscaled local workers) for the whole module."""
    log = tmp_path_factory.mktemp("fuzz") / "serve.log"
    async with iras_serve(log, "--aws-port", str(free_port()), env=FUZZED_ENV) as (_, http, url):
        yield Service(url, http, None)


@pytest.fixture(scope="module")
def api_schema(fuzzed_gateway: Service) -> Any:
    """The gateway's own `/openapi.json` as schemathesis reads it, aimed at the gateway."""
    checks = {name: {"enabled": True, **options} for name, options in CHECKS.items()}
    config = schemathesis.Config.from_dict(
        {
            "base-url": fuzzed_gateway.url,
            "request-timeout": CALL_TIMEOUT_S,
            "checks": {"enabled": False, **checks},
        }
    )
    return schemathesis.openapi.from_url(f"{fuzzed_gateway.url}/openapi.json", config=config)


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path", "mode"), documented_cases(), ids=str)
def test_the_operation_answers_as_documented(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    statuses: set[int] = set()

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @SETTINGS
    def calls(case: Any) -> None:
        response = case.call_and_validate(additional_checks=[status_code_listed])
        statuses.add(response.status_code)

    calls()
    if mode is GenerationMode.POSITIVE:
        must_reach = MUST_REACH.get((method, path), set())
        assert must_reach <= statuses, f"answered only {sorted(statuses)}"


@pytest.mark.slow
def test_calls_along_the_links_answer_as_documented(api_schema: Any) -> None:
    answered: set[tuple[str, int]] = set()

    class Scenarios(api_schema.as_state_machine()):  # type: ignore[misc]
        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            answered.add((case.operation.label, response.status_code))

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            checks = [*(additional_checks or []), status_code_listed]
            super().validate_response(response, case, additional_checks=checks, **kwargs)

    assert api_schema.statistic.transitions.total >= 2  # the document's links, at least
    Scenarios.run(settings=SETTINGS)
    # Along the links from accepted uploads: their jobs were found, their results asked
    # for (found or not yet classified, 404, depending on `wait` and timing).
    assert ("GET /v1/jobs/{job_id}", 200) in answered, sorted(answered)
    assert any(label == "GET /v1/results/{request_id}" for label, _ in answered)


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
async def test_after_fuzzing_the_course_upload_is_still_answered_right(
    fuzzed_gateway: Service, classifier: Classifier
) -> None:
    blob = image_bytes(seed=16)
    (expected,) = classifier.classify([blob])
    assert isinstance(expected, Prediction)
    name = "after_fuzzing.jpg"
    for path, field in [("/upload", "myfile"), ("/", "inputFile")]:  # both generators' forms
        response = await fuzzed_gateway.http.post(path, files={field: (name, blob)})
        assert response.status_code == 200, (path, response.text)
        assert response.text == f"{name_stem(name)}:{expected.label}", path
    # And by its own count, it never answered a 5xx but the documented ones.
    metrics = (await fuzzed_gateway.http.get("/metrics")).text
    server_errors = {
        (sample.labels["route"], sample.labels["status"]): sample.value
        for family in text_string_to_metric_families(metrics)
        if family.name == "iras_http_requests"
        for sample in family.samples
        if sample.name == "iras_http_requests_total"
        and sample.labels["status"].startswith("5")
        and sample.labels["status"] not in {"503", "504"}
    }
    assert server_errors == {}
