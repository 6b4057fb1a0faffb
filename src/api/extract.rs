//! Extractors and helpers every dialect shares: the authenticated caller, JSON bodies,
//! path and query parameters, filter lists and tag JSON. Each rejects in the dialect's
//! own error body, never axum's plain text.

use std::collections::HashMap;
use std::marker::PhantomData;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::language;
use axum::response::{IntoResponse, Response};

use super::middleware::{note_caller, RequestId, SignedCaller};
use super::throttle::Throttled;
use super::{ApiError, AppState, Dialect, X_AUTH_TOKEN};
use crate::auth::{AuthError, Principal};
use crate::core::query::{FilterLimits, KeyValues, ResourceQuery, TagMatch, TagScope};
use crate::core::tagging::{known_type, locate, BatchItem, BatchTarget};
use crate::core::{CoreError, Reason};

/// The caller, authenticated by `X-Auth-Token` (or by the AK/SK signature the
/// middleware verified) and admitted by the rate limits of its own scope; refused with
/// `D`'s 401 body, or the gateway's 429.
pub struct Authed<D>(pub Principal, pub(super) PhantomData<D>);

impl<D: Dialect> FromRequestParts<AppState> for Authed<D> {
    type Rejection = Refusal<D>;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = authenticate(parts, state).await?;
        note_caller(&principal, None);
        admit(parts, state, &principal, None)?;
        Ok(Self(principal, PhantomData))
    }
}

/// Who sent the request: the signer the middleware verified, or the owner of the token.
async fn authenticate(
    parts: &axum::http::request::Parts,
    state: &AppState,
) -> Result<Principal, AuthError> {
    if let Some(SignedCaller(principal)) = parts.extensions.get::<SignedCaller>() {
        return Ok(principal.clone());
    }
    let token = parts
        .headers
        .get(&X_AUTH_TOKEN)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let principal = match token {
        Some(token) => state.identity.validate(token).await,
        None => Err(AuthError::MissingToken),
    };
    principal.inspect_err(|e| state.metrics.auth_failure(e.metric_reason()))
}

/// Counts the request against the rate limits (after authentication, so that no one
/// spends another caller's budget by naming its access key).
fn admit(
    parts: &axum::http::request::Parts,
    state: &AppState,
    principal: &Principal,
    project: Option<&str>,
) -> Result<(), Throttled> {
    let admitted = state.throttle.admit(principal, project);
    counted(admitted, state, RequestId::of(&parts.extensions))
}

/// Counts a refusal in the metrics and names the refused request in its body.
pub(super) fn counted(
    admitted: Result<(), Throttled>,
    state: &AppState,
    request_id: &str,
) -> Result<(), Throttled> {
    admitted.map_err(|mut refused| {
        state.metrics.rate_limited(refused.policy.label());
        refused.request_id = request_id.to_owned();
        refused
    })
}

/// Why an authenticated extractor refused a request: `D`'s own error, or a rate limit,
/// which the gateway answers the same way for every API.
pub enum Refusal<D: Dialect> {
    Api(ApiError<D>),
    Throttled(Throttled),
}

impl<D: Dialect, E> From<E> for Refusal<D>
where
    ApiError<D>: From<E>,
{
    fn from(e: E) -> Self {
        Self::Api(e.into())
    }
}

impl<D: Dialect> From<Throttled> for Refusal<D> {
    fn from(t: Throttled) -> Self {
        Self::Throttled(t)
    }
}

impl<D: Dialect> IntoResponse for Refusal<D> {
    fn into_response(self) -> Response {
        match self {
            Self::Api(e) => e.into_response(),
            Self::Throttled(t) => t.response(),
        }
    }
}

/// A JSON body of type `T`; malformed, mistyped or oversized bodies get `D`'s error
/// body naming the offending field. Any content type is accepted: the SDKs send
/// `application/json` variants and curl users often forget the header.
pub struct JsonBody<D, T>(pub T, pub(super) PhantomData<D>);

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
    type Rejection = Refusal<D>;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = authenticate(parts, state).await?;
        let params = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|rejection| path_error(&rejection.body_text()))?;
        let project_id = params
            .iter()
            .find(|(name, _)| *name == "project_id")
            .map(|(_, value)| value.to_owned())
            .ok_or_else(|| CoreError::invalid("project_id", Reason::required()))?;
        note_caller(&principal, Some(&project_id));
        state
            .identity
            .authorize_project(&principal, &project_id)
            .await?;
        admit(parts, state, &principal, Some(&project_id))?;
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
#[derive(serde::Deserialize, Clone, utoipa::ToSchema)]
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

/// A tag as the APIs list it, `{"key", "value"}`, for response bodies serialized
/// without building a `serde_json::Value` first.
#[derive(serde::Serialize)]
pub struct TagPair {
    pub key: String,
    pub value: String,
    /// RDS's `ResourceTag` names its kind; other APIs leave it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_type: Option<&'static str>,
}

impl From<crate::core::tags::Tag> for TagPair {
    fn from(tag: crate::core::tags::Tag) -> Self {
        Self {
            key: tag.key.into_string(),
            value: tag.value.into_string(),
            tag_type: None,
        }
    }
}

/// `[{"key", "value"}, ...]`.
pub fn tags_json(tags: &[crate::core::tags::Tag]) -> serde_json::Value {
    serde_json::Value::Array(
        tags.iter()
            .map(|t| serde_json::json!({ "key": t.key.as_str(), "value": t.value.as_str() }))
            .collect(),
    )
}

/// `{"tags": [...]}`: a whole key-value listing, written straight from its strings.
#[derive(serde::Serialize)]
pub struct KeyValuesBody<'a> {
    pub tags: &'a [KeyValues],
}

/// `[{"key", "values": [...]}, ...]`.
pub fn key_values_json(kvs: &[KeyValues]) -> serde_json::Value {
    // Only for pages: a whole listing is written straight from its strings by
    // [`KeyValuesBody`], with no tree of values in between.
    serde_json::Value::Array(
        kvs.iter()
            .map(|kv| serde_json::json!({ "key": kv.key, "values": kv.values }))
            .collect(),
    )
}

/// A tag as the per-service APIs send it: `value` may be missing.
#[derive(serde::Deserialize, utoipa::ToSchema)]
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
pub struct PathParams<D, T>(pub T, pub(super) PhantomData<D>);

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
    let malformed = |path: String, inner: serde_json::Error| {
        let (en, zh) = (inner.to_string(), language::json_error_in_chinese(&inner));
        let detail = if path == "." || path.is_empty() {
            Reason::new(en, zh)
        } else {
            Reason::new(format!("{path}: {en}"), format!("{path}：{zh}"))
        };
        CoreError::MalformedBody { detail }
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| malformed(e.path().to_string(), e.into_inner()))?;
    // One JSON value is the whole body: bytes after it (`{...}}garbage`) are refused,
    // not ignored, so what tagd acted on is what the client sent.
    de.end().map_err(|e| malformed(String::new(), e))?;
    Ok(value)
}

/// The address this request came to, as links in answers give it
/// (`https://host:port` under TLS): what the client used, so links work wherever tagd
/// is reached from. Empty without a `Host` header.
pub struct BaseUrl(pub String);

impl FromRequestParts<AppState> for BaseUrl {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .headers
                .get(axum::http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(|host| format!("{}://{host}", state.scheme))
                .unwrap_or_default(),
        ))
    }
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
