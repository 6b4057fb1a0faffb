//! DIS streams (seed 004): `tags/action` creates or deletes tags of one stream, with the
//! single-tag companions the SDK offers.
//!
//! Keys and values admit `A-Z a-z 0-9` and the CJK ideographs U+4E00 to U+9FFF besides
//! their punctuation; a delete checks only that keys are present, as documented.
//!
//! The reads: one stream's tags, the project's keys with their values, and
//! `resource_instances/action` (filter or count streams by tag and name).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::openapi::{op, Routes};
use super::{
    json_reply, json_response, message, single_tag, status, tag_matches, tags_json, ApiError,
    AppState, Dialect, JsonBody, KeyValuesBody, ProjectCaller, WireTag, WireTagMatch,
};
use crate::core::providers::DIS_STREAM;
use crate::core::query::{number_or_string, FilterLimits, TagMatch};
use crate::core::tagging::TagChange;
use crate::core::tags::{Letters, TagRules, TextRule};
use crate::core::{CoreError, Reason};
use utoipa::openapi::schema::Type;

/// The page's rules: keys 1 to 36 of `A-Z a-z 0-9 - _` and CJK; values up to 43 of
/// `A-Z a-z 0-9 . - _` and CJK.
pub const RULES: TagRules = TagRules {
    key: TextRule {
        min_chars: 1,
        max_chars: 36,
        letters: Letters::AsciiAndCjk,
        extra: "-_",
        trimmed: false,
        reserved_prefix: None,
    },
    value: TextRule {
        min_chars: 0,
        max_chars: 43,
        letters: Letters::AsciiAndCjk,
        extra: ".-_",
        trimmed: false,
        reserved_prefix: None,
    },
    max_tags_per_request: 20,
};

pub struct Dis;

impl single_tag::TaggedResource for Dis {
    const RESOURCE_TYPE: &'static str = DIS_STREAM;
    const ID_PARAM: &'static str = "stream_id";
    const RULES: TagRules = RULES;

    /// DIS deletes by key and value without checking them against its create rules.
    fn remove_change(tags: &[WireTag]) -> Result<TagChange, CoreError> {
        Ok(TagChange::Remove(
            RULES.lenient_selectors(tags.iter().map(WireTag::selector))?,
        ))
    }
}

type DisError = ApiError<Dis>;

impl Dialect for Dis {
    fn error_response(err: &CoreError) -> Response {
        json_response(
            status(err),
            &json!({ "error_code": code(err), "error_msg": message(err) }),
        )
    }
}

/// DIS's published codes where one fits; every variant named.
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
        | CoreError::Timeout { .. } => "DIS.4200",
        CoreError::Unauthenticated { .. } => "APIGW.0301",
        CoreError::Forbidden { .. } => "APIGW.0302",
        CoreError::NotFound { .. } => "DIS.4301",
        CoreError::Internal(_) | CoreError::Unexpected { .. } => "DIS.5000",
    }
}

/// DIS's routes, each with its description in the OpenAPI document.
pub fn routes() -> Routes {
    const ONE: &str = "/v2/{project_id}/stream/{stream_id}/tags";
    Routes::new("DIS", "FlatError")
        .post(
            "/v2/{project_id}/stream/{stream_id}/tags/action",
            single_tag::action::<Dis>,
            op(
                "BatchCreateDeleteTags",
                "Create or delete one stream's tags",
            )
            .body::<single_tag::ActionBody>()
            .no_content(),
        )
        // `DELETE .../tags/action` is the single-tag delete of a tag whose key is "action".
        .delete(
            "/v2/{project_id}/stream/{stream_id}/tags/action",
            single_tag::delete::<Dis>,
            op(
                "DeleteStreamTagAction",
                "Delete the tag whose key is \"action\"",
            )
            .no_content(),
        )
        .post(
            ONE,
            single_tag::create::<Dis>,
            op("CreateTag", "Add one tag to a stream")
                .body::<single_tag::OneTagBody>()
                .no_content(),
        )
        .get(
            ONE,
            single_tag::read::<Dis>,
            op("ListTags", "One stream's tags").returns(&[("tags", Type::Array)]),
        )
        .get(
            "/v2/{project_id}/stream/tags",
            project_tags,
            op(
                "ListResourcesByTags",
                "The keys in use on the project's streams, with values",
            )
            .returns(&[("tags", Type::Array)]),
        )
        .post(
            "/v2/{project_id}/stream/resource_instances/action",
            filter,
            op(
                "ListResourceByTags",
                "Streams that carry tags (action filter), or their count",
            )
            .body::<FilterBody>()
            .returns(&[("total_count", Type::Integer)]),
        )
        .delete(
            "/v2/{project_id}/stream/{stream_id}/tags/{key}",
            single_tag::delete::<Dis>,
            op("DeleteTag", "Delete one tag of a stream").no_content(),
        )
}

