"""DataArts Fabric workspace tags through huaweicloudsdkdataartsfabric
(DataArtsFabricClient, BasicCredentials): the writes, and the reads (one workspace's
tags, the project's tags, the filter and count of workspaces)."""

import uuid

import huaweicloudsdkdataartsfabric.v1 as fabric

from sdkutil import as_dict, expect_error, unique

TYPE = "fabric-workspace"
EPS = "_sys_enterprise_project_id"


def create(workspace_id, tags=None, sys_tags=None):
    return fabric.BatchCreateFabricWorkspaceTagsRequest(
        workspace_id=workspace_id,
        body=fabric.BatchCreateTagsRequestBody(
            tags=None if tags is None else [fabric.ResourceTag(key=k, value=v) for k, v in tags],
            sys_tags=None
            if sys_tags is None
            else [fabric.SystemTag(key=k, value=v) for k, v in sys_tags],
        ),
    )


def delete(workspace_id, tags=None, sys_tags=None):
    def models(pairs):
        return None if pairs is None else [fabric.DeleteResourceTag(key=k, value=v) for k, v in pairs]

    return fabric.BatchDeleteFabricWorkspaceTagsRequest(
        workspace_id=workspace_id,
        body=fabric.BatchDeleteTagsRequestBody(tags=models(tags), sys_tags=models(sys_tags)),
    )


def listed(client, workspace_id, **paging):
    resp = client.list_fabric_workspace_tags(
        fabric.ListFabricWorkspaceTagsRequest(workspace_id=workspace_id, **paging)
    )
    assert resp.status_code == 200
    assert resp.x_request_id, "the declared X-request-id response header is missing"
    return as_dict(resp.tags), as_dict(resp.sys_tags)


def test_create_with_tags_and_sys_tags_then_list(sdk, resource):
    ws = resource(TYPE)
    client = sdk.fabric()
    resp = client.batch_create_fabric_workspace_tags(
        create(ws, tags=[("key1", "value1"), ("key2", "")], sys_tags=[(EPS, "0")])
    )
    assert resp.status_code == 204
    assert listed(client, ws) == ({"key1": "value1", "key2": ""}, {EPS: "0"})
    # TMS sees the user tags only: system tags live apart.
    assert sdk.tags_of(TYPE, ws) == {"key1": "value1", "key2": ""}


def test_list_of_an_untagged_workspace(sdk, resource):
    ws = resource(TYPE)
    assert listed(sdk.fabric(), ws) == ({}, {})


def test_list_pages_with_offset_and_limit(sdk, resource):
    ws = resource(TYPE)
    client = sdk.fabric()
    client.batch_create_fabric_workspace_tags(create(ws, tags=[(f"k{i}", str(i)) for i in range(5)]))
    everything, _ = listed(client, ws)
    assert len(everything) == 5
    page, _ = listed(client, ws, offset=1, limit=2)
    assert len(page) == 2 and page.items() <= everything.items()


def test_delete_tags_and_sys_tags(sdk, resource):
    ws = resource(TYPE)
    client = sdk.fabric()
    client.batch_create_fabric_workspace_tags(
        create(ws, tags=[("a", "1"), ("b", "2")], sys_tags=[(EPS, "0")])
    )
    resp = client.batch_delete_fabric_workspace_tags(delete(ws, tags=[("a", "1")]))
    assert resp.status_code == 204
    assert listed(client, ws) == ({"b": "2"}, {EPS: "0"})
    resp = client.batch_delete_fabric_workspace_tags(delete(ws, sys_tags=[(EPS, "0")]))
    assert resp.status_code == 204
    assert listed(client, ws) == ({"b": "2"}, {})


def test_invalid_tags_are_refused_whole(sdk, resource):
    ws = resource(TYPE)
    client = sdk.fabric()
    e = expect_error(
        lambda: client.batch_create_fabric_workspace_tags(create(ws, tags=[("ok", "v"), ("bad/key", "v")])),
        400,
        "common.01000001",
    )
    assert e.error_msg
    expect_error(
        lambda: client.batch_create_fabric_workspace_tags(create(ws, sys_tags=[("not_eps", "0")])),
        400,
        "common.01000001",
    )
    expect_error(
        lambda: client.batch_create_fabric_workspace_tags(
            create(ws, tags=[(f"k{i}", "") for i in range(21)])
        ),
        400,
        "common.01000001",
    )
    assert listed(client, ws) == ({}, {})


def test_unknown_workspace(sdk):
    client = sdk.fabric()
    unknown = unique("fabric-unregistered")
    expect_error(
        lambda: client.batch_create_fabric_workspace_tags(create(unknown, tags=[("k", "v")])),
        404,
        "common.01000001",
    )
    expect_error(
        lambda: client.batch_delete_fabric_workspace_tags(delete(unknown, tags=[("k", None)])),
        404,
        "common.01000001",
    )
    expect_error(
        lambda: client.list_fabric_workspace_tags(
            fabric.ListFabricWorkspaceTagsRequest(workspace_id=unknown)
        ),
        404,
        "common.01000001",
    )


