"""DataArts Fabric workspace tags through huaweicloudsdkdataartsfabric
(DataArtsFabricClient, BasicCredentials)."""

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
