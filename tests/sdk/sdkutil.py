"""Helpers shared by the SDK conformance tests: client construction, error checks.

Every client is built the way a user points an SDK at a private endpoint: credentials,
``.with_endpoints([...])`` and a short timeout; never ``.with_region()``, which would make
the SDK look projects and domains up on its own.
"""

import uuid

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.http.http_handler import HttpHandler

# (connect, read) seconds: a hung tagd fails a test quickly instead of stalling the run.
TIMEOUT = (5, 10)


def unique(prefix):
    """A fresh resource id, so that no two tests share a resource."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def http_config():
    config = HttpConfig.get_default_config()
    config.timeout = TIMEOUT
    return config


def build(client_cls, credentials, endpoint, handler=None):
    builder = (
        client_cls.new_builder()
        .with_http_config(http_config())
        .with_credentials(credentials)
        .with_endpoints([endpoint])
    )
    if handler is not None:
        builder = builder.with_http_handler(handler)
    return builder.build()


def request_handler(fn):
    """An HttpHandler whose request hook ``fn(request)`` runs after the SDK has signed
    the request and before it is sent; ``request.header_params`` and ``request.body``
    are what goes on the wire."""
    return HttpHandler().add_request_handler(lambda **kw: fn(kw["request"]))


def token_handler(token):
    """Sends ``X-Auth-Token`` instead of the AK/SK signature (research file 5.6 A)."""

    def swap(request):
        request.header_params.pop("Authorization", None)
        request.header_params["X-Auth-Token"] = token

    return request_handler(swap)


def expect_error(call, status, code):
    """Runs ``call`` and checks it fails with a ``ClientRequestException`` carrying
    ``status`` and ``code`` and a request id; returns the exception."""
    with pytest.raises(ClientRequestException) as info:
        call()
    e = info.value
    assert (e.status_code, e.error_code) == (status, code), (
        f"expected {status} {code}, got {e.status_code} {e.error_code}: {e.error_msg}"
    )
    assert e.request_id, f"no X-Request-Id on the {status} response"
    assert e.error_msg, "empty error_msg"
    return e


def as_dict(tags):
    """``[{key, value}]`` models as ``{key: value}``."""
    return {t.key: t.value for t in tags or []}
