//! The one-resource calls the per-service APIs share: `GET .../{id}/tags` lists a
//! resource's tags, `POST .../{id}/tags` with `{"tag": {...}}` creates or overwrites one
//! tag, `DELETE .../{id}/tags/{key}` removes one (a missing tag is not an error), and
//! `POST .../{id}/tags/action` creates or deletes several. Each service plugs in its
//! resource type, the name of its id in the path, its tag rules and, where it differs,
//! how `tags/action` turns its tags into a change.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{
    json_reply, ApiError, AppState, Dialect, JsonBody, PathParams, ProjectCaller, TagPair, WireTag,
};
use crate::core::tagging::TagChange;
use crate::core::tags::TagRules;
use crate::core::{CoreError, Reason};

/// A service whose resources take single-tag calls.
pub trait TaggedResource: Dialect {
    const RESOURCE_TYPE: &'static str;
    /// The path parameter naming the resource (`desktop_id`, `stream_id`).
    const ID_PARAM: &'static str;
    const RULES: TagRules;
    /// A `tag_type` to add to each listed tag (RDS's `ResourceTag` has one).
    const TAG_TYPE: Option<&'static str> = None;

    /// The change `tags/action` with `create` makes of its tags.
    fn set_change(tags: &[WireTag]) -> Result<TagChange, CoreError> {
        Ok(TagChange::Set(
            Self::RULES.tags(tags.iter().map(WireTag::pair))?,
        ))
    }

    /// The change `tags/action` with `delete` makes of its tags.
    fn remove_change(tags: &[WireTag]) -> Result<TagChange, CoreError> {
        Ok(TagChange::Remove(
            Self::RULES.selectors(tags.iter().map(WireTag::selector))?,
        ))
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct OneTagBody {
    tag: WireTag,
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ActionBody {
    #[schema(value_type = super::openapi::TagAction)]
    action: String,
    tags: Vec<WireTag>,
}

fn resource_id<S: TaggedResource>(params: &HashMap<String, String>) -> Result<&str, CoreError> {
    params
        .get(S::ID_PARAM)
        .map(String::as_str)
        .ok_or_else(|| CoreError::invalid(S::ID_PARAM, Reason::required()))
}

/// `GET .../{id}/tags`: the resource's tags, sorted by key; an unknown resource is 404.
pub async fn read<S: TaggedResource>(
    caller: ProjectCaller<S>,
    State(state): State<AppState>,
    PathParams(params, ..): PathParams<S, HashMap<String, String>>,
) -> Result<Response, ApiError<S>> {
    let id = resource_id::<S>(&params)?;
    let tags = caller
        .tags_of(&state, S::RESOURCE_TYPE, S::ID_PARAM, id)
        .await?;
    let tags = tags
        .into_iter()
        .map(|t| TagPair {
            tag_type: S::TAG_TYPE,
            ..TagPair::from(t)
        })
        .collect();
    Ok(json_reply(StatusCode::OK, &Listed { tags }))
}

/// The body of `GET .../{id}/tags`.
#[derive(Serialize)]
struct Listed {
    tags: Vec<TagPair>,
}

/// `POST .../{id}/tags/action`: `create` sets the tags (overwriting existing keys),
/// `delete` removes them; all of them or none.
pub async fn action<S: TaggedResource>(
    caller: ProjectCaller<S>,
    State(state): State<AppState>,
    PathParams(params, ..): PathParams<S, HashMap<String, String>>,
    JsonBody(body, ..): JsonBody<S, ActionBody>,
) -> Result<Response, ApiError<S>> {
    let change = match body.action.as_str() {
        "create" => S::set_change(&body.tags)?,
        "delete" => S::remove_change(&body.tags)?,
        other => {
            return Err(
                CoreError::invalid("action", Reason::one_of(&["create", "delete"], other)).into(),
            )
        }
    };
    let id = resource_id::<S>(&params)?;
    caller
        .apply_one(&state, S::RESOURCE_TYPE, S::ID_PARAM, id, change)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST .../{id}/tags`: creates one tag or overwrites its value.
pub async fn create<S: TaggedResource>(
    caller: ProjectCaller<S>,
    State(state): State<AppState>,
    PathParams(params, ..): PathParams<S, HashMap<String, String>>,
    JsonBody(body, ..): JsonBody<S, OneTagBody>,
) -> Result<Response, ApiError<S>> {
    let change = TagChange::Set(S::RULES.tags(std::iter::once(body.tag.pair()))?);
    let id = resource_id::<S>(&params)?;
    caller
        .apply_one(&state, S::RESOURCE_TYPE, S::ID_PARAM, id, change)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE .../{id}/tags/{key}`: removes one tag by key (percent-decoded from the path;
/// on the `.../tags/action` route, where `action` is the key, that word).
pub async fn delete<S: TaggedResource>(
    caller: ProjectCaller<S>,
    State(state): State<AppState>,
    PathParams(params, ..): PathParams<S, HashMap<String, String>>,
) -> Result<Response, ApiError<S>> {
    let key = params.get("key").map_or("action", String::as_str);
    let change = TagChange::Remove(S::RULES.lenient_selectors(std::iter::once((key, None)))?);
    let id = resource_id::<S>(&params)?;
    caller
        .apply_one(&state, S::RESOURCE_TYPE, S::ID_PARAM, id, change)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
