//! Workspace desktops (seed 000): batch tagging of desktops and its companion calls.
//!
//! Unknown desktop ids in the batch calls are filtered out silently, as the page says;
//! any other problem rejects the whole request. Errors are flat, with `error_detail`,
//! and a 403 also carries `encoded_authorization_message`.
//!
//! The reads: one desktop's tags, the project's keys with their values (paged, with
//! `totalCount` in camelCase as the SDK declares it), and the filter/count call on two
//! URLs (`resource-instances/action` and the deprecated `resource_instances/action`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use axum::extract::State;

use super::openapi::{op, Routes};
use super::{
    json_response, key_values_json, message, query_number, single_tag, status, tag_matches,
    tags_json, ApiError, AppState, Dialect, JsonBody, ProjectCaller, QueryMap, WireTag,
    WireTagMatch,
};
use crate::core::providers::WORKSPACE_DESKTOP;
use crate::core::query::{number_or_string, FilterLimits, KeyValues};
use crate::core::tagging::TagChange;
use crate::core::tags::{Letters, TagRules, TextRule};
use crate::core::{CoreError, Reason};
use utoipa::openapi::schema::Type;

/// Most desktops one batch call may name.
pub const MAX_DESKTOPS_PER_REQUEST: usize = 100;

/// The page's rules: keys of letters, digits, `-` and `_` (so none of `=*<>,|/`), up to
/// 128 characters, not starting with the reserved `_sys_`; values of the same characters
/// up to 43, possibly empty; 20 tags per desktop.
pub const RULES: TagRules = TagRules {
    key: TextRule {
        min_chars: 1,
        max_chars: 128,
        letters: Letters::Unicode,
        extra: "-_",
        trimmed: true,
        reserved_prefix: Some("_sys_"),
    },
    value: TextRule {
        min_chars: 0,
        max_chars: 43,
        letters: Letters::Unicode,
        extra: "-_",
        trimmed: false,
        reserved_prefix: None,
    },
    max_tags_per_request: 20,
};

pub struct Workspace;

impl single_tag::TaggedResource for Workspace {
    const RESOURCE_TYPE: &'static str = WORKSPACE_DESKTOP;
    const ID_PARAM: &'static str = "desktop_id";
    const RULES: TagRules = RULES;
}

type WorkspaceError = ApiError<Workspace>;

impl Dialect for Workspace {
    fn error_response(err: &CoreError) -> Response {
        let status = status(err);
        let mut body = json!({
            "error_code": code(err),
            "error_msg": message(err),
            "error_detail": detail(err),
        });
        if status == StatusCode::FORBIDDEN {
            // The cloud encrypts the denial reason for STS to decode; tagd has nothing
            // to hide from the caller, so it hex-encodes the plain reason.
            body["encoded_authorization_message"] = json!(hex::encode(message(err)));
        }
        json_response(status, &body)
    }
}

/// Workspace's codes; every variant named.
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
        | CoreError::MethodNotAllowed { .. } => "WKS.0002",
        CoreError::TagLimitExceeded { .. } => "WKS.0003",
        CoreError::Unauthenticated { .. } => "APIGW.0301",
        CoreError::Forbidden { .. } => "APIGW.0302",
        CoreError::NotFound { .. } => "WKS.0004",
        CoreError::Conflict { .. } => "WKS.0006",
        CoreError::Timeout { .. } => "WKS.0008",
        CoreError::Internal(_) | CoreError::Unexpected { .. } => "WKS.0000",
    }
}

/// What to do about it, for `error_detail`.
fn detail(err: &CoreError) -> &'static str {
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
        | CoreError::Conflict { .. } => "Check the request against the API reference.",
        CoreError::TagLimitExceeded { .. } => {
            "Delete tags the desktop no longer needs, or add fewer."
        }
        CoreError::Unauthenticated { .. } => {
            "Obtain a valid token from IAM and send it in X-Auth-Token."
        }
        CoreError::Forbidden { .. } => "Use a token scoped to the project in the path.",
        CoreError::NotFound { .. } => "Check the desktop id and the project.",
        CoreError::Timeout { .. } => "Retry the request later.",
        CoreError::Internal(_) | CoreError::Unexpected { .. } => "Contact the administrator.",
    }
}

