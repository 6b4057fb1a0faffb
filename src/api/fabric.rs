//! DataArts Fabric workspaces (seed 001): batch create and delete of a workspace's tags,
//! with the one system tag the page defines, `_sys_enterprise_project_id`; the reads of
//! the SDK (`DataArtsFabricClient`): one workspace's tags, the project's tag keys and
//! values, and the filter and count of workspaces by tag.
//!
//! Errors carry `error_code`, `error_msg` and `solution_msg`; a 403 has the shape of the
//! page's example (an `error` object beside a numeric `error_code`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::openapi::{op, Op, Routes};
use super::{
    json_response, key_values_json, message, query_number, status, tag_matches, tags_json,
    ApiError, AppState, Dialect, JsonBody, PathParams, ProjectCaller, QueryMap, WireTag,
    WireTagMatch,
};
use crate::core::providers::FABRIC_WORKSPACE;
use crate::core::query::{FilterLimits, Found, ResourceQuery, TagMatch};
use crate::core::tagging::{BatchItem, TagChange};
use crate::core::tags::{Letters, TagRules, TextRule};
use crate::core::{CoreError, Reason};
use utoipa::openapi::schema::Type;

/// The page's character set for keys and values: letters, digits, space, tab and
/// `_ . : \ = + - @`.
const FABRIC_CHARS: &str = " \t_.:\\=+-@";

/// The page's rules: keys 1 to 128 characters, values 0 to 255, 1 to 20 tags a call.
pub const RULES: TagRules = TagRules {
    key: TextRule {
        min_chars: 1,
        max_chars: 128,
        letters: Letters::Unicode,
        extra: FABRIC_CHARS,
        trimmed: false,
        reserved_prefix: None,
    },
    value: TextRule {
        min_chars: 0,
        max_chars: 255,
        letters: Letters::Unicode,
        extra: FABRIC_CHARS,
        trimmed: false,
        reserved_prefix: None,
    },
    max_tags_per_request: 20,
};

/// The only system tag key the page allows.
pub const ENTERPRISE_PROJECT_KEY: &str = "_sys_enterprise_project_id";

/// Rules for `sys_tags`: the fixed key, and an enterprise project id ("0" for the
/// default project, otherwise a UUID) as its value.
const SYS_RULES: TagRules = TagRules {
    key: TextRule {
        min_chars: 1,
        max_chars: 128,
        letters: Letters::Unicode,
        extra: "_",
        trimmed: true,
        reserved_prefix: None,
    },
    value: TextRule {
        min_chars: 1,
        max_chars: 36,
        letters: Letters::Ascii,
        extra: "-",
        trimmed: true,
        reserved_prefix: None,
    },
    max_tags_per_request: 1,
};

pub struct Fabric;

type FabricError = ApiError<Fabric>;

impl Dialect for Fabric {
    fn error_response(err: &CoreError) -> Response {
        let status = status(err);
        let msg = message(err);
        let body = if status == StatusCode::FORBIDDEN {
            json!({
                "error": { "code": "403", "message": msg, "title": "Forbidden" },
                "error_code": 403,
                "error_msg": msg,
                "title": "Forbidden",
            })
        } else {
            json!({ "error_code": code(err), "error_msg": msg, "solution_msg": solution(err) })
        };
        json_response(status, &body)
    }
}

/// Fabric's codes, from the page's examples; every variant named.
fn code(err: &CoreError) -> &'static str {
    match err {
        CoreError::MalformedBody { .. }
        | CoreError::BodyTooLarge { .. }
        | CoreError::InvalidField { .. }
        | CoreError::Empty { .. }
        | CoreError::TooMany { .. }
        | CoreError::InvalidTagKey { .. }
        | CoreError::InvalidTagValue { .. }
        | CoreError::DuplicateTagKey { .. }
        | CoreError::UnknownResourceType { .. }
        | CoreError::ProjectRequired { .. }
        | CoreError::MethodNotAllowed { .. }
        | CoreError::Conflict { .. }
        | CoreError::TagLimitExceeded { .. }
        | CoreError::NotFound { .. }
        | CoreError::Forbidden { .. } => "common.01000001",
        CoreError::Unauthenticated { .. } => "APIG.1002",
        CoreError::Timeout { .. } => "common.00000408",
        CoreError::Internal(_) | CoreError::Unexpected { .. } => "common.00000500",
    }
}

