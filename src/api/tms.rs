//! Tag Management Service (TMS): the cross-service batch API (seed 002).
//!
//! TMS is global: callers name the project in the body, not the path, and errors are
//! nested as `{"error": {"error_code": "TMS.xxxx", "error_msg": "..."}}`. A resource that
//! cannot be tagged does not fail the request: it is listed in `failed_resources` with
//! its own code while the others are applied, and the answer is 200.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use super::{
    json_response, message, query_number, status, ApiError, AppState, Authed, Dialect, JsonBody,
    PathParams, QueryMap,
};
use crate::auth::Principal;
use crate::core::admin::validate_resource_id;
use crate::core::model::ResourceRef;
use crate::core::providers::{self, PROVIDERS};
use crate::core::tagging::{known_type, locate, BatchTarget, ItemOutcome, TagChange};
use crate::core::tags::{Letters, TagRules, TextRule};
use crate::core::{CoreError, Reason};

/// Resources one batch may name.
pub const MAX_RESOURCES_PER_REQUEST: usize = 50;

/// The seed page's rules: keys of letters, digits, `-` and `_` up to 36 characters;
/// values also allow `.`, up to 43 characters, and may be empty; 10 tags per call.
pub const RULES: TagRules = TagRules {
    key: TextRule {
        min_chars: 1,
        max_chars: 36,
        letters: Letters::Unicode,
        extra: "-_",
        trimmed: false,
        reserved_prefix: None,
    },
    value: TextRule {
        min_chars: 0,
        max_chars: 43,
        letters: Letters::Unicode,
        extra: ".-_",
        trimmed: false,
        reserved_prefix: None,
    },
    max_tags_per_request: 10,
};

pub struct Tms;

type TmsError = ApiError<Tms>;

impl Dialect for Tms {
    fn error_response(err: &CoreError) -> Response {
        json_response(
            status(err),
            &json!({ "error": { "error_code": code(err), "error_msg": message(err) } }),
        )
    }
}

/// TMS's published error codes (its "Error Codes" page); every variant named.
fn code(err: &CoreError) -> &'static str {
    match err {
        CoreError::MalformedBody { .. }
        | CoreError::InvalidField { .. }
        | CoreError::TooMany { .. }
        | CoreError::Empty { field: "resources" }
        | CoreError::BodyTooLarge { .. }
        | CoreError::MethodNotAllowed { .. } => "TMS.0002",
        CoreError::Empty { .. } => "TMS.0012",
        CoreError::InvalidTagKey { .. } | CoreError::DuplicateTagKey { .. } => "TMS.0009",
        CoreError::InvalidTagValue { .. } => "TMS.0010",
        CoreError::UnknownResourceType { .. } => "TMS.5027",
        CoreError::ProjectRequired { .. } => "TMS.2011",
        CoreError::Unauthenticated { .. } => "TMS.0003",
        CoreError::Forbidden { .. } => "TMS.0004",
        CoreError::NotFound { .. } => "TMS.0005",
        CoreError::Conflict { .. } | CoreError::TagLimitExceeded { .. } => "TMS.0014",
        CoreError::Timeout { .. } => "TMS.0001",
        CoreError::Internal(_) | CoreError::Unexpected { .. } => "TMS.0001",
    }
}

/// The code of a resource reported in `failed_resources`.
fn failure(outcome: ItemOutcome, at: &ResourceRef) -> Option<(&'static str, String)> {
    match outcome {
        ItemOutcome::Applied => None,
        ItemOutcome::NotFound => Some((
            "TMS.0005",
            format!(
                "resource {} of type {} was not found{}",
                at.resource_id,
                at.resource_type,
                if at.project_id.is_empty() {
                    String::new()
                } else {
                    format!(" in project {}", at.project_id)
                }
            ),
        )),
        ItemOutcome::LimitExceeded { limit, would_have } => Some((
            "TMS.0014",
            format!(
                "the resource would have {would_have} tags; a {} resource may have at most {limit}",
                at.resource_type
            ),
        )),
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1.0/resource-tags/batch-create", post(batch_create))
        .route("/v1.0/resource-tags/batch-delete", post(batch_delete))
        .route("/v2.0/resources/{resource_id}/tags", get(resource_tags))
        .route("/v1.0/tms/providers", get(list_providers))
}

#[derive(Deserialize)]
struct ResourceBody {
    resource_id: String,
    resource_type: String,
}

#[derive(Deserialize)]
struct CreateTagBody {
    key: String,
    value: String,
}

#[derive(Deserialize)]
struct DeleteTagBody {
    key: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
struct BatchBody<T> {
    #[serde(default)]
    project_id: Option<String>,
    resources: Vec<ResourceBody>,
    tags: Vec<T>,
}

async fn batch_create(
    State(state): State<AppState>,
    Authed(principal, ..): Authed<Tms>,
    JsonBody(body, ..): JsonBody<Tms, BatchBody<CreateTagBody>>,
) -> Result<Response, TmsError> {
    let tags = RULES.tags(body.tags.iter().map(|t| (t.key.as_str(), t.value.as_str())))?;
    let targets = targets(
        &state,
        &principal,
        body.project_id.as_deref(),
        &body.resources,
    )
    .await?;
    apply(&state, targets, TagChange::Set(tags)).await
}

async fn batch_delete(
    State(state): State<AppState>,
    Authed(principal, ..): Authed<Tms>,
    JsonBody(body, ..): JsonBody<Tms, BatchBody<DeleteTagBody>>,
) -> Result<Response, TmsError> {
    let selectors = RULES.selectors(
        body.tags
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_deref())),
    )?;
    let targets = targets(
        &state,
        &principal,
        body.project_id.as_deref(),
        &body.resources,
    )
    .await?;
    apply(&state, targets, TagChange::Remove(selectors)).await
}

