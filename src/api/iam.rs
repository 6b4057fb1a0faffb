//! The IAM (Keystone v3) calls the SDKs and users make to get and check tokens, and to
//! find their projects and domain.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::openapi::{op, Op, Routes};
use super::{
    counted, json_response, message, status, ApiError, AppState, Authed, BaseUrl, Dialect,
    JsonBody, PathParams, QueryMap, Refusal, RequestId, X_AUTH_TOKEN,
};
use crate::auth::login::{
    check_login_password, check_login_text, DomainSelector, ScopeRequest, UserSelector,
    MAX_ID_CHARS,
};
use crate::auth::{AuthError, Credential, Principal};
use crate::core::admin::MAX_NAME_CHARS;
use crate::core::model::{AccessKey, Domain, KeyStatus, Project, TokenRecord, User};
use crate::core::{CoreError, Reason};
use utoipa::openapi::schema::Type;

pub static X_SUBJECT_TOKEN: HeaderName = HeaderName::from_static("x-subject-token");

pub struct Iam;

type IamError = ApiError<Iam>;

impl Dialect for Iam {
    /// Keystone's nested body, plus the flat pair Huawei's IAM adds, which the SDK
    /// reads first.
    fn error_response(err: &CoreError) -> Response {
        let status = status(err);
        json_response(
            status,
            &json!({
                "error": {
                    "code": status.as_u16(),
                    "message": message(err),
                    "title": status.canonical_reason().unwrap_or("Error"),
                },
                "error_code": code(err),
                "error_msg": message(err),
            }),
        )
    }
}

/// IAM's codes follow the status alone: one per kind of failure.
fn code(err: &CoreError) -> &'static str {
    match status(err) {
        StatusCode::BAD_REQUEST
        | StatusCode::METHOD_NOT_ALLOWED
        | StatusCode::PAYLOAD_TOO_LARGE => "IAM.0001",
        StatusCode::UNAUTHORIZED => "IAM.0002",
        StatusCode::FORBIDDEN => "IAM.0003",
        StatusCode::NOT_FOUND => "IAM.0004",
        StatusCode::CONFLICT => "IAM.0005",
        _ => "IAM.0006",
    }
}

/// IAM's routes, each with its description in the OpenAPI document.
pub fn routes() -> Routes {
    let subject = |o: Op| o.header("X-Subject-Token", true, "the token to check or revoke");
    Routes::new("IAM", "IamError")
        .get(
            "/v3/auth/tokens",
            validate_token,
            subject(
                op("KeystoneValidateToken", "Check a token")
                    .query("nocatalog", "leave out the catalog")
                    .returns(&[("token", Type::Object)]),
            ),
        )
        .post(
            "/v3/auth/tokens",
            create_token,
            // The password or token is in the body: no other credentials.
            op(
                "KeystoneCreateUserTokenByPassword",
                "Get a token (X-Subject-Token)",
            )
            .query("nocatalog", "leave out the catalog")
            .body::<TokenRequest>()
            .answers(StatusCode::CREATED)
            .credentials_in_body()
            .returns(&[("token", Type::Object)]),
        )
        .delete(
            "/v3/auth/tokens",
            revoke_token,
            subject(op("KeystoneRevokeToken", "Revoke a token")).no_content(),
        )
        .get(
            "/v3/projects",
            list_projects,
            op("KeystoneListProjects", "Projects")
                .query("name", "only this name")
                .query("domain_id", "only this domain")
                .query("parent_id", "only this parent")
                .query("enabled", "true or false")
                .returns(&[("projects", Type::Array), ("links", Type::Object)]),
        )
        .get(
            "/v3/auth/projects",
            list_auth_projects,
            op(
                "KeystoneListAuthProjects",
                "The projects the caller may use",
            )
            .returns(&[("projects", Type::Array), ("links", Type::Object)]),
        )
        .get(
            "/v3/auth/domains",
            list_auth_domains,
            op("KeystoneListAuthDomains", "The caller's domain")
                .returns(&[("domains", Type::Array)]),
        )
        .get(
            "/v3.0/OS-CREDENTIAL/credentials",
            list_credentials,
            op("ListPermanentAccessKeys", "A user's access keys")
                .query("user_id", "the user")
                .returns(&[("credentials", Type::Array)]),
        )
        .post(
            "/v3.0/OS-CREDENTIAL/credentials",
            create_credential,
            op("CreatePermanentAccessKey", "Create an access key")
                .body::<CreateCredentialBody>()
                .answers(StatusCode::CREATED)
                .returns(&[("credential", Type::Object)]),
        )
        .get(
            "/v3.0/OS-CREDENTIAL/credentials/{access_key}",
            show_credential,
            op("ShowPermanentAccessKey", "One access key").returns(&[("credential", Type::Object)]),
        )
        .put(
            "/v3.0/OS-CREDENTIAL/credentials/{access_key}",
            update_credential,
            op(
                "UpdatePermanentAccessKey",
                "Enable, disable or describe an access key",
            )
            .body::<UpdateCredentialBody>()
            .returns(&[("credential", Type::Object)]),
        )
        .delete(
            "/v3.0/OS-CREDENTIAL/credentials/{access_key}",
            delete_credential,
            op("DeletePermanentAccessKey", "Delete an access key").no_content(),
        )
        .post(
            "/v3.0/OS-CREDENTIAL/securitytokens",
            create_security_token,
            op(
                "CreateTemporaryAccessKeyByToken",
                "A temporary access key for a token",
            )
            .body::<SecurityTokenBody>()
            .answers(StatusCode::CREATED)
            .returns(&[("credential", Type::Object)]),
        )
}

