"""RDS instance tags through huaweicloudsdkrds (RdsClient, BasicCredentials): the
writes (``tags/action``, read back through TMS, type ``rds``) and the reads (an
instance's tags, the project's tags, predefined tags, ``ListInstances`` with ``tags=``)."""

import re

import huaweicloudsdkrds.v3 as rds

from sdkutil import expect_error, unique

TYPE = "rds"
CJK = re.compile(r"[\u4e00-\u9fff]")


def add(instance_id, pairs, x_language=None):
    return rds.BatchTagAddActionRequest(
        x_language=x_language,
        instance_id=instance_id,
        body=rds.BatchTagActionAddRequestBody(
            action="create", tags=[rds.TagWithKeyValue(key=k, value=v) for k, v in pairs]
        ),
    )


def delete(instance_id, pairs, x_language=None):
    return rds.BatchTagDelActionRequest(
        x_language=x_language,
        instance_id=instance_id,
        body=rds.BatchTagActionDelRequestBody(
            action="delete", tags=[rds.TagDelWithKeyValue(key=k, value=v) for k, v in pairs]
        ),
    )


def test_batch_tag_add_action(sdk, resource):
    inst = resource(TYPE)
    resp = sdk.rds().batch_tag_add_action(add(inst, [("key1", "value1"), ("key2", "")]))
    assert resp.status_code in (200, 204)
    assert sdk.tags_of(TYPE, inst) == {"key1": "value1", "key2": ""}


def test_batch_tag_add_action_with_x_language(sdk, resource):
    inst = resource(TYPE)
    client = sdk.rds()
    client.batch_tag_add_action(add(inst, [("a", "1")], x_language="zh-cn"))
    client.batch_tag_add_action(add(inst, [("a", "2")], x_language="en-us"))
    assert sdk.tags_of(TYPE, inst) == {"a": "2"}


def test_batch_tag_del_action_by_key_and_by_key_and_value(sdk, resource):
    inst = resource(TYPE)
    client = sdk.rds()
    client.batch_tag_add_action(add(inst, [("a", "1"), ("b", "2"), ("c", "3")]))
    # "a" by key; "b" with its value; "c" with another value, so it stays.
    resp = client.batch_tag_del_action(delete(inst, [("a", None), ("b", "2"), ("c", "x")]))
    assert resp.status_code in (200, 204)
    assert sdk.tags_of(TYPE, inst) == {"c": "3"}


def test_invalid_tag_is_refused_whole(sdk, resource):
    inst = resource(TYPE)
    client = sdk.rds()
    client.batch_tag_add_action(add(inst, [("keep", "v")]))
    expect_error(
        lambda: client.batch_tag_add_action(add(inst, [("ok", "v"), ("bad key", "v")])),
        400,
        "DBS.200001",
    )
    expect_error(lambda: client.batch_tag_add_action(add(inst, [("k" * 37, "v")])), 400, "DBS.200001")
    # 21 tags in one request break the per-request rule.
    expect_error(
        lambda: client.batch_tag_add_action(add(inst, [(f"k{i}", "") for i in range(21)])),
        400,
        "DBS.200001",
    )
    assert sdk.tags_of(TYPE, inst) == {"keep": "v"}


def test_an_instance_holds_at_most_20_tags(sdk, resource):
    inst = resource(TYPE)
    client = sdk.rds()
    client.batch_tag_add_action(add(inst, [(f"k{i}", "") for i in range(20)]))
    expect_error(
        lambda: client.batch_tag_add_action(add(inst, [("k0", "x"), ("k20", "x")])),
        400,
        "DBS.200087",
    )
    after = sdk.tags_of(TYPE, inst)
    assert len(after) == 20 and after["k0"] == "", "the refused request wrote nothing"


def test_unknown_instance(sdk):
    client = sdk.rds()
    unknown = unique("rds-unregistered")
    expect_error(lambda: client.batch_tag_add_action(add(unknown, [("k", "v")])), 404, "DBS.200002")
    expect_error(lambda: client.batch_tag_del_action(delete(unknown, [("k", None)])), 404, "DBS.200002")


