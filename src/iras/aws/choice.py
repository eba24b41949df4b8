"""Which implementation makes the per-image calls: the lean path, or botocore.

The lean path (`iras.aws.lean`) is ~10x cheaper per call, but its HTTP client does less
than botocore's: it sends every request straight to the endpoint, so it cannot go
through a proxy, and it addresses S3 itself, so it does not follow botocore's endpoint
rules for FIPS or dual-stack endpoints. `aws_client="auto"` takes the lean path unless
the configuration asks for one of those, and then botocore, saying why. (A custom CA
bundle is no reason: the lean client loads the one botocore would, `AWS_CA_BUNDLE` or
the config file's `ca_bundle`.)

What botocore would do is read from what it resolved: the endpoint of each client, and
the client's configuration, in which the environment (`AWS_USE_FIPS_ENDPOINT`,
`AWS_USE_DUALSTACK_ENDPOINT`) and the config file are already folded. Proxies come from
the environment as botocore takes them: the proxy for the endpoint's scheme
(`HTTPS_PROXY` / `https_proxy` for https), unless `NO_PROXY` names its host.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from iras.aws.types import BotocoreClient

AwsClientSetting = Literal["auto", "lean", "botocore"]
ClientKind = Literal["lean", "botocore"]


@dataclass(frozen=True, slots=True)
class Endpoints:
    """What botocore resolved for the services on the per-image path (S3, SQS)."""

    urls: tuple[str, ...]
    fips: bool = False
    dualstack: bool = False

    @classmethod
    def of(cls, *clients: BotocoreClient) -> Endpoints:
        configs = [client.meta.config for client in clients]
        return cls(
            urls=tuple(client.meta.endpoint_url for client in clients),
            fips=any(config.use_fips_endpoint for config in configs),
            dualstack=any(
                config.use_dualstack_endpoint or (config.s3 or {}).get("use_dualstack_endpoint")
                for config in configs
            ),
        )


@dataclass(frozen=True, slots=True)
class Choice:
    """The implementation to use, and what of the configuration the lean path cannot
    honour (None: nothing)."""

    kind: ClientKind
    lean_unsupported: str | None = None


def choose_client(
    setting: AwsClientSetting, endpoints: Endpoints, environ: Mapping[str, str]
) -> Choice:
    """The implementation for `setting`: "lean" and "botocore" are taken as they are;
    "auto" is lean unless `lean_unsupported` finds a reason."""
    unsupported = lean_unsupported(endpoints, environ)
    if setting == "auto":
        return Choice("botocore" if unsupported else "lean", unsupported)
    return Choice(setting, unsupported)


def lean_unsupported(endpoints: Endpoints, environ: Mapping[str, str]) -> str | None:
    """What of this configuration the lean path would not honour, in words; None if all."""
    for url in endpoints.urls:
        proxy = environ_proxy(url, environ)
        if proxy is not None:
            return f"{url} is reached through the proxy {proxy}, which the lean path cannot use"
    if endpoints.fips:
        return "FIPS endpoints are asked for (AWS_USE_FIPS_ENDPOINT or use_fips_endpoint)"
    if endpoints.dualstack:
        return (
            "dual-stack endpoints are asked for "
            "(AWS_USE_DUALSTACK_ENDPOINT or use_dualstack_endpoint)"
        )
    return None


def environ_proxy(url: str, environ: Mapping[str, str]) -> str | None:
    """The proxy (scheme://host:port, without credentials) botocore would send requests
    to `url` through, read from `environ` as urllib reads it; None for none."""
    proxies: dict[str, str] = {}
    for name in sorted(environ, key=str.islower):  # lower case last: it wins, as in urllib
        if name.lower().endswith("_proxy"):
            proxies[name[: -len("_proxy")].lower()] = environ[name]
    target = urlsplit(url)
    proxy = proxies.get(target.scheme)
    if not proxy or _bypassed(target.netloc.lower(), target.hostname or "", proxies.get("no", "")):
        return None
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def _bypassed(host: str, hostname: str, no_proxy: str) -> bool:
    """Whether `no_proxy` (comma-separated names; "*" for all) exempts the host, by name
    or domain suffix, with or without its port: urllib's reading, which botocore uses."""
    if no_proxy.strip() == "*":
        return True
    for name in (entry.strip().lstrip(".").lower() for entry in no_proxy.split(",")):
        if name and (
            name in (host, hostname) or host.endswith(f".{name}") or hostname.endswith(f".{name}")
        ):
            return True
    return False
