"""Optional API keys: who may call the API, and whose jobs are whose.

With `IRAS_API_KEYS` unset, IRAS is open (a laptop, a private network). With keys, every
API and WebSocket call must present one, and a job belongs to the key that created it:
other keys get the 404 an unknown job gets, so ids cannot be probed. A caller is known
by a digest of its key, which is what job manifests store: a key never reaches S3 or a
log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

#: Where a key may be presented: a header, a bearer token, or (for WebSocket clients in
#: browsers, which cannot set headers) a query parameter.
KEY_HEADER = "x-api-key"
KEY_QUERY = "api_key"


class Unauthorized(Exception):
    """Keys are required and the call presented none, or a wrong one."""


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class ApiKeys:
    """The configured keys, held as digests."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._digests = frozenset(key_digest(key) for key in keys if key)

    @property
    def required(self) -> bool:
        return bool(self._digests)

    def authenticate(self, presented: str | None) -> str | None:
        """The caller's identity: None when keys are off (anyone), else the digest of a
        valid key; raises `Unauthorized` for a missing or wrong key."""
        if not self.required:
            return None
        if not presented:
            raise Unauthorized("an API key is required: send it as the X-API-Key header")
        digest = key_digest(presented)
        if digest not in self._digests:
            raise Unauthorized("the API key is not valid")
        return digest


def may_see(owner: str | None, caller: str | None) -> bool:
    """Whether `caller` may see a job `owner` created (a job made with keys off is anyone's)."""
    return owner is None or owner == caller


def presented_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The key a request carries, from `X-API-Key`, `Authorization: Bearer`, or `?api_key=`."""
    if headers.get(KEY_HEADER):
        return headers[KEY_HEADER].strip()
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return query.get(KEY_QUERY) or None
