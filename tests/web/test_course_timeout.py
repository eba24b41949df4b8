"""A course upload that times out (504) says to fetch its result later by id; with API keys
on, that advice must hold for its owner on any gateway, after a restart too, and for
nobody else."""

from __future__ import annotations

import re

import httpx

from iras.aws import AwsClients
from iras.config import Settings
from iras.infra.provision import Resources
from iras.model import Classifier, Prediction
from iras.web.lookup import stored_result
from tests.support import image_bytes, wait_until
from tests.web.conftest import running_worker, serve_gateway, wait_ready

ALPHA_KEY, BETA_KEY = "alpha-key-0123456789", "beta-key-0123456789"
ALPHA, BETA = {"X-API-Key": ALPHA_KEY}, {"X-API-Key": BETA_KEY}


async def test_a_timed_out_course_upload_is_found_by_its_owner_on_another_gateway(
    gateway_settings: Settings, resources: Resources, aws: AwsClients, classifier: Classifier
) -> None:
    settings = gateway_settings.model_copy(
        update={"api_keys": (ALPHA_KEY, BETA_KEY), "wait_timeout_s": 1.0}
    )
    blob = image_bytes(seed=9)
    # No worker yet: the upload waits its second and times out, its request still queued.
    async with serve_gateway(settings) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        await wait_ready(http)
        timed_out = await http.post("/upload", files={"myfile": ("late.jpg", blob)}, headers=ALPHA)
    assert timed_out.status_code == 504, timed_out.text
    assert timed_out.json()["error"] == "result_timeout"
    advice = re.search(r"GET (/v1/results/[0-9a-f]+) later", timed_out.json()["detail"])
    assert advice is not None, timed_out.json()["detail"]
    result_path = advice.group(1)
    request_id = result_path.rsplit("/", 1)[1]

    # That gateway is gone (its reply queue with it); a worker comes, and a second gateway
    # is asked, as a client behind a load balancer (or after a restart) would.
    async with (
        running_worker(settings, resources, classifier),
        serve_gateway(settings) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        await wait_ready(http)

        async def classified() -> bool:  # its result has reached the output bucket
            return await stored_result(settings, aws, request_id) is not None

        await wait_until(classified, timeout_s=60, period_s=0.2)
        mine = await http.get(result_path, headers=ALPHA)
        other = await http.get(result_path, headers=BETA)

    assert mine.status_code == 200, mine.text
    result = mine.json()

    (outcome,) = classifier.classify([blob])
    assert isinstance(outcome, Prediction)
    assert result["name"] == "late.jpg" and result["label"] == outcome.label
    assert other.status_code == 404 and other.json()["error"] == "not_found"