fn solution(err: &CoreError) -> &'static str {
    match err {
        CoreError::MalformedBody { .. }
        | CoreError::BodyTooLarge { .. }
        | CoreError::InvalidField { .. }
        | CoreError::Empty { .. }
        | CoreError::TooMany { .. }
        | CoreError::InvalidTagKey { .. }
        | CoreError::InvalidTagValue { .. }
        | CoreError::DuplicateTagKey { .. }
        | CoreError::UnknownResourceType { .. }
        | CoreError::ProjectRequired { .. }
        | CoreError::MethodNotAllowed { .. }
        | CoreError::Conflict { .. } => {
            "Correct the request as the message says and send it again."
        }
        CoreError::TagLimitExceeded { .. } => {
            "Delete tags the workspace no longer needs, or add fewer."
        }
        CoreError::NotFound { .. } => "Check the workspace id and the project id.",
        CoreError::Forbidden { .. } => "Use a token scoped to the project in the path.",
        CoreError::Unauthenticated { .. } => {
            "Obtain a new token from IAM and send it in X-Auth-Token."
        }
        CoreError::Timeout { .. } => "Retry later.",
        CoreError::Internal(_) | CoreError::Unexpected { .. } => "Contact the administrator.",
    }
}

/// DataArts Fabric's routes, each with its description in the OpenAPI document.
pub fn routes() -> Routes {
    let paged = |o: Op| {
        o.query("offset", "where the page starts")
            .query("limit", "page size")
    };
    Routes::new("Fabric", "FabricError")
        .post(
            "/v1/{project_id}/fabric-workspace/{workspace_id}/tags/create",
            create_tags,
            op("BatchCreateWorkspaceTags", "Add tags to a workspace")
                .body::<TagsBody>()
                .no_content(),
        )
        .post(
            "/v1/{project_id}/fabric-workspace/{workspace_id}/tags/delete",
            delete_tags,
            op("BatchDeleteWorkspaceTags", "Remove tags from a workspace")
                .body::<TagsBody>()
                .no_content(),
        )
        .get(
            "/v1/{project_id}/fabric-workspace/{workspace_id}/tags",
            list_tags,
            paged(
                op("ListWorkspaceTags", "One workspace's tags")
                    .returns(&[("tags", Type::Array), ("sys_tags", Type::Array)]),
            ),
        )
        .get(
            "/v1/{project_id}/fabric-workspace/tags",
            list_project_tags,
            paged(
                op(
                    "ListProjectWorkspaceTags",
                    "The keys in use on the project's workspaces",
                )
                .query("use_predefine_tags", "true: the predefined tags too")
                .returns(&[("tags", Type::Array)]),
            ),
        )
        .post(
            "/v1/{project_id}/fabric-workspace/resource-instances/filter",
            filter_workspaces,
            paged(
                op("ListWorkspacesByTags", "Workspaces that carry tags")
                    .returns(&[("resources", Type::Array), ("total_count", Type::Integer)]),
            )
            .body::<FilterBody>(),
        )
        .post(
            "/v1/{project_id}/fabric-workspace/resource-instances/count",
            count_workspaces,
            op("CountWorkspacesByTags", "How many workspaces carry tags")
                .body::<FilterBody>()
                .returns(&[("total_count", Type::Integer)]),
        )
}

#[derive(Deserialize)]
struct WorkspacePath {
    workspace_id: String,
}

#[derive(Deserialize, ToSchema)]
struct TagsBody {
    #[serde(default)]
    tags: Option<Vec<WireTag>>,
    #[serde(default)]
    sys_tags: Option<Vec<WireTag>>,
}