# --- reads: the project's tags, and the filter and count of workspaces


def filter_body(tags=None, sys_tags=None, matches=None, without_any_tag=None):
    return fabric.ListTagWorkspacesRequestBody(
        without_any_tag=without_any_tag,
        tags=None if tags is None else [fabric.ResourceTagParam(key=k, values=v) for k, v in tags],
        matches=None
        if matches is None
        else [fabric.TagMatch(key=k, value=v) for k, v in matches],
        sys_tags=None
        if sys_tags is None
        else [fabric.SystemTagParam(key=k, values=v) for k, v in sys_tags],
    )


def test_list_fabric_project_tags(sdk, resource):
    key = unique("pk")
    client = sdk.fabric()
    for i, ws in enumerate((resource(TYPE), resource(TYPE))):
        client.batch_create_fabric_workspace_tags(create(ws, tags=[(key, f"v{i}")], sys_tags=[(EPS, "0")]))
    for flag in (None, False, True):  # tagd has no predefined tags: the same answer
        resp = client.list_fabric_project_tags(fabric.ListFabricProjectTagsRequest(use_predefine_tags=flag))
        assert resp.status_code == 200
        assert resp.x_request_id
        listed = {t.key: t.values for t in resp.tags}
        assert listed[key] == ["v0", "v1"]
        assert EPS not in listed, "system tags are not project tags"
    resp = client.list_fabric_project_tags(fabric.ListFabricProjectTagsRequest(offset=0, limit=1))
    assert len(resp.tags) == 1
    expect_error(
        lambda: client.list_fabric_project_tags(fabric.ListFabricProjectTagsRequest(limit=1001)),
        400,
        "common.01000001",
    )


def test_list_tag_fabric_workspaces(sdk, resource):
    key, eps = unique("fk"), str(uuid.uuid4())
    client = sdk.fabric()
    first, second, untagged = sorted(resource(TYPE) for _ in range(3))
    client.batch_create_fabric_workspace_tags(create(first, tags=[(key, "a")], sys_tags=[(EPS, eps)]))
    client.batch_create_fabric_workspace_tags(create(second, tags=[(key, "b")]))
    client.batch_create_fabric_workspace_tags(create(untagged, sys_tags=[(EPS, eps)]))

    def listed(body, **paging):
        resp = client.list_tag_fabric_workspaces(fabric.ListTagFabricWorkspacesRequest(body=body, **paging))
        assert resp.status_code == 200
        assert resp.x_request_id
        return [w.resource_id for w in resp.resources], resp.total_count, resp.resources

    ids, total, found = listed(filter_body(tags=[(key, ["a"])]))
    assert (ids, total) == ([first], 1)
    w = found[0]
    assert as_dict(w.tags) == {key: "a"} and as_dict(w.sys_tags) == {EPS: eps}
    assert w.resource_name == "" and w.resource_detail == {}
    assert listed(filter_body(tags=[(key, [])]))[:2] == ([first, second], 2)
    assert listed(filter_body(tags=[(key, [])]), offset=1, limit=1)[:2] == ([second], 2)
    assert listed(filter_body(sys_tags=[(EPS, [eps])]))[:2] == ([first, untagged], 2)
    assert listed(filter_body(sys_tags=[(EPS, [eps])], without_any_tag=True))[:2] == ([untagged], 1)
    assert listed(filter_body(tags=[(key, ["b"])], matches=[("resource_name", "")]))[:2] == ([second], 1)
    expect_error(
        lambda: client.list_tag_fabric_workspaces(
            fabric.ListTagFabricWorkspacesRequest(body=filter_body(), limit=101)
        ),
        400,
        "common.01000001",
    )


def test_count_tag_fabric_workspaces(sdk, resource):
    key = unique("ck")
    client = sdk.fabric()
    for ws in (resource(TYPE), resource(TYPE)):
        client.batch_create_fabric_workspace_tags(create(ws, tags=[(key, "v")]))

    def counted(body):
        resp = client.count_tag_fabric_workspaces(fabric.CountTagFabricWorkspacesRequest(body=body))
        assert resp.status_code == 200
        assert resp.x_request_id
        return resp.total_count

    assert counted(filter_body(tags=[(key, ["v"])])) == 2
    assert counted(filter_body(tags=[(key, ["other"])])) == 0
    expect_error(
        lambda: client.count_tag_fabric_workspaces(
            fabric.CountTagFabricWorkspacesRequest(
                body=filter_body(tags=[(f"k{i}", []) for i in range(51)])
            )
        ),
        400,
        "common.01000001",
    )