#[derive(Deserialize, ToSchema)]
struct TokenRequest {
    auth: AuthBody,
}

#[derive(Deserialize, ToSchema)]
struct AuthBody {
    identity: IdentityBody,
    #[serde(default)]
    scope: Option<ScopeBody>,
}

#[derive(Deserialize, ToSchema)]
struct IdentityBody {
    methods: Vec<String>,
    #[serde(default)]
    password: Option<PasswordBody>,
    #[serde(default)]
    token: Option<TokenRef>,
}

#[derive(Deserialize, ToSchema)]
struct PasswordBody {
    user: UserRef,
}

#[derive(Deserialize, ToSchema)]
struct UserRef {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    password: String,
    #[serde(default)]
    domain: Option<NamedRef>,
}

#[derive(Deserialize, ToSchema)]
struct TokenRef {
    id: String,
}

#[derive(Deserialize, ToSchema)]
struct NamedRef {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
struct ScopeBody {
    #[serde(default)]
    project: Option<ProjectScope>,
    #[serde(default)]
    domain: Option<NamedRef>,
}

#[derive(Deserialize, ToSchema)]
struct ProjectScope {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    domain: Option<NamedRef>,
}

fn domain_selector(field: &str, r: &NamedRef) -> Result<DomainSelector, CoreError> {
    let selector = match (&r.id, &r.name) {
        (Some(id), _) => DomainSelector::Id(id.clone()),
        (None, Some(name)) => DomainSelector::Name(name.clone()),
        (None, None) => {
            return Err(CoreError::invalid(
                field,
                Reason::new("give its id or name", "请提供其ID或名称"),
            ))
        }
    };
    selector.check(field)?;
    Ok(selector)
}

fn user_selector(u: &UserRef) -> Result<UserSelector, CoreError> {
    let selector = match (&u.id, &u.name) {
        (Some(id), _) => UserSelector::Id(id.clone()),
        (None, Some(name)) => {
            let domain = u.domain.as_ref().ok_or_else(|| {
                CoreError::invalid(
                    "auth.identity.password.user.domain",
                    Reason::new(
                        "a user named by name needs its domain",
                        "按名称指定用户时必须指定其所属账号",
                    ),
                )
            })?;
            UserSelector::Name {
                name: name.clone(),
                domain: domain_selector("auth.identity.password.user.domain", domain)?,
            }
        }
        (None, None) => {
            return Err(CoreError::invalid(
                "auth.identity.password.user",
                Reason::new("give the user's id or name", "请提供用户的ID或名称"),
            ))
        }
    };
    selector.check("auth.identity.password.user")?;
    check_login_password("auth.identity.password.user.password", &u.password)?;
    Ok(selector)
}

fn scope_request(scope: Option<&ScopeBody>) -> Result<ScopeRequest, CoreError> {
    Ok(match scope {
        None => ScopeRequest::Default,
        Some(ScopeBody {
            project: Some(p), ..
        }) => match (&p.id, &p.name) {
            (Some(id), _) => {
                check_login_text("auth.scope.project.id", id, MAX_ID_CHARS)?;
                ScopeRequest::ProjectId(id.clone())
            }
            (None, Some(name)) => ScopeRequest::ProjectName {
                name: {
                    check_login_text("auth.scope.project.name", name, MAX_NAME_CHARS)?;
                    name.clone()
                },
                domain: p
                    .domain
                    .as_ref()
                    .map(|d| domain_selector("auth.scope.project.domain", d))
                    .transpose()?,
            },
            (None, None) => {
                return Err(CoreError::invalid(
                    "auth.scope.project",
                    Reason::new("give its id or name", "请提供其ID或名称"),
                ))
            }
        },
        Some(ScopeBody {
            domain: Some(d), ..
        }) => ScopeRequest::Domain(domain_selector("auth.scope.domain", d)?),
        Some(_) => {
            return Err(CoreError::invalid(
                "auth.scope",
                Reason::new("give a project or a domain", "请指定项目或账号"),
            ))
        }
    })
}

async fn create_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    BaseUrl(base): BaseUrl,
    request_id: Option<axum::Extension<RequestId>>,
    QueryMap(query): QueryMap,
    JsonBody(req, ..): JsonBody<Iam, TokenRequest>,
) -> Result<Response, Refusal<Iam>> {
    let auth = req.auth;
    let scope = scope_request(auth.scope.as_ref())?;
    let methods = auth.identity.methods.clone();
    let method = match methods.as_slice() {
        [one] => one.as_str(),
        [] => {
            return Err(IamError::from(CoreError::Empty {
                field: "auth.identity.methods",
            })
            .into())
        }
        _ => {
            return Err(IamError::from(CoreError::invalid(
                "auth.identity.methods",
                Reason::new(
                    "give exactly one method, password or token",
                    "必须且只能指定一种认证方式：password或token",
                ),
            ))
            .into())
        }
    };
    let (user, from) = match method {
        "password" => {
            let body =
                auth.identity.password.as_ref().ok_or_else(|| {
                    CoreError::invalid("auth.identity.password", Reason::required())
                })?;
            let selector = user_selector(&body.user)?;
            let user = state
                .identity
                .login_password(&selector, body.user.password.clone())
                .await
                .inspect_err(|e| state.metrics.auth_failure(e.metric_reason()))?;
            (user, None)
        }
        "token" => {
            let token = auth
                .identity
                .token
                .as_ref()
                .map(|t| t.id.clone())
                .or_else(|| header_str(&headers, &X_AUTH_TOKEN))
                .ok_or_else(|| CoreError::invalid("auth.identity.token.id", Reason::required()))?;
            let principal = state
                .identity
                .validate(&token)
                .await
                .inspect_err(|e| state.metrics.auth_failure(e.metric_reason()))?;
            (principal.user.clone(), Some(principal))
        }
        other => {
            return Err(IamError::from(CoreError::invalid(
                "auth.identity.methods",
                Reason::one_of(&["password", "token"], other),
            ))
            .into())
        }
    };
    let granted = state.identity.grant(&user, from.as_ref(), &scope).await?;
    // Minting counts against the credential's rate limit like any request: under the
    // token it is made from, or under the user for a password (each token would
    // otherwise be a fresh budget, and every one issued is a row in the store).
    let credential = match &from {
        Some(principal) => match &principal.credential {
            Credential::Token(t) => t.token_hash.clone(),
            Credential::AccessKey { access, .. } => access.clone(),
        },
        None => user.id.clone(),
    };
    let request_id = request_id
        .as_ref()
        .map_or("", |id| id.0 .0.to_str().unwrap_or_default());
    counted(
        state.throttle.admit_credential(&credential),
        &state,
        request_id,
    )?;
    // A token made from another token never outlives it.
    let not_after = from.as_ref().and_then(Principal::expires_at);
    let (token, record) = state
        .identity
        .issue(&user, granted.scope, methods, not_after)
        .await?;
    let body = token_body(
        &user,
        &granted.domain,
        granted.project.as_ref(),
        &record,
        !query.contains_key("nocatalog"),
        &base,
    );
    let mut response = json_response(StatusCode::CREATED, &body);
    if let Ok(v) = HeaderValue::from_str(&token) {
        response.headers_mut().insert(X_SUBJECT_TOKEN.clone(), v);
    }
    Ok(response)
}