/// Workspace's routes, each with its description in the OpenAPI document.
pub fn routes() -> Routes {
    const ONE: &str = "/v2/{project_id}/desktops/{desktop_id}/tags";
    let filter_op = |id| {
        op(
            id,
            "Desktops that carry tags (action filter), or their count (action count)",
        )
        .body::<FilterBody>()
        .returns(&[("total_count", Type::Integer)])
    };
    Routes::new("Workspace", "WorkspaceError")
        .post(
            "/v2/{project_id}/desktops/batch-tags",
            batch_add,
            op("BatchCreateDesktopTags", "Add tags to desktops")
                .body::<BatchBody>()
                .no_content(),
        )
        .delete(
            "/v2/{project_id}/desktops/batch-tags",
            batch_delete,
            op("BatchDeleteDesktopTags", "Remove tags from desktops")
                .body::<BatchBody>()
                .no_content(),
        )
        .post(
            "/v2/{project_id}/desktops/{desktop_id}/tags/action",
            single_tag::action::<Workspace>,
            op(
                "BatchChangeDesktopTags",
                "Create or delete one desktop's tags",
            )
            .body::<single_tag::ActionBody>()
            .no_content(),
        )
        // `DELETE .../tags/action` is the single-tag delete of a tag whose key is "action".
        .delete(
            "/v2/{project_id}/desktops/{desktop_id}/tags/action",
            single_tag::delete::<Workspace>,
            op(
                "DeleteDesktopTagAction",
                "Delete the tag whose key is \"action\"",
            )
            .no_content(),
        )
        .post(
            ONE,
            single_tag::create::<Workspace>,
            op("CreateDesktopTags", "Add one tag to a desktop")
                .body::<single_tag::OneTagBody>()
                .no_content(),
        )
        .get(
            ONE,
            single_tag::read::<Workspace>,
            op("ListDesktopTags", "One desktop's tags").returns(&[("tags", Type::Array)]),
        )
        .get(
            "/v2/{project_id}/desktops/tags",
            project_tags,
            op(
                "ListProjectTags",
                "The keys in use on the project's desktops, with values",
            )
            .query("offset", "where the page starts")
            .query("limit", "page size, 0 to 1000")
            .query("key", "only this key")
            .query("value", "only this value")
            .returns(&[("tags", Type::Array), ("totalCount", Type::Integer)]),
        )
        .post(
            "/v2/{project_id}/desktops/resource-instances/action",
            filter,
            filter_op("ListDesktopsByTags"),
        )
        // The deprecated spelling (`list_desktop_by_tags` in the SDK): the same call.
        .post(
            "/v2/{project_id}/desktops/resource_instances/action",
            filter,
            filter_op("ListDesktopsByTagsDeprecated"),
        )
        .delete(
            "/v2/{project_id}/desktops/{desktop_id}/tags/{key}",
            single_tag::delete::<Workspace>,
            op("DeleteDesktopTag", "Delete one tag of a desktop").no_content(),
        )
}

#[derive(Deserialize, ToSchema)]
struct DesktopTags {
    desktop_id: String,
    tags: Vec<WireTag>,
}

#[derive(Deserialize, ToSchema)]
struct BatchBody {
    desktops: Vec<DesktopTags>,
}

fn check_desktop_count(n: usize) -> Result<(), CoreError> {
    if n == 0 {
        return Err(CoreError::Empty { field: "desktops" });
    }
    if n > MAX_DESKTOPS_PER_REQUEST {
        return Err(CoreError::TooMany {
            field: "desktops",
            max: MAX_DESKTOPS_PER_REQUEST,
            got: n,
        });
    }
    Ok(())
}

