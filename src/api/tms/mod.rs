//! Tag Management Service (TMS): the cross-service batch API (seed 002).
//!
//! TMS is global: callers name the project in the body, not the path, and errors are
//! nested as `{"error": {"error_code": "TMS.xxxx", "error_msg": "..."}}`. A resource that
//! cannot be tagged does not fail the request: it is listed in `failed_resources` with
//! its own code while the others are applied, and the answer is 200.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{
    json_reply, json_response, message, query_number, status, tag_matches, ApiError, AppState,
    Authed, BaseUrl, Dialect, JsonBody, PathParams, QueryMap, TagPair, WireTagMatch,
};
use crate::api::openapi::{op, Op, Routes, GATEWAY_ERROR};
use crate::auth::Principal;
use crate::core::admin::validate_resource_id;
use crate::core::model::ResourceRef;
use crate::core::providers::{self, ResourceType, PROVIDERS};
use crate::core::query::KeyValues;
use crate::core::query::{number_or_string, FilterLimits, ResourceQuery, TagScope};
use crate::core::tagging::{known_type, locate, BatchTarget, ItemOutcome, TagChange};
use crate::core::tags::{Letters, TagRules, TextRule};
use crate::core::{CoreError, Reason};
use utoipa::openapi::schema::Type;

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

mod predefined_tags;

use predefined_tags::*;

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
        // TMS names the paging parameters' own codes.
        CoreError::InvalidField { field, .. } if field == "limit" => "TMS.0007",
        CoreError::InvalidField { field, .. } if field == "marker" => "TMS.0008",
        CoreError::InvalidField { field, .. } if field == "offset" => "TMS.0017",
        CoreError::InvalidField { field, .. } if field.ends_with(".values") => "TMS.0016",
        CoreError::InvalidField { field, .. } if field == "old_tag" => "TMS.1002",
        CoreError::InvalidField { field, .. } if field == "new_tag" => "TMS.1003",
        CoreError::InvalidField { field, .. } if field == "order_field" => "TMS.1010",
        CoreError::InvalidField { field, .. } if field == "order_method" => "TMS.1011",
        CoreError::InvalidField { field, .. } if field == "action" => "TMS.0011",
        CoreError::TooMany {
            field: "predefine_tags",
            ..
        } => "TMS.1001",
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

