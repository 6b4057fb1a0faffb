//! The HTTP surface: one router built from one adapter per API dialect.
//!
//! Dialects share the extractors here ([`Authed`], [`JsonBody`], [`QueryMap`]) and the one
//! status mapping of [`CoreError`]; each renders errors in its own body through the
//! [`Dialect`] trait. Every response carries `X-Request-Id`.

pub mod admin;
pub mod dis;
pub mod fabric;
pub mod iam;
pub mod language;
pub mod rds;
pub mod single_tag;
pub mod tms;
pub mod workspace;

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::auth::vault::Vault;
use crate::auth::{AuthError, Identity, Principal};
use crate::config::Config;
use crate::core::admin::Admin;
use crate::core::query::{FilterLimits, KeyValues, ResourceQuery, TagMatch, TagScope};
use crate::core::tagging::{known_type, locate, BatchItem, BatchTarget, Tagging};
use crate::core::{CoreError, Reason};
use crate::store::Store;
use language::Language;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static X_AUTH_TOKEN: HeaderName = HeaderName::from_static("x-auth-token");

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub identity: Identity,
    pub tagging: Tagging,
    pub admin: Admin,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: &Config, vault: Arc<Vault>) -> Self {
        Self {
            identity: Identity::new(
                store.clone(),
                config.token_lifetime_secs,
                vault,
                Duration::from_secs(config.signature_window_secs),
            ),
            tagging: Tagging::new(store.clone(), config.auto_register),
            admin: Admin::new(store.clone()),
            store,
            max_body_bytes: config.max_body_bytes,
            request_timeout: Duration::from_secs(config.request_timeout_secs),
        }
    }
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(tms::router())
        .merge(iam::router())
        .merge(admin::router())
        .merge(workspace::router())
        .merge(fabric::router())
        .merge(rds::router())
        .merge(dis::router())
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            signed_requests,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            deadline_and_language,
        ))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// The caller of a request whose AK/SK signature was verified.
#[derive(Clone)]
struct SignedCaller(Principal);

/// Verifies AK/SK-signed requests before any handler sees them. The signature covers
/// the raw body, so the body is read here (within the size limit) and handed on. A
/// request with an `Authorization` header is judged by its signature alone, even if it
/// also carries `X-Auth-Token`. A bad signature is refused the way the cloud's API
/// gateway refuses it: 401 with a flat `APIGW.0301` body, whatever the API.
async fn signed_requests(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(authorization) = req.headers().get(header::AUTHORIZATION).cloned() else {
        return next.run(req).await;
    };
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let declared_too_large = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > state.max_body_bytes);
    let bytes = match axum::body::to_bytes(body, state.max_body_bytes).await {
        Ok(bytes) if !declared_too_large => bytes,
        Err(e) if !declared_too_large && !is_length_limit(&e) => {
            return error_for_path(
                &path,
                CoreError::MalformedBody {
                    detail: Reason::new(
                        format!("the body could not be read: {e}"),
                        "读取请求体失败",
                    ),
                },
            )
        }
        _ => {
            return error_for_path(
                &path,
                CoreError::BodyTooLarge {
                    limit: state.max_body_bytes,
                },
            )
        }
    };
    let verdict = match authorization.to_str() {
        Ok(authorization) => {
            let raw = crate::auth::signature::RawRequest {
                method: parts.method.as_str(),
                raw_path: parts.uri.path(),
                raw_query: parts.uri.query().unwrap_or(""),
                headers: &parts.headers,
                body: &bytes,
            };
            state
                .identity
                .authenticate_signed(authorization, &raw)
                .await
        }
        Err(_) => Err(AuthError::Signature(
            crate::auth::signature::SignatureError::Malformed("not ASCII".into()),
        )),
    };
    match verdict {
        Ok(principal) => {
            let mut req = Request::from_parts(parts, axum::body::Body::from(bytes));
            req.extensions_mut().insert(SignedCaller(principal));
            next.run(req).await
        }
        Err(e @ (AuthError::Store(_) | AuthError::Unexpected(_))) => {
            tracing::error!(error = %e, "a signed request could not be checked");
            error_for_path(&path, CoreError::from(e))
        }
        Err(e) => {
            tracing::info!(reason = %e, "refused a signed request");
            let request_id = parts
                .extensions
                .get::<RequestId>()
                .and_then(|id| id.0.to_str().ok())
                .unwrap_or_default();
            json_response(
                StatusCode::UNAUTHORIZED,
                &serde_json::json!({
                    "error_code": "APIGW.0301",
                    "error_msg": language::current().message(&CoreError::from(e)),
                    "request_id": request_id,
                }),
            )
        }
    }
}