/// Applies one change per desktop of a batch body, all or nothing, skipping unknown
/// desktops as the page documents.
async fn batch(
    state: &AppState,
    caller: &ProjectCaller<Workspace>,
    body: &BatchBody,
    change: impl Fn(&[WireTag]) -> Result<TagChange, CoreError>,
) -> Result<Response, WorkspaceError> {
    check_desktop_count(body.desktops.len())?;
    let mut items = Vec::with_capacity(body.desktops.len());
    for (i, d) in body.desktops.iter().enumerate() {
        let change = change(&d.tags)?;
        // "Invalid desktop IDs are filtered out": one that cannot even be an id is
        // left out like one that names no desktop.
        if let Ok(item) = caller.item(
            WORKSPACE_DESKTOP,
            &format!("desktops[{i}].desktop_id"),
            &d.desktop_id,
            change,
        ) {
            items.push(item);
        }
    }
    state.tagging.apply_all(items, true).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn set(tags: &[WireTag]) -> Result<TagChange, CoreError> {
    Ok(TagChange::Set(RULES.tags(tags.iter().map(WireTag::pair))?))
}

fn remove(tags: &[WireTag]) -> Result<TagChange, CoreError> {
    Ok(TagChange::Remove(
        RULES.selectors(tags.iter().map(WireTag::selector))?,
    ))
}

async fn batch_add(
    caller: ProjectCaller<Workspace>,
    State(state): State<AppState>,
    JsonBody(body, ..): JsonBody<Workspace, BatchBody>,
) -> Result<Response, WorkspaceError> {
    batch(&state, &caller, &body, set).await
}

async fn batch_delete(
    caller: ProjectCaller<Workspace>,
    State(state): State<AppState>,
    JsonBody(body, ..): JsonBody<Workspace, BatchBody>,
) -> Result<Response, WorkspaceError> {
    batch(&state, &caller, &body, remove).await
}

// ---------------------------------------------------------------------------------------
// Reads

/// Each tag list of a filter (`tags`, `tags_any`, `not_tags`, `not_tags_any`): at most 10
/// keys with at most 10 values each. The Workspace SDK documents no limit; these are the
/// limits the cloud's other `resource_instances/action` APIs (DIS among them) document.
pub const FILTER_LIMITS: FilterLimits = FilterLimits {
    max_keys: 10,
    max_values: 10,
};

/// The most desktops one filter page returns, and its default size.
pub const MAX_FILTER_LIMIT: u64 = 1000;

/// The most keys one `list_project_tags` page returns, and its default size.
pub const MAX_TAG_LIST_LIMIT: usize = 1000;

/// The largest offset accepted (the store's own bound); past the end a page is empty.
const MAX_OFFSET: u64 = i64::MAX as u64;

/// The one field `matches` may name.
const RESOURCE_NAME: &str = "resource_name";

/// `GET /v2/{project_id}/desktops/tags?offset&limit&key&value`: every key in use on the
/// project's desktops with its values, keys and values sorted, paged by key.
///
/// `limit` is 0 to 1000 (default 1000; 0 gives an empty page with the total), `offset`
/// 0 or more. `totalCount` is the number of keys after the `key`/`value` filter.
async fn project_tags(
    caller: ProjectCaller<Workspace>,
    State(state): State<AppState>,
    QueryMap(query): QueryMap,
) -> Result<Response, WorkspaceError> {
    let offset = query_number(&query, "offset", 0, 0, MAX_OFFSET as usize)?;
    let limit = query_number(&query, "limit", MAX_TAG_LIST_LIMIT, 0, MAX_TAG_LIST_LIMIT)?;
    let key = query
        .get("key")
        .map(String::as_str)
        .filter(|k| !k.is_empty());
    let value = query.get("value").map(String::as_str);
    let all = state
        .tagging
        .key_values(&caller.scope(WORKSPACE_DESKTOP))
        .await?;
    let selected = select_key_values(all.items, key, value);
    let total = selected.len();
    let page: Vec<KeyValues> = selected.into_iter().skip(offset).take(limit).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "tags": key_values_json(&page), "totalCount": total }),
    ))
}

/// The `key`/`value` filter of `list_project_tags`, read literally as "either one may
/// match" on the (key, value) pairs in use:
///
/// * neither given: every key with all its values;
/// * `key` only: that key (exact, case-sensitive) with all its values;
/// * `value` only: every key having that value (exact), listing only that value;
/// * both (OR-ed): the pairs whose key is `key` or whose value is `value`, so `key` comes
///   with all its values and any other key with just `value`.
///
/// An empty `key=` is treated as absent (no key is empty); `value=` given empty selects
/// tags whose value is empty, which Workspace allows.
fn select_key_values(
    all: Vec<KeyValues>,
    key: Option<&str>,
    value: Option<&str>,
) -> Vec<KeyValues> {
    if key.is_none() && value.is_none() {
        return all;
    }
    all.into_iter()
        .filter_map(|kv| {
            if key == Some(kv.key.as_str()) {
                return Some(kv);
            }
            let value = value?;
            kv.values.iter().any(|v| v == value).then(|| KeyValues {
                key: kv.key,
                values: vec![value.to_owned()],
            })
        })
        .collect()
}

/// One search condition of `matches`.
#[derive(Deserialize, ToSchema)]
#[schema(as = WorkspaceMatch)]
struct WireMatch {
    key: String,
    value: String,
}

/// `QueryDesktopByTagReq`. `offset` and `limit` come as strings (the SDK's type) or
/// numbers.
#[derive(Deserialize, ToSchema)]
struct FilterBody {
    #[schema(value_type = super::openapi::FilterAction)]
    action: String,
    #[serde(default)]
    offset: Option<serde_json::Value>,
    #[serde(default)]
    limit: Option<serde_json::Value>,
    #[serde(default)]
    without_any_tag: Option<bool>,
    #[serde(default)]
    matches: Option<Vec<WireMatch>>,
    #[serde(default)]
    tags: Option<Vec<WireTagMatch>>,
    #[serde(default)]
    tags_any: Option<Vec<WireTagMatch>>,
    #[serde(default)]
    not_tags: Option<Vec<WireTagMatch>>,
    #[serde(default)]
    not_tags_any: Option<Vec<WireTagMatch>>,
}