/// TMS's routes, each with its description in the OpenAPI document.
pub fn routes() -> Routes {
    let paged = |o: Op| {
        o.query("limit", "page size")
            .query("marker", "where the page starts")
    };
    Routes::new("TMS", "TmsError")
        .post(
            "/v1.0/resource-tags/batch-create",
            batch_create,
            op(
                "BatchCreateResourceTags",
                "Add tags to resources (TMS 2.x: batch-create)",
            )
            .body::<BatchBody<CreateTagBody>>()
            .component::<CreateTagBody>()
            .returns(&[("failed_resources", Type::Array)]),
        )
        .post(
            "/v1.0/resource-tags/batch-delete",
            batch_delete,
            op("BatchDeleteResourceTags", "Remove tags from resources")
                .body::<BatchBody<DeleteTagBody>>()
                .component::<DeleteTagBody>()
                .returns(&[("failed_resources", Type::Array)]),
        )
        .get(
            "/v2.0/resources/{resource_id}/tags",
            resource_tags,
            op("ShowResourceTag", "One resource's tags")
                .required_query(
                    "resource_type",
                    "the resource's type, e.g. ecs_cloudservers",
                )
                .query("project_id", "the resource's project (regional types)")
                .returns(&[("tags", Type::Array)]),
        )
        .get(
            "/v1.0/tms/providers",
            list_providers,
            op(
                "ListProviders",
                "The cloud services and resource types that can be tagged",
            )
            .query("locale", "zh-cn or en-us")
            .query("limit", "page size")
            .query("offset", "where the page starts")
            .query("provider", "one service")
            .returns(&[("providers", Type::Array), ("total_count", Type::Integer)]),
        )
        .post(
            "/v1.0/resource-instances/filter",
            filter_resources,
            op("ListResources", "Resources of some types that carry tags")
                .body::<FilterBody>()
                .returns(&[
                    ("resources", Type::Array),
                    ("errors", Type::Array),
                    ("total_count", Type::Integer),
                ]),
        )
        .get(
            "/v1.0/tag-keys",
            list_tag_keys,
            paged(
                op("ListTagKeys", "The tag keys in use")
                    .query("region_id", "one region")
                    .returns(&[("keys", Type::Array), ("page_info", Type::Object)]),
            ),
        )
        .get(
            "/v1.0/tag-values",
            list_tag_values,
            paged(
                op("ListTagValues", "The values of one tag key")
                    .required_query("key", "the tag key")
                    .query("region_id", "one region")
                    .returns(&[("values", Type::Array), ("page_info", Type::Object)]),
            ),
        )
        .get(
            "/v1.0/tags",
            list_tags,
            op("ListTags", "The tags of a project's resources, by type")
                .query("project_id", "the project")
                .query("resource_types", "comma-separated resource types")
                .returns(&[("tags", Type::Array), ("errors", Type::Array)]),
        )
        .post(
            "/v1.0/predefine_tags/action",
            predefined_action,
            op("CreatePredefineTags", "Create or delete predefined tags")
                .body::<PredefinedActionBody>()
                .no_content(),
        )
        .get(
            "/v1.0/predefine_tags",
            list_predefined,
            paged(
                op("ListPredefineTags", "The domain's predefined tags")
                    .query("key", "only this key")
                    .query("value", "only this value")
                    .query("order_field", "key, value or update_time")
                    .query("order_method", "asc or desc")
                    .returns(&[
                        ("marker", Type::String),
                        ("total_count", Type::Integer),
                        ("tags", Type::Array),
                    ]),
            ),
        )
        .put(
            "/v1.0/predefine_tags",
            replace_predefined,
            op(
                "UpdatePredefineTags",
                "Replace one predefined tag by another",
            )
            .body::<ReplaceBody>()
            .no_content(),
        )
        .get(
            "/v1.0/tms/quotas",
            show_quotas,
            op("ShowTagQuota", "The domain's tag quotas").returns(&[("quotas", Type::Array)]),
        )
        .get(
            "/",
            list_versions,
            op("ListApiVersions", "The API versions")
                .public()
                .errors(&[GATEWAY_ERROR])
                .returns(&[("versions", Type::Array)]),
        )
        .get(
            "/{api_version}",
            show_version,
            // An unknown version is the gateway's 404, or IAM's for `/v3.0`, which IAM owns.
            op("ShowApiVersion", "One API version")
                .public()
                .errors(&[GATEWAY_ERROR, "IamError"])
                .returns(&[("version", Type::Object)]),
        )
}

/// The API versions TMS answers on.
const VERSIONS: [(&str, &str); 2] = [("v1.0", "CURRENT"), ("v2.0", "SUPPORTED")];

fn version_json(id: &str, status: &str, base: &str) -> serde_json::Value {
    json!({
        "id": id,
        "links": [{ "href": format!("{base}/{id}/"), "rel": "self" }],
        "version": "",
        "status": status,
        "updated": "2026-11-24T00:00:00Z",
        "min_version": "",
    })
}

/// `GET /`: the API versions (no authentication, as in TMS).
async fn list_versions(BaseUrl(base): BaseUrl) -> Response {
    let versions: Vec<_> = VERSIONS
        .iter()
        .map(|(id, status)| version_json(id, status, &base))
        .collect();
    json_response(StatusCode::OK, &json!({ "versions": versions }))
}

/// `GET /{api_version}`; any other single-segment path is the gateway's 404.
async fn show_version(
    BaseUrl(base): BaseUrl,
    axum::extract::Path(version): axum::extract::Path<String>,
    uri: axum::http::Uri,
) -> Response {
    match VERSIONS.iter().find(|(id, _)| *id == version) {
        Some((id, status)) => json_response(
            StatusCode::OK,
            &json!({ "version": version_json(id, status, &base) }),
        ),
        None => super::unknown_route(uri).await,
    }
}

/// TMS filters take at most 10 keys (`TMS.0002` past that) with 10 values each
/// (`TMS.0016`).
const FILTER_LIMITS: FilterLimits = FilterLimits {
    max_keys: 10,
    max_values: 10,
};