def test_x_language_selects_the_error_message_language(sdk, resource):
    inst = resource(TYPE)
    client = sdk.rds()
    bad = [("bad key", "v")]
    zh = expect_error(
        lambda: client.batch_tag_add_action(add(inst, bad, x_language="zh-cn")), 400, "DBS.200001"
    )
    en = expect_error(
        lambda: client.batch_tag_add_action(add(inst, bad, x_language="en-us")), 400, "DBS.200001"
    )
    assert CJK.search(zh.error_msg), f"zh-cn message is not Chinese: {zh.error_msg!r}"
    assert not CJK.search(en.error_msg), f"en-us message is not English: {en.error_msg!r}"
    assert zh.error_msg != en.error_msg
    # Also on a delete and on a 404.
    zh = expect_error(
        lambda: client.batch_tag_del_action(
            delete(unique("rds-unregistered"), [("k", None)], x_language="zh-cn")
        ),
        404,
        "DBS.200002",
    )
    assert CJK.search(zh.error_msg), zh.error_msg


# --- reads: an instance's tags, the project's tags, predefined tags, ListInstances


def wrong_key(sdk):
    """A client whose signatures do not verify: refused before reaching RDS."""
    return sdk.rds(sk="0" * 40)


def test_list_instance_tags(sdk, resource):
    inst = resource(TYPE)
    client = sdk.rds()
    resp = client.list_instance_tags(rds.ListInstanceTagsRequest(instance_id=inst))
    assert resp.status_code == 200 and resp.tags == []
    client.batch_tag_add_action(add(inst, [("b", "2"), ("a", "1")]))
    resp = client.list_instance_tags(rds.ListInstanceTagsRequest(instance_id=inst, x_language="en-us"))
    assert [(t.key, t.value) for t in resp.tags] == [("a", "1"), ("b", "2")]
    e = expect_error(
        lambda: client.list_instance_tags(
            rds.ListInstanceTagsRequest(instance_id=unique("rds-unregistered"), x_language="zh-cn")
        ),
        404,
        "DBS.200002",
    )
    assert CJK.search(e.error_msg), e.error_msg


def test_list_project_tags(sdk, resource):
    key = unique("pk")
    client = sdk.rds()
    client.batch_tag_add_action(add(resource(TYPE), [(key, "v1")]))
    client.batch_tag_add_action(add(resource(TYPE), [(key, "v0")]))
    resp = client.list_project_tags(rds.ListProjectTagsRequest())
    assert resp.status_code == 200
    assert {t.key: t.values for t in resp.tags}[key] == ["v0", "v1"]
    expect_error(lambda: wrong_key(sdk).list_project_tags(rds.ListProjectTagsRequest()), 401, "APIGW.0301")


def test_list_predefined_tag(sdk):
    resp = sdk.rds().list_predefined_tag(rds.ListPredefinedTagRequest(x_language="en-us"))
    assert resp.status_code == 200 and resp.tags == []
    expect_error(lambda: wrong_key(sdk).list_predefined_tag(rds.ListPredefinedTagRequest()), 401, "APIGW.0301")


def test_list_instances_with_tags(sdk, resource):
    key = unique("lk")
    client = sdk.rds()
    first, second, third = sorted(resource(TYPE) for _ in range(3))
    client.batch_tag_add_action(add(first, [(key, "a"), ("team", "x")]))
    client.batch_tag_add_action(add(second, [(key, "b")]))

    def listed(**params):
        resp = client.list_instances(rds.ListInstancesRequest(**params))
        assert resp.status_code == 200
        return [i.id for i in resp.instances], resp.total_count, resp.instances

    ids, total, found = listed(tags=f"{key}=a")
    assert (ids, total) == ([first], 1)
    assert found[0].status == "ACTIVE"
    assert sorted((t.key, t.value) for t in found[0].tags) == [(key, "a"), ("team", "x")]
    assert listed(tags=f"{key}=")[:2] == ([first, second], 2)
    assert listed(tags=f"{key}=,team=x")[:2] == ([first], 1)
    assert listed(tags=f"{key}=", offset=1, limit=1)[:2] == ([second], 2)
    assert listed(tags=f"{key}=", id=second)[:2] == ([second], 1)
    assert listed(id=third)[:2] == ([third], 1)
    expect_error(
        lambda: client.list_instances(
            rds.ListInstancesRequest(tags=",".join(f"k{i}=" for i in range(11)))
        ),
        400,
        "DBS.200001",
    )
    expect_error(lambda: client.list_instances(rds.ListInstancesRequest(limit=101)), 400, "DBS.200001")