/// Workspace ids are 1 to 36 letters, digits and hyphens.
fn check_workspace_id(id: &str) -> Result<(), CoreError> {
    let chars = id.chars().count();
    if !(1..=36).contains(&chars) {
        return Err(CoreError::invalid(
            "workspace_id",
            Reason::length(1, 36, chars),
        ));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(CoreError::invalid(
            "workspace_id",
            Reason::forbidden_char(c),
        ));
    }
    Ok(())
}

/// The system tags of a request: at most one, with the fixed key.
fn sys_tags(raw: &[WireTag]) -> Result<(), CoreError> {
    SYS_RULES.check_count("sys_tags", raw.len())?;
    match raw.iter().position(|t| t.key != ENTERPRISE_PROJECT_KEY) {
        Some(i) => Err(CoreError::invalid(
            format!("sys_tags[{i}].key"),
            Reason::one_of(&[ENTERPRISE_PROJECT_KEY], &raw[i].key),
        )),
        None => Ok(()),
    }
}

/// Builds the one item of a create or delete: the user-tag change and the system-tag
/// change; at least one of `tags` and `sys_tags` must be given.
fn item(
    caller: &ProjectCaller<Fabric>,
    workspace_id: &str,
    body: &TagsBody,
    user: impl Fn(&[WireTag]) -> Result<TagChange, CoreError>,
    system: impl Fn(&[WireTag]) -> Result<TagChange, CoreError>,
    nothing: TagChange,
) -> Result<BatchItem, CoreError> {
    check_workspace_id(workspace_id)?;
    if body.tags.is_none() && body.sys_tags.is_none() {
        return Err(CoreError::invalid(
            "tags",
            Reason::new("give tags, sys_tags or both", "请至少指定tags或sys_tags"),
        ));
    }
    let change = match &body.tags {
        Some(tags) => user(tags)?,
        None => nothing,
    };
    let sys_change = match &body.sys_tags {
        Some(raw) => {
            sys_tags(raw)?;
            Some(system(raw)?)
        }
        None => None,
    };
    let mut item = caller.item(FABRIC_WORKSPACE, "workspace_id", workspace_id, change)?;
    item.sys_change = sys_change;
    Ok(item)
}

async fn create_tags(
    caller: ProjectCaller<Fabric>,
    State(state): State<AppState>,
    PathParams(path, ..): PathParams<Fabric, WorkspacePath>,
    JsonBody(body, ..): JsonBody<Fabric, TagsBody>,
) -> Result<Response, FabricError> {
    let item = item(
        &caller,
        &path.workspace_id,
        &body,
        |tags| Ok(TagChange::Set(RULES.tags(tags.iter().map(WireTag::pair))?)),
        |sys| {
            Ok(TagChange::Set(
                SYS_RULES.tags(sys.iter().map(WireTag::pair))?,
            ))
        },
        TagChange::Set(Vec::new()),
    )?;
    state.tagging.apply_all(vec![item], false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn delete_tags(
    caller: ProjectCaller<Fabric>,
    State(state): State<AppState>,
    PathParams(path, ..): PathParams<Fabric, WorkspacePath>,
    JsonBody(body, ..): JsonBody<Fabric, TagsBody>,
) -> Result<Response, FabricError> {
    let item = item(
        &caller,
        &path.workspace_id,
        &body,
        |tags| {
            Ok(TagChange::Remove(
                RULES.selectors(tags.iter().map(WireTag::selector))?,
            ))
        },
        |sys| {
            Ok(TagChange::Remove(
                SYS_RULES.lenient_selectors(sys.iter().map(WireTag::selector))?,
            ))
        },
        TagChange::Remove(Vec::new()),
    )?;
    state.tagging.apply_all(vec![item], false).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A workspace's tags and system tags, so that what was written can be read back.
async fn list_tags(
    caller: ProjectCaller<Fabric>,
    State(state): State<AppState>,
    PathParams(path, ..): PathParams<Fabric, WorkspacePath>,
    QueryMap(query): QueryMap,
) -> Result<Response, FabricError> {
    check_workspace_id(&path.workspace_id)?;
    let offset = query_number(&query, "offset", 0, 0, usize::MAX)?;
    let limit = query_number(&query, "limit", 1000, 1, 1000)?;
    let target = caller.target(FABRIC_WORKSPACE, "workspace_id", &path.workspace_id)?;
    let not_found = || CoreError::NotFound {
        what: Reason::new(
            format!("workspace {}", path.workspace_id),
            format!("工作空间{}", path.workspace_id),
        ),
    };
    let tags = state
        .tagging
        .tags_of(&target.at)
        .await?
        .ok_or_else(not_found)?;
    let sys = state
        .tagging
        .sys_tags_of(&target.at)
        .await?
        .ok_or_else(not_found)?;
    let kv =
        |t: &crate::core::tags::Tag| json!({ "key": t.key.as_str(), "value": t.value.as_str() });
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "tags": tags.iter().skip(offset).take(limit).map(kv).collect::<Vec<_>>(),
            "sys_tags": sys.iter().map(kv).collect::<Vec<_>>(),
        }),
    ))
}