fn header_str(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn timestamp(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The `{"token": {...}}` body of issue and validate.
fn token_body(
    user: &User,
    domain: &Domain,
    project: Option<&Project>,
    record: &TokenRecord,
    with_catalog: bool,
    base: &str,
) -> Value {
    let role = if user.is_admin {
        "te_admin"
    } else {
        "te_agency"
    };
    let mut token = json!({
        "expires_at": timestamp(record.expires_at),
        "issued_at": timestamp(record.issued_at),
        "methods": record.methods,
        "roles": [{ "id": "0", "name": role }],
        "user": {
            "id": user.id,
            "name": user.name,
            "domain": { "id": domain.id, "name": domain.name },
            "password_expires_at": "",
        },
    });
    match project {
        Some(p) => {
            token["project"] = json!({
                "id": p.id,
                "name": p.name,
                "domain": { "id": domain.id, "name": domain.name },
            });
        }
        None => token["domain"] = json!({ "id": domain.id, "name": domain.name }),
    }
    if with_catalog {
        // Every service tagd serves answers on the address this request came to.
        let region = project.map(|p| p.name.clone()).unwrap_or_default();
        let catalog: Vec<Value> = ["tms", "workspace", "dataartsfabric", "rds", "dis", "iam"]
            .iter()
            .map(|service| {
                json!({
                    "type": service,
                    "id": service,
                    "name": service,
                    "endpoints": [{
                        "url": base,
                        "region": region,
                        "region_id": region,
                        "interface": "public",
                        "id": service,
                    }],
                })
            })
            .collect();
        token["catalog"] = Value::Array(catalog);
    }
    json!({ "token": token })
}

/// Checks the subject token of a validate or revoke call; a caller may only inspect
/// tokens of its own domain.
async fn subject(
    state: &AppState,
    caller: &Principal,
    headers: &HeaderMap,
) -> Result<(String, Principal), CoreError> {
    let token = header_str(headers, &X_SUBJECT_TOKEN)
        .ok_or_else(|| CoreError::invalid("X-Subject-Token", Reason::required()))?;
    let subject = state.identity.validate(&token).await.map_err(|e| match e {
        e @ (AuthError::Store(_) | AuthError::Unexpected(_)) => e.into(),
        e => CoreError::NotFound {
            what: Reason::new(format!("the subject token ({e})"), "待校验的令牌"),
        },
    })?;
    if subject.domain.id != caller.domain.id {
        return Err(CoreError::NotFound {
            what: Reason::new("the subject token", "待校验的令牌"),
        });
    }
    Ok((token, subject))
}

async fn validate_token(
    State(state): State<AppState>,
    Authed(caller, ..): Authed<Iam>,
    headers: HeaderMap,
    BaseUrl(base): BaseUrl,
    QueryMap(query): QueryMap,
) -> Result<Response, IamError> {
    let (token, s) = subject(&state, &caller, &headers).await?;
    let record = s.token().ok_or_else(|| CoreError::Unexpected {
        what: "a validated token resolved to a non-token credential".into(),
    })?;
    let body = token_body(
        &s.user,
        &s.domain,
        s.project.as_ref(),
        record,
        !query.contains_key("nocatalog"),
        &base,
    );
    let mut response = json_response(StatusCode::OK, &body);
    if let Ok(v) = HeaderValue::from_str(&token) {
        response.headers_mut().insert(X_SUBJECT_TOKEN.clone(), v);
    }
    Ok(response)
}

async fn revoke_token(
    State(state): State<AppState>,
    Authed(caller, ..): Authed<Iam>,
    headers: HeaderMap,
) -> Result<Response, IamError> {
    let (token, _) = subject(&state, &caller, &headers).await?;
    state.identity.revoke(&token).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn project_json(p: &Project, base: &str) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "domain_id": p.domain_id,
        "parent_id": p.domain_id,
        "enabled": p.enabled,
        "is_domain": false,
        "description": "",
        "links": { "self": format!("{base}/v3/projects/{}", p.id) },
    })
}

