//! TMS's predefined tags (the domain's catalogue of approved pairs) and its quotas.

use super::*;
use crate::core::predefined;

#[derive(Deserialize, ToSchema)]
pub(super) struct PredefinedActionBody {
    #[schema(value_type = crate::api::openapi::TagAction)]
    pub(super) action: String,
    pub(super) tags: Vec<CreateTagBody>,
}

#[derive(Deserialize, ToSchema)]
pub(super) struct ReplaceBody {
    pub(super) new_tag: CreateTagBody,
    pub(super) old_tag: CreateTagBody,
}

/// Predefined tags are the domain's; a project-scoped token may not change them.
pub(super) async fn predefined_action(
    State(state): State<AppState>,
    Authed(principal, ..): Authed<Tms>,
    JsonBody(body, ..): JsonBody<Tms, PredefinedActionBody>,
) -> Result<Response, TmsError> {
    principal.require_domain_scope()?;
    let tags = RULES.pairs(body.tags.iter().map(|t| (t.key.as_str(), t.value.as_str())))?;
    match body.action.as_str() {
        "create" => {
            state
                .tagging
                .add_predefined(&principal.domain.id, &tags)
                .await?
        }
        "delete" => {
            state
                .tagging
                .remove_predefined(&principal.domain.id, &tags)
                .await?
        }
        other => {
            return Err(
                CoreError::invalid("action", Reason::one_of(&["create", "delete"], other)).into(),
            )
        }
    }
    Ok(axum::response::IntoResponse::into_response(
        StatusCode::NO_CONTENT,
    ))
}

pub(super) async fn replace_predefined(
    State(state): State<AppState>,
    Authed(principal, ..): Authed<Tms>,
    JsonBody(body, ..): JsonBody<Tms, ReplaceBody>,
) -> Result<Response, TmsError> {
    principal.require_domain_scope()?;
    let one = |t: &CreateTagBody| -> Result<_, CoreError> {
        Ok(RULES
            .tags(std::iter::once((t.key.as_str(), t.value.as_str())))?
            .remove(0))
    };
    let (old, new) = (one(&body.old_tag)?, one(&body.new_tag)?);
    state
        .tagging
        .replace_predefined(&principal.domain.id, &old, &new)
        .await?;
    Ok(axum::response::IntoResponse::into_response(
        StatusCode::NO_CONTENT,
    ))
}

/// `GET /v1.0/predefine_tags`: `marker` is the position of the next page (as the last
/// response gave it); the last page is the one with no tags.
pub(super) async fn list_predefined(
    State(state): State<AppState>,
    Authed(principal, ..): Authed<Tms>,
    QueryMap(query): QueryMap,
) -> Result<Response, TmsError> {
    let limit = query_number(&query, "limit", 10, 0, 1000)?;
    let offset = match query.get("marker").filter(|m| !m.is_empty()) {
        None => 0,
        Some(m) => m.parse::<usize>().map_err(|_| {
            CoreError::invalid(
                "marker",
                Reason::new(
                    "is not a marker this API returned",
                    "不是本接口返回的marker",
                ),
            )
        })?,
    };
    let (order, descending) = predefined::Listing::order(
        query.get("order_field").map(String::as_str),
        query.get("order_method").map(String::as_str),
    )?;
    let listing = predefined::Listing {
        key: query.get("key").filter(|k| !k.is_empty()).cloned(),
        value: query.get("value").filter(|v| !v.is_empty()).cloned(),
        order,
        descending,
        offset,
        limit: (limit > 0).then_some(limit),
    };
    let (page, total) = state
        .tagging
        .predefined(&principal.domain.id, &listing)
        .await?;
    let next = offset + page.len();
    let tags: Vec<_> = page
        .iter()
        .map(|t| json!({ "key": t.key, "value": t.value, "update_time": rfc3339(t.updated_at) }))
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "marker": next.to_string(), "total_count": total, "tags": tags }),
    ))
}

pub(super) fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// `GET /v1.0/tms/quotas`: the predefined-tag quota and its use.
pub(super) async fn show_quotas(
    State(state): State<AppState>,
    Authed(principal, ..): Authed<Tms>,
) -> Result<Response, TmsError> {
    let listing = predefined::Listing {
        key: None,
        value: None,
        order: predefined::OrderField::Key,
        descending: false,
        offset: 0,
        limit: Some(0),
    };
    let (_, used) = state
        .tagging
        .predefined(&principal.domain.id, &listing)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "quotas": [{
            "quota_key": "predefine_tag",
            "quota_limit": predefined::MAX_PER_DOMAIN,
            "used": used,
            "unit": "",
        }]}),
    ))
}