#[derive(Deserialize, ToSchema)]
struct FilterBody {
    #[serde(default)]
    project_id: Option<String>,
    resource_types: Vec<String>,
    #[serde(default)]
    tags: Option<Vec<WireTagMatch>>,
    #[serde(default)]
    without_any_tag: Option<bool>,
    #[serde(default)]
    offset: Option<serde_json::Value>,
    #[serde(default)]
    limit: Option<serde_json::Value>,
}

/// `POST /v1.0/resource-instances/filter`: the resources of some types in a project
/// that match the tags, a page at a time, with the exact total. A type that cannot be
/// searched (unknown, or regional without a project) is reported in `errors` while the
/// others are searched.
async fn filter_resources(
    State(state): State<AppState>,
    Authed(principal, ..): Authed<Tms>,
    JsonBody(body, ..): JsonBody<Tms, FilterBody>,
) -> Result<Response, TmsError> {
    let requested = distinct_types(&body.resource_types)?;
    let offset = number_or_string("offset", body.offset.as_ref(), 0, 0, i64::MAX as u64)?;
    let limit = number_or_string("limit", body.limit.as_ref(), 200, 1, 200)?;
    let tags = tag_matches("tags", body.tags.as_deref(), FILTER_LIMITS)?;
    let project_id = body.project_id.as_deref().filter(|p| !p.is_empty());
    let mut errors = Vec::new();
    let mut types = Vec::new();
    let mut projects: Vec<String> = Vec::new();
    for name in requested {
        let failure = match providers::resource_type(name) {
            None => Some(CoreError::UnknownResourceType {
                field: "resource_types".into(),
                name: name.to_owned(),
            }),
            Some(t) if !t.global && project_id.is_none() => Some(CoreError::ProjectRequired {
                resource_type: name.to_owned(),
            }),
            // A project-scoped caller cannot search the domain's global resources; the
            // other types are still searched.
            Some(t) if t.global && principal.project.is_some() => Some(
                principal
                    .require_domain_scope()
                    .expect_err("a project-scoped caller is refused global resources"),
            ),
            Some(t) => {
                let project = if t.global {
                    ""
                } else {
                    project_id.unwrap_or_default()
                };
                if !projects.iter().any(|p| p == project) {
                    projects.push(project.to_owned());
                }
                types.push(t.name.to_owned());
                None
            }
        };
        if let Some(e) = failure {
            errors.push(json!({
                "error_code": code(&e),
                "error_msg": message(&e),
                "project_id": project_id.unwrap_or_default(),
                "resource_type": name,
            }));
        }
    }
    let project_refs: Vec<&str> = projects.iter().map(String::as_str).collect();
    state
        .identity
        .authorize_resources(&principal, &project_refs)
        .await?;
    let (resources, total_count) = if types.is_empty() {
        (Vec::new(), 0)
    } else {
        let query = ResourceQuery {
            domain_id: principal.domain.id.clone(),
            projects,
            resource_types: types,
            all: tags,
            without_any_tag: body.without_any_tag.unwrap_or(false),
            ..ResourceQuery::default()
        };
        let page = state.tagging.find(&query, offset, limit).await?;
        let names = state.identity.project_names(&principal).await?;
        let resources = page
            .resources
            .into_iter()
            .map(|f| {
                let project_name = names
                    .get(&f.resource.at.project_id)
                    .cloned()
                    .unwrap_or_default();
                FilteredResource {
                    project_name,
                    resource_detail: EmptyObject {},
                    tags: f.tags.into_iter().map(TagPair::from).collect(),
                    project_id: f.resource.at.project_id,
                    resource_id: f.resource.at.resource_id,
                    resource_name: f.resource.name,
                    resource_type: f.resource.at.resource_type,
                }
            })
            .collect();
        (resources, page.total_count)
    };
    Ok(json_reply(
        StatusCode::OK,
        &FilterReply {
            resources,
            errors,
            total_count,
        },
    ))
}

/// The body of `resource-instances/filter`, serialized straight from the page (this is
/// the hot query path: building a `serde_json::Value` first cost a third of its time).
#[derive(Serialize)]
struct FilterReply {
    resources: Vec<FilteredResource>,
    errors: Vec<serde_json::Value>,
    total_count: u64,
}

#[derive(Serialize)]
struct FilteredResource {
    project_id: String,
    project_name: String,
    resource_detail: EmptyObject,
    resource_id: String,
    resource_name: String,
    resource_type: String,
    tags: Vec<TagPair>,
}

