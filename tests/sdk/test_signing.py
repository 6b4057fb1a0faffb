"""AK/SK signatures as the SDK makes them: what tagd must accept and what it must refuse.

Tampering happens in an ``HttpHandler`` request hook, which runs after the SDK has
signed a request and before it is sent. The V11-HMAC-SHA256 (derived key) tests use the
SDK's own signer, and also a signer written here from the research file (section 5.3),
checked first against that file's vectors.
"""

import hashlib
import hmac
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, unquote

import huaweicloudsdkdis.v2 as dis
import huaweicloudsdkrds.v3 as rds
import huaweicloudsdktms.v1 as tms
from huaweicloudsdkcore.auth.credentials import BasicCredentials, GlobalCredentials
from huaweicloudsdkcore.signer.algorithm import SigningAlgorithm

from sdkutil import build, expect_error, http_config, request_handler

SDK_DATE = "%Y%m%dT%H%M%SZ"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def rds_add(instance_id, key, value):
    return rds.BatchTagAddActionRequest(
        instance_id=instance_id,
        body=rds.BatchTagActionAddRequestBody(
            action="create", tags=[rds.TagWithKeyValue(key=key, value=value)]
        ),
    )


def sdk_date(delta=timedelta(0)):
    return (datetime.now(timezone.utc) + delta).strftime(SDK_DATE)


# --- a signer written from the research file


def _encode(text):
    return quote(text, safe="-_.~")


def canonical_request(method, raw_path, raw_query, headers, body):
    """``headers``: lower-case name -> value, exactly the signed ones."""
    path = "/".join(_encode(seg) for seg in unquote(raw_path).split("/"))
    if not path.endswith("/"):
        path += "/"
    pairs = []
    for part in filter(None, raw_query.split("&")):
        k, _, v = part.partition("=")
        pairs.append((unquote(k), unquote(v)))
    query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(pairs))
    names = sorted(headers)
    canonical_headers = "".join(f"{n}:{str(headers[n]).strip()}\n" for n in names)
    payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
    return "\n".join([method, path, query, canonical_headers, ";".join(names), payload])


def _hex_hmac(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).hexdigest()


def sign_sdk_hmac(ak, sk, date, creq, names):
    sts = f"SDK-HMAC-SHA256\n{date}\n{hashlib.sha256(creq.encode()).hexdigest()}"
    signature = _hex_hmac(sk.encode(), sts)
    return f"SDK-HMAC-SHA256 Access={ak}, SignedHeaders={';'.join(names)}, Signature={signature}"


def derived_key(ak, sk, info):
    prk = hmac.new(ak.encode(), sk.encode(), hashlib.sha256).digest()
    return hmac.new(prk, info.encode() + b"\x01", hashlib.sha256).hexdigest()


def sign_v11(ak, sk, date, region, service, creq, names):
    info = f"{date[:8]}/{region}/{service}"
    sts = f"V11-HMAC-SHA256\n{date}\n{info}\n{hashlib.sha256(creq.encode()).hexdigest()}"
    signature = _hex_hmac(derived_key(ak, sk, info).encode(), sts)
    return f"V11-HMAC-SHA256 Credential={ak}/{info}, SignedHeaders={';'.join(names)}, Signature={signature}"


VECTOR_AK = "AKTESTEXAMPLE0000001"
VECTOR_SK = "SKtestSecretExample0123456789abcdefghijk"


def test_the_local_signer_reproduces_the_research_vectors():
    # 5.2, TMS vector.
    headers = {
        "content-type": "application/json;charset=utf-8",
        "host": "127.0.0.1:18080",
        "user-agent": "huaweicloud-usdk-python/3.0; vector",
        "x-domain-id": "dom1",
        "x-sdk-date": "20250101T000000Z",
    }
    body = (
        b'{"project_id": "0123456789abcdef0123456789abcdef", "resources": [{"resource_id": "r1", '
        b'"resource_type": "disk"}], "tags": [{"key": "ENV", "value": "dev"}]}'
    )
    creq = canonical_request("POST", "/v1.0/resource-tags/batch-create", "", headers, body)
    assert hashlib.sha256(creq.encode()).hexdigest() == (
        "525e6f0dd2d9f0dbbd7ee8a759220af98d6ec035a891ebec18a01c39d74073aa"
    )
    assert sign_sdk_hmac(VECTOR_AK, VECTOR_SK, "20250101T000000Z", creq, sorted(headers)).endswith(
        "Signature=25a338512eecfc3f1921be77734162e02805d033decc16896d2cfa420d5d408d"
    )
    # 5.3, V11 vector.
    assert derived_key(VECTOR_AK, VECTOR_SK, "20250101/cn-north-4/dis") == (
        "1c56ecab9576e042ad070c015b2909982887a390d16a71766eff873994265735"
    )
    headers = {
        "content-type": "application/json",
        "host": "127.0.0.1:18080",
        "user-agent": "huaweicloud-usdk-python/3.0; vector",
        "x-project-id": "0123456789abcdef0123456789abcdef",
        "x-sdk-date": "20250101T000000Z",
    }
    creq = canonical_request(
        "GET", "/v2/0123456789abcdef0123456789abcdef/stream/stream-1/tags", "", headers, b""
    )
    assert sign_v11(
        VECTOR_AK, VECTOR_SK, "20250101T000000Z", "cn-north-4", "dis", creq, sorted(headers)
    ).endswith("Signature=08597b817e8c17f8b2de8798bc119ea2f891f0270a4d777ef444559a7c8371d4")


