//! The HTTP surface: one router built from one adapter per API dialect.
//!
//! Dialects share the extractors of `extract` ([`Authed`], [`ProjectCaller`],
//! [`JsonBody`], [`PathParams`], [`QueryMap`]) and the one status mapping of
//! [`CoreError`]; each renders errors in its own body through the [`Dialect`] trait.
//! `middleware` wraps every request (request ids, AK/SK signatures, deadline, language).

pub mod admin;
pub mod dis;
mod extract;
pub mod fabric;
pub mod health;
pub mod iam;
pub mod language;
mod middleware;
pub mod openapi;
pub mod rds;
pub mod single_tag;
pub mod throttle;
pub mod tms;
pub mod workspace;

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::auth::vault::Vault;
use crate::auth::{AuthError, Identity};
use crate::config::Config;
use crate::core::admin::Admin;
use crate::core::port::Store;
use crate::core::tagging::Tagging;
use crate::core::{CoreError, Reason};
use language::Language;

pub use extract::*;
use middleware::around_every_request;
pub use middleware::RequestId;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub static X_AUTH_TOKEN: HeaderName = HeaderName::from_static("x-auth-token");

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub identity: Identity,
    pub tagging: Tagging,
    pub admin: Admin,
    pub throttle: Arc<throttle::Throttle>,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// `https` when tagd terminates TLS itself: links it hands out must not send a
    /// client that follows them back in clear text.
    pub scheme: &'static str,
    /// The HTTP layer's counters, served on the admin listener.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: &Config, vault: Arc<Vault>) -> Self {
        Self {
            identity: Identity::new(
                store.clone(),
                config.token_lifetime_secs,
                vault,
                Duration::from_secs(config.signature_window_secs),
                Duration::from_millis(config.credential_cache_ms),
            ),
            tagging: Tagging::new(store.clone(), config.auto_register)
                .with_unpaged_listings(config.max_concurrent_unpaged_listings),
            admin: Admin::new(store.clone()),
            store,
            throttle: Arc::new(throttle::Throttle::new(config.rate_limits)),
            max_body_bytes: config.max_body_bytes,
            scheme: if config.tls.is_some() {
                "https"
            } else {
                "http"
            },
            request_timeout: Duration::from_secs(config.request_timeout_secs),
            metrics: Arc::new(crate::metrics::Metrics::new(
                &AuthError::METRIC_REASONS,
                &throttle::Policy::LABELS,
            )),
        }
    }
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    Router::new()
        // Every dialect's routes, each built together with its OpenAPI description.
        .merge(openapi::router())
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(from_fn_with_state(state.clone(), around_every_request))
        .with_state(state)
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
        // Not this request's fault and not for a retry here: another replica, or this
        // one once restarted, can serve it (D80).
        CoreError::Internal(crate::core::port::StoreError::Poisoned(_)) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
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

impl<D: Dialect> From<crate::core::port::StoreError> for ApiError<D> {
    fn from(e: crate::core::port::StoreError) -> Self {
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

/// Builds a JSON response.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    json_reply(status, body)
}

/// Builds a JSON response from any serializable body: hot paths write typed bodies
/// directly instead of building a `serde_json::Value` first.
pub fn json_reply<T: serde::Serialize + ?Sized>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a response could not be serialized");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Which dialect owns a path, so that unknown routes and wrong methods answer in the
/// body that API's clients parse.
pub(crate) fn error_for_path(path: &str, err: CoreError) -> Response {
    use crate::metrics::Dialect as Api;
    match Api::of_path(path) {
        Api::Tms => tms::Tms::error_response(&err),
        Api::Iam => iam::Iam::error_response(&err),
        Api::Admin => admin::TagdAdmin::error_response(&err),
        Api::Workspace => workspace::Workspace::error_response(&err),
        Api::Fabric => fabric::Fabric::error_response(&err),
        Api::Rds => rds::Rds::error_response(&err),
        Api::Dis => dis::Dis::error_response(&err),
        Api::Gateway => gateway_error(&err),
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