async fn list_projects(
    State(state): State<AppState>,
    Authed(caller, ..): Authed<Iam>,
    BaseUrl(base): BaseUrl,
    QueryMap(query): QueryMap,
) -> Result<Response, IamError> {
    let projects: Vec<Value> = state
        .identity
        .visible_projects(&caller)
        .await?
        .iter()
        .filter(|p| query.get("name").is_none_or(|n| &p.name == n))
        .filter(|p| query.get("domain_id").is_none_or(|d| &p.domain_id == d))
        .filter(|p| query.get("parent_id").is_none_or(|d| &p.domain_id == d))
        .filter(|p| {
            query
                .get("enabled")
                .is_none_or(|e| e == if p.enabled { "true" } else { "false" })
        })
        .map(|p| project_json(p, &base))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "projects": projects, "links": { "self": format!("{base}/v3/projects"), "previous": null, "next": null } }),
    ))
}

async fn list_auth_projects(
    State(state): State<AppState>,
    Authed(caller, ..): Authed<Iam>,
    BaseUrl(base): BaseUrl,
) -> Result<Response, IamError> {
    let projects: Vec<Value> = state
        .identity
        .visible_projects(&caller)
        .await?
        .iter()
        .filter(|p| p.enabled)
        .map(|p| project_json(p, &base))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "projects": projects, "links": { "self": format!("{base}/v3/auth/projects") } }),
    ))
}