def resign(request, authorize):
    """Replaces the SDK's Authorization with ``authorize(creq, names, date)`` computed
    over the request exactly as it will be sent."""
    headers = request.header_params
    headers.pop("Authorization", None)
    signed = {k.lower(): v for k, v in headers.items()}
    path, _, query = request.uri.partition("?")
    body = request.body or b""
    if isinstance(body, str):
        body = body.encode()
    creq = canonical_request(request.method.upper(), path, query, signed, body)
    headers["Authorization"] = authorize(creq, sorted(signed), signed["x-sdk-date"])


# --- SDK-HMAC-SHA256, the default


def test_a_correct_signature_is_accepted(sdk, resource):
    inst = resource("rds")
    sdk.rds().batch_tag_add_action(rds_add(inst, "signed", "yes"))
    assert sdk.tags_of("rds", inst) == {"signed": "yes"}


def test_a_wrong_secret_key_is_refused(sdk, tagd, resource):
    inst = resource("rds")
    client = sdk.rds(sk=tagd.sk[:-1] + ("A" if tagd.sk[-1] != "A" else "B"))
    expect_error(lambda: client.batch_tag_add_action(rds_add(inst, "k", "v")), 401, "APIGW.0301")
    wrong_tms = sdk.tms(sk="0" * 40)
    expect_error(
        lambda: wrong_tms.list_providers(tms.ListProvidersRequest()), 401, "APIGW.0301"
    )
    assert sdk.tags_of("rds", inst) == {}


def test_an_unknown_access_key_is_refused(sdk, resource):
    inst = resource("dis")
    client = sdk.dis(ak="AKNOSUCHKEY000000000", sk="s" * 40)
    expect_error(
        lambda: client.create_tag(
            dis.CreateTagRequest(stream_id=inst, body=dis.CreateTagReq(tag=dis.Tag(key="k", value="v")))
        ),
        401,
        "APIGW.0301",
    )


def test_a_body_changed_after_signing_is_refused_and_not_written(sdk, resource):
    inst = resource("rds")

    def tamper(request):
        assert request.header_params["Authorization"].startswith("SDK-HMAC-SHA256 ")
        body = request.body if isinstance(request.body, bytes) else request.body.encode()
        assert b'"signed"' in body
        request.body = body.replace(b'"signed"', b'"forged"')

    client = sdk.rds(handler=request_handler(tamper))
    expect_error(lambda: client.batch_tag_add_action(rds_add(inst, "k", "signed")), 401, "APIGW.0301")
    assert sdk.tags_of("rds", inst) == {}, "the forged body was written"


def test_a_header_changed_after_signing_is_refused(sdk, resource):
    inst = resource("rds")

    def tamper(request):
        request.header_params["X-Project-Id"] = "0" * 32

    client = sdk.rds(handler=request_handler(tamper))
    expect_error(lambda: client.batch_tag_add_action(rds_add(inst, "k", "v")), 401, "APIGW.0301")


def test_a_stale_sdk_date_is_refused(sdk, resource):
    inst = resource("rds")
    for delta in (timedelta(hours=-1), timedelta(hours=1)):
        client = sdk.rds()
        client.preset_headers = {"X-Sdk-Date": sdk_date(delta)}
        expect_error(lambda: client.batch_tag_add_action(rds_add(inst, "k", "v")), 401, "APIGW.0301")
    assert sdk.tags_of("rds", inst) == {}


def test_a_slightly_skewed_sdk_date_is_accepted(sdk, resource):
    inst = resource("rds")
    client = sdk.rds()
    client.preset_headers = {"X-Sdk-Date": sdk_date(timedelta(minutes=-5))}
    client.batch_tag_add_action(rds_add(inst, "skew", "ok"))
    assert sdk.tags_of("rds", inst) == {"skew": "ok"}


def test_a_path_parameter_with_slash_and_non_ascii_is_verified(sdk, resource):
    # The SDK quotes the key to a%20b%2F%E4%B8%AD and signs the decoded form split at
    # the "/"; tagd must canonicalise the raw path the same way.
    stream = resource("dis")
    client = sdk.dis()
    resp = client.delete_tag(dis.DeleteTagRequest(stream_id=stream, key="a b/中"))
    assert resp.status_code == 204


def test_the_local_sdk_hmac_signer_is_accepted(sdk, tagd, resource):
    inst = resource("rds")

    def own_signature(request):
        resign(request, lambda creq, names, date: sign_sdk_hmac(tagd.ak, tagd.sk, date, creq, names))

    sdk.rds(handler=request_handler(own_signature)).batch_tag_add_action(rds_add(inst, "own", "sdk"))
    assert sdk.tags_of("rds", inst) == {"own": "sdk"}


