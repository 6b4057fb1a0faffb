"""Workspace desktop tags through huaweicloudsdkworkspace (WorkspaceClient,
BasicCredentials). Workspace has no implemented read in tagd, so results are read back
through TMS as resources of type ``workspace-desktop``."""

import huaweicloudsdkworkspace.v2 as workspace

from sdkutil import expect_error, unique

TYPE = "workspace-desktop"


def tags(pairs):
    return [workspace.Tag(key=k, value=v) for k, v in pairs]


def batch_add(desktops):
    return workspace.BatchAddDesktopsTagsRequest(
        body=workspace.BatchAddDesktopsTagsReq(
            desktops=[workspace.DesktopTagsInfo(desktop_id=d, tags=tags(t)) for d, t in desktops]
        )
    )


def batch_delete(desktops):
    return workspace.BatchDeleteDesktopsTagsRequest(
        body=workspace.BatchDeleteDesktopsTagsReq(
            desktops=[workspace.DesktopTagsInfo(desktop_id=d, tags=tags(t)) for d, t in desktops]
        )
    )


def change(desktop_id, action, pairs):
    return workspace.BatchChangeTagsRequest(
        desktop_id=desktop_id, body=workspace.TagsReq(action=action, tags=tags(pairs))
    )


def test_batch_add_desktops_tags(sdk, resource):
    d1, d2 = resource(TYPE), resource(TYPE)
    resp = sdk.workspace().batch_add_desktops_tags(
        batch_add([(d1, [("env", "dev"), ("team", "a")]), (d2, [("env", "prod")])])
    )
    assert resp.status_code == 204
    assert sdk.tags_of(TYPE, d1) == {"env": "dev", "team": "a"}
    assert sdk.tags_of(TYPE, d2) == {"env": "prod"}


def test_batch_add_skips_unknown_desktops(sdk, resource):
    known = resource(TYPE)
    resp = sdk.workspace().batch_add_desktops_tags(
        batch_add([(known, [("env", "dev")]), (unique("desk-unregistered"), [("env", "dev")])])
    )
    assert resp.status_code == 204
    assert sdk.tags_of(TYPE, known) == {"env": "dev"}


def test_batch_delete_desktops_tags(sdk, resource):
    d1, d2 = resource(TYPE), resource(TYPE)
    client = sdk.workspace()
    client.batch_add_desktops_tags(
        batch_add([(d1, [("a", "1"), ("b", "2")]), (d2, [("a", "1"), ("c", "3")])])
    )
    resp = client.batch_delete_desktops_tags(
        batch_delete([(d1, [("a", "1")]), (d2, [("c", "3"), ("missing", "")])])
    )
    assert resp.status_code == 204
    assert sdk.tags_of(TYPE, d1) == {"b": "2"}
    assert sdk.tags_of(TYPE, d2) == {"a": "1"}


def test_batch_change_tags_create_and_delete(sdk, resource):
    desk = resource(TYPE)
    client = sdk.workspace()
    resp = client.batch_change_tags(change(desk, "create", [("env", "dev"), ("team", "a")]))
    assert resp.status_code == 204
    assert sdk.tags_of(TYPE, desk) == {"env": "dev", "team": "a"}
    resp = client.batch_change_tags(change(desk, "delete", [("env", "dev")]))
    assert resp.status_code == 204
    assert sdk.tags_of(TYPE, desk) == {"team": "a"}


def test_create_tag_and_delete_tag(sdk, resource):
    desk = resource(TYPE)
    client = sdk.workspace()
    resp = client.create_tag(
        workspace.CreateTagRequest(
            desktop_id=desk, body=workspace.CreateTagReq(tag=workspace.Tag(key="env", value="dev"))
        )
    )
    assert resp.status_code == 204
    assert sdk.tags_of(TYPE, desk) == {"env": "dev"}
    resp = client.delete_tag(workspace.DeleteTagRequest(desktop_id=desk, key="env"))
    assert resp.status_code == 204
    assert sdk.tags_of(TYPE, desk) == {}


def test_delete_tag_with_a_non_ascii_key(sdk, resource):
    desk = resource(TYPE)
    client = sdk.workspace()
    client.batch_change_tags(change(desk, "create", [("环境", "开发"), ("keep", "")]))
    client.delete_tag(workspace.DeleteTagRequest(desktop_id=desk, key="环境"))
    assert sdk.tags_of(TYPE, desk) == {"keep": ""}


def test_invalid_key_is_refused_whole(sdk, resource):
    desk = resource(TYPE)
    client = sdk.workspace()
    for bad in ("_sys_reserved", "a=b", " lead"):
        expect_error(
            lambda: client.batch_add_desktops_tags(batch_add([(desk, [("ok", "v"), (bad, "v")])])),
            400,
            "WKS.0002",
        )
    expect_error(lambda: client.batch_change_tags(change(desk, "update", [("k", "v")])), 400, "WKS.0002")
    assert sdk.tags_of(TYPE, desk) == {}


def test_single_desktop_calls_on_an_unknown_desktop(sdk):
    client = sdk.workspace()
    unknown = unique("desk-unregistered")
    expect_error(
        lambda: client.create_tag(
            workspace.CreateTagRequest(
                desktop_id=unknown,
                body=workspace.CreateTagReq(tag=workspace.Tag(key="env", value="dev")),
            )
        ),
        404,
        "WKS.0004",
    )
    expect_error(lambda: client.batch_change_tags(change(unknown, "create", [("k", "v")])), 404, "WKS.0004")
    expect_error(
        lambda: client.delete_tag(workspace.DeleteTagRequest(desktop_id=unknown, key="env")),
        404,
        "WKS.0004",
    )
