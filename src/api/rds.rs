//! RDS DB instances (seed 003): `tags/action` creates or deletes tags of one instance;
//! the reads of the SDK (`RdsClient`): one instance's tags, the project's tags, the
//! the domain's predefined tags, and `ListInstances` with its `tags=` filter.
//!
//! Errors are flat `error_code`/`error_msg`, and `error_msg` speaks the language of the
//! request's `X-Language` (`en-us`, the default, or `zh-cn`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::openapi::{op, Routes};
use super::{
    json_reply, json_response, key_values_json, query_number, status, tags_json, ApiError,
    AppState, Dialect, KeyValuesBody, ProjectCaller, QueryMap, WireTag,
};
use super::{language, single_tag};
use crate::core::providers::RDS_INSTANCE;
use crate::core::query::{Found, TagMatch};
use crate::core::tagging::TagChange;
use crate::core::tags::{Letters, TagRules, TextRule};
use crate::core::{CoreError, Reason};
use utoipa::openapi::schema::Type;

/// The page's rules: keys of letters, digits, `_` and `-`, 1 to 36 characters, not a
/// space; values of letters, digits, `_`, `.` and `-`, up to 43 characters, possibly
/// empty but not a space.
pub const RULES: TagRules = TagRules {
    key: TextRule {
        min_chars: 1,
        max_chars: 36,
        letters: Letters::Unicode,
        extra: "_-",
        trimmed: true,
        reserved_prefix: None,
    },
    value: TextRule {
        min_chars: 0,
        max_chars: 43,
        letters: Letters::Unicode,
        extra: "_.-",
        trimmed: true,
        reserved_prefix: None,
    },
    max_tags_per_request: 20,
};

pub struct Rds;

impl single_tag::TaggedResource for Rds {
    const RESOURCE_TYPE: &'static str = RDS_INSTANCE;
    const ID_PARAM: &'static str = "instance_id";
    const RULES: TagRules = RULES;
    const TAG_TYPE: Option<&'static str> = Some("user");

    /// The value is mandatory when creating (and may be empty).
    fn set_change(tags: &[WireTag]) -> Result<TagChange, CoreError> {
        if let Some(i) = tags.iter().position(|t| t.value.is_none()) {
            return Err(CoreError::invalid(
                format!("tags[{i}].value"),
                Reason::required(),
            ));
        }
        Ok(TagChange::Set(RULES.tags(tags.iter().map(WireTag::pair))?))
    }
}

type RdsError = ApiError<Rds>;

impl Dialect for Rds {
    fn error_response(err: &CoreError) -> Response {
        json_response(
            status(err),
            &json!({ "error_code": code(err), "error_msg": language::current().message(err) }),
        )
    }
}

/// RDS's published codes (its "Error Codes" page) where one fits; every variant named.
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
        | CoreError::Timeout { .. } => "DBS.200001",
        CoreError::TagLimitExceeded { .. } => "DBS.200087",
        CoreError::Unauthenticated { .. } => "APIGW.0301",
        CoreError::Forbidden { .. } => "DBS.200010",
        CoreError::NotFound { .. } => "DBS.200002",
        CoreError::Internal(_) | CoreError::Unexpected { .. } => "DBS.108000",
    }
}

