"""A worker's record of the model it serves, written once at start for `GET /v1/models`.

Workers take no calls (they only pull from the queue), so the gateway cannot ask them
what they run. Each writes its model's summary (`ModelCard.summary`: name, version,
labels count, input) to the state bucket under `models/<name>/<version>.json`, and the
gateway lists that folder (`iras.web.fleet_models`). Workers of one model write the same
key, so a fleet of any size keeps one record per model version; `seen_at` says when a
worker last started with it.

The write is best-effort: a worker that cannot record its model still classifies (the
listing is for people, the results carry the model anyway), so a failure is logged, not
raised, and it runs beside the first receives, not before them.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Protocol

from iras.aws.errors import AWS_ERRORS
from iras.aws.types import ObjectStore
from iras.messages import model_key
from iras.model.card import ModelCard

log = logging.getLogger(__name__)


class CardedModel(Protocol):
    """What a record is made of: a classifier with a card and labels."""

    card: ModelCard | None
    labels: tuple[str, ...]


def model_record(card: ModelCard, labels_count: int, now_s: float) -> dict[str, Any]:
    """The JSON a worker writes for its model (see the module docstring)."""
    return {**card.summary(labels_count), "seen_at": round(now_s, 3)}


async def publish_model(objects: ObjectStore, bucket: str, model: CardedModel) -> bool:
    """Write `model`'s record to `bucket`; whether it was written (False: logged why)."""
    card = model.card
    if card is None:
        return False
    record = model_record(card, len(model.labels), time.time())
    key = model_key(card.name, card.version)
    try:
        await objects.put(bucket, key, json.dumps(record).encode(), "application/json")
    except AWS_ERRORS as error:
        log.warning(
            "cannot record model %s %s at %s/%s: %s", card.name, card.version, bucket, key, error
        )
        return False
    log.info("recorded model %s version %s at %s/%s", card.name, card.version, bucket, key)
    return True
