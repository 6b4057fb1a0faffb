"""TMS through huaweicloudsdktms (TmsClient, GlobalCredentials, AK/SK-signed)."""

import huaweicloudsdktms.v1 as tms

from sdkutil import as_dict, expect_error, unique


def create_body(project_id, resources, tags):
    return tms.CreateResourceTagRequest(
        body=tms.ReqCreateTag(
            project_id=project_id,
            resources=[
                tms.ResourceTagBody(resource_id=i, resource_type=t) for t, i in resources
            ],
            tags=[tms.CreateTagRequest(key=k, value=v) for k, v in tags],
        )
    )


def delete_body(project_id, resources, tags):
    return tms.DeleteResourceTagRequest(
        body=tms.ReqDeleteTag(
            project_id=project_id,
            resources=[
                tms.ResourceTagBody(resource_id=i, resource_type=t) for t, i in resources
            ],
            tags=[tms.DeleteTagRequest(key=k, value=v) for k, v in tags],
        )
    )


def show(client, tagd, resource_type, resource_id):
    return client.show_resource_tag(
        tms.ShowResourceTagRequest(
            resource_id=resource_id, project_id=tagd.project_id, resource_type=resource_type
        )
    )


def test_create_then_show_resource_tags(sdk, tagd, resource):
    disk = resource("disk")
    client = sdk.tms()
    resp = client.create_resource_tag(
        create_body(tagd.project_id, [("disk", disk)], [("ENV", "dev"), ("DEPT", "")])
    )
    assert resp.status_code == 200
    assert resp.failed_resources == []
    shown = show(client, tagd, "disk", disk)
    assert shown.status_code == 200
    assert as_dict(shown.tags) == {"ENV": "dev", "DEPT": ""}


def test_create_overwrites_an_existing_key(sdk, tagd, resource):
    disk = resource("disk")
    client = sdk.tms()
    client.create_resource_tag(create_body(tagd.project_id, [("disk", disk)], [("ENV", "dev")]))
    client.create_resource_tag(create_body(tagd.project_id, [("disk", disk)], [("ENV", "prod")]))
    assert sdk.tags_of("disk", disk) == {"ENV": "prod"}


def test_create_on_several_resources_and_types(sdk, tagd, resource):
    disk, rds_id, dis_id = resource("disk"), resource("rds"), resource("dis")
    resp = sdk.tms().create_resource_tag(
        create_body(
            tagd.project_id,
            [("disk", disk), ("rds", rds_id), ("dis", dis_id)],
            [("owner", "team-a")],
        )
    )
    assert resp.failed_resources == []
    for t, i in [("disk", disk), ("rds", rds_id), ("dis", dis_id)]:
        assert sdk.tags_of(t, i) == {"owner": "team-a"}


def test_create_reports_an_unregistered_resource_in_failed_resources(sdk, tagd, resource):
    known = resource("disk")
    unknown = unique("disk-unregistered")
    resp = sdk.tms().create_resource_tag(
        create_body(tagd.project_id, [("disk", known), ("disk", unknown)], [("ENV", "dev")])
    )
    assert resp.status_code == 200
    assert len(resp.failed_resources) == 1, resp.failed_resources
    failed = resp.failed_resources[0]
    assert (failed.resource_id, failed.resource_type, failed.error_code) == (
        unknown,
        "disk",
        "TMS.0005",
    )
    assert failed.error_msg
    # The other resource was applied.
    assert sdk.tags_of("disk", known) == {"ENV": "dev"}


def test_delete_by_key_and_by_key_and_value(sdk, tagd, resource):
    disk = resource("disk")
    client = sdk.tms()
    client.create_resource_tag(
        create_body(tagd.project_id, [("disk", disk)], [("a", "1"), ("b", "2"), ("c", "3")])
    )
    resp = client.delete_resource_tag(
        # "a" by key alone; "b" only if its value is "2" (it is); "c" only if "x" (it is not)
        delete_body(tagd.project_id, [("disk", disk)], [("a", None), ("b", "2"), ("c", "x")])
    )
    assert resp.status_code == 200
    assert resp.failed_resources == []
    assert sdk.tags_of("disk", disk) == {"c": "3"}


def test_delete_reports_an_unregistered_resource(sdk, tagd):
    unknown = unique("disk-unregistered")
    resp = sdk.tms().delete_resource_tag(
        delete_body(tagd.project_id, [("disk", unknown)], [("a", None)])
    )
    assert resp.status_code == 200
    assert [(f.resource_id, f.error_code) for f in resp.failed_resources] == [
        (unknown, "TMS.0005")
    ]


