"""Optional API keys: who may call the API, and whose jobs are whose.

With `IRAS_API_KEYS` unset, IRAS is open (a laptop, a private network). With keys, every
API and WebSocket call must present one, and a job belongs to the key that created it:
other keys get the 404 an unknown job gets, so ids cannot be probed. A caller is known
by a digest of its key, which is what job manifests store: a key never reaches S3 or a
log.

A key travels in a header, never in a URL: URLs end up in load balancers' access logs,
proxies' logs and browser histories. A browser cannot set headers on a WebSocket, so
there the key may come as a WebSocket subprotocol instead: the page offers
`["iras", "iras.key.<key, base64url>"]` and the gateway accepts the socket with `iras`
alone, never echoing the key. (A subprotocol, not a ticket from an authenticated POST:
several gateways run behind one load balancer, and a ticket one of them issued would be
unknown to the one the socket reaches.)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping, Sequence

#: Where a key may be presented: a header, or a bearer token.
KEY_HEADER = "x-api-key"
#: The subprotocol the gateway accepts WebSockets with, and the prefix of the one that
#: carries a key (base64url of its UTF-8, unpadded: a subprotocol is an HTTP token, and
#: a key may hold characters a token may not).
SUBPROTOCOL = "iras"
KEY_SUBPROTOCOL_PREFIX = "iras.key."


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
            raise Unauthorized(
                "an API key is required: send it as the X-API-Key header (on a WebSocket, "
                f"also as the subprotocol {KEY_SUBPROTOCOL_PREFIX}<key, base64url>)"
            )
        digest = key_digest(presented)
        if digest not in self._digests:
            raise Unauthorized("the API key is not valid")
        return digest


def may_see(owner: str | None, caller: str | None) -> bool:
    """Whether `caller` may see a job `owner` created (a job made with keys off is anyone's)."""
    return owner is None or owner == caller


def presented_key(headers: Mapping[str, str], subprotocols: Sequence[str] = ()) -> str | None:
    """The key a call carries: `X-API-Key`, `Authorization: Bearer`, or (a WebSocket's)
    the key subprotocol. Never the URL's query: `?api_key=` is no key."""
    if headers.get(KEY_HEADER):
        return headers[KEY_HEADER].strip()
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    for offered in subprotocols:
        if offered.startswith(KEY_SUBPROTOCOL_PREFIX):
            return decode_key_subprotocol(offered) or None
    return None


def key_subprotocol(key: str) -> str:
    """The subprotocol that carries `key` (what a client offers besides `iras`)."""
    encoded = base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")
    return KEY_SUBPROTOCOL_PREFIX + encoded


def decode_key_subprotocol(subprotocol: str) -> str:
    """The key in a key subprotocol; "" when it does not decode (a wrong key, then)."""
    encoded = subprotocol.removeprefix(KEY_SUBPROTOCOL_PREFIX)
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ""


def accepted_subprotocol(offered: Sequence[str]) -> str | None:
    """What the gateway accepts a WebSocket with: `iras` when offered (a browser that
    offered subprotocols fails a socket accepted with none), else none; never a key."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None