/// Whether reading a body failed because it passed the size limit.
fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// Answers 408, in the body of the API the path belongs to, when a request runs past
/// the configured timeout; and sets the language of error messages from `X-Language`
/// for the rest of the request.
async fn deadline_and_language(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let language = Language::from_headers(req.headers());
    let path = req.uri().path().to_owned();
    language::scope(language, async move {
        match tokio::time::timeout(state.request_timeout, next.run(req)).await {
            Ok(response) => response,
            Err(_) => error_for_path(
                &path,
                CoreError::Timeout {
                    seconds: state.request_timeout.as_secs(),
                },
            ),
        }
    })
    .await
}

/// The HTTP status of each error, the same in every dialect.
pub fn status(err: &CoreError) -> StatusCode {
    match err {
        CoreError::MalformedBody { .. }
        | CoreError::InvalidField { .. }
        | CoreError::Empty { .. }
        | CoreError::TooMany { .. }
        | CoreError::InvalidTagKey { .. }
        | CoreError::InvalidTagValue { .. }
        | CoreError::DuplicateTagKey { .. }
        | CoreError::UnknownResourceType { .. }
        | CoreError::ProjectRequired { .. }
        | CoreError::TagLimitExceeded { .. } => StatusCode::BAD_REQUEST,
        CoreError::Timeout { .. } => StatusCode::REQUEST_TIMEOUT,
        CoreError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        CoreError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
        CoreError::Forbidden { .. } => StatusCode::FORBIDDEN,
        CoreError::NotFound { .. } => StatusCode::NOT_FOUND,
        CoreError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        CoreError::Conflict { .. } => StatusCode::CONFLICT,
        CoreError::Internal(_) | CoreError::Unexpected { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The English message a client sees; internal causes stay in the log.
pub fn message(err: &CoreError) -> String {
    Language::English.message(err)
}

/// One API's error body.
pub trait Dialect: Send + Sync + 'static {
    fn error_response(err: &CoreError) -> Response;
}

/// A [`CoreError`] on its way to the wire in dialect `D`'s shape.
pub struct ApiError<D: Dialect>(pub CoreError, PhantomData<D>);

impl<D: Dialect> From<CoreError> for ApiError<D> {
    fn from(e: CoreError) -> Self {
        Self(e, PhantomData)
    }
}

impl<D: Dialect> From<crate::store::StoreError> for ApiError<D> {
    fn from(e: crate::store::StoreError) -> Self {
        Self(CoreError::Internal(e), PhantomData)
    }
}

impl<D: Dialect> From<AuthError> for ApiError<D> {
    fn from(e: AuthError) -> Self {
        Self(e.into(), PhantomData)
    }
}

impl<D: Dialect> IntoResponse for ApiError<D> {
    fn into_response(self) -> Response {
        match &self.0 {
            CoreError::Internal(cause) => tracing::error!(error = %cause, "request failed"),
            CoreError::Unexpected { what } => tracing::error!(error = %what, "request failed"),
            _ => {}
        }
        D::error_response(&self.0)
    }
}

/// The caller, authenticated by `X-Auth-Token`; refused with `D`'s 401 body.
pub struct Authed<D>(pub Principal, PhantomData<D>);

impl<D: Dialect> FromRequestParts<AppState> for Authed<D> {
    type Rejection = ApiError<D>;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(SignedCaller(principal)) = parts.extensions.get::<SignedCaller>() {
            return Ok(Self(principal.clone(), PhantomData));
        }
        let token = parts
            .headers
            .get(&X_AUTH_TOKEN)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::MissingToken)?;
        let principal = state.identity.validate(token).await?;
        Ok(Self(principal, PhantomData))
    }
}

/// A JSON body of type `T`; malformed, mistyped or oversized bodies get `D`'s error
/// body naming the offending field. Any content type is accepted: the SDKs send
/// `application/json` variants and curl users often forget the header.
pub struct JsonBody<D, T>(pub T, PhantomData<D>);

impl<D: Dialect, T: DeserializeOwned> FromRequest<AppState> for JsonBody<D, T> {
    type Rejection = ApiError<D>;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                CoreError::BodyTooLarge {
                    limit: state.max_body_bytes,
                }
            } else {
                CoreError::MalformedBody {
                    detail: Reason::new(rejection.body_text(), "读取请求体失败"),
                }
            }
        })?;
        parse_json(&bytes)
            .map(|v| Self(v, PhantomData))
            .map_err(ApiError::from)
    }
}

/// A caller of a per-service API, authenticated and allowed to act on the project named
/// in the path (`{project_id}`). Extracted before the body, so 401 and 403 come first.
pub struct ProjectCaller<D> {
    pub principal: Principal,
    pub project_id: String,
    dialect: PhantomData<D>,
}

