"""The OpenAPI document is the HTTP contract: every answer described, and described exactly.

Real answers of a running gateway (and its worker, and the embedded AWS) are validated
against the schemas the gateway itself serves at `/openapi.json`, made strict first
(`additionalProperties: false` wherever properties are listed), so that a field a route
sends but the document does not name fails as surely as a documented one it omits.
jsonschema and openapi-spec-validator come with moto[server].
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources
from iras.messages import result_key
from iras.web import create_app
from tests.support import image_bytes, submit, wait_until
from tests.web.conftest import Service, serve_gateway, wait_ready

Document = dict[str, Any]

ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}

#: (method, path): the statuses besides 200 each route can answer, read from its code.
EXPECTED_ERRORS = {
    ("post", "/upload"): {400, 401, 413, 415, 422, 429, 503, 504},
    ("post", "/"): {400, 401, 413, 415, 422, 429, 503, 504},  # the 2024-2026 course form
    ("post", "/v1/classify"): {400, 401, 413, 415, 422, 429, 503, 504},
    ("get", "/v1/jobs/{job_id}"): {401, 404, 429, 503},
    ("get", "/v1/results/{request_id}"): {401, 404, 429, 503},
    ("get", "/v1/scaler"): {401, 404, 429, 503},
    ("get", "/v1/models"): {401, 429, 503},
    ("get", "/readyz"): {401, 422, 429, 503},  # 401 and 429 only with deep=1
    ("get", "/healthz"): set(),
    ("get", "/metrics"): set(),
}
#: The routes whose answer is text; every other route answers JSON.
TEXT_ROUTES = {("post", "/upload"), ("post", "/"), ("get", "/metrics")}


@pytest.fixture(scope="module")
def document() -> Document:
    return create_app(Settings(), static_dir=None).openapi()


def operations(document: Document) -> dict[tuple[str, str], Any]:
    return {
        (method, path): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }


def test_the_document_is_valid_openapi(document: Document) -> None:
    validate_openapi(document)
    assert set(operations(document)) == set(EXPECTED_ERRORS)  # no route left out


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED_ERRORS))
def test_every_route_declares_its_answer_and_each_error_it_can_send(
    document: Document, method: str, path: str
) -> None:
    responses = operations(document)[(method, path)]["responses"]
    answer = responses["200"]["content"]
    if (method, path) in TEXT_ROUTES:
        assert list(answer) == ["text/plain"]
    else:  # a named model, not FastAPI's empty schema for an untyped route
        assert list(answer) == ["application/json"]
        assert answer["application/json"]["schema"]["$ref"].startswith("#/components/schemas/")
    errors = {status: response for status, response in responses.items() if status != "200"}
    assert set(errors) == {str(status) for status in EXPECTED_ERRORS[(method, path)]} | {"default"}
    for status, response in errors.items():
        assert response["content"] == {"application/json": {"schema": ERROR_BODY}}, status
        assert response["description"], status
        if status in ("429", "503"):
            assert "Retry-After" in response["headers"]


def test_no_body_of_fastapis_own_is_documented(document: Document) -> None:
    """Its validation errors are reshaped to the error body (iras.web.errors)."""
    assert not {"HTTPValidationError", "ValidationError"} & set(document["components"]["schemas"])


def test_every_field_says_what_it_means(document: Document) -> None:
    for name, schema in document["components"]["schemas"].items():
        assert schema.get("description"), name
        for field, spec in schema.get("properties", {}).items():
            assert spec.get("description"), f"{name}.{field}"


# --- real answers against the schemas ------------------------------------------


def strict(schema: Any) -> Any:
    """`schema` with no property allowed that it does not list."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    tightened = {key: strict(value) for key, value in schema.items()}
    if "properties" in tightened:
        tightened.setdefault("additionalProperties", False)
    return tightened


def assert_documented(document: Document, response: httpx.Response, method: str, path: str) -> Any:
    """Check `response` (to `method` `path`, a route's template) against its documented
    status and schema; return its JSON."""
    responses = document["paths"][path][method]["responses"]
    status = str(response.status_code)
    assert status in responses, f"{method} {path} answered an undocumented {status}"
    schema = responses[status]["content"]["application/json"]["schema"]
    components = strict(copy.deepcopy(document["components"]))
    body = response.json()
    Draft202012Validator({"components": components, **schema}).validate(body)
    return body


async def served_document(http: httpx.AsyncClient) -> Document:
    document: Document = (await http.get("/openapi.json")).json()
    return document