/// RDS's routes, each with its description in the OpenAPI document.
pub fn routes() -> Routes {
    Routes::new("RDS", "FlatError")
        .post(
            "/v3/{project_id}/instances/{instance_id}/tags/action",
            single_tag::action::<Rds>,
            op("BatchTagAction", "Create or delete one instance's tags")
                .body::<single_tag::ActionBody>()
                .no_content(),
        )
        .get(
            "/v3/{project_id}/instances/{instance_id}/tags",
            single_tag::read::<Rds>,
            op("ListInstanceTags", "One instance's tags").returns(&[("tags", Type::Array)]),
        )
        .get(
            "/v3/{project_id}/tags",
            project_tags,
            op(
                "ListProjectTags",
                "The keys in use on the project's instances, with values",
            )
            .returns(&[("tags", Type::Array)]),
        )
        .get(
            "/v3/{project_id}/tags/predefined-tag",
            predefined_tags,
            op("ListPredefinedTags", "The domain's predefined tags")
                .returns(&[("tags", Type::Array)]),
        )
        .get(
            "/v3/{project_id}/instances",
            list_instances,
            op("ListInstances", "The project's instances")
                .query("offset", "where the page starts")
                .query("limit", "page size, 1 to 100")
                .query("tags", "key=value pairs, comma-separated; all must match")
                .query("id", "exact id, or *part")
                .query("name", "exact name, or *part")
                .returns(&[("instances", Type::Array), ("total_count", Type::Integer)]),
        )
}

/// `GET .../tags`: every key the project's instances carry, with its values, sorted.
async fn project_tags(
    caller: ProjectCaller<Rds>,
    State(state): State<AppState>,
) -> Result<Response, RdsError> {
    let listing = state
        .tagging
        .key_values(&caller.scope(RDS_INSTANCE))
        .await?;
    Ok(json_reply(
        StatusCode::OK,
        &KeyValuesBody {
            tags: &listing.items,
        },
    ))
}

/// `GET .../tags/predefined-tag`: the domain's predefined tags (managed through TMS),
/// grouped by key.
async fn predefined_tags(
    caller: ProjectCaller<Rds>,
    State(state): State<AppState>,
) -> Result<Response, RdsError> {
    let kvs = state
        .tagging
        .predefined_key_values(&caller.principal.domain.id)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "tags": key_values_json(&kvs) }),
    ))
}

/// At most this many `key=value` pairs in `tags=` (the SDK's docstring).
const MAX_TAG_PAIRS: usize = 10;
/// The docstring's lengths of a key and a value in `tags=`.
const MAX_FILTER_KEY_CHARS: usize = 127;
const MAX_FILTER_VALUE_CHARS: usize = 255;
/// Characters a key or value of `tags=` may not contain.
const FILTER_FORBIDDEN: &[char] = &['+', '/', '?', '#', '&', '=', ',', '%'];

/// Parses `tags=k1=v1,k2=`: comma-separated `key=value` pairs, each trimmed of spaces,
/// every one required (AND); an empty value means any value. Keys are non-empty and
/// distinct; neither part may hold `+/?#&=,%`.
fn parse_tag_filter(raw: &str) -> Result<Vec<TagMatch>, CoreError> {
    let pairs: Vec<&str> = raw.split(',').collect();
    if pairs.len() > MAX_TAG_PAIRS {
        return Err(CoreError::TooMany {
            field: "tags",
            max: MAX_TAG_PAIRS,
            got: pairs.len(),
        });
    }
    let mut out: Vec<TagMatch> = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            let shown = shortened(pair);
            return Err(CoreError::invalid(
                "tags",
                Reason::new(
                    format!("{shown:?} is not a key=value pair"),
                    format!("{shown:?}不是key=value形式的键值对"),
                ),
            ));
        };
        let (key, value) = (key.trim_matches(' '), value.trim_matches(' '));
        check_filter_text(key, true)?;
        check_filter_text(value, false)?;
        if out.iter().any(|m| m.key == key) {
            return Err(CoreError::invalid(
                "tags",
                Reason::new(
                    format!("key {key:?} is given more than once"),
                    format!("键{key:?}重复出现"),
                ),
            ));
        }
        out.push(TagMatch {
            key: key.to_owned(),
            values: if value.is_empty() {
                Vec::new()
            } else {
                vec![value.to_owned()]
            },
        });
    }
    Ok(out)
}

