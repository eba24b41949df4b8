"""Which implementation makes the per-image calls: a pure function of the setting, what
botocore resolved, and the environment's proxies."""

from __future__ import annotations

import pytest

from iras.aws.choice import AwsClientSetting, Endpoints, choose_client, environ_proxy

AWS = Endpoints(("https://s3.eu-west-1.amazonaws.com", "https://sqs.eu-west-1.amazonaws.com"))
LOCAL = Endpoints(("http://127.0.0.1:4566", "http://127.0.0.1:4566"))
FIPS = Endpoints(("https://s3-fips.us-east-1.amazonaws.com",), fips=True)
DUALSTACK = Endpoints(("https://s3.dualstack.eu-west-1.amazonaws.com",), dualstack=True)

PROXY = {"HTTPS_PROXY": "http://user:secret@proxy.corp:3128"}


@pytest.mark.parametrize(
    ("setting", "endpoints", "environ", "kind", "why"),
    [
        # Nothing the lean path cannot do: lean, whatever the proxies of other schemes.
        ("auto", AWS, {}, "lean", None),
        ("auto", LOCAL, PROXY, "lean", None),  # an https proxy does not carry http
        ("auto", AWS, {"HTTP_PROXY": "http://proxy.corp:3128"}, "lean", None),
        # A proxy for the endpoint's scheme: botocore, unless NO_PROXY exempts the host.
        ("auto", AWS, PROXY, "botocore", "proxy http://proxy.corp:3128"),
        ("auto", AWS, {"https_proxy": "proxy.corp:8080"}, "botocore", "proxy.corp:8080"),
        ("auto", AWS, {**PROXY, "NO_PROXY": ".amazonaws.com"}, "lean", None),
        ("auto", AWS, {**PROXY, "no_proxy": "*"}, "lean", None),
        ("auto", AWS, {**PROXY, "NO_PROXY": "example.com"}, "botocore", "proxy"),
        ("auto", AWS, {**PROXY, "https_proxy": ""}, "lean", None),  # lower case wins
        ("auto", LOCAL, {"HTTP_PROXY": "http://p:1", "NO_PROXY": "127.0.0.1"}, "lean", None),
        ("auto", LOCAL, {"http_proxy": "http://p:1"}, "botocore", "proxy http://p:1"),
        # Endpoint rules the lean path does not follow.
        ("auto", FIPS, {}, "botocore", "FIPS"),
        ("auto", DUALSTACK, {}, "botocore", "dual-stack"),
        # An explicit setting is obeyed; the reason is still known, to warn about.
        ("lean", FIPS, {}, "lean", "FIPS"),
        ("lean", AWS, {}, "lean", None),
        ("botocore", AWS, {}, "botocore", None),
        ("botocore", AWS, PROXY, "botocore", "proxy"),
    ],
)
def test_choice(
    setting: AwsClientSetting,
    endpoints: Endpoints,
    environ: dict[str, str],
    kind: str,
    why: str | None,
) -> None:
    choice = choose_client(setting, endpoints, environ)
    assert choice.kind == kind
    if why is None:
        assert choice.lean_unsupported is None
    else:
        assert choice.lean_unsupported is not None and why in choice.lean_unsupported


def test_a_proxys_credentials_are_never_repeated() -> None:
    proxy = environ_proxy("https://sqs.eu-west-1.amazonaws.com", PROXY)
    assert proxy == "http://proxy.corp:3128"