def test_an_unsupported_algorithm_is_refused(sdk, tagd, resource):
    inst = resource("rds")
    config = http_config()
    config.signing_algorithm = SigningAlgorithm.HMAC_SM3
    client = (
        rds.RdsClient.new_builder()
        .with_http_config(config)
        .with_credentials(BasicCredentials(tagd.ak, tagd.sk, tagd.project_id))
        .with_endpoints([tagd.endpoint])
        .build()
    )
    expect_error(lambda: client.batch_tag_add_action(rds_add(inst, "k", "v")), 401, "APIGW.0301")


# --- V11-HMAC-SHA256, derived keys


def capture_authorization(seen):
    return request_handler(lambda request: seen.append(request.header_params["Authorization"]))


def test_sdk_derived_key_signing_is_accepted(sdk, tagd, resource):
    # The SDK enables V11 with a derived predicate, and learns the signing region and
    # service in ClientBuilder.build() only when .with_region() is used. With endpoints
    # alone, the credentials get them through the same hook build() calls.
    stream = resource("dis")
    creds = BasicCredentials(tagd.ak, tagd.sk, tagd.project_id).with_derived_predicate(
        BasicCredentials.get_default_derived_predicate()
    )
    creds._process_derived_auth_params("dis", "cn-north-4")
    seen = []
    client = sdk.dis(credentials=creds, handler=capture_authorization(seen))
    client.create_tag(
        dis.CreateTagRequest(stream_id=stream, body=dis.CreateTagReq(tag=dis.Tag(key="v11", value="sdk")))
    )
    assert seen and seen[0].startswith(f"V11-HMAC-SHA256 Credential={tagd.ak}/"), seen
    assert "/cn-north-4/dis, SignedHeaders=" in seen[0], seen
    assert sdk.tags_of("dis", stream) == {"v11": "sdk"}


def test_sdk_derived_key_signing_with_global_credentials(sdk, tagd, resource):
    disk = resource("disk")
    creds = GlobalCredentials(tagd.ak, tagd.sk, tagd.domain_id).with_derived_predicate(
        GlobalCredentials.get_default_derived_predicate()
    )
    creds._process_derived_auth_params("tms", "cn-north-4")  # global: region "globe"
    seen = []
    client = build(tms.TmsClient, creds, tagd.endpoint, capture_authorization(seen))
    resp = client.create_resource_tag(
        tms.CreateResourceTagRequest(
            body=tms.ReqCreateTag(
                project_id=tagd.project_id,
                resources=[tms.ResourceTagBody(resource_id=disk, resource_type="disk")],
                tags=[tms.CreateTagRequest(key="v11", value="globe")],
            )
        )
    )
    assert resp.failed_resources == []
    assert "/globe/tms, SignedHeaders=" in seen[0], seen
    assert sdk.tags_of("disk", disk) == {"v11": "globe"}


def test_a_locally_built_v11_signature_is_accepted(sdk, tagd, resource):
    stream = resource("dis")

    def v11(request):
        resign(
            request,
            lambda creq, names, date: sign_v11(tagd.ak, tagd.sk, date, "cn-north-4", "dis", creq, names),
        )

    client = sdk.dis(handler=request_handler(v11))
    client.batch_create_tags(
        dis.BatchCreateTagsRequest(
            stream_id=stream,
            body=dis.BatchCreateTagsReq(action="create", tags=[dis.Tag(key="v11", value="local")]),
        )
    )
    assert sdk.tags_of("dis", stream) == {"v11": "local"}


def test_a_tampered_v11_signature_is_refused(sdk, tagd, resource):
    stream = resource("dis")

    def flip_last_hex_digit(auth):
        return auth[:-1] + ("0" if auth[-1] != "0" else "1")

    def claim_another_region(auth):
        # Signed for cn-north-4, presented as cn-south-1: the derived key differs.
        return auth.replace("/cn-north-4/dis,", "/cn-south-1/dis,")

    def wrong_scope_date(auth):
        # The credential scope's date must be X-Sdk-Date's.
        date = auth.split("Credential=")[1].split("/")[1]
        other = (datetime.strptime(date, "%Y%m%d") - timedelta(days=1)).strftime("%Y%m%d")
        return auth.replace(f"/{date}/", f"/{other}/")

    for tamper in (flip_last_hex_digit, claim_another_region, wrong_scope_date):

        def v11(request, tamper=tamper):
            resign(
                request,
                lambda creq, names, date: tamper(
                    sign_v11(tagd.ak, tagd.sk, date, "cn-north-4", "dis", creq, names)
                ),
            )

        client = sdk.dis(handler=request_handler(v11))
        expect_error(
            lambda: client.batch_create_tags(
                dis.BatchCreateTagsRequest(
                    stream_id=stream,
                    body=dis.BatchCreateTagsReq(
                        action="create", tags=[dis.Tag(key="k", value=tamper.__name__[:40])]
                    ),
                )
            ),
            401,
            "APIGW.0301",
        )
    assert sdk.tags_of("dis", stream) == {}