async def test_a_job_and_its_results_match_the_schemas(
    service: Service, aws: AwsClients, settings: Settings
) -> None:
    http = service.http
    document = await served_document(http)
    files = [("files", (f"doc{i}.jpg", image_bytes(seed=120 + i))) for i in range(3)]

    waited = await http.post("/v1/classify?wait=true", files=files)
    job = assert_documented(document, waited, "post", "/v1/classify")
    assert job["status"] == "done" and all("result" in entry for entry in job["requests"])

    accepted = await http.post("/v1/classify", files=files[:1])
    pending = assert_documented(document, accepted, "post", "/v1/classify")
    assert all("result" not in entry for entry in pending["requests"])  # absent, not null

    looked_up = await http.get(f"/v1/jobs/{job['job_id']}")
    assert assert_documented(document, looked_up, "get", "/v1/jobs/{job_id}") == job

    for entry in job["requests"]:
        single = await http.get(f"/v1/results/{entry['request_id']}")
        result = assert_documented(document, single, "get", "/v1/results/{request_id}")
        assert "label" in result and "error" not in result
        # The very bytes the worker wrote, in the result's answer and inside the job's.
        stored = await aws.s3.get_object(
            Bucket=settings.output_bucket, Key=result_key(settings, entry["request_id"])
        )
        written = await stored["Body"].read()
        assert single.content == written
        assert written in waited.content and written in looked_up.content


async def test_a_failed_result_matches_its_schema(
    service: Service, aws: AwsClients, settings: Settings, resources: Resources
) -> None:
    """An image the model cannot read (queued past the gateway's checks) answers `error`."""
    document = await served_document(service.http)
    (request,) = await submit(aws, settings, resources, {"bad.jpg": b"not an image"}, None)
    path = f"/v1/results/{request.request_id}"

    async def stored() -> bool:
        return (await service.http.get(path)).status_code == 200

    await wait_until(stored, timeout_s=60)
    answer = await service.http.get(path)
    result = assert_documented(document, answer, "get", "/v1/results/{request_id}")
    assert result["error"] and "label" not in result and "top" not in result


async def test_operations_and_errors_match_the_schemas(gateway_only: Service) -> None:
    http = gateway_only.http
    document = await served_document(http)
    health = await http.get("/healthz")
    assert assert_documented(document, health, "get", "/healthz") == {"status": "ok"}
    assert health.content == b'{"status":"ok"}'
    ready = assert_documented(document, await http.get("/readyz"), "get", "/readyz")
    assert ready["status"] == "ready"

    refusals: list[tuple[str, str, str, dict[str, Any], str]] = [
        # (method, route, URL, the request's content, the error code it must answer)
        ("get", "/v1/jobs/{job_id}", "/v1/jobs/nope", {}, "not_found"),
        ("get", "/v1/results/{request_id}", "/v1/results/nope", {}, "not_found"),
        ("get", "/v1/scaler", "/v1/scaler", {}, "not_found"),  # the autoscaler is off here
        ("post", "/v1/classify", "/v1/classify?wait=maybe", {}, "invalid_request"),
        ("post", "/v1/classify", "/v1/classify", {"json": {}}, "multipart_expected"),
        ("post", "/upload", "/upload", {"files": {"f": ("a.jpg", b"x")}}, "unexpected_field"),
        ("post", "/", "/", {"files": {"myfile": ("a.jpg", b"x")}}, "unexpected_field"),
    ]
    for method, route, url, request, code in refusals:
        answer = await http.request(method, url, **request)
        assert assert_documented(document, answer, method, route)["error"] == code, url


async def test_the_scaler_snapshot_matches_its_schema(
    gateway_settings: Settings, resources: Resources, aws: AwsClients
) -> None:
    settings = gateway_settings.model_copy(
        update={
            "autoscaler": True,  # with a fleet of fake instances (no worker runs on them)
            "worker_image_id": "ami-0123456789abcdef0",
            "max_workers": 1,
        }
    )
    # A request waiting: the first look launches an instance, so the log has an event.
    await aws.messages.send_batch(resources.request_queue_url, ["not a request"])
    async with serve_gateway(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        await wait_ready(http)
        document = await served_document(http)
        snapshot = assert_documented(document, await http.get("/v1/scaler"), "get", "/v1/scaler")
    assert snapshot["timeline"], "the scaler looks once before the gateway is ready"
    assert snapshot["max_workers"] == 1 and snapshot["workers"] == 1
    assert [(event["from"], event["to"]) for event in snapshot["decisions"]] == [(0, 1)]
    assert snapshot["capacity"]["boot_s"]["configured"] == settings.worker_boot_s
    assert snapshot["instance_seconds"] >= settings.billing_minimum_s
