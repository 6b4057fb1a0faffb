//! tagd's own administration API: the resource inventory, for automation that keeps
//! tagd in step with real infrastructure. Guarded by an administrator's token and
//! confined to that administrator's domain.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::openapi::{op, Routes};
use super::{
    json_response, message, query_number, status, ApiError, AppState, Authed, Dialect, JsonBody,
    QueryMap,
};
use crate::core::admin::{parse_resource_csv, ResourceSpec};
use crate::core::port::ResourceFilter;
use crate::core::{CoreError, Reason};
use utoipa::openapi::schema::Type;

pub struct TagdAdmin;

type AdminError = ApiError<TagdAdmin>;

impl Dialect for TagdAdmin {
    fn error_response(err: &CoreError) -> Response {
        json_response(
            status(err),
            &json!({ "error_code": code(err), "error_msg": message(err) }),
        )
    }
}

/// tagd's own API has no published codes to match: its code is the status, `TAGD.0404`.
fn code(err: &CoreError) -> String {
    format!("TAGD.0{}", status(err).as_u16())
}

/// Most resources one admin call may name; larger imports go through the CLI.
pub const MAX_RESOURCES_PER_CALL: usize = 10_000;

/// The admin API's routes, each with its description in the OpenAPI document.
pub fn routes() -> Routes {
    Routes::new("Admin", "FlatError")
        .get(
            "/tagd/v1/resources",
            list,
            op("TagdListResources", "The domain's registered resources")
                .query("project_id", "only this project")
                .query("resource_type", "only this type")
                .query("limit", "page size, 0 to 10000")
                .query("offset", "where the page starts")
                .returns(&[("resources", Type::Array)]),
        )
        .post(
            "/tagd/v1/resources",
            register,
            // Also `text/csv` with the header project_id,resource_type,resource_id,name.
            op(
                "TagdRegisterResources",
                "Register resources that can then be tagged",
            )
            .body::<ResourcesBody>()
            .returns(&[("registered", Type::Integer), ("updated", Type::Integer)]),
        )
        .post(
            "/tagd/v1/resources/delete",
            remove,
            op(
                "TagdRemoveResources",
                "Remove registered resources and their tags",
            )
            .body::<ResourcesBody>()
            .returns(&[("removed", Type::Integer)]),
        )
}

#[derive(Deserialize, ToSchema)]
struct ResourcesBody {
    resources: Vec<ResourceSpec>,
}

/// The resources of a register or remove call: `{"resources": [...]}` as JSON, or a
/// CSV file (`Content-Type: text/csv`) with the header
/// `project_id,resource_type,resource_id,name`.
struct Specs(Vec<ResourceSpec>);

impl axum::extract::FromRequest<AppState> for Specs {
    type Rejection = AdminError;

    async fn from_request(
        req: axum::extract::Request,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let is_csv = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/csv"));
        if !is_csv {
            let JsonBody(body, ..) =
                JsonBody::<TagdAdmin, ResourcesBody>::from_request(req, state).await?;
            return Ok(Self(body.resources));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    CoreError::BodyTooLarge {
                        limit: state.max_body_bytes,
                    }
                } else {
                    CoreError::MalformedBody {
                        detail: Reason::new(rejection.body_text(), "读取请求体失败"),
                    }
                }
            })?;
        let text = std::str::from_utf8(&bytes).map_err(|_| CoreError::MalformedBody {
            detail: Reason::new("the CSV is not UTF-8", "CSV不是UTF-8编码"),
        })?;
        Ok(Self(parse_resource_csv(text)?))
    }
}

fn check_size(specs: &[ResourceSpec]) -> Result<(), CoreError> {
    if specs.is_empty() {
        return Err(CoreError::Empty { field: "resources" });
    }
    if specs.len() > MAX_RESOURCES_PER_CALL {
        return Err(CoreError::TooMany {
            field: "resources",
            max: MAX_RESOURCES_PER_CALL,
            got: specs.len(),
        });
    }
    Ok(())
}

async fn register(
    State(state): State<AppState>,
    Authed(caller, ..): Authed<TagdAdmin>,
    Specs(resources): Specs,
) -> Result<Response, AdminError> {
    caller.require_domain_admin()?;
    check_size(&resources)?;
    let created = state.admin.register(&caller.domain, &resources).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "registered": created, "updated": resources.len() - created }),
    ))
}

async fn remove(
    State(state): State<AppState>,
    Authed(caller, ..): Authed<TagdAdmin>,
    Specs(resources): Specs,
) -> Result<Response, AdminError> {
    caller.require_domain_admin()?;
    check_size(&resources)?;
    let removed = state.admin.remove(&caller.domain, &resources).await?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "removed": removed }),
    ))
}

async fn list(
    State(state): State<AppState>,
    Authed(caller, ..): Authed<TagdAdmin>,
    QueryMap(query): QueryMap,
) -> Result<Response, AdminError> {
    caller.require_domain_admin()?;
    let filter = ResourceFilter {
        domain_id: Some(caller.domain.id.clone()),
        project_id: query.get("project_id").cloned(),
        resource_type: query.get("resource_type").cloned(),
        limit: Some(query_number(&query, "limit", 1000, 0, 10_000)?),
        offset: query_number(&query, "offset", 0, 0, usize::MAX)?,
    };
    let resources = state.admin.list(&filter).await?;
    let resources: Vec<_> = resources
        .iter()
        .map(|r| {
            json!({
                "project_id": r.at.project_id,
                "resource_type": r.at.resource_type,
                "resource_id": r.at.resource_id,
                "name": r.name,
            })
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({ "resources": resources }),
    ))
}
