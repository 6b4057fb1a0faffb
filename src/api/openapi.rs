//! The OpenAPI 3.1 document of every route, served at `GET /openapi.json` (issue 9).
//!
//! The document is built by the same calls that build the router, so a route cannot be
//! served without being described: each dialect declares its routes through [`Routes`],
//! whose `get`/`post`/`put`/`delete` add the axum route and its operation together.
//! utoipa's `#[utoipa::path]` was not used for the routes because it ties one handler to
//! one path, and tagd serves the generic single-tag handlers at three dialects' paths;
//! utoipa provides the document model and the `ToSchema` derives.
//!
//! What comes from the code: path parameters are read from the path template; request
//! bodies are the schemas of the very types the handlers deserialize; each dialect's error
//! body is a component schema (the shapes its `Dialect::error_response` writes). Query
//! parameters and success statuses are declared next to the route.

use std::sync::OnceLock;

use axum::body::Bytes;
use axum::handler::Handler;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter};
use axum::Router;
use serde::Serialize;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr,
    Required, ResponseBuilder,
};
use utoipa::{PartialSchema, ToSchema};

use super::AppState;

/// The security scheme of an IAM token in `X-Auth-Token`.
pub const TOKEN_SCHEME: &str = "XAuthToken";
/// The security scheme of an AK/SK signature in `Authorization`.
pub const SIGNATURE_SCHEME: &str = "AkSkSignature";
/// The component schema of the API gateway's flat body (signature failures, rate limits,
/// paths no API owns).
pub const GATEWAY_ERROR: &str = "GatewayError";

/// The error statuses a route of any dialect can answer besides its success: the one
/// status mapping of `CoreError` (`api::status`), less 405 (only for undocumented
/// methods) and 500 (a bug, which the API test looks for).
const ERROR_STATUSES: [StatusCode; 7] = [
    StatusCode::BAD_REQUEST,
    StatusCode::UNAUTHORIZED,
    StatusCode::FORBIDDEN,
    StatusCode::NOT_FOUND,
    StatusCode::REQUEST_TIMEOUT,
    StatusCode::CONFLICT,
    StatusCode::PAYLOAD_TOO_LARGE,
];

/// One dialect's routes and their description, built together.
pub struct Routes {
    router: Router<AppState>,
    paths: Paths,
    schemas: Vec<(String, RefOr<Schema>)>,
    tag: &'static str,
    error_schema: &'static str,
}

impl Routes {
    /// Routes of the dialect documented under `tag`, whose errors have the component
    /// schema `error_schema`.
    pub fn new(tag: &'static str, error_schema: &'static str) -> Self {
        Self {
            router: Router::new(),
            paths: Paths::new(),
            schemas: Vec::new(),
            tag,
            error_schema,
        }
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(self, path: &str, h: H, op: Op) -> Self {
        self.add(HttpMethod::Get, MethodFilter::GET, path, h, op)
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(self, path: &str, h: H, op: Op) -> Self {
        self.add(HttpMethod::Post, MethodFilter::POST, path, h, op)
    }

    pub fn put<H: Handler<T, AppState>, T: 'static>(self, path: &str, h: H, op: Op) -> Self {
        self.add(HttpMethod::Put, MethodFilter::PUT, path, h, op)
    }

    pub fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &str, h: H, op: Op) -> Self {
        self.add(HttpMethod::Delete, MethodFilter::DELETE, path, h, op)
    }

    fn add<H: Handler<T, AppState>, T: 'static>(
        mut self,
        method: HttpMethod,
        filter: MethodFilter,
        path: &str,
        handler: H,
        op: Op,
    ) -> Self {
        // axum merges the method routers of one path, and panics on a method routed twice.
        self.router = self.router.route(path, on(filter, handler));
        self.schemas.extend(op.schemas.iter().cloned());
        let operation = op.build(path, self.tag, self.error_schema);
        self.paths.add_path_operation(path, vec![method], operation);
        self
    }

    /// Both dialects' routes in one.
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.paths.merge(other.paths);
        self.schemas.extend(other.schemas);
        self
    }

    /// The axum router alone, for a dialect's `router()`.
    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}

