"""IAM through huaweicloudsdkiam (IamClient): Keystone tokens, projects and domains,
permanent and temporary access keys; and tokens (instead of signatures) on the tag APIs.

Token calls use ``IamCredentials()`` (no authentication) and the rest
``IamCredentials().with_x_auth_token(token)``, as the SDK offers for IAM.
"""

import huaweicloudsdkdataartsfabric.v1 as fabric
import huaweicloudsdkdis.v2 as dis
import huaweicloudsdkiam.v3 as iam
import huaweicloudsdkrds.v3 as rds
import huaweicloudsdktms.v1 as tms
import huaweicloudsdkworkspace.v2 as workspace
import pytest

from sdkutil import expect_error, token_handler, unique

# --- tokens


def test_password_token_scoped_to_the_domain(sdk, tagd):
    resp = sdk.password_token(sdk.domain_scope())
    assert resp.status_code == 201
    assert resp.x_subject_token, "no X-Subject-Token"
    token = resp.token
    assert token.methods == ["password"]
    assert (token.domain.id, token.domain.name) == (tagd.domain_id, tagd.domain_name)
    assert token.project is None
    assert token.user.name == tagd.user_name
    assert token.user.domain.id == tagd.domain_id
    assert token.expires_at and token.issued_at
    assert not token.catalog, "nocatalog was asked for"


def test_password_token_scoped_to_the_project(sdk, tagd):
    resp = sdk.password_token(sdk.project_scope())
    assert resp.status_code == 201
    assert resp.x_subject_token
    project = resp.token.project
    assert (project.id, project.name) == (tagd.project_id, tagd.project_name)
    assert project.domain.id == tagd.domain_id


def test_password_token_with_a_catalog(sdk, tagd):
    body = iam.KeystoneCreateUserTokenByPasswordRequestBody(
        auth=iam.PwdAuth(
            identity=iam.PwdIdentity(
                methods=["password"],
                password=iam.PwdPassword(
                    user=iam.PwdPasswordUser(
                        domain=iam.PwdPasswordUserDomain(name=tagd.domain_name),
                        name=tagd.user_name,
                        password=tagd.password,
                    )
                ),
            ),
            scope=sdk.project_scope(),
        )
    )
    resp = sdk.iam().keystone_create_user_token_by_password(
        iam.KeystoneCreateUserTokenByPasswordRequest(body=body)
    )
    assert resp.x_subject_token
    types = {entry.type for entry in resp.token.catalog}
    assert {"tms", "rds", "dis", "workspace", "iam"} <= types, types


def test_wrong_password(sdk, tagd):
    e = expect_error(
        lambda: sdk.password_token(sdk.domain_scope(), password=tagd.password + "x"),
        401,
        "IAM.0002",
    )
    assert tagd.password not in e.error_msg


def test_unknown_user_looks_like_a_wrong_password(sdk):
    expect_error(
        lambda: sdk.password_token(sdk.domain_scope(), user_name=unique("nobody"), password="whatever-1"),
        401,
        "IAM.0002",
    )


def scoped_token_request(token, project_id=None, domain_name=None):
    if project_id:
        scope = iam.TokenSocpeOption(project=iam.ScopeProjectOption(id=project_id))
    else:
        scope = iam.TokenSocpeOption(domain=iam.ScopeDomainOption(name=domain_name))
    return iam.KeystoneCreateScopedTokenRequest(
        body=iam.KeystoneCreateScopedTokenRequestBody(
            auth=iam.ScopedTokenAuth(
                identity=iam.ScopedTokenIdentity(methods=["token"], token=iam.ScopedToken(id=token)),
                scope=scope,
            )
        )
    )


def test_scoped_token_rescopes_a_domain_token_to_the_project(sdk, tagd, domain_token):
    resp = sdk.iam().keystone_create_scoped_token(
        scoped_token_request(domain_token, project_id=tagd.project_id)
    )
    assert resp.status_code == 201
    assert resp.x_subject_token and resp.x_subject_token != domain_token
    assert resp.token.project.id == tagd.project_id
    assert resp.token.methods == ["token"]
    # The new token works where a project token is needed.
    checked = sdk.iam(token=domain_token).keystone_validate_token(
        iam.KeystoneValidateTokenRequest(x_subject_token=resp.x_subject_token, nocatalog="true")
    )
    assert checked.token.project.id == tagd.project_id