/// `GET .../fabric-workspace/tags`: every key the project's workspaces carry, with its
/// values, keys sorted and paged with `offset` and `limit` (1 to 1000, default 1000).
/// With `use_predefine_tags=true` the domain's predefined tags (managed through TMS) are
/// merged in.
async fn list_project_tags(
    caller: ProjectCaller<Fabric>,
    State(state): State<AppState>,
    QueryMap(query): QueryMap,
) -> Result<Response, FabricError> {
    let with_predefined = match query.get("use_predefine_tags") {
        None => false,
        Some(raw) if raw.eq_ignore_ascii_case("true") => true,
        Some(raw) if raw.eq_ignore_ascii_case("false") => false,
        Some(raw) => {
            return Err(CoreError::invalid(
                "use_predefine_tags",
                Reason::one_of(&["true", "false"], raw),
            )
            .into())
        }
    };
    let offset = query_number(&query, "offset", 0, 0, usize::MAX)?;
    let limit = query_number(&query, "limit", 1000, 1, 1000)?;
    let listing = state
        .tagging
        .key_values(&caller.scope(FABRIC_WORKSPACE))
        .await?;
    let mut kvs = listing.items;
    if with_predefined {
        let predefined = state
            .tagging
            .predefined_key_values(&caller.principal.domain.id)
            .await?;
        let mut merged: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
            std::collections::BTreeMap::new();
        for kv in kvs.into_iter().chain(predefined) {
            merged.entry(kv.key).or_default().extend(kv.values);
        }
        kvs = merged
            .into_iter()
            .map(|(key, values)| crate::core::query::KeyValues {
                key,
                values: values.into_iter().collect(),
            })
            .collect();
    }
    let page: Vec<_> = kvs.into_iter().skip(offset).take(limit).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "tags": key_values_json(&page) }),
    ))
}

/// The filter's limits: 50 keys, 10 values each (the SDK's docstring).
const FILTER_LIMITS: FilterLimits = FilterLimits {
    max_keys: 50,
    max_values: 10,
};

/// The one `matches` key the API knows.
const MATCH_RESOURCE_NAME: &str = "resource_name";

/// `ListTagWorkspacesRequestBody`, shared by the filter and the count.
#[derive(Deserialize, ToSchema)]
struct FilterBody {
    #[serde(default)]
    without_any_tag: Option<bool>,
    #[serde(default)]
    tags: Option<Vec<WireTagMatch>>,
    #[serde(default)]
    matches: Option<Vec<WireMatch>>,
    #[serde(default)]
    sys_tags: Option<Vec<WireTagMatch>>,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = FabricMatch)]
struct WireMatch {
    key: String,
    value: String,
}

/// A validated filter: the store query, system-tag condition included.
struct Filter {
    query: ResourceQuery,
}