// ---------------------------------------------------------------------------------------
// Reads

/// Each tag list of a filter: at most 10 keys with at most 10 values each (the SDK's
/// docstring); keys must be unique and non-empty, values unique within a key.
pub const FILTER_LIMITS: FilterLimits = FilterLimits {
    max_keys: 10,
    max_values: 10,
};

/// The most streams one filter page returns, and its default size.
pub const MAX_FILTER_LIMIT: u64 = 1000;

/// The largest offset accepted (the store's own bound); past the end a page is empty.
const MAX_OFFSET: u64 = i64::MAX as u64;

/// The one field `matches` may name.
const RESOURCE_NAME: &str = "resource_name";

/// `GET /v2/{project_id}/stream/tags`: every key in use on the project's streams with
/// its values, keys and values sorted. The call has no paging.
async fn project_tags(
    caller: ProjectCaller<Dis>,
    State(state): State<AppState>,
) -> Result<Response, DisError> {
    let listing = state.tagging.key_values(&caller.scope(DIS_STREAM)).await?;
    Ok(json_reply(
        StatusCode::OK,
        &KeyValuesBody {
            tags: &listing.items,
        },
    ))
}

/// `ListResourceInstancesReq`. The SDK types `limit`, `offset` and `matches` as strings;
/// numbers (and a `matches` array) are accepted too.
#[derive(Deserialize, ToSchema)]
struct FilterBody {
    #[schema(value_type = super::openapi::FilterAction)]
    action: String,
    #[serde(default)]
    limit: Option<serde_json::Value>,
    #[serde(default)]
    offset: Option<serde_json::Value>,
    #[serde(default)]
    tags: Option<Vec<WireTagMatch>>,
    #[serde(default)]
    tags_any: Option<Vec<WireTagMatch>>,
    #[serde(default)]
    not_tags: Option<Vec<WireTagMatch>>,
    #[serde(default)]
    not_tags_any: Option<Vec<WireTagMatch>>,
    #[serde(default)]
    matches: Option<serde_json::Value>,
}

/// One search condition of a structured `matches`.
#[derive(Deserialize, ToSchema)]
#[schema(as = DisMatch)]
struct WireMatch {
    key: String,
    value: String,
}

/// One filter list, checked against the limits and, as DIS documents, for a value
/// repeated within a key.
fn filter_list(
    field: &'static str,
    raw: Option<&[WireTagMatch]>,
) -> Result<Vec<TagMatch>, CoreError> {
    let list = tag_matches(field, raw, FILTER_LIMITS)?;
    for (i, m) in list.iter().enumerate() {
        let mut seen = std::collections::HashSet::new();
        if let Some(v) = m.values.iter().find(|v| !seen.insert(v.as_str())) {
            return Err(CoreError::invalid(
                format!("{field}[{i}].values"),
                Reason::new(
                    format!("value {v:?} appears more than once"),
                    format!("值{v:?}重复出现"),
                ),
            ));
        }
    }
    Ok(list)
}

/// `matches` as a name filter: a case-sensitive substring of the stream's name.
///
/// The SDK sends a string. A string that parses as a JSON array of `{"key","value"}`
/// objects (or one such object) is read as that structure; so is the structure sent
/// directly. Structured conditions may only name `resource_name`, once. Any other
/// string is the substring itself; an empty one filters nothing.
fn name_filter(raw: Option<&serde_json::Value>) -> Result<Option<String>, CoreError> {
    use serde_json::Value;
    match raw {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            if let Ok(structured @ (Value::Array(_) | Value::Object(_))) =
                serde_json::from_str::<Value>(s)
            {
                return structured_name_filter(structured);
            }
            Ok(Some(s.clone()).filter(|s| !s.is_empty()))
        }
        Some(structured @ (Value::Array(_) | Value::Object(_))) => {
            structured_name_filter(structured.clone())
        }
        Some(other) => Err(CoreError::invalid(
            "matches",
            Reason::new(
                format!("must be a string, got {other}"),
                format!("必须是字符串，实际为{other}"),
            ),
        )),
    }
}