/// How a caller authenticates to one operation.
#[derive(Clone, Copy)]
enum Auth {
    /// An IAM token or an AK/SK signature.
    Required,
    /// The credentials are in the body (token creation): no security scheme, but the
    /// call counts against the credential's rate limit.
    InBody,
    /// Nothing: the call is public.
    None,
}

/// One operation's description; the route's path and method come from [`Routes`].
pub struct Op {
    id: &'static str,
    summary: &'static str,
    params: Vec<Parameter>,
    body: Option<RefOr<Schema>>,
    body_required: bool,
    schemas: Vec<(String, RefOr<Schema>)>,
    success: StatusCode,
    success_body: bool,
    success_fields: &'static [(&'static str, Type)],
    auth: Auth,
    error_schemas: &'static [&'static str],
    /// Other answers with a JSON body of their own (a probe's 503, say).
    other_answers: Vec<(StatusCode, &'static [(&'static str, Type)])>,
}

/// An operation named `id` (its `operationId` after the API's name; unique in it).
pub fn op(id: &'static str, summary: &'static str) -> Op {
    Op {
        id,
        summary,
        params: Vec::new(),
        body: None,
        body_required: true,
        schemas: Vec::new(),
        success: StatusCode::OK,
        success_body: true,
        success_fields: &[],
        auth: Auth::Required,
        error_schemas: &[],
        other_answers: Vec::new(),
    }
}

impl Op {
    /// An optional query parameter (tagd reads every query parameter as a string, and
    /// numbers from it).
    pub fn query(mut self, name: &str, description: &str) -> Self {
        self.params
            .push(param(name, ParameterIn::Query, false, description));
        self
    }

    /// A query parameter the call cannot do without.
    pub fn required_query(mut self, name: &str, description: &str) -> Self {
        self.params
            .push(param(name, ParameterIn::Query, true, description));
        self
    }

    /// A header parameter.
    pub fn header(mut self, name: &str, required: bool, description: &str) -> Self {
        self.params
            .push(param(name, ParameterIn::Header, required, description));
        self
    }

    /// The JSON body, described by the type the handler deserializes it into.
    pub fn body<T: ToSchema>(mut self) -> Self {
        T::schemas(&mut self.schemas);
        self.body = Some(T::schema());
        self
    }

    /// Adds `T` to the components: utoipa leaves the argument of a generic body out of
    /// the schemas it collects.
    pub fn component<T: ToSchema>(mut self) -> Self {
        self.schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(&mut self.schemas);
        self
    }

    /// The body may be left out.
    pub fn optional_body(mut self) -> Self {
        self.body_required = false;
        self
    }

    /// Success is `status` with a JSON body.
    pub fn answers(mut self, status: StatusCode) -> Self {
        self.success = status;
        self
    }