async fn list_auth_domains(
    Authed(caller, ..): Authed<Iam>,
    BaseUrl(base): BaseUrl,
) -> Result<Response, IamError> {
    let d = &caller.domain;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "domains": [{
                "id": d.id,
                "name": d.name,
                "enabled": d.enabled,
                "description": "",
                "links": { "self": format!("{base}/v3/domains/{}", d.id) },
            }],
            "links": { "self": format!("{base}/v3/auth/domains") },
        }),
    ))
}

// --- Access keys (OS-CREDENTIAL), as the IAM SDK calls them.

#[derive(Deserialize, ToSchema)]
struct CreateCredentialBody {
    credential: CreateCredential,
}

#[derive(Deserialize, ToSchema)]
struct CreateCredential {
    user_id: String,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize, ToSchema)]
struct UpdateCredentialBody {
    credential: UpdateCredential,
}

#[derive(Deserialize, ToSchema)]
struct UpdateCredential {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize, ToSchema)]
struct SecurityTokenBody {
    auth: SecurityTokenAuth,
}

#[derive(Deserialize, ToSchema)]
struct SecurityTokenAuth {
    identity: SecurityTokenIdentity,
}

#[derive(Deserialize, ToSchema)]
struct SecurityTokenIdentity {
    methods: Vec<String>,
    #[serde(default)]
    token: Option<SecurityTokenToken>,
}

#[derive(Deserialize, ToSchema)]
struct SecurityTokenToken {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    duration_seconds: Option<i64>,
}

#[derive(Deserialize)]
struct AccessKeyPath {
    access_key: String,
}

/// IAM's timestamps for credentials: `2026-11-24T22:00:00.000000Z`.
fn credential_time(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].000000Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

fn credential_json(key: &AccessKey) -> Value {
    json!({
        "user_id": key.user_id,
        "access": key.access,
        "status": key.status.as_str(),
        "create_time": credential_time(key.created_at),
        "description": key.description,
    })
}

async fn create_credential(
    State(state): State<AppState>,
    Authed(caller, ..): Authed<Iam>,
    JsonBody(body, ..): JsonBody<Iam, CreateCredentialBody>,
) -> Result<Response, IamError> {
    let user = state
        .identity
        .managed_user(&caller, &body.credential.user_id)
        .await?;
    let issued = state
        .identity
        .create_access_key(&user, body.credential.description.as_deref().unwrap_or(""))
        .await?;
    let mut credential = credential_json(&issued.key);
    credential["secret"] = json!(issued.secret);
    Ok(json_response(
        StatusCode::CREATED,
        &json!({ "credential": credential }),
    ))
}