def test_create_with_an_invalid_key_is_refused_whole(sdk, tagd, resource):
    disk = resource("disk")
    client = sdk.tms()
    expect_error(
        lambda: client.create_resource_tag(
            create_body(tagd.project_id, [("disk", disk)], [("ok", "v"), ("bad key!", "v")])
        ),
        400,
        "TMS.0009",
    )
    assert sdk.tags_of("disk", disk) == {}, "a refused request wrote nothing"


def test_create_with_an_unknown_resource_type(sdk, tagd):
    client = sdk.tms()
    expect_error(
        lambda: client.create_resource_tag(
            create_body(tagd.project_id, [("no-such-type", unique("r"))], [("k", "v")])
        ),
        400,
        "TMS.5027",
    )


def test_show_resource_tag_of_an_unknown_resource(sdk, tagd):
    client = sdk.tms()
    expect_error(lambda: show(client, tagd, "disk", unique("disk-unregistered")), 404, "TMS.0005")


def test_show_resource_tag_with_an_unknown_type(sdk, tagd, resource):
    disk = resource("disk")
    client = sdk.tms()
    expect_error(lambda: show(client, tagd, "Disk", disk), 400, "TMS.5027")


def test_list_providers(sdk, tagd):
    client = sdk.tms()
    resp = client.list_providers(tms.ListProvidersRequest())
    assert resp.status_code == 200
    assert resp.total_count >= len(resp.providers) > 0
    names = [p.provider for p in resp.providers]
    for expected in ("evs", "workspace", "dataartsfabric", "rds", "dis"):
        assert expected in names, names
    for p in resp.providers:
        assert p.provider_i18n_display_name
        assert p.resource_types


def test_list_providers_filtered_by_provider(sdk, tagd):
    resp = sdk.tms().list_providers(tms.ListProvidersRequest(provider="rds", locale="en-us"))
    assert resp.total_count == 1
    [provider] = resp.providers
    assert provider.provider == "rds"
    [rt] = provider.resource_types
    assert rt.resource_type == "rds"
    assert rt._global is False
    assert tagd.project_name in rt.regions


def test_list_providers_pages_with_limit_and_offset(sdk):
    client = sdk.tms()
    everything = client.list_providers(tms.ListProvidersRequest(limit=200))
    names = [p.provider for p in everything.providers]
    assert len(names) == everything.total_count
    page = client.list_providers(tms.ListProvidersRequest(limit=2, offset=1))
    assert page.total_count == everything.total_count
    assert [p.provider for p in page.providers] == names[1:3]


def test_list_providers_with_an_invalid_limit(sdk):
    client = sdk.tms()
    expect_error(
        lambda: client.list_providers(tms.ListProvidersRequest(limit=0)), 400, "TMS.0007"
    )


def test_list_resource_filters_by_tags_and_counts(sdk, tagd, resource):
    client = sdk.tms()
    marker = unique("mark")
    disks = [resource("disk") for _ in range(5)]
    for i, disk in enumerate(disks):
        client.create_resource_tag(
            create_body(tagd.project_id, [("disk", disk)], [(marker, "even" if i % 2 == 0 else "odd")])
        )
    resp = client.list_resource(
        tms.ListResourceRequest(
            body=tms.ResqTagResource(
                project_id=tagd.project_id,
                resource_types=["disk"],
                tags=[tms.Tag(key=marker, values=["even"])],
                offset=0,
                limit=2,
            )
        )
    )
    assert resp.status_code == 200
    assert resp.total_count == 3
    assert len(resp.resources) == 2
    expected = sorted(d for i, d in enumerate(disks) if i % 2 == 0)
    assert [r.resource_id for r in resp.resources] == expected[:2]
    assert all(r.resource_type == "disk" and r.project_id == tagd.project_id for r in resp.resources)
    assert as_dict(resp.resources[0].tags) == {marker: "even"}
    rest = client.list_resource(
        tms.ListResourceRequest(
            body=tms.ResqTagResource(
                project_id=tagd.project_id,
                resource_types=["disk"],
                tags=[tms.Tag(key=marker, values=["even"])],
                offset=2,
                limit=2,
            )
        )
    )
    assert [r.resource_id for r in rest.resources] == expected[2:]


def test_list_resource_with_a_bad_limit(sdk, tagd):
    expect_error(
        lambda: sdk.tms().list_resource(
            tms.ListResourceRequest(
                body=tms.ResqTagResource(project_id=tagd.project_id, resource_types=["disk"], limit=500)
            )
        ),
        400,
        "TMS.0007",
    )