/// Checks a key (`is_key`) or value of `tags=`: its length and characters.
fn check_filter_text(text: &str, is_key: bool) -> Result<(), CoreError> {
    let (min, max, en, zh) = if is_key {
        (1, MAX_FILTER_KEY_CHARS, "key", "键")
    } else {
        (0, MAX_FILTER_VALUE_CHARS, "value", "值")
    };
    let chars = text.chars().count();
    let problem = if !(min..=max).contains(&chars) {
        Reason::length(min, max, chars)
    } else if let Some(c) = text
        .chars()
        .find(|c| FILTER_FORBIDDEN.contains(c) || c.is_control())
    {
        Reason::forbidden_char(c)
    } else {
        return Ok(());
    };
    let shown = shortened(text);
    Err(CoreError::invalid(
        "tags",
        Reason::new(
            format!("the {en} {shown:?} {}", problem.en),
            format!("{zh}{shown:?}{}", problem.zh),
        ),
    ))
}

/// A client's text as an error message quotes it: at most 40 characters.
fn shortened(text: &str) -> String {
    text.chars().take(40).collect()
}

/// `id=` or `name=` of `ListInstances`: exact, or a substring after a leading `*`.
enum TextMatch {
    Exact(String),
    Contains(String),
}

impl TextMatch {
    /// An empty parameter is no condition; `*` alone is refused, as the docstring says.
    fn parse(
        query: &std::collections::HashMap<String, String>,
        field: &str,
    ) -> Result<Option<Self>, CoreError> {
        match query.get(field).map(String::as_str) {
            None | Some("") => Ok(None),
            Some("*") => Err(CoreError::invalid(
                field,
                Reason::new("must not be \"*\" alone", "不能只传入\"*\""),
            )),
            Some(raw) => Ok(Some(match raw.strip_prefix('*') {
                Some(part) => TextMatch::Contains(part.to_owned()),
                None => TextMatch::Exact(raw.to_owned()),
            })),
        }
    }
}

/// An instance as `ListInstances` shows it: tagd knows only its id, name and tags, and
/// reports every instance `ACTIVE`.
fn instance_json(found: &Found) -> serde_json::Value {
    json!({
        "id": found.resource.at.resource_id,
        "name": found.resource.name,
        "status": "ACTIVE",
        "tags": tags_json(&found.tags),
    })
}

/// `GET .../instances`: the project's instances ordered by id, filtered by `tags=`
/// (every pair must match), `id=` and `name=` (exact, or a substring after `*`), paged
/// with `offset` (from 0) and `limit` (1 to 100, default 100). The other parameters of
/// the SDK (`type`, `datastore_type`, `eps_id`, `vpc_id`, `subnet_id`, `group_type`)
/// name attributes tagd does not hold; they are accepted and ignored.
async fn list_instances(
    caller: ProjectCaller<Rds>,
    State(state): State<AppState>,
    QueryMap(query): QueryMap,
) -> Result<Response, RdsError> {
    let offset = query_number(&query, "offset", 0, 0, usize::MAX)?;
    let limit = query_number(&query, "limit", 100, 1, 100)?;
    let mut q = caller.query(RDS_INSTANCE);
    if let Some(raw) = query.get("tags") {
        q.all = parse_tag_filter(raw)?;
    }
    let id = TextMatch::parse(&query, "id")?;
    let name = TextMatch::parse(&query, "name")?;
    match name {
        Some(TextMatch::Exact(s)) => q.name_exact = Some(s),
        Some(TextMatch::Contains(s)) => q.name_contains = Some(s),
        None => {}
    }
    match id {
        Some(TextMatch::Exact(s)) => q.id_exact = Some(s),
        Some(TextMatch::Contains(s)) => q.id_contains = Some(s),
        None => {}
    }
    let page = state.tagging.find(&q, offset as u64, limit as u64).await?;
    let (found, total_count) = (page.resources, page.total_count);
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "instances": found.iter().map(instance_json).collect::<Vec<_>>(),
            "total_count": total_count,
        }),
    ))
}