/// `{}`.
#[derive(Serialize)]
struct EmptyObject {}

/// The requested resource types without repeats; at least one, and no more than there
/// are types (a longer list can only repeat or invent).
fn distinct_types(raw: &[String]) -> Result<Vec<&str>, CoreError> {
    let max = PROVIDERS
        .iter()
        .map(|p| p.resource_types.len())
        .sum::<usize>();
    let mut seen = std::collections::HashSet::new();
    let types: Vec<&str> = raw
        .iter()
        .map(String::as_str)
        .filter(|t| seen.insert(*t))
        .collect();
    if types.is_empty() {
        return Err(CoreError::Empty {
            field: "resource_types",
        });
    }
    if types.len() > max {
        return Err(CoreError::TooMany {
            field: "resource_types",
            max,
            got: types.len(),
        });
    }
    Ok(types)
}

/// The scope of `tag-keys` and `tag-values`: the projects named after `region_id` (all
/// of the caller's projects without it) and the domain's global resources; a
/// project-scoped caller sees only its own project.
async fn listing_scope(
    state: &AppState,
    principal: &Principal,
    region_id: Option<&str>,
) -> Result<TagScope, CoreError> {
    let mut projects: Vec<String> = state
        .identity
        .visible_projects(principal)
        .await?
        .into_iter()
        .filter(|p| region_id.is_none_or(|r| p.name == r))
        .map(|p| p.id)
        .collect();
    if principal.project.is_none() {
        projects.push(String::new());
    }
    Ok(TagScope {
        domain_id: principal.domain.id.clone(),
        projects,
        resource_types: Vec::new(),
    })
}

/// `limit` (1 to 200, default 200) and `marker` of the key and value listings. A
/// marker is opaque: `m` and the hex of the last item of the previous page, so that an
/// empty value ending a page still yields a marker (an empty marker means "no more").
fn listing_page(
    query: &std::collections::HashMap<String, String>,
) -> Result<(usize, Option<String>), CoreError> {
    let limit = query_number(query, "limit", 200, 1, 200)?;
    let marker = match query.get("marker").filter(|m| !m.is_empty()) {
        None => None,
        Some(m) => Some(
            m.strip_prefix('m')
                .and_then(|h| hex::decode(h).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    CoreError::invalid(
                        "marker",
                        Reason::new(
                            "is not a marker this API returned",
                            "不是本接口返回的marker",
                        ),
                    )
                })?,
        ),
    };
    Ok((limit, marker))
}

/// A page of a sorted listing: one more item than asked for tells whether another page
/// follows, so the last page never carries a marker to an empty one.
fn page_info(mut items: Vec<String>, limit: usize) -> (Vec<String>, serde_json::Value) {
    let more = items.len() > limit;
    items.truncate(limit);
    let next = match items.last() {
        Some(last) if more => format!("m{}", hex::encode(last)),
        _ => String::new(),
    };
    let info = json!({ "next_marker": next, "current_count": items.len() });
    (items, info)
}

async fn list_tag_keys(
    State(state): State<AppState>,
    Authed(principal, ..): Authed<Tms>,
    QueryMap(query): QueryMap,
) -> Result<Response, TmsError> {
    let (limit, marker) = listing_page(&query)?;
    let scope = listing_scope(
        &state,
        &principal,
        query.get("region_id").map(String::as_str),
    )
    .await?;
    let keys = state
        .tagging
        .tag_keys(&scope, marker.as_deref(), limit + 1)
        .await?;
    let (keys, info) = page_info(keys, limit);
    Ok(json_response(
        StatusCode::OK,
        &json!({ "keys": keys, "page_info": info }),
    ))
}

async fn list_tag_values(
    State(state): State<AppState>,
    Authed(principal, ..): Authed<Tms>,
    QueryMap(query): QueryMap,
) -> Result<Response, TmsError> {
    let key = query
        .get("key")
        .filter(|k| !k.is_empty())
        .ok_or_else(|| CoreError::invalid("key", Reason::required()))?;
    let (limit, marker) = listing_page(&query)?;
    let scope = listing_scope(
        &state,
        &principal,
        query.get("region_id").map(String::as_str),
    )
    .await?;
    let values = state
        .tagging
        .tag_values(&scope, key, marker.as_deref(), limit + 1)
        .await?;
    let (values, info) = page_info(values, limit);
    Ok(json_response(
        StatusCode::OK,
        &json!({ "values": values, "page_info": info }),
    ))
}

