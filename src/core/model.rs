//! Plain records of the identity model and the resource inventory.
//!
//! Domains (accounts) own projects and users; resources belong to a project, or to the
//! domain alone when their type is global. Ids are 32 lower-case hex characters, the
//! shape the cloud uses, so SDK code that validates ids accepts tagd's.

use serde::{Deserialize, Serialize};

/// A fresh id in the cloud's shape: 32 lower-case hex characters.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Seconds since the Unix epoch; the store's one time representation.
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub id: String,
    pub name: String,
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub domain_id: String,
    pub name: String,
    pub enabled: bool,
}

#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub domain_id: String,
    pub name: String,
    /// An argon2 PHC string; never the password.
    pub password_hash: String,
    pub is_admin: bool,
    pub enabled: bool,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("domain_id", &self.domain_id)
            .field("name", &self.name)
            .field("password_hash", &"<redacted>")
            .field("is_admin", &self.is_admin)
            .field("enabled", &self.enabled)
            .finish()
    }
}

/// What a token grants: a whole domain, or one project of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Domain,
    Project { id: String },
}

/// A stored token. The token itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token_hash: String,
    pub user_id: String,
    pub domain_id: String,
    pub scope: Scope,
    pub methods: Vec<String>,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked: bool,
}

/// Where a resource lives: the domain, and the project unless its type is global.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ResourceRef {
    pub domain_id: String,
    /// Empty for resources of a global type.
    pub project_id: String,
    pub resource_type: String,
    pub resource_id: String,
}

/// A registered resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    #[serde(flatten)]
    pub at: ResourceRef,
    pub name: String,
}

/// Whether an access key may sign requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Inactive,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Inactive => "inactive",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(KeyStatus::Active),
            "inactive" => Some(KeyStatus::Inactive),
            _ => None,
        }
    }
}

/// What makes an access key temporary: it comes with a security token, expires, and
/// keeps the scope of the token it was issued from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Temporary {
    pub security_token_hash: String,
    pub expires_at: i64,
    pub scope: Scope,
    /// The token it was issued from, directly or through other temporary keys; the key
    /// is refused once that token is revoked or expires.
    pub source_token_hash: Option<String>,
    /// The permanent access key it was issued with, directly or through other
    /// temporary keys; the key is refused once that key is disabled or deleted.
    pub source_access: Option<String>,
}

/// An access key pair (AK/SK) of a user. The secret is kept sealed with the server key.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub access: String,
    pub user_id: String,
    pub sealed_secret: Vec<u8>,
    pub status: KeyStatus,
    pub description: String,
    pub created_at: i64,
    pub temporary: Option<Temporary>,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("access", &self.access)
            .field("user_id", &self.user_id)
            .field("sealed_secret", &"<sealed>")
            .field("status", &self.status)
            .field("description", &self.description)
            .field("created_at", &self.created_at)
            .field("temporary", &self.temporary.as_ref().map(|t| t.expires_at))
            .finish()
    }
}