def test_scoped_token_from_an_unknown_token(sdk, tagd):
    expect_error(
        lambda: sdk.iam().keystone_create_scoped_token(
            scoped_token_request("not-a-token", project_id=tagd.project_id)
        ),
        401,
        "IAM.0002",
    )


def test_validate_token(sdk, tagd, domain_token, project_token):
    resp = sdk.iam(token=domain_token).keystone_validate_token(
        iam.KeystoneValidateTokenRequest(x_subject_token=project_token, nocatalog="true")
    )
    assert resp.status_code == 200
    assert resp.x_subject_token == project_token
    assert resp.token.project.id == tagd.project_id
    assert resp.token.user.name == tagd.user_name


def test_validate_an_unknown_token(sdk, domain_token):
    expect_error(
        lambda: sdk.iam(token=domain_token).keystone_validate_token(
            iam.KeystoneValidateTokenRequest(x_subject_token="not-a-token")
        ),
        404,
        "IAM.0004",
    )


def test_validate_without_authentication(sdk, project_token):
    expect_error(
        lambda: sdk.iam().keystone_validate_token(
            iam.KeystoneValidateTokenRequest(x_subject_token=project_token)
        ),
        401,
        "IAM.0002",
    )


# --- projects and domains


def test_list_projects_by_name(sdk, tagd, domain_token):
    client = sdk.iam(token=domain_token)
    resp = client.keystone_list_projects(iam.KeystoneListProjectsRequest(name=tagd.project_name))
    assert resp.status_code == 200
    assert [(p.id, p.name, p.domain_id) for p in resp.projects] == [
        (tagd.project_id, tagd.project_name, tagd.domain_id)
    ]
    assert resp.projects[0].enabled is True
    none = client.keystone_list_projects(iam.KeystoneListProjectsRequest(name="no-such-region-9"))
    assert none.projects == []


def test_list_projects_unfiltered(sdk, tagd, domain_token):
    resp = sdk.iam(token=domain_token).keystone_list_projects(iam.KeystoneListProjectsRequest())
    assert tagd.project_id in [p.id for p in resp.projects]


def test_list_auth_projects(sdk, tagd, domain_token):
    resp = sdk.iam(token=domain_token).keystone_list_auth_projects(
        iam.KeystoneListAuthProjectsRequest()
    )
    assert resp.status_code == 200
    assert tagd.project_id in [p.id for p in resp.projects]


def test_list_auth_domains(sdk, tagd, project_token):
    resp = sdk.iam(token=project_token).keystone_list_auth_domains(
        iam.KeystoneListAuthDomainsRequest()
    )
    assert resp.status_code == 200
    assert [(d.id, d.name) for d in resp.domains] == [(tagd.domain_id, tagd.domain_name)]


def test_list_projects_with_a_bad_token(sdk):
    expect_error(
        lambda: sdk.iam(token="not-a-token").keystone_list_projects(iam.KeystoneListProjectsRequest()),
        401,
        "IAM.0002",
    )


# --- permanent access keys


@pytest.fixture
def user(tagd, sdk):
    """A fresh user of the first-run domain with a domain-scoped token, so that each
    test has the two access keys a user may hold to itself."""
    user_id, name, password = tagd.create_user()
    token = sdk.password_token(sdk.domain_scope(), user_name=name, password=password)
    assert token.token.user.id == user_id
    return {"id": user_id, "name": name, "token": token.x_subject_token}


def create_key(client, user_id, description="sdk suite"):
    return client.create_permanent_access_key(
        iam.CreatePermanentAccessKeyRequest(
            body=iam.CreatePermanentAccessKeyRequestBody(
                credential=iam.CreateCredentialOption(user_id=user_id, description=description)
            )
        )
    )