fn structured_name_filter(value: serde_json::Value) -> Result<Option<String>, CoreError> {
    let list = if value.is_object() {
        serde_json::Value::Array(vec![value])
    } else {
        value
    };
    let matches: Vec<WireMatch> = serde_json::from_value(list).map_err(|e| {
        CoreError::invalid(
            "matches",
            Reason::new(
                format!("must be a resource name or a list of {{\"key\", \"value\"}}: {e}"),
                format!("必须是资源名称或{{\"key\", \"value\"}}列表：{e}"),
            ),
        )
    })?;
    let mut name = None;
    for (i, m) in matches.into_iter().enumerate() {
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
        name = Some(m.value);
    }
    Ok(name.filter(|n| !n.is_empty()))
}

/// `POST /v2/{project_id}/stream/resource_instances/action`: `filter` pages the
/// project's streams that satisfy every condition, `count` counts them.
///
/// `tags`: every listed key with one of its values (no values = any value); `tags_any`:
/// at least one; `not_tags`: not all of them; `not_tags_any`: none. `limit` (1 to 1000,
/// default 1000) and `offset` (default 0) are read for `filter` only: the docstring says
/// `count` has no such parameters, so it ignores them.
async fn filter(
    caller: ProjectCaller<Dis>,
    State(state): State<AppState>,
    JsonBody(body, ..): JsonBody<Dis, FilterBody>,
) -> Result<Response, DisError> {
    let count_only = match body.action.as_str() {
        "filter" => false,
        "count" => true,
        other => {
            return Err(
                CoreError::invalid("action", Reason::one_of(&["filter", "count"], other)).into(),
            )
        }
    };
    let mut query = caller.query(DIS_STREAM);
    query.all = filter_list("tags", body.tags.as_deref())?;
    query.any = filter_list("tags_any", body.tags_any.as_deref())?;
    query.not_all = filter_list("not_tags", body.not_tags.as_deref())?;
    query.none = filter_list("not_tags_any", body.not_tags_any.as_deref())?;
    query.name_contains = name_filter(body.matches.as_ref())?;
    if count_only {
        let total = state.tagging.count(&query).await?;
        return Ok(json_response(
            StatusCode::OK,
            &json!({ "total_count": total }),
        ));
    }
    let limit = number_or_string(
        "limit",
        body.limit.as_ref(),
        MAX_FILTER_LIMIT,
        1,
        MAX_FILTER_LIMIT,
    )?;
    let offset = number_or_string("offset", body.offset.as_ref(), 0, 0, MAX_OFFSET)?;
    let page = state.tagging.find(&query, offset, limit).await?;
    let resources: Vec<serde_json::Value> = page
        .resources
        .iter()
        .map(|found| {
            json!({
                "resource_id": found.resource.at.resource_id,
                "resource_name": found.resource.name,
                "resource_detail": {},
                "tags": tags_json(&found.tags),
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "resources": resources, "total_count": page.total_count }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_is_a_name_or_a_list_of_conditions() {
        let name = |v: serde_json::Value| name_filter(Some(&v)).ok().flatten();
        assert_eq!(name(json!("web")), Some("web".into()));
        assert_eq!(name(json!("")), None);
        assert_eq!(
            name(json!(r#"[{"key":"resource_name","value":"web"}]"#)),
            Some("web".into())
        );
        assert_eq!(
            name(json!(r#"{"key":"resource_name","value":"web"}"#)),
            Some("web".into())
        );
        assert_eq!(
            name(json!([{"key": "resource_name", "value": "web"}])),
            Some("web".into())
        );
        // Not JSON: the text itself.
        assert_eq!(name(json!("[web")), Some("[web".into()));
        assert!(name_filter(Some(&json!(r#"[{"key":"id","value":"x"}]"#))).is_err());
        assert!(name_filter(Some(&json!(r#"[1]"#))).is_err());
        assert!(name_filter(Some(&json!(3))).is_err());
        assert!(name_filter(Some(&json!(
            [{"key": "resource_name", "value": "a"}, {"key": "resource_name", "value": "b"}]
        )))
        .is_err());
    }
}
