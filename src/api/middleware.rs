//! The layers around every request: request ids, AK/SK signature verification (which
//! needs the raw body), the deadline and language of error messages, and what is
//! recorded of each request (its span, request metrics, one access-log line).

use std::cell::RefCell;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::language::{self, Language};
use super::{error_for_path, json_response, AppState, X_REQUEST_ID};
use crate::auth::{AuthError, Principal};
use crate::core::{CoreError, Reason};
use crate::metrics::UNMATCHED_ROUTE;

/// The caller of a request whose AK/SK signature was verified.
#[derive(Clone)]
pub(crate) struct SignedCaller(pub(crate) Principal);

/// Verifies AK/SK-signed requests before any handler sees them. The signature covers
/// the raw body, so the body is read here (within the size limit) and handed on. A
/// request with an `Authorization` header is judged by its signature alone, even if it
/// also carries `X-Auth-Token`. A bad signature is refused the way the cloud's API
/// gateway refuses it: 401 with a flat `APIGW.0301` body, whatever the API.
async fn signed_requests(state: &AppState, req: Request, next: Next) -> Response {
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
            state.metrics.auth_failure(e.metric_reason());
            let request_id = RequestId::of(&parts.extensions);
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

/// The id of the request being answered.
#[derive(Clone)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    /// The id of the request whose extensions these are ("" outside the middleware).
    pub(crate) fn of(extensions: &axum::http::Extensions) -> &str {
        extensions
            .get::<RequestId>()
            .and_then(|id| id.0.to_str().ok())
            .unwrap_or_default()
    }
}

tokio::task_local! {
    /// Who the request being answered comes from, once an extractor has authenticated
    /// it: (domain id, project id). A task-local rather than a request extension,
    /// because the extractors see the request after this layer has handed it on.
    static CALLER: RefCell<Option<(String, Option<String>)>>;
}

/// Notes the authenticated caller of the current request, and the project it acts on
/// (its own when `project` is `None`), for the access log.
pub(crate) fn note_caller(principal: &Principal, project: Option<&str>) {
    let _ = CALLER.try_with(|caller| {
        let project = project
            .map(str::to_owned)
            .or_else(|| principal.project.as_ref().map(|p| p.id.clone()));
        *caller.borrow_mut() = Some((principal.domain.id.clone(), project));
    });
}

/// Everything tagd does around each request, in one layer (three separate layers cost a
/// quarter of a cached GET's time in boxing and cloning): takes the client's
/// `X-Request-Id` when it is short and printable, otherwise makes one, and puts it on
/// the response; sets the language of error messages from `X-Language`; answers 408,
/// in the body of the API the path belongs to, when the request runs past the
/// configured timeout; verifies AK/SK signatures; and records the request: a span
/// carrying its id, its count and latency by route template, and one access-log line
/// (target `tagd::access`, info level) with what it was and how it went, never its
/// credentials or body.
pub(super) async fn around_every_request(
    axum::extract::State(state): axum::extract::State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
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
    // Printable ASCII by the filter above, or made here.
    let id_text = id.to_str().unwrap_or_default();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    // Set by the router for a path that matched a route; the metrics and the access log
    // name the template, never the raw path (bounded label values).
    let route = req.extensions().get::<MatchedPath>().cloned();
    let span = tracing::info_span!("request", request_id = id_text, method = %method, path = %path);
    let language = Language::from_headers(req.headers());
    let timeout = state.request_timeout;
    let answer = async {
        match tokio::time::timeout(timeout, signed_requests(&state, req, next)).await {
            Ok(response) => response,
            Err(_) => error_for_path(
                &path,
                CoreError::Timeout {
                    seconds: timeout.as_secs(),
                },
            ),
        }
    };
    let (mut response, caller) = CALLER
        .scope(RefCell::new(None), async {
            let response = language::scope(language, answer)
                .instrument(span.clone())
                .await;
            (response, CALLER.with(|c| c.take()))
        })
        .await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let route = route.as_ref().map(MatchedPath::as_str);
    let dialect = state.metrics.request(route, &path, status, elapsed);
    let (domain, project) = match &caller {
        Some((domain, project)) => (Some(domain.as_str()), project.as_deref()),
        None => (None, None),
    };
    crate::logging::access(&crate::logging::Access {
        request_id: id_text,
        method: method.as_str(),
        path: &path,
        route: route.unwrap_or(UNMATCHED_ROUTE),
        status,
        duration: elapsed,
        dialect: dialect.label(),
        domain,
        project,
    });
    response.headers_mut().insert(X_REQUEST_ID.clone(), id);
    response
}