async fn apply(
    state: &AppState,
    targets: Vec<BatchTarget>,
    change: TagChange,
) -> Result<Response, TmsError> {
    let outcomes = state.tagging.apply(targets, change).await?;
    let failed: Vec<_> = outcomes
        .iter()
        .filter_map(|(at, outcome)| {
            failure(*outcome, at).map(|(code, msg)| {
                json!({
                    "resource_id": at.resource_id,
                    "resource_type": at.resource_type,
                    "error_code": code,
                    "error_msg": msg,
                })
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "failed_resources": failed }),
    ))
}

/// Validates the resources of a batch and checks the caller may act on them.
async fn targets(
    state: &AppState,
    principal: &Principal,
    project_id: Option<&str>,
    resources: &[ResourceBody],
) -> Result<Vec<BatchTarget>, CoreError> {
    if resources.is_empty() {
        return Err(CoreError::Empty { field: "resources" });
    }
    if resources.len() > MAX_RESOURCES_PER_REQUEST {
        return Err(CoreError::TooMany {
            field: "resources",
            max: MAX_RESOURCES_PER_REQUEST,
            got: resources.len(),
        });
    }
    let project_id = project_id.filter(|p| !p.is_empty());
    let mut targets = Vec::with_capacity(resources.len());
    for (i, r) in resources.iter().enumerate() {
        let rt = known_type(&format!("resources[{i}].resource_type"), &r.resource_type)?;
        validate_resource_id(&format!("resources[{i}].resource_id"), &r.resource_id)?;
        targets.push(locate(
            &principal.domain.id,
            project_id,
            rt,
            &r.resource_id,
        )?);
    }
    let projects: Vec<&str> = targets.iter().map(|t| t.at.project_id.as_str()).collect();
    state
        .identity
        .authorize_resources(principal, &projects)
        .await?;
    Ok(targets)
}

async fn resource_tags(
    State(state): State<AppState>,
    Authed(principal, ..): Authed<Tms>,
    PathParams(resource_id, ..): PathParams<Tms, String>,
    QueryMap(query): QueryMap,
) -> Result<Response, TmsError> {
    let type_name = query
        .get("resource_type")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| CoreError::invalid("resource_type", Reason::required()))?;
    let rt = known_type("resource_type", type_name)?;
    validate_resource_id("resource_id", &resource_id)?;
    let project_id = query
        .get("project_id")
        .map(String::as_str)
        .filter(|p| !p.is_empty());
    let target = locate(&principal.domain.id, project_id, rt, &resource_id)?;
    state
        .identity
        .authorize_resources(&principal, &[target.at.project_id.as_str()])
        .await?;
    let tags = state
        .tagging
        .tags_of(&target.at)
        .await?
        .ok_or_else(|| CoreError::NotFound {
            what: Reason::new(
                format!("resource {resource_id} of type {}", rt.name),
                format!("类型为{}的资源{resource_id}", rt.name),
            ),
        })?;
    let tags: Vec<_> = tags
        .iter()
        .map(|t| json!({ "key": t.key.as_str(), "value": t.value.as_str() }))
        .collect();
    Ok(json_response(StatusCode::OK, &json!({ "tags": tags })))
}

async fn list_providers(
    State(state): State<AppState>,
    Authed(principal, ..): Authed<Tms>,
    QueryMap(query): QueryMap,
) -> Result<Response, TmsError> {
    let limit = query_number(&query, "limit", 10, 1, 200)?;
    let offset = query_number(&query, "offset", 0, 0, usize::MAX)?;
    // Display names are English only; zh-cn is accepted so SDK calls that set it work.
    if let Some(other) = query
        .get("locale")
        .filter(|l| !matches!(l.as_str(), "zh-cn" | "en-us"))
    {
        return Err(
            CoreError::invalid("locale", Reason::one_of(&["zh-cn", "en-us"], other)).into(),
        );
    }
    // Regional types are available in the regions the caller has projects in.
    let regions = state.identity.regions(&principal).await?;
    let selected: Vec<_> = match query.get("provider").filter(|p| !p.is_empty()) {
        Some(name) => providers::provider(name).into_iter().collect(),
        None => PROVIDERS.iter().collect(),
    };
    let page: Vec<_> = selected
        .iter()
        .skip(offset)
        .take(limit)
        .map(|p| {
            let types: Vec<_> = p
                .resource_types
                .iter()
                .map(|t| {
                    json!({
                        "resource_type": t.name,
                        "resource_type_i18n_display_name": t.display_name,
                        "regions": if t.global { vec!["global".to_owned()] } else { regions.clone() },
                        "global": t.global,
                    })
                })
                .collect();
            json!({
                "provider": p.name,
                "provider_i18n_display_name": p.display_name,
                "resource_types": types,
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "providers": page, "total_count": selected.len() }),
    ))
}
