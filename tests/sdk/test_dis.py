"""DIS stream tags through huaweicloudsdkdis (DisClient, BasicCredentials). tagd does
not implement DIS's reads, so results are read back through TMS (type ``dis``)."""

import huaweicloudsdkdis.v2 as dis

from sdkutil import expect_error, unique

TYPE = "dis"


def batch(stream_id, action, pairs):
    tags = [dis.Tag(key=k, value=v) for k, v in pairs]
    if action == "create":
        return dis.BatchCreateTagsRequest(
            stream_id=stream_id, body=dis.BatchCreateTagsReq(action="create", tags=tags)
        )
    return dis.BatchDeleteTagsRequest(
        stream_id=stream_id, body=dis.BatchDeleteTagsReq(action=action, tags=tags)
    )


def create_one(stream_id, key, value):
    return dis.CreateTagRequest(
        stream_id=stream_id, body=dis.CreateTagReq(tag=dis.Tag(key=key, value=value))
    )


def test_batch_create_tags(sdk, resource):
    stream = resource(TYPE)
    resp = sdk.dis().batch_create_tags(batch(stream, "create", [("key1", "value1"), ("环境", "生产")]))
    assert resp.status_code == 204
    assert sdk.tags_of(TYPE, stream) == {"key1": "value1", "环境": "生产"}


def test_batch_delete_tags(sdk, resource):
    stream = resource(TYPE)
    client = sdk.dis()
    client.batch_create_tags(batch(stream, "create", [("a", "1"), ("b", "2")]))
    resp = client.batch_delete_tags(batch(stream, "delete", [("a", "1"), ("missing", "")]))
    assert resp.status_code == 204
    assert sdk.tags_of(TYPE, stream) == {"b": "2"}


def test_create_tag_and_delete_tag(sdk, resource):
    stream = resource(TYPE)
    client = sdk.dis()
    resp = client.create_tag(create_one(stream, "owner", "team-a"))
    assert resp.status_code == 204
    assert sdk.tags_of(TYPE, stream) == {"owner": "team-a"}
    resp = client.delete_tag(dis.DeleteTagRequest(stream_id=stream, key="owner"))
    assert resp.status_code == 204
    assert sdk.tags_of(TYPE, stream) == {}


def test_delete_tag_with_a_non_ascii_key(sdk, resource):
    stream = resource(TYPE)
    client = sdk.dis()
    client.create_tag(create_one(stream, "环境", "开发"))
    client.create_tag(create_one(stream, "keep", ""))
    assert sdk.tags_of(TYPE, stream) == {"环境": "开发", "keep": ""}
    resp = client.delete_tag(dis.DeleteTagRequest(stream_id=stream, key="环境"))
    assert resp.status_code == 204
    assert sdk.tags_of(TYPE, stream) == {"keep": ""}


def test_invalid_tags_are_refused_whole(sdk, resource):
    stream = resource(TYPE)
    client = sdk.dis()
    expect_error(
        lambda: client.batch_create_tags(batch(stream, "create", [("ok", "v"), ("bad key", "v")])),
        400,
        "DIS.4200",
    )
    expect_error(lambda: client.create_tag(create_one(stream, "café", "v")), 400, "DIS.4200")
    expect_error(
        lambda: client.batch_create_tags(batch(stream, "create", [("dup", "1"), ("dup", "2")])),
        400,
        "DIS.4200",
    )
    assert sdk.tags_of(TYPE, stream) == {}


def test_unknown_stream(sdk):
    client = sdk.dis()
    unknown = unique("dis-unregistered")
    expect_error(lambda: client.batch_create_tags(batch(unknown, "create", [("k", "v")])), 404, "DIS.4301")
    expect_error(lambda: client.batch_delete_tags(batch(unknown, "delete", [("k", "v")])), 404, "DIS.4301")
    expect_error(lambda: client.create_tag(create_one(unknown, "k", "v")), 404, "DIS.4301")
    expect_error(lambda: client.delete_tag(dis.DeleteTagRequest(stream_id=unknown, key="k")), 404, "DIS.4301")