def set_status(client, access, status):
    return client.update_permanent_access_key(
        iam.UpdatePermanentAccessKeyRequest(
            access_key=access,
            body=iam.UpdatePermanentAccessKeyRequestBody(
                credential=iam.UpdateCredentialOption(status=status)
            ),
        )
    )


def rds_add(instance_id, key, value):
    return rds.BatchTagAddActionRequest(
        instance_id=instance_id,
        body=rds.BatchTagActionAddRequestBody(
            action="create", tags=[rds.TagWithKeyValue(key=key, value=value)]
        ),
    )


def test_permanent_access_key_lifecycle(sdk, user, resource):
    client = sdk.iam(token=user["token"])
    created = create_key(client, user["id"])
    assert created.status_code == 201
    key = created.credential
    assert key.access and key.secret
    assert (key.user_id, key.status, key.description) == (user["id"], "active", "sdk suite")
    assert key.create_time

    listed = client.list_permanent_access_keys(iam.ListPermanentAccessKeysRequest(user_id=user["id"]))
    assert [(k.access, k.status) for k in listed.credentials] == [(key.access, "active")]
    assert listed.credentials[0].user_id == user["id"]
    mine = client.list_permanent_access_keys(iam.ListPermanentAccessKeysRequest())
    assert [k.access for k in mine.credentials] == [key.access]

    shown = client.show_permanent_access_key(iam.ShowPermanentAccessKeyRequest(access_key=key.access))
    assert (shown.credential.access, shown.credential.status) == (key.access, "active")
    assert shown.credential.user_id == user["id"]

    # The new key signs requests.
    inst = resource("rds")
    signed = sdk.rds(ak=key.access, sk=key.secret)
    signed.batch_tag_add_action(rds_add(inst, "step", "one"))
    assert sdk.tags_of("rds", inst) == {"step": "one"}

    # Inactive: refused by the signature check, with nothing written.
    updated = set_status(client, key.access, "inactive")
    assert updated.status_code == 200
    assert updated.credential.status == "inactive"
    assert client.show_permanent_access_key(
        iam.ShowPermanentAccessKeyRequest(access_key=key.access)
    ).credential.status == "inactive"
    expect_error(lambda: signed.batch_tag_add_action(rds_add(inst, "step", "two")), 401, "APIGW.0301")
    assert sdk.tags_of("rds", inst) == {"step": "one"}

    # Active again: accepted again.
    assert set_status(client, key.access, "active").credential.status == "active"
    signed.batch_tag_add_action(rds_add(inst, "step", "three"))
    assert sdk.tags_of("rds", inst) == {"step": "three"}

    # Deleted: gone, and refused.
    deleted = client.delete_permanent_access_key(iam.DeletePermanentAccessKeyRequest(access_key=key.access))
    assert deleted.status_code == 204
    expect_error(
        lambda: client.show_permanent_access_key(iam.ShowPermanentAccessKeyRequest(access_key=key.access)),
        404,
        "IAM.0004",
    )
    assert client.list_permanent_access_keys(iam.ListPermanentAccessKeysRequest()).credentials == []
    expect_error(lambda: signed.batch_tag_add_action(rds_add(inst, "step", "four")), 401, "APIGW.0301")


def test_update_key_description(sdk, user):
    client = sdk.iam(token=user["token"])
    access = create_key(client, user["id"]).credential.access
    resp = client.update_permanent_access_key(
        iam.UpdatePermanentAccessKeyRequest(
            access_key=access,
            body=iam.UpdatePermanentAccessKeyRequestBody(
                credential=iam.UpdateCredentialOption(description="renamed")
            ),
        )
    )
    assert (resp.credential.description, resp.credential.status) == ("renamed", "active")


def test_access_key_errors(sdk, user, tagd):
    client = sdk.iam(token=user["token"])
    expect_error(
        lambda: client.show_permanent_access_key(
            iam.ShowPermanentAccessKeyRequest(access_key="AKNOSUCHKEY000000000")
        ),
        404,
        "IAM.0004",
    )
    # Another user's key is not this user's business (reported as not found).
    expect_error(
        lambda: client.show_permanent_access_key(iam.ShowPermanentAccessKeyRequest(access_key=tagd.ak)),
        404,
        "IAM.0004",
    )
    access = create_key(client, user["id"]).credential.access
    expect_error(lambda: set_status(client, access, "paused"), 400, "IAM.0001")
    # A user holds at most two permanent keys.
    create_key(client, user["id"])
    expect_error(lambda: create_key(client, user["id"]), 409, "IAM.0005")


