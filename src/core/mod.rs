//! The domain every API dialect shares: identities, resources, tags, limits and the
//! semantics of a tag batch.
//!
//! Dialect adapters in `api/` translate their wire format into these types and render
//! [`CoreError`] in their own error body; nothing here knows about HTTP.

pub mod admin;
pub mod model;
pub mod providers;
pub mod tagging;
pub mod tags;

use crate::store::StoreError;

/// Everything that can go wrong in a request, independent of the wire dialect.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("the request body is not valid JSON for this API: {detail}")]
    MalformedBody { detail: String },
    #[error("the request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("{field}: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} has {got} entries; at most {max} are allowed")]
    TooMany {
        field: &'static str,
        max: usize,
        got: usize,
    },
    #[error("tag key {key:?} is invalid: {reason}")]
    InvalidTagKey { key: String, reason: String },
    #[error("the value of tag {key:?} is invalid: {reason}")]
    InvalidTagValue { key: String, reason: String },
    #[error("tag key {key:?} appears more than once in the request")]
    DuplicateTagKey { key: String },
    #[error("resource_type {name:?} is not a resource type tagd knows (see GET /v1.0/tms/providers; names are case-sensitive)")]
    UnknownResourceType { name: String },
    #[error("project_id is required for the regional resource type {resource_type:?}")]
    ProjectRequired { resource_type: String },
    #[error("authentication failed: {reason}")]
    Unauthenticated { reason: String },
    #[error("forbidden: {reason}")]
    Forbidden { reason: String },
    #[error("{what} was not found")]
    NotFound { what: String },
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("{what} already exists")]
    Conflict { what: String },
    #[error("internal error")]
    Internal(#[from] StoreError),
}

impl CoreError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