async fn list_credentials(
    State(state): State<AppState>,
    Authed(caller, ..): Authed<Iam>,
    QueryMap(query): QueryMap,
) -> Result<Response, IamError> {
    let user_id = query
        .get("user_id")
        .filter(|u| !u.is_empty())
        .unwrap_or(&caller.user.id)
        .clone();
    let user = state.identity.managed_user(&caller, &user_id).await?;
    let keys = state.identity.access_keys(&user).await?;
    let credentials: Vec<Value> = keys.iter().map(credential_json).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "credentials": credentials }),
    ))
}

async fn show_credential(
    State(state): State<AppState>,
    Authed(caller, ..): Authed<Iam>,
    PathParams(path, ..): PathParams<Iam, AccessKeyPath>,
) -> Result<Response, IamError> {
    let (key, _) = state
        .identity
        .managed_key(&caller, &path.access_key)
        .await?;
    let mut credential = credential_json(&key);
    // tagd does not record each use of a key (that would be a write per request).
    credential["last_use_time"] = json!("");
    Ok(json_response(
        StatusCode::OK,
        &json!({ "credential": credential }),
    ))
}

async fn update_credential(
    State(state): State<AppState>,
    Authed(caller, ..): Authed<Iam>,
    PathParams(path, ..): PathParams<Iam, AccessKeyPath>,
    JsonBody(body, ..): JsonBody<Iam, UpdateCredentialBody>,
) -> Result<Response, IamError> {
    let (mut key, _) = state
        .identity
        .managed_key(&caller, &path.access_key)
        .await?;
    let status = match body.credential.status.as_deref() {
        None => None,
        Some(s) => Some(KeyStatus::parse(s).ok_or_else(|| {
            CoreError::invalid(
                "credential.status",
                Reason::one_of(&["active", "inactive"], s),
            )
        })?),
    };
    let description = body.credential.description;
    let updated = state
        .identity
        .update_access_key(&key.access, status, description.as_deref())
        .await?;
    if !updated {
        // Deleted meanwhile.
        return Err(crate::auth::keys::unknown_key(&key.access).into());
    }
    // The response shows the key as written, without reading it back.
    if let Some(status) = status {
        key.status = status;
    }
    if let Some(description) = description {
        key.description = description;
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({ "credential": credential_json(&key) }),
    ))
}

async fn delete_credential(
    State(state): State<AppState>,
    Authed(caller, ..): Authed<Iam>,
    PathParams(path, ..): PathParams<Iam, AccessKeyPath>,
) -> Result<Response, IamError> {
    let (key, _) = state
        .identity
        .managed_key(&caller, &path.access_key)
        .await?;
    state.identity.delete_access_key(&key.access).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Temporary AK/SK with a security token, from a token (the body's `token.id`, or the
/// caller's own credential). They keep that token's scope and never outlive it.
async fn create_security_token(
    State(state): State<AppState>,
    Authed(caller, ..): Authed<Iam>,
    JsonBody(body, ..): JsonBody<Iam, SecurityTokenBody>,
) -> Result<Response, IamError> {
    let identity = body.auth.identity;
    if identity.methods.as_slice() != ["token"] {
        return Err(CoreError::invalid(
            "auth.identity.methods",
            Reason::new(
                "only [\"token\"] is supported (agencies are not)",
                "仅支持[\"token\"]方式（不支持委托）",
            ),
        )
        .into());
    }
    let token = identity.token.unwrap_or(SecurityTokenToken {
        id: None,
        duration_seconds: None,
    });
    let source = match token.id.as_deref().filter(|t| !t.is_empty()) {
        Some(id) => state
            .identity
            .validate(id)
            .await
            .inspect_err(|e| state.metrics.auth_failure(e.metric_reason()))?,
        None => caller,
    };
    let seconds = token
        .duration_seconds
        .unwrap_or(*crate::auth::keys::TEMPORARY_SECONDS.start());
    let issued = state
        .identity
        .create_temporary_key(&source, seconds)
        .await?;
    let expires_at = issued.key.temporary.as_ref().map_or(0, |t| t.expires_at);
    Ok(json_response(
        StatusCode::CREATED,
        &json!({ "credential": {
            "access": issued.key.access,
            "secret": issued.secret,
            "securitytoken": issued.security_token,
            "expires_at": timestamp(expires_at),
        }}),
    ))
}