def test_an_administrator_manages_another_users_keys(sdk, user, domain_token):
    admin = sdk.iam(token=domain_token)
    created = create_key(admin, user["id"], description="issued by admin")
    assert created.credential.user_id == user["id"]
    listed = admin.list_permanent_access_keys(iam.ListPermanentAccessKeysRequest(user_id=user["id"]))
    assert [k.access for k in listed.credentials] == [created.credential.access]
    admin.delete_permanent_access_key(
        iam.DeletePermanentAccessKeyRequest(access_key=created.credential.access)
    )


def test_a_user_cannot_create_keys_for_another_user(sdk, user, tagd, domain_token):
    other_id = sdk.iam(token=domain_token).keystone_validate_token(
        iam.KeystoneValidateTokenRequest(x_subject_token=domain_token)
    ).token.user.id
    expect_error(lambda: create_key(sdk.iam(token=user["token"]), other_id), 403, "IAM.0003")


# --- temporary access keys


def temporary_key(sdk, token, duration_seconds=900):
    return sdk.iam(token=token).create_temporary_access_key_by_token(
        iam.CreateTemporaryAccessKeyByTokenRequest(
            body=iam.CreateTemporaryAccessKeyByTokenRequestBody(
                auth=iam.TokenAuth(
                    identity=iam.TokenAuthIdentity(
                        methods=["token"],
                        token=iam.IdentityToken(id=token, duration_seconds=duration_seconds),
                    )
                )
            )
        )
    )


def test_temporary_access_key_signs_with_its_security_token(sdk, project_token, resource):
    resp = temporary_key(sdk, project_token)
    assert resp.status_code == 201
    cred = resp.credential
    assert cred.access and cred.secret and cred.securitytoken and cred.expires_at

    inst = resource("rds")
    client = sdk.rds(ak=cred.access, sk=cred.secret, security_token=cred.securitytoken)
    client.batch_tag_add_action(rds_add(inst, "temp", "yes"))
    assert sdk.tags_of("rds", inst) == {"temp": "yes"}

    # Without its security token, or with another one, the key is refused.
    bare = sdk.rds(ak=cred.access, sk=cred.secret)
    expect_error(lambda: bare.batch_tag_add_action(rds_add(inst, "temp", "bare")), 401, "APIGW.0301")
    # Another last character (a random token ends in "x" one time in 62).
    other = "y" if cred.securitytoken.endswith("x") else "x"
    forged = sdk.rds(ak=cred.access, sk=cred.secret, security_token=cred.securitytoken[:-1] + other)
    expect_error(lambda: forged.batch_tag_add_action(rds_add(inst, "temp", "forged")), 401, "APIGW.0301")
    assert sdk.tags_of("rds", inst) == {"temp": "yes"}


def test_temporary_access_key_errors(sdk, project_token):
    expect_error(lambda: temporary_key(sdk, project_token, duration_seconds=60), 400, "IAM.0001")
    expect_error(
        lambda: sdk.iam().create_temporary_access_key_by_token(
            iam.CreateTemporaryAccessKeyByTokenRequest(
                body=iam.CreateTemporaryAccessKeyByTokenRequestBody(
                    auth=iam.TokenAuth(
                        identity=iam.TokenAuthIdentity(methods=["token"], token=iam.IdentityToken(id="nope"))
                    )
                )
            )
        ),
        401,
        "IAM.0002",
    )


# --- tokens on the tag APIs (X-Auth-Token instead of a signature)