impl Filter {
    fn parse(caller: &ProjectCaller<Fabric>, body: &FilterBody) -> Result<Self, CoreError> {
        let raw_tags = body.tags.as_deref();
        // "values may be an empty array, but must be present".
        if let Some(i) = raw_tags
            .unwrap_or_default()
            .iter()
            .position(|m| m.values.is_none())
        {
            return Err(CoreError::invalid(
                format!("tags[{i}].values"),
                Reason::required(),
            ));
        }
        let all = tag_matches("tags", raw_tags, FILTER_LIMITS)?;
        let mut name_contains = None;
        for (i, m) in body
            .matches
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if m.key != MATCH_RESOURCE_NAME {
                return Err(CoreError::invalid(
                    format!("matches[{i}].key"),
                    Reason::one_of(&[MATCH_RESOURCE_NAME], &m.key),
                ));
            }
            if name_contains.replace(m.value.clone()).is_some() {
                return Err(CoreError::DuplicateTagKey {
                    key: MATCH_RESOURCE_NAME.to_owned(),
                });
            }
        }
        let sys = sys_filter(body.sys_tags.as_deref())?;
        let without_any_tag = body.without_any_tag.unwrap_or(false);
        let mut query = caller.query(FABRIC_WORKSPACE);
        query.without_any_tag = without_any_tag;
        // `without_any_tag` ignores the tag conditions (checked all the same).
        query.all = if without_any_tag { Vec::new() } else { all };
        query.name_contains = name_contains;
        query.sys_all = sys.into_iter().collect();
        Ok(Self { query })
    }

    /// One page of the matching workspaces and the exact total.
    async fn page(
        &self,
        state: &AppState,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Found>, u64), CoreError> {
        let page = state
            .tagging
            .find(&self.query, offset as u64, limit as u64)
            .await?;
        Ok((page.resources, page.total_count))
    }

    async fn count(&self, state: &AppState) -> Result<u64, CoreError> {
        state.tagging.count(&self.query).await
    }
}

/// The `sys_tags` condition: at most one entry (the docstring: "currently only one tag
/// structure"), keyed `_sys_enterprise_project_id`, with up to 10 enterprise project ids
/// (any of them; none = any enterprise project).
fn sys_filter(raw: Option<&[WireTagMatch]>) -> Result<Option<TagMatch>, CoreError> {
    let mut matches = tag_matches(
        "sys_tags",
        raw,
        FilterLimits {
            max_keys: 1,
            max_values: FILTER_LIMITS.max_values,
        },
    )?;
    if let Some(m) = matches.first() {
        if m.key != ENTERPRISE_PROJECT_KEY {
            return Err(CoreError::invalid(
                "sys_tags[0].key",
                Reason::one_of(&[ENTERPRISE_PROJECT_KEY], &m.key),
            ));
        }
    }
    Ok(matches.pop())
}

/// A workspace as the filter lists it.
fn workspace_json(found: &Found) -> serde_json::Value {
    json!({
        "resource_id": found.resource.at.resource_id,
        "resource_detail": {},
        "resource_name": found.resource.name,
        "tags": tags_json(&found.tags),
        "sys_tags": tags_json(&found.sys_tags),
    })
}

/// `POST .../resource-instances/filter?offset&limit`: the project's workspaces that pass
/// the body's conditions, ordered by id; `limit` 1 to 100 (default 10), `offset` from 0.
async fn filter_workspaces(
    caller: ProjectCaller<Fabric>,
    State(state): State<AppState>,
    QueryMap(query): QueryMap,
    JsonBody(body, ..): JsonBody<Fabric, FilterBody>,
) -> Result<Response, FabricError> {
    let offset = query_number(&query, "offset", 0, 0, usize::MAX)?;
    let limit = query_number(&query, "limit", 10, 1, 100)?;
    let filter = Filter::parse(&caller, &body)?;
    let (found, total_count) = filter.page(&state, offset, limit).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "resources": found.iter().map(workspace_json).collect::<Vec<_>>(),
            "total_count": total_count,
        }),
    ))
}

/// `POST .../resource-instances/count`: how many workspaces the filter would list.
async fn count_workspaces(
    caller: ProjectCaller<Fabric>,
    State(state): State<AppState>,
    JsonBody(body, ..): JsonBody<Fabric, FilterBody>,
) -> Result<Response, FabricError> {
    let filter = Filter::parse(&caller, &body)?;
    let total_count = filter.count(&state).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "total_count": total_count }),
    ))
}
