//! The domain every API dialect shares: identities, resources, tags, limits and the
//! semantics of a tag batch.
//!
//! Dialect adapters in `api/` translate their wire format into these types and render
//! [`CoreError`] in their own error body; nothing here knows about HTTP.

pub mod admin;
pub mod batch;
pub mod model;
pub mod password;
pub mod port;
pub mod predefined;
pub mod providers;
pub mod query;
pub mod tag_lines;
pub mod tagging;
pub mod tags;

use port::StoreError;
use tags::TextProblem;

/// Everything that can go wrong in a request, independent of the wire dialect.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("the request body is not valid JSON for this API: {}", detail.en)]
    MalformedBody { detail: Reason },
    #[error("the request body is larger than the limit of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("{field}: {}", reason.en)]
    InvalidField { field: String, reason: Reason },
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
    #[error("{field} has {got} entries; at most {max} are allowed")]
    TooMany {
        field: &'static str,
        max: usize,
        got: usize,
    },
    #[error("tag key {key:?} is invalid: it {}", problem.en())]
    InvalidTagKey { key: String, problem: TextProblem },
    #[error("the value of tag {key:?} is invalid: it {}", problem.en())]
    InvalidTagValue { key: String, problem: TextProblem },
    #[error("tag key {key:?} appears more than once in the request")]
    DuplicateTagKey { key: String },
    #[error("{field}: {name:?} is not a resource type tagd knows (see GET /v1.0/tms/providers; names are case-sensitive)")]
    UnknownResourceType { field: String, name: String },
    #[error("project_id is required for the regional resource type {resource_type:?}")]
    ProjectRequired { resource_type: String },
    #[error("authentication failed: {}", reason.en)]
    Unauthenticated { reason: Reason },
    #[error("forbidden: {}", reason.en)]
    Forbidden { reason: Reason },
    #[error("resource {resource_id} would have {would_have} tags; at most {limit} are allowed")]
    TagLimitExceeded {
        resource_id: String,
        limit: usize,
        would_have: usize,
    },
    #[error("the request was not completed within {seconds} seconds")]
    Timeout { seconds: u64 },
    #[error("{} was not found", what.en)]
    NotFound { what: Reason },
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("{what} already exists")]
    Conflict { what: String },
    #[error("internal error")]
    Internal(#[from] StoreError),
    /// A failure outside the store (a worker thread lost, hashing failed).
    #[error("internal error")]
    Unexpected { what: String },
}

impl CoreError {
    /// A field that breaks a rule, with the reason in every language tagd speaks.
    pub fn invalid(field: impl Into<String>, reason: Reason) -> Self {
        Self::InvalidField {
            field: field.into(),
            reason,
        }
    }
}

/// Why a field was refused, worded in English and in Chinese (RDS answers in the
/// language of `X-Language`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub en: String,
    pub zh: String,
}

impl Reason {
    pub fn new(en: impl Into<String>, zh: impl Into<String>) -> Self {
        Self {
            en: en.into(),
            zh: zh.into(),
        }
    }

    pub fn required() -> Self {
        Self::new("is required", "为必填项")
    }

    pub fn length(min: usize, max: usize, got: usize) -> Self {
        Self::new(
            format!("must be {min} to {max} characters, got {got}"),
            format!("长度必须为{min}到{max}个字符，实际为{got}个"),
        )
    }

    pub fn forbidden_char(c: char) -> Self {
        Self::new(
            format!("must not contain {c:?}"),
            format!("不能包含字符{c:?}"),
        )
    }

    pub fn one_of(allowed: &[&str], got: &str) -> Self {
        Self::new(
            format!("must be one of {}, got {got:?}", allowed.join(", ")),
            format!("取值必须为{}之一，实际为{got:?}", allowed.join("、")),
        )
    }

    pub fn integer(min: u64, max: u64, got: &str) -> Self {
        Self::new(
            format!("must be an integer from {min} to {max}, got {got:?}"),
            format!("必须是{min}到{max}之间的整数，实际为{got:?}"),
        )
    }
}