def test_tag_apis_accept_x_auth_token_instead_of_a_signature(
    sdk, tagd, project_token, domain_token, resource
):
    inst = resource("rds")
    # AK/SK that tagd does not know: only the token can authenticate these requests.
    unknown = {"ak": "AKUNKNOWNUNKNOWN0000", "sk": "not-a-secret-key"}
    by_token = sdk.rds(handler=token_handler(project_token), **unknown)
    by_token.batch_tag_add_action(rds_add(inst, "auth", "token"))

    resp = sdk.tms(handler=token_handler(domain_token), **unknown).show_resource_tag(
        tms.ShowResourceTagRequest(resource_id=inst, project_id=tagd.project_id, resource_type="rds")
    )
    assert {t.key: t.value for t in resp.tags} == {"auth": "token"}

    # The same AK/SK signing for real are refused: the token was what counted.
    signed = sdk.rds(**unknown)
    expect_error(lambda: signed.batch_tag_add_action(rds_add(inst, "auth", "sig")), 401, "APIGW.0301")


def test_tag_apis_refuse_a_bad_token(sdk, resource):
    inst = resource("rds")
    client = sdk.rds(handler=token_handler("not-a-token"))
    expect_error(lambda: client.batch_tag_add_action(rds_add(inst, "k", "v")), 401, "APIGW.0301")
    assert sdk.tags_of("rds", inst) == {}


# --- scope: a token of another project may not act on the first-run project


@pytest.fixture(scope="module")
def other_project_token(tagd, sdk):
    out = tagd.admin("project", "create", unique("region"))
    project_id = out.split("\t")[0].strip()
    assert project_id, f"unexpected output of project create: {out!r}"
    resp = sdk.password_token(iam.AuthScope(project=iam.AuthScopeProject(id=project_id)))
    assert resp.token.project.id == project_id
    return resp.x_subject_token


def test_a_token_of_another_project_is_forbidden(sdk, tagd, resource, other_project_token):
    handler = token_handler(other_project_token)
    inst = resource("rds")
    expect_error(
        lambda: sdk.rds(handler=handler).batch_tag_add_action(rds_add(inst, "k", "v")),
        403,
        "DBS.200010",
    )
    desk = resource("workspace-desktop")
    e = expect_error(
        lambda: sdk.workspace(handler=handler).create_tag(
            workspace.CreateTagRequest(
                desktop_id=desk,
                body=workspace.CreateTagReq(tag=workspace.Tag(key="k", value="v")),
            )
        ),
        403,
        "APIGW.0302",
    )
    assert e.encoded_auth_msg, "Workspace's 403 carries encoded_authorization_message"
    stream = resource("dis")
    expect_error(
        lambda: sdk.dis(handler=handler).create_tag(
            dis.CreateTagRequest(
                stream_id=stream, body=dis.CreateTagReq(tag=dis.Tag(key="k", value="v"))
            )
        ),
        403,
        "APIGW.0302",
    )
    ws = resource("fabric-workspace")
    # Fabric's 403 has the page's shape: a numeric top-level error_code, which the SDK
    # reads first.
    expect_error(
        lambda: sdk.fabric(handler=handler).list_fabric_workspace_tags(
            fabric.ListFabricWorkspaceTagsRequest(workspace_id=ws)
        ),
        403,
        403,
    )
    disk = resource("disk")
    expect_error(
        lambda: sdk.tms(handler=handler).create_resource_tag(
            tms.CreateResourceTagRequest(
                body=tms.ReqCreateTag(
                    project_id=tagd.project_id,
                    resources=[tms.ResourceTagBody(resource_id=disk, resource_type="disk")],
                    tags=[tms.CreateTagRequest(key="k", value="v")],
                )
            )
        ),
        403,
        "TMS.0004",
    )
    for t, i in [("rds", inst), ("workspace-desktop", desk), ("dis", stream), ("disk", disk)]:
        assert sdk.tags_of(t, i) == {}


def test_a_temporary_key_keeps_the_scope_of_its_token(sdk, resource, other_project_token):
    cred = temporary_key(sdk, other_project_token).credential
    inst = resource("rds")
    client = sdk.rds(ak=cred.access, sk=cred.secret, security_token=cred.securitytoken)
    expect_error(lambda: client.batch_tag_add_action(rds_add(inst, "k", "v")), 403, "DBS.200010")