    /// The top-level fields a success body always has, with their JSON types (the
    /// bodies are built with `json!`, so this is declared, and the API test checks it).
    pub fn returns(mut self, fields: &'static [(&'static str, Type)]) -> Self {
        self.success_fields = fields;
        self
    }

    /// Success is 204 with no body.
    pub fn no_content(mut self) -> Self {
        self.success = StatusCode::NO_CONTENT;
        self.success_body = false;
        self
    }

    /// Credentials in the body, as token creation takes them.
    pub fn credentials_in_body(mut self) -> Self {
        self.auth = Auth::InBody;
        self
    }

    /// No credentials needed.
    pub fn public(mut self) -> Self {
        self.auth = Auth::None;
        self
    }

    /// The operation may also answer `status` with a JSON body having `fields`.
    pub fn or_answers(
        mut self,
        status: StatusCode,
        fields: &'static [(&'static str, Type)],
    ) -> Self {
        self.other_answers.push((status, fields));
        self
    }

    /// Errors have one of these component schemas rather than the dialect's usual one.
    pub fn errors(mut self, schemas: &'static [&'static str]) -> Self {
        self.error_schemas = schemas;
        self
    }

    fn build(self, path: &str, tag: &str, dialect_error: &'static str) -> Operation {
        let errors: Vec<&str> = if self.error_schemas.is_empty() {
            vec![dialect_error]
        } else {
            self.error_schemas.to_vec()
        };
        let any_of = |names: &[&str]| -> RefOr<Schema> {
            match names {
                [one] => Ref::from_schema_name(*one).into(),
                _ => names
                    .iter()
                    .fold(AnyOfBuilder::new(), |b, n| {
                        b.item(Ref::from_schema_name(*n))
                    })
                    .into(),
            }
        };
        let mut operation = OperationBuilder::new()
            // The SDKs' operation names, prefixed by the API: several APIs have a
            // `ListTags`.
            .operation_id(Some(format!("{tag}.{}", self.id)))
            .summary(Some(self.summary))
            .tag(tag);
        for name in path_params(path) {
            operation = operation.parameter(param(name, ParameterIn::Path, true, ""));
        }
        for p in self.params {
            operation = operation.parameter(p);
        }
        if let Some(schema) = self.body {
            operation = operation.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(if self.body_required {
                        Required::True
                    } else {
                        Required::False
                    }))
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(schema)).build(),
                    )
                    .build(),
            ));
        }
        let reason = |s: StatusCode| s.canonical_reason().unwrap_or("error");
        let with_fields = |status: StatusCode, fields: &[(&'static str, Type)]| {
            let body = fields.iter().fold(
                ObjectBuilder::new().schema_type(Type::Object),
                |body, (name, kind)| {
                    body.property(*name, ObjectBuilder::new().schema_type(kind.clone()))
                        .required(*name)
                },
            );
            ResponseBuilder::new().description(reason(status)).content(
                "application/json",
                ContentBuilder::new().schema(Some(body)).build(),
            )
        };
        let success = if self.success_body {
            with_fields(self.success, self.success_fields)
        } else {
            ResponseBuilder::new().description(reason(self.success))
        };
        operation = operation.response(self.success.as_str(), success);
        for (status, fields) in &self.other_answers {
            operation = operation.response(status.as_str(), with_fields(*status, fields));
        }
        for status in ERROR_STATUSES {
            let schema = if status == StatusCode::UNAUTHORIZED && !errors.contains(&GATEWAY_ERROR) {
                // A bad token is refused by the service in its body; a bad signature by
                // the gateway, before the request reaches any service.
                let mut with_gateway = errors.clone();
                with_gateway.push(GATEWAY_ERROR);
                any_of(&with_gateway)
            } else {
                any_of(&errors)
            };
            operation = operation.response(
                status.as_str(),
                ResponseBuilder::new().description(reason(status)).content(
                    "application/json",
                    ContentBuilder::new().schema(Some(schema)).build(),
                ),
            );
        }
        if let Auth::Required | Auth::InBody = self.auth {
            operation = operation.response(
                StatusCode::TOO_MANY_REQUESTS.as_str(),
                ResponseBuilder::new()
                    .description("rate limit reached; see Retry-After")
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name(GATEWAY_ERROR)))
                            .build(),
                    ),
            );
        }
        if let Auth::Required = self.auth {
            operation = operation
                .security(SecurityRequirement::new(TOKEN_SCHEME, Vec::<String>::new()))
                .security(SecurityRequirement::new(
                    SIGNATURE_SCHEME,
                    Vec::<String>::new(),
                ));
        }
        operation.build()
    }
}

fn param(name: &str, at: ParameterIn, required: bool, description: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(at)
        .required(if required {
            Required::True
        } else {
            Required::False
        })
        .description((!description.is_empty()).then_some(description))
        .schema(Some(String::schema()))
        .build()
}