/// `GET /v1.0/tags?project_id&resource_types`: every key in use with its values, for
/// resources of the listed types (comma-separated; all types when absent).
async fn list_tags(
    State(state): State<AppState>,
    Authed(principal, ..): Authed<Tms>,
    QueryMap(query): QueryMap,
) -> Result<Response, TmsError> {
    let project_id = query
        .get("project_id")
        .map(String::as_str)
        .filter(|p| !p.is_empty());
    let mut errors = Vec::new();
    let mut types = Vec::new();
    let mut projects: Vec<String> = Vec::new();
    let listed: Vec<String> = query
        .get("resource_types")
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let requested: Vec<&str> = if listed.is_empty() {
        Vec::new()
    } else {
        distinct_types(&listed)?
    };
    let all_types: Vec<&'static ResourceType> = PROVIDERS
        .iter()
        .flat_map(|p| p.resource_types.iter())
        .collect();
    let chosen: Vec<Result<&'static ResourceType, &str>> = if requested.is_empty() {
        all_types.iter().map(|t| Ok(*t)).collect()
    } else {
        requested
            .iter()
            .map(|name| providers::resource_type(name).ok_or(*name))
            .collect()
    };
    for t in chosen {
        match t {
            Err(name) => errors.push(json!({
                "error_code": "TMS.5027",
                "error_msg": message(&CoreError::UnknownResourceType { field: "resource_types".into(), name: name.to_owned() }),
                "project_id": project_id.unwrap_or_default(),
                "resource_type": name,
            })),
            Ok(t) if !t.global && project_id.is_none() => {
                if !requested.is_empty() {
                    errors.push(json!({
                        "error_code": "TMS.2011",
                        "error_msg": message(&CoreError::ProjectRequired { resource_type: t.name.to_owned() }),
                        "project_id": "",
                        "resource_type": t.name,
                    }));
                }
            }
            // Global resources are the domain's: a project-scoped caller gets the other
            // types, and an error entry when it named a global type itself.
            Ok(t) if t.global && principal.project.is_some() => {
                if !requested.is_empty() {
                    let e = principal
                        .require_domain_scope()
                        .expect_err("a project-scoped caller is refused global resources");
                    errors.push(json!({
                        "error_code": code(&e),
                        "error_msg": message(&e),
                        "project_id": project_id.unwrap_or_default(),
                        "resource_type": t.name,
                    }));
                }
            }
            Ok(t) => {
                let project = if t.global { "" } else { project_id.unwrap_or_default() };
                if !projects.iter().any(|p| p == project) {
                    projects.push(project.to_owned());
                }
                types.push(t.name.to_owned());
            }
        }
    }
    let project_refs: Vec<&str> = projects.iter().map(String::as_str).collect();
    state
        .identity
        .authorize_resources(&principal, &project_refs)
        .await?;
    let listing = if types.is_empty() {
        None
    } else {
        Some(
            state
                .tagging
                .key_values(&TagScope {
                    domain_id: principal.domain.id.clone(),
                    projects,
                    resource_types: types,
                })
                .await?,
        )
    };
    Ok(json_reply(
        StatusCode::OK,
        &TagsBody {
            tags: listing.as_ref().map_or(&[], |l| &l.items),
            errors: &errors,
        },
    ))
}

/// The answer of `GET /v1.0/tags`, written straight from the listing's strings.
#[derive(serde::Serialize)]
struct TagsBody<'a> {
    tags: &'a [KeyValues],
    errors: &'a [serde_json::Value],
}

#[derive(Deserialize, ToSchema)]
struct ResourceBody {
    resource_id: String,
    resource_type: String,
}

#[derive(Deserialize, ToSchema)]
struct CreateTagBody {
    #[schema(min_length = 1, max_length = 36)]
    key: String,
    #[schema(max_length = 43)]
    value: String,
}

#[derive(Deserialize, ToSchema)]
struct DeleteTagBody {
    key: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize, ToSchema)]
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