impl<D: Dialect> FromRequestParts<AppState> for ProjectCaller<D> {
    type Rejection = ApiError<D>;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authed(principal, ..) = Authed::<D>::from_request_parts(parts, state).await?;
        let params = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|rejection| path_error(&rejection.body_text()))?;
        let project_id = params
            .iter()
            .find(|(name, _)| *name == "project_id")
            .map(|(_, value)| value.to_owned())
            .ok_or_else(|| CoreError::invalid("project_id", Reason::required()))?;
        state
            .identity
            .authorize_project(&principal, &project_id)
            .await?;
        Ok(Self {
            principal,
            project_id,
            dialect: PhantomData,
        })
    }
}

impl<D> ProjectCaller<D> {
    /// A query over the caller's project's resources of `resource_type`; callers add
    /// the filter.
    pub fn query(&self, resource_type: &str) -> ResourceQuery {
        ResourceQuery {
            domain_id: self.principal.domain.id.clone(),
            projects: vec![self.project_id.clone()],
            resource_types: vec![resource_type.to_owned()],
            ..ResourceQuery::default()
        }
    }

    /// The caller's project's resources of `resource_type`, for tag listings.
    pub fn scope(&self, resource_type: &str) -> TagScope {
        TagScope {
            domain_id: self.principal.domain.id.clone(),
            projects: vec![self.project_id.clone()],
            resource_types: vec![resource_type.to_owned()],
        }
    }

    /// The tags of the one resource a path names; unknown is 404.
    pub async fn tags_of(
        &self,
        state: &AppState,
        resource_type: &str,
        field: &str,
        id: &str,
    ) -> Result<Vec<crate::core::tags::Tag>, CoreError> {
        let target = self.target(resource_type, field, id)?;
        state
            .tagging
            .tags_of(&target.at)
            .await?
            .ok_or_else(|| crate::core::tagging::not_found(resource_type, id))
    }

    /// Applies `change` to the one resource a path names, all or nothing; an unknown
    /// resource is 404.
    pub async fn apply_one(
        &self,
        state: &AppState,
        resource_type: &str,
        field: &str,
        id: &str,
        change: crate::core::tagging::TagChange,
    ) -> Result<(), CoreError> {
        let item = self.item(resource_type, field, id, change)?;
        state.tagging.apply_all(vec![item], false).await
    }

    /// A resource of `resource_type` in the caller's project; `field` names the id in errors.
    pub fn target(
        &self,
        resource_type: &str,
        field: &str,
        id: &str,
    ) -> Result<BatchTarget, CoreError> {
        crate::core::admin::validate_resource_id(field, id)?;
        locate(
            &self.principal.domain.id,
            Some(&self.project_id),
            known_type("resource_type", resource_type)?,
            id,
        )
    }

    /// A batch item: `change` to one resource of `resource_type`.
    pub fn item(
        &self,
        resource_type: &str,
        field: &str,
        id: &str,
        change: crate::core::tagging::TagChange,
    ) -> Result<BatchItem, CoreError> {
        Ok(BatchItem {
            target: self.target(resource_type, field, id)?,
            change,
            sys_change: None,
        })
    }
}

/// A filter entry as every API sends it: a key and the values it may have (none or an
/// empty list = any value).
#[derive(serde::Deserialize, Clone)]
pub struct WireTagMatch {
    pub key: String,
    #[serde(default)]
    pub values: Option<Vec<String>>,
}

/// Checks one filter list against an API's limits and converts it.
pub fn tag_matches(
    field: &'static str,
    raw: Option<&[WireTagMatch]>,
    limits: FilterLimits,
) -> Result<Vec<TagMatch>, CoreError> {
    let matches: Vec<TagMatch> = raw
        .unwrap_or_default()
        .iter()
        .map(|m| TagMatch {
            key: m.key.clone(),
            values: m.values.clone().unwrap_or_default(),
        })
        .collect();
    limits.check(field, &matches)?;
    Ok(matches)
}

/// `[{"key", "value"}, ...]`.
pub fn tags_json(tags: &[crate::core::tags::Tag]) -> serde_json::Value {
    serde_json::Value::Array(
        tags.iter()
            .map(|t| serde_json::json!({ "key": t.key.as_str(), "value": t.value.as_str() }))
            .collect(),
    )
}

/// `[{"key", "values": [...]}, ...]`.
pub fn key_values_json(kvs: &[KeyValues]) -> serde_json::Value {
    serde_json::Value::Array(
        kvs.iter()
            .map(|kv| serde_json::json!({ "key": kv.key, "values": kv.values }))
            .collect(),
    )
}

/// A tag as the per-service APIs send it: `value` may be missing.
#[derive(serde::Deserialize)]
pub struct WireTag {
    pub key: String,
    #[serde(default)]
    pub value: Option<String>,
}

impl WireTag {
    /// For a create: a missing value is an empty one.
    pub fn pair(&self) -> (&str, &str) {
        (&self.key, self.value.as_deref().unwrap_or(""))
    }