/// The `{name}` segments of an axum path template, in order.
fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// The `action` of a `tags/action` body (the handlers match the string and refuse any
/// other with 400); a field documented with it keeps `String` as its Rust type.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum TagAction {
    Create,
    Delete,
}

/// The `action` of a `resource_instances/action` body.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum FilterAction {
    Filter,
    Count,
}

// The error bodies, as each dialect's `error_response` writes them. They mirror
// `json!` literals in the dialects; the API test (tests/openapi/run.sh) checks every
// answer against them, and `tests/api/openapi.rs` checks one of each.

/// TMS: the error nested under `error`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TmsError {
    pub error: FlatError,
}

/// RDS, DIS and tagd's admin API: a flat code and message.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlatError {
    pub error_code: String,
    pub error_msg: String,
}

/// The API gateway's body: signature failures (401 `APIGW.0301`), rate limits (429
/// `APIGW.0308`) and paths no API owns (`APIGW.0101`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GatewayError {
    pub error_code: String,
    pub error_msg: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub request_id: Option<String>,
}

/// Workspace: flat, with what to do about it in `error_detail`; a 403 adds the reason
/// hex-encoded, where the cloud puts an encrypted one.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceError {
    pub error_code: String,
    pub error_msg: String,
    pub error_detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub encoded_authorization_message: Option<String>,
}

/// DataArts Fabric: flat with `solution_msg`; a 403 comes from the gateway's policy
/// check in a Keystone-like shape with a numeric `error_code`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum FabricError {
    Service(FabricServiceError),
    Denied(FabricDenied),
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FabricServiceError {
    pub error_code: String,
    pub error_msg: String,
    pub solution_msg: String,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FabricDenied {
    pub error: KeystoneError<String>,
    pub error_code: u16,
    pub error_msg: String,
    pub title: String,
}

/// Keystone's nested error; IAM writes the status as a number, Fabric's 403 as a string.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeystoneError<C> {
    pub code: C,
    pub message: String,
    pub title: String,
}

/// IAM: Keystone's nested body plus the flat pair Huawei's IAM adds.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IamError {
    pub error: KeystoneError<u16>,
    pub error_code: String,
    pub error_msg: String,
}

/// The component schemas of the error bodies, by the names the dialects use.
fn error_schemas() -> Vec<(String, RefOr<Schema>)> {
    let mut schemas = Vec::new();
    let mut named = |name: &str, schema: RefOr<Schema>| schemas.push((name.to_owned(), schema));
    named("TmsError", TmsError::schema());
    named("FlatError", FlatError::schema());
    named(GATEWAY_ERROR, GatewayError::schema());
    named("WorkspaceError", WorkspaceError::schema());
    named("FabricError", FabricError::schema());
    named("FabricServiceError", FabricServiceError::schema());
    named("FabricDenied", FabricDenied::schema());
    named("IamError", IamError::schema());
    let mut nested = Vec::new();
    TmsError::schemas(&mut nested);
    FabricError::schemas(&mut nested);
    IamError::schemas(&mut nested);
    schemas.extend(nested);
    schemas
}

/// Every route of the public port, described.
fn routes() -> Routes {
    Routes::new("tagd", GATEWAY_ERROR)
        .get(
            "/openapi.json",
            openapi_json,
            op("ShowOpenApi", "This document").public(),
        )
        .merge(super::tms::routes())
        .merge(super::iam::routes())
        .merge(super::admin::routes())
        .merge(super::workspace::routes())
        .merge(super::fabric::routes())
        .merge(super::rds::routes())
        .merge(super::dis::routes())
        .merge(super::health::routes())
}

/// The router of every dialect, `/openapi.json` included.
pub fn router() -> Router<AppState> {
    routes().into_router()
}

