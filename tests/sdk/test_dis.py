"""DIS stream tags through huaweicloudsdkdis (DisClient, BasicCredentials). Writes are
read back through TMS (type ``dis``); the reads (show_stream_tags, list_tags and
list_resources_by_tags with filter and count) are checked through the SDK itself. The
session's tagd is shared, so each read test tags its streams with a key of its own."""

import json

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


# --- reads


def named_stream(tagd, name):
    """Registers a stream with a name and returns its id."""
    stream = unique("dis")
    tagd.admin(
        "resource", "add", "--project", tagd.project_id, "--type", TYPE, "--id", stream, "--name", name
    )
    return stream


def by_tags(action, **fields):
    return dis.ListResourcesByTagsRequest(body=dis.ListResourceInstancesReq(action=action, **fields))


def tags_of_key(key, values=None):
    return [dis.Tags(key=key, values=values or [])]


def test_show_stream_tags(sdk, resource):
    stream = resource(TYPE)
    client = sdk.dis()
    client.batch_create_tags(batch(stream, "create", [("owner", "team-a"), ("环境", "生产")]))
    resp = client.show_stream_tags(dis.ShowStreamTagsRequest(stream_id=stream))
    assert resp.status_code == 200
    assert [(t.key, t.value) for t in resp.tags] == [("owner", "team-a"), ("环境", "生产")]
    expect_error(
        lambda: client.show_stream_tags(dis.ShowStreamTagsRequest(stream_id=unique("dis-unregistered"))),
        404,
        "DIS.4301",
    )


def test_list_tags(sdk, resource):
    key = unique("lt")
    s1, s2 = resource(TYPE), resource(TYPE)
    client = sdk.dis()
    client.batch_create_tags(batch(s1, "create", [(key, "b")]))
    client.batch_create_tags(batch(s2, "create", [(key, "a")]))
    resp = client.list_tags(dis.ListTagsRequest())
    assert resp.status_code == 200
    listed = {t.key: t.values for t in resp.tags}
    assert listed[key] == ["a", "b"]
    keys = [t.key for t in resp.tags]
    assert keys == sorted(keys)


def test_list_resources_by_tags_filter(sdk, tagd):
    key = unique("lrt")
    a, b, c = named_stream(tagd, "orders-in"), named_stream(tagd, "orders-out"), named_stream(tagd, "clicks")
    client = sdk.dis()
    client.batch_create_tags(batch(a, "create", [(key, "1"), ("tier", "gold")]))
    client.batch_create_tags(batch(b, "create", [(key, "2")]))
    client.batch_create_tags(batch(c, "create", [(key, "1")]))
    resp = client.list_resources_by_tags(
        by_tags("filter", tags=tags_of_key(key, ["1"]), limit="10", offset="0")
    )
    assert resp.status_code == 200
    assert resp.total_count == 2
    rows = {r.resource_id: r for r in resp.resources}
    assert set(rows) == {a, c}
    assert rows[a].resource_name == "orders-in"
    assert {(t.key, t.value) for t in rows[a].tags} == {(key, "1"), ("tier", "gold")}
    # matches is the name substring; a JSON-encoded list of conditions works too.
    resp = client.list_resources_by_tags(
        by_tags("filter", tags_any=tags_of_key(key), not_tags_any=tags_of_key("tier"), matches="orders")
    )
    assert [r.resource_id for r in resp.resources] == [b]
    encoded = json.dumps([{"key": "resource_name", "value": "clicks"}])
    resp = client.list_resources_by_tags(by_tags("filter", tags=tags_of_key(key), matches=encoded))
    assert [r.resource_id for r in resp.resources] == [c]
    # Paging: one stream per page, the total each time.
    pages = []
    for offset in range(3):
        resp = client.list_resources_by_tags(
            by_tags("filter", tags=tags_of_key(key), limit="1", offset=str(offset))
        )
        assert resp.total_count == 3
        pages += [r.resource_id for r in resp.resources]
    assert sorted(pages) == sorted([a, b, c])
    expect_error(
        lambda: client.list_resources_by_tags(by_tags("filter", tags=tags_of_key(key), limit="0")),
        400,
        "DIS.4200",
    )


def test_list_resources_by_tags_count(sdk, resource):
    key = unique("lrt-count")
    streams = [resource(TYPE) for _ in range(3)]
    client = sdk.dis()
    for i, stream in enumerate(streams):
        client.batch_create_tags(batch(stream, "create", [(key, str(i % 2))]))
    resp = client.list_resources_by_tags(by_tags("count", tags=tags_of_key(key)))
    assert resp.status_code == 200
    assert resp.total_count == 3
    assert resp.resources is None
    resp = client.list_resources_by_tags(by_tags("count", tags=tags_of_key(key, ["1"])))
    assert resp.total_count == 1
    too_many = [dis.Tags(key=f"k{i}", values=[]) for i in range(11)]
    expect_error(
        lambda: client.list_resources_by_tags(by_tags("count", tags=too_many)), 400, "DIS.4200"
    )
    expect_error(lambda: client.list_resources_by_tags(by_tags("sum")), 400, "DIS.4200")
