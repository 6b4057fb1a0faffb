"""Workspace desktop tags through huaweicloudsdkworkspace (WorkspaceClient,
BasicCredentials). Writes are read back through TMS as resources of type
``workspace-desktop``; the reads (show_tag_by_desktop_id, list_project_tags and the
filter/count call on both URLs) are checked through the SDK itself. The session's tagd
is shared, so each read test tags its desktops with a key of its own."""

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


# --- reads


def named_desktop(tagd, name):
    """Registers a desktop with a name and returns its id."""
    desk = unique("desk")
    tagd.admin(
        "resource", "add", "--project", tagd.project_id, "--type", TYPE, "--id", desk, "--name", name
    )
    return desk


def query(action, **fields):
    return workspace.QueryDesktopByTagReq(action=action, **fields)


def by_key(key, values=None):
    return [workspace.Tags(key=key, values=values or [])]


def test_show_tag_by_desktop_id(sdk, resource):
    desk = resource(TYPE)
    client = sdk.workspace()
    client.batch_change_tags(change(desk, "create", [("team", "a"), ("env", "dev")]))
    resp = client.show_tag_by_desktop_id(workspace.ShowTagByDesktopIdRequest(desktop_id=desk))
    assert resp.status_code == 200
    assert [(t.key, t.value) for t in resp.tags] == [("env", "dev"), ("team", "a")]
    untagged = resource(TYPE)
    resp = client.show_tag_by_desktop_id(workspace.ShowTagByDesktopIdRequest(desktop_id=untagged))
    assert resp.tags == []
    expect_error(
        lambda: client.show_tag_by_desktop_id(
            workspace.ShowTagByDesktopIdRequest(desktop_id=unique("desk-unregistered"))
        ),
        404,
        "WKS.0004",
    )


def test_list_project_tags(sdk, resource):
    key, other = unique("lpt"), unique("lpt")
    d1, d2 = resource(TYPE), resource(TYPE)
    client = sdk.workspace()
    client.batch_add_desktops_tags(batch_add([(d1, [(key, "v1"), (other, "x")]), (d2, [(key, "v2")])]))
    resp = client.list_project_tags(workspace.ListProjectTagsRequest(key=key))
    assert resp.status_code == 200
    assert [(t.key, t.values) for t in resp.tags] == [(key, ["v1", "v2"])]
    assert resp.total_count == 1  # sent as totalCount
    # key and value are OR-ed: the key with all its values, other keys with the value.
    resp = client.list_project_tags(workspace.ListProjectTagsRequest(key=other, value="v2"))
    assert sorted((t.key, t.values) for t in resp.tags) == sorted([(key, ["v2"]), (other, ["x"])])
    assert resp.total_count == 2
    # Paged by key; the total counts every key of the project.
    everything = client.list_project_tags(workspace.ListProjectTagsRequest())
    assert {key, other} <= {t.key for t in everything.tags}
    assert everything.total_count == len(everything.tags)
    page = client.list_project_tags(workspace.ListProjectTagsRequest(offset=1, limit=1))
    assert [t.key for t in page.tags] == [everything.tags[1].key]
    assert page.total_count == everything.total_count
    expect_error(
        lambda: client.list_project_tags(workspace.ListProjectTagsRequest(limit=1001)),
        400,
        "WKS.0002",
    )


def test_list_desktops_by_tags(sdk, tagd):
    key = unique("ldt")
    a, b, c = named_desktop(tagd, "alpha-web"), named_desktop(tagd, "beta-web"), named_desktop(tagd, "gamma-db")
    client = sdk.workspace()
    client.batch_add_desktops_tags(
        batch_add([(a, [(key, "1"), ("role", "x")]), (b, [(key, "2")]), (c, [(key, "1")])])
    )
    resp = client.list_desktops_by_tags(
        workspace.ListDesktopsByTagsRequest(
            body=query("filter", tags=by_key(key, ["1"]), offset="0", limit="10")
        )
    )
    assert resp.status_code == 200
    assert resp.total_count == 2
    assert resp.offset == 0
    rows = {r.resource_id: r for r in resp.resources}
    assert set(rows) == {a, c}
    assert rows[a].resource_name == "alpha-web"
    assert rows[a].resource_detail == ""
    assert {(t.key, t.value) for t in rows[a].tags} == {(key, "1"), ("role", "x")}
    # Name matching, not_tags_any, and a page of one.
    resp = client.list_desktops_by_tags(
        workspace.ListDesktopsByTagsRequest(
            body=query(
                "filter",
                tags=by_key(key),
                matches=[workspace.Match(key="resource_name", value="-web")],
                not_tags_any=by_key("role"),
                limit="1",
            )
        )
    )
    assert [r.resource_id for r in resp.resources] == [b]
    assert resp.total_count == 1
    resp = client.list_desktops_by_tags(
        workspace.ListDesktopsByTagsRequest(body=query("count", tags_any=by_key(key)))
    )
    assert resp.total_count == 3
    assert resp.resources is None
    expect_error(
        lambda: client.list_desktops_by_tags(
            workspace.ListDesktopsByTagsRequest(body=query("filter", tags=by_key(key), limit="1001"))
        ),
        400,
        "WKS.0002",
    )


def test_list_desktop_by_tags_deprecated_url(sdk, tagd):
    key = unique("ldt-old")
    d1, d2 = named_desktop(tagd, "old-1"), named_desktop(tagd, "old-2")
    client = sdk.workspace()
    client.batch_add_desktops_tags(batch_add([(d1, [(key, "a")]), (d2, [(key, "b")])]))
    resp = client.list_desktop_by_tags(
        workspace.ListDesktopByTagsRequest(body=query("filter", tags=by_key(key, ["b"])))
    )
    assert resp.status_code == 200
    assert [(r.resource_id, r.resource_name) for r in resp.resources] == [(d2, "old-2")]
    assert resp.total_count == 1
    resp = client.list_desktop_by_tags(
        workspace.ListDesktopByTagsRequest(body=query("count", tags=by_key(key)))
    )
    assert resp.total_count == 2
    expect_error(
        lambda: client.list_desktop_by_tags(workspace.ListDesktopByTagsRequest(body=query("list"))),
        400,
        "WKS.0002",
    )
