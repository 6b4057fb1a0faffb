"""Rate limits as the official SDK meets them, against a tagd that lets each access key
make one request a second, two at once: a throttled POST is reported with the gateway's
``APIGW.0308``; a throttled GET goes down urllib3's retry path, which reports a bare
429 without retries and, with ``retry_times`` set, waits out ``Retry-After`` and succeeds.
Each test spends its own fresh access key, so the order of tests does not matter."""

import time

import huaweicloudsdkrds.v3 as rds
import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException

from conftest import Sdk
from sdkutil import http_config

TYPE = "rds"


@pytest.fixture
def client(throttled_tagd):
    """An RDS client of a fresh access key (of a fresh user: a user holds at most two),
    and an instance to tag."""
    _, user_name, _ = throttled_tagd.create_user(admin=True)
    ak, sk = throttled_tagd.create_access_key(user_name)
    instance = throttled_tagd.add_resource(TYPE)
    return Sdk(throttled_tagd).rds(ak, sk), instance, (ak, sk)


def tag(client, instance, key):
    return client.batch_tag_add_action(
        rds.BatchTagAddActionRequest(
            instance_id=instance,
            body=rds.BatchTagActionAddRequestBody(
                action="create", tags=[rds.TagWithKeyValue(key=key, value="v")]
            ),
        )
    )


def spend(call, attempts=10):
    """Calls until the budget is spent; the exception of the first refused call."""
    for _ in range(attempts):
        try:
            call()
        except ClientRequestException as e:
            return e
    pytest.fail(f"{attempts} calls at once passed a budget of two a second")


def test_a_throttled_post_reports_apigw_0308(client):
    rds_client, instance, _ = client
    e = spend(lambda: tag(rds_client, instance, "k"))
    assert (e.status_code, e.error_code) == (429, "APIGW.0308"), (e.status_code, e.error_code)
    assert e.request_id
    assert "ratelimit" in e.error_msg


def test_a_throttled_get_without_retries_is_a_bare_429(client):
    rds_client, instance, _ = client
    e = spend(lambda: rds_client.list_instance_tags(rds.ListInstanceTagsRequest(instance_id=instance)))
    # urllib3 turns the 429 into its own error before the SDK sees the body.
    assert (e.status_code, e.error_code) == (429, "429"), (e.status_code, e.error_code)


def test_with_retries_the_sdk_waits_out_retry_after(client, throttled_tagd):
    rds_client, instance, (ak, sk) = client
    spend(lambda: rds_client.list_instance_tags(rds.ListInstanceTagsRequest(instance_id=instance)))
    config = http_config()
    config.retry_times = 3
    patient = (
        rds.RdsClient.new_builder()
        .with_http_config(config)
        .with_credentials(BasicCredentials(ak, sk, throttled_tagd.project_id))
        .with_endpoints([throttled_tagd.endpoint])
        .build()
    )
    started = time.monotonic()
    resp = patient.list_instance_tags(rds.ListInstanceTagsRequest(instance_id=instance))
    assert resp.status_code == 200 and resp.tags == []
    # It got through by waiting, not because the budget had come back on its own.
    assert time.monotonic() - started >= 0.5