    /// For a delete: by key, or by key and value.
    pub fn selector(&self) -> (&str, Option<&str>) {
        (&self.key, self.value.as_deref())
    }
}

fn path_error(detail: &str) -> CoreError {
    CoreError::invalid(
        "path",
        Reason::new(detail.to_owned(), format!("路径参数无效：{detail}")),
    )
}

/// Path parameters of type `T`; a path that does not decode (invalid UTF-8 after
/// percent-decoding, say) gets `D`'s 400 body instead of axum's plain text.
pub struct PathParams<D, T>(pub T, PhantomData<D>);

impl<D: Dialect, T: DeserializeOwned + Send> FromRequestParts<AppState> for PathParams<D, T> {
    type Rejection = ApiError<D>;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value, PhantomData)),
            Err(rejection) => Err(path_error(&rejection.body_text()).into()),
        }
    }
}

/// Parses JSON, reporting the path of the field that did not fit (`resources[1].resource_id`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CoreError> {
    // serde would read a struct from an array of its fields in order; every body of
    // these APIs is an object, so anything else is refused up front.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b) if *b != b'{') {
        return Err(CoreError::MalformedBody {
            detail: Reason::new("the body must be a JSON object", "请求体必须是JSON对象"),
        });
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let (en, zh) = (inner.to_string(), language::json_error_in_chinese(&inner));
        let detail = if path == "." || path.is_empty() {
            Reason::new(en, zh)
        } else {
            Reason::new(format!("{path}: {en}"), format!("{path}：{zh}"))
        };
        CoreError::MalformedBody { detail }
    })
}

/// The query string as a map; a key given twice keeps its last value. Never rejects, so
/// each dialect validates parameters and words its own errors.
pub struct QueryMap(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        Ok(Self(form_urlencoded_pairs(query).into_iter().collect()))
    }
}

fn form_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    // `+` stays a plus: the SDKs percent-encode spaces and pluses alike.
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` escapes; invalid escapes and invalid UTF-8 are kept/replaced, never fatal.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// An integer query parameter from `min` to `max`, `default` when absent.
pub fn query_number(
    query: &HashMap<String, String>,
    name: &str,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, CoreError> {
    match query.get(name) {
        None => Ok(default),
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| CoreError::invalid(name, Reason::integer(min as u64, max as u64, raw))),
    }
}

/// Builds a JSON response.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

/// Accepts the client's `X-Request-Id` when it is short and printable, otherwise makes
/// one, and puts it on the response.
/// The id of the request being answered.
#[derive(Clone)]
pub struct RequestId(pub HeaderValue);

async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|v| {
            let b = v.as_bytes();
            !b.is_empty() && b.len() <= 64 && b.iter().all(|c| c.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::new_v4().simple().to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("0"))
        });
    // The id travels as an extension: the request's own headers stay exactly as
    // received, since a signature may cover them.
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = ?id, method = %req.method(), path = %req.uri().path());
    let mut response = next.run(req).instrument(span).await;
    response.headers_mut().insert(X_REQUEST_ID.clone(), id);
    response
}

/// Which dialect owns a path, so that unknown routes and wrong methods answer in the
/// body that API's clients parse.
fn error_for_path(path: &str, err: CoreError) -> Response {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    match segments.as_slice() {
        ["v1.0" | "v2.0", ..] => tms::Tms::error_response(&err),
        ["v3", "auth" | "projects", ..] | ["v3.0", ..] => iam::Iam::error_response(&err),
        ["tagd", ..] => admin::TagdAdmin::error_response(&err),
        ["v2", _, "desktops", ..] => workspace::Workspace::error_response(&err),
        ["v1", _, "fabric-workspace", ..] => fabric::Fabric::error_response(&err),
        ["v3", _, "instances" | "tags", ..] => rds::Rds::error_response(&err),
        ["v2", _, "stream", ..] => dis::Dis::error_response(&err),
        _ => gateway_error(&err),
    }
}

/// What the cloud's API gateway answers before a request reaches any service.
fn gateway_error(err: &CoreError) -> Response {
    json_response(
        status(err),
        &serde_json::json!({ "error_code": "APIGW.0101", "error_msg": message(err) }),
    )
}

pub(crate) async fn unknown_route(uri: Uri) -> Response {
    error_for_path(
        uri.path(),
        CoreError::NotFound {
            what: Reason::new(
                format!("the API {}", uri.path()),
                format!("接口{}", uri.path()),
            ),
        },
    )
}

async fn wrong_method(method: Method, uri: Uri) -> Response {
    error_for_path(
        uri.path(),
        CoreError::MethodNotAllowed {
            method: method.to_string(),
            path: uri.path().to_owned(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_is_total() {
        assert_eq!(percent_decode("a%20b%2Fc"), "a b/c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%E4%B8%AD"), "中");
        assert_eq!(percent_decode("a+b"), "a+b");
    }
}