/// `matches` as a name filter: only `resource_name` is supported, at most once; its
/// value is a case-sensitive substring of the desktop's name ("fuzzy" in the SDK).
fn name_filter(matches: Option<&[WireMatch]>) -> Result<Option<String>, CoreError> {
    let mut name = None;
    for (i, m) in matches.unwrap_or_default().iter().enumerate() {
        if m.key != RESOURCE_NAME {
            return Err(CoreError::invalid(
                format!("matches[{i}].key"),
                Reason::one_of(&[RESOURCE_NAME], &m.key),
            ));
        }
        if name.is_some() {
            return Err(CoreError::invalid(
                format!("matches[{i}].key"),
                Reason::new(
                    "resource_name is given more than once",
                    "resource_name重复出现",
                ),
            ));
        }
        name = Some(m.value.clone());
    }
    Ok(name)
}

/// `POST /v2/{project_id}/desktops/resource-instances/action` (and the deprecated
/// `resource_instances`): `filter` pages the project's desktops that satisfy every
/// condition, `count` counts them.
///
/// `tags`: every listed key with one of its values (no values = any value); `tags_any`:
/// at least one; `not_tags`: not all of them; `not_tags_any`: none. `without_any_tag`
/// keeps only untagged desktops and ignores the four lists (which must still be well
/// formed); `matches` applies either way. `offset` (default 0) and `limit` (1 to 1000,
/// default 1000) are read for `filter` only; `count` has no paging, as DIS documents
/// for the same call, and ignores them. The answer's `offset` is the request's.
async fn filter(
    caller: ProjectCaller<Workspace>,
    State(state): State<AppState>,
    JsonBody(body, ..): JsonBody<Workspace, FilterBody>,
) -> Result<Response, WorkspaceError> {
    let count_only = match body.action.as_str() {
        "filter" => false,
        "count" => true,
        other => {
            return Err(
                CoreError::invalid("action", Reason::one_of(&["filter", "count"], other)).into(),
            )
        }
    };
    let mut query = caller.query(WORKSPACE_DESKTOP);
    query.all = tag_matches("tags", body.tags.as_deref(), FILTER_LIMITS)?;
    query.any = tag_matches("tags_any", body.tags_any.as_deref(), FILTER_LIMITS)?;
    query.not_all = tag_matches("not_tags", body.not_tags.as_deref(), FILTER_LIMITS)?;
    query.none = tag_matches("not_tags_any", body.not_tags_any.as_deref(), FILTER_LIMITS)?;
    query.without_any_tag = body.without_any_tag.unwrap_or(false);
    query.name_contains = name_filter(body.matches.as_deref())?;
    if count_only {
        let total = state.tagging.count(&query).await?;
        return Ok(json_response(
            StatusCode::OK,
            &json!({ "total_count": total }),
        ));
    }
    let offset = number_or_string("offset", body.offset.as_ref(), 0, 0, MAX_OFFSET)?;
    let limit = number_or_string(
        "limit",
        body.limit.as_ref(),
        MAX_FILTER_LIMIT,
        1,
        MAX_FILTER_LIMIT,
    )?;
    let page = state.tagging.find(&query, offset, limit).await?;
    let resources: Vec<serde_json::Value> = page
        .resources
        .iter()
        .map(|found| {
            json!({
                "resource_id": found.resource.at.resource_id,
                "resource_name": found.resource.name,
                "resource_detail": "",
                "tags": tags_json(&found.tags),
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "resources": resources,
            "total_count": page.total_count,
            "offset": offset,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, values: &[&str]) -> KeyValues {
        KeyValues {
            key: key.into(),
            values: values.iter().map(|v| (*v).to_owned()).collect(),
        }
    }

    #[test]
    fn key_and_value_are_ored_over_pairs() {
        let all = || vec![kv("a", &["1", "2"]), kv("b", &["2", "3"]), kv("c", &["4"])];
        assert_eq!(select_key_values(all(), None, None), all());
        assert_eq!(
            select_key_values(all(), Some("a"), None),
            vec![kv("a", &["1", "2"])]
        );
        assert_eq!(
            select_key_values(all(), None, Some("2")),
            vec![kv("a", &["2"]), kv("b", &["2"])]
        );
        assert_eq!(
            select_key_values(all(), Some("c"), Some("2")),
            vec![kv("a", &["2"]), kv("b", &["2"]), kv("c", &["4"])]
        );
        assert_eq!(
            select_key_values(all(), Some("a"), Some("3")),
            vec![kv("a", &["1", "2"]), kv("b", &["3"])]
        );
        assert!(select_key_values(all(), Some("zz"), Some("zz")).is_empty());
    }
}