def test_list_tag_keys_and_values_page_with_markers(sdk, tagd, resource):
    client = sdk.tms()
    key = unique("listed")
    disks = [resource("disk") for _ in range(3)]
    for i, disk in enumerate(disks):
        client.create_resource_tag(create_body(tagd.project_id, [("disk", disk)], [(key, f"v{i}")]))
    keys, marker = [], None
    while True:
        resp = client.list_tag_keys(tms.ListTagKeysRequest(limit=2, marker=marker))
        assert resp.status_code == 200
        keys.extend(resp.keys)
        marker = resp.page_info.next_marker
        if not marker:
            break
    assert key in keys
    assert keys == sorted(set(keys)), "sorted, no repeats across pages"
    values = client.list_tag_values(tms.ListTagValuesRequest(key=key, limit=2))
    assert values.values == ["v0", "v1"]
    assert values.page_info.next_marker
    last = client.list_tag_values(
        tms.ListTagValuesRequest(key=key, limit=2, marker=values.page_info.next_marker)
    )
    assert last.values == ["v2"]
    assert last.page_info.next_marker == ""


def test_list_tag_values_needs_a_key(sdk):
    expect_error(lambda: sdk.tms().list_tag_values(tms.ListTagValuesRequest(limit=2)), 400, "TMS.0002")


def test_list_tags_of_a_project(sdk, tagd, resource):
    client = sdk.tms()
    key = unique("summary")
    for value in ("a", "b"):
        client.create_resource_tag(create_body(tagd.project_id, [("disk", resource("disk"))], [(key, value)]))
    resp = client.list_tags(tms.ListTagsRequest(project_id=tagd.project_id, resource_types="disk"))
    assert resp.status_code == 200
    found = {t.key: t.values for t in resp.tags}
    assert found[key] == ["a", "b"]


def _predefined(key, value):
    return tms.PredefineTagRequest(key=key, value=value)


def test_predefined_tags_lifecycle(sdk):
    client = sdk.tms()
    key = unique("pre")
    client.create_predefine_tags(
        tms.CreatePredefineTagsRequest(
            body=tms.ReqCreatePredefineTag(action="create", tags=[_predefined(key, "a"), _predefined(key, "b")])
        )
    )
    listed = client.list_predefine_tags(tms.ListPredefineTagsRequest(key=key.upper(), order_field="value", order_method="asc"))
    assert listed.status_code == 200
    assert listed.total_count == 2
    assert [(t.key, t.value) for t in listed.tags] == [(key, "a"), (key, "b")]
    client.update_predefine_tags(
        tms.UpdatePredefineTagsRequest(
            body=tms.ModifyPrefineTag(new_tag=_predefined(key, "c"), old_tag=_predefined(key, "a"))
        )
    )
    expect_error(
        lambda: client.update_predefine_tags(
            tms.UpdatePredefineTagsRequest(
                body=tms.ModifyPrefineTag(new_tag=_predefined(key, "d"), old_tag=_predefined(key, "a"))
            )
        ),
        400,
        "TMS.1002",
    )
    client.delete_predefine_tags(
        tms.DeletePredefineTagsRequest(
            body=tms.ReqDeletePredefineTag(action="delete", tags=[_predefined(key, "b")])
        )
    )
    left = client.list_predefine_tags(tms.ListPredefineTagsRequest(key=key))
    assert [(t.key, t.value) for t in left.tags] == [(key, "c")]
    quota = client.show_tag_quota(tms.ShowTagQuotaRequest())
    assert quota.quotas[0].quota_key == "predefine_tag"
    assert quota.quotas[0].quota_limit == 500
    assert quota.quotas[0].used >= 1


def test_list_predefine_tags_with_a_bad_order(sdk):
    expect_error(
        lambda: sdk.tms().list_predefine_tags(tms.ListPredefineTagsRequest(order_field="size")),
        400,
        "TMS.1010",
    )


def test_api_versions(sdk):
    client = sdk.tms()
    versions = client.list_api_versions(tms.ListApiVersionsRequest())
    assert [v.id for v in versions.versions] == ["v1.0", "v2.0"]
    one = client.show_api_version(tms.ShowApiVersionRequest(api_version="v1.0"))
    assert one.version.status == "CURRENT"
    expect_error(lambda: client.show_api_version(tms.ShowApiVersionRequest(api_version="v9.9")), 404, "APIGW.0101")