/// The document, with component schemas that two different types named alike would
/// make ambiguous listed as conflicts (a test requires there be none).
pub fn document_and_conflicts() -> (OpenApi, Vec<String>) {
    let routes = routes();
    let mut components = ComponentsBuilder::new()
        .security_scheme(
            TOKEN_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Auth-Token",
                "An IAM token from POST /v3/auth/tokens (its X-Subject-Token header).",
            ))),
        )
        .security_scheme(
            SIGNATURE_SCHEME,
            // Replaced in `document()` by HTTP authentication with the SDKs' own scheme
            // name, which utoipa's model cannot express; as an API key the fuzzer would
            // fill `Authorization` with junk on every request.
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("Authorization"))),
        );
    let mut seen: Vec<(String, serde_json::Value)> = Vec::new();
    let mut conflicts = Vec::new();
    for (name, schema) in error_schemas().into_iter().chain(routes.schemas) {
        let json = serde_json::to_value(&schema).unwrap_or_default();
        match seen.iter().find(|(n, _)| *n == name) {
            Some((_, earlier)) if *earlier != json => conflicts.push(name),
            Some(_) => {}
            None => {
                seen.push((name.clone(), json));
                components = components.schema(name, schema);
            }
        }
    }
    let tag = |name: &str, about: &str| {
        TagBuilder::new()
            .name(name)
            .description(Some(about))
            .build()
    };
    let document = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("tagd")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(env!("CARGO_PKG_DESCRIPTION")))
                .build(),
        )
        .paths(routes.paths)
        .components(Some(components.build()))
        .tags(Some(vec![
            tag("tagd", "This document"),
            tag(
                "TMS",
                "Tag Management Service: batch tagging across services",
            ),
            tag("IAM", "IAM-compatible tokens, projects and access keys"),
            tag(
                "Admin",
                "tagd's administration: the resources that can be tagged",
            ),
            tag("Workspace", "Workspace desktops' tags"),
            tag("Fabric", "DataArts Fabric workspaces' tags"),
            tag("RDS", "RDS instances' tags"),
            tag("DIS", "DIS streams' tags"),
        ]))
        .build();
    (document, conflicts)
}

/// The document tagd serves, as JSON.
pub fn document() -> serde_json::Value {
    let mut json = serde_json::to_value(document_and_conflicts().0).unwrap_or_default();
    json["components"]["securitySchemes"][SIGNATURE_SCHEME] = serde_json::json!({
        "type": "http",
        "scheme": "SDK-HMAC-SHA256",
        "description": "An AK/SK signature, as the Huawei Cloud SDKs sign: \
            `Authorization: SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<names>, \
            Signature=<hex>` over the canonical request, with `X-Sdk-Date` (and \
            `X-Security-Token` for a temporary key).",
    });
    json
}

/// Served without credentials: the cloud publishes its API reference openly, and the
/// document holds nothing but what the code declares.
async fn openapi_json() -> Response {
    static BYTES: OnceLock<Bytes> = OnceLock::new();
    let bytes = BYTES.get_or_init(|| match serde_json::to_vec(&document()) {
        Ok(bytes) => Bytes::from(bytes),
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document could not be serialized");
            Bytes::from_static(b"{}")
        }
    });
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes.clone(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn no_two_types_share_a_schema_name() {
        let (_, conflicts) = document_and_conflicts();
        assert!(conflicts.is_empty(), "{conflicts:?}");
    }

    #[test]
    fn every_reference_resolves() {
        let document = document();
        let mut found = Vec::new();
        refs(&document, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected reference {r}"));
            assert!(
                document["components"]["schemas"].get(name).is_some(),
                "{r} does not resolve"
            );
        }
    }

    #[test]
    fn operation_ids_are_unique_and_path_parameters_declared() {
        let document = document();
        let mut ids = std::collections::HashSet::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                let id = operation["operationId"].as_str().expect("operationId");
                assert!(ids.insert(id.to_owned()), "{id} twice");
                let declared: Vec<&str> = operation["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .filter(|p| p["in"] == "path")
                            .filter_map(|p| p["name"].as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                assert_eq!(
                    declared,
                    path_params(path).collect::<Vec<_>>(),
                    "{method} {path}"
                );
            }
        }
        assert!(ids.len() >= 50, "{} operations", ids.len());
    }
}
