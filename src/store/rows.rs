//! The records both schemas hold, read from a result row and written as columns once
//! for both backends.
//!
//! The two schemas have the same columns (a test compares them), so how a user, a
//! token or an access key maps to columns does not depend on the database. Each
//! backend implements [`StoredRow`] for its row type; the decoders here are written
//! against that, and the column lists and the credential lookups are shared SQL (both
//! SQLite and PostgreSQL number parameters `$1`).

use std::sync::LazyLock;

use crate::core::model::{
    AccessKey, Domain, KeyStatus, Project, Resource, ResourceRef, Scope, Temporary, TokenRecord,
    User,
};
use crate::core::tags::{Tag, TagKey, TagValue};

/// A result row read by column index, in the backend's own error type.
pub(crate) trait StoredRow {
    type Error;
    fn text(&self, i: usize) -> Result<String, Self::Error>;
    fn maybe_text(&self, i: usize) -> Result<Option<String>, Self::Error>;
    fn int(&self, i: usize) -> Result<i64, Self::Error>;
    fn maybe_int(&self, i: usize) -> Result<Option<i64>, Self::Error>;
    fn flag(&self, i: usize) -> Result<bool, Self::Error>;
    fn bytes(&self, i: usize) -> Result<Vec<u8>, Self::Error>;
    /// Column `i` holds something no tagd writes.
    fn malformed(&self, i: usize, why: String) -> Self::Error;
}

pub(crate) const USER_COLUMNS: &str = "id, domain_id, name, password_hash, is_admin, enabled";

pub(crate) const TOKEN_COLUMNS: &str = "t.token_hash, t.user_id, t.domain_id, t.project_id, t.methods, t.issued_at, t.expires_at, t.revoked";

/// The user (`u`), domain (`d`) and project (`p`) a credential resolves to.
pub(crate) const IDENTITY_COLUMNS: &str =
    "u.id, u.domain_id, u.name, u.password_hash, u.is_admin, u.enabled, \
     d.id, d.name, d.enabled, p.id, p.domain_id, p.name, p.enabled";

/// How many columns [`ACCESS_KEY_COLUMNS`] names: where the identity columns start in
/// [`ACCESS_KEY_CONTEXT`].
pub(crate) const ACCESS_KEY_WIDTH: usize = 11;
pub(crate) const ACCESS_KEY_COLUMNS: &str = "k.access, k.user_id, k.secret, k.status, k.description, k.created_at, k.security_token_hash, k.expires_at, k.project_id, k.source_token_hash, k.source_access";

/// A token (by hash, `$1`) with its identity: [`token_at`] 0, [`identity_at`] 8.
pub(crate) static TOKEN_CONTEXT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {TOKEN_COLUMNS}, {IDENTITY_COLUMNS}
         FROM tokens t
         LEFT JOIN users u ON u.id = t.user_id
         LEFT JOIN domains d ON d.id = t.domain_id
         LEFT JOIN projects p ON p.id = t.project_id
         WHERE t.token_hash = $1"
    )
});

/// An access key (`$1`) with its identity: [`access_key_at`] 0, [`identity_at`] [`ACCESS_KEY_WIDTH`].
pub(crate) static ACCESS_KEY_CONTEXT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {ACCESS_KEY_COLUMNS}, {IDENTITY_COLUMNS}
         FROM access_keys k
         LEFT JOIN users u ON u.id = k.user_id
         LEFT JOIN domains d ON d.id = u.domain_id
         LEFT JOIN projects p ON p.id = k.project_id
         WHERE k.access = $1"
    )
});

/// A domain from `id, name, enabled` at column `at`.
pub(crate) fn domain_at<R: StoredRow>(r: &R, at: usize) -> Result<Domain, R::Error> {
    Ok(Domain {
        id: r.text(at)?,
        name: r.text(at + 1)?,
        enabled: r.flag(at + 2)?,
    })
}

/// A project from `id, domain_id, name, enabled` at column `at`.
pub(crate) fn project_at<R: StoredRow>(r: &R, at: usize) -> Result<Project, R::Error> {
    Ok(Project {
        id: r.text(at)?,
        domain_id: r.text(at + 1)?,
        name: r.text(at + 2)?,
        enabled: r.flag(at + 3)?,
    })
}

/// A user from the six [`USER_COLUMNS`] at column `at`.
pub(crate) fn user_at<R: StoredRow>(r: &R, at: usize) -> Result<User, R::Error> {
    Ok(User {
        id: r.text(at)?,
        domain_id: r.text(at + 1)?,
        name: r.text(at + 2)?,
        password_hash: r.text(at + 3)?,
        is_admin: r.flag(at + 4)?,
        enabled: r.flag(at + 5)?,
    })
}

/// A token from the eight [`TOKEN_COLUMNS`] at column `at`.
pub(crate) fn token_at<R: StoredRow>(r: &R, at: usize) -> Result<TokenRecord, R::Error> {
    let methods = r.text(at + 4)?;
    Ok(TokenRecord {
        token_hash: r.text(at)?,
        user_id: r.text(at + 1)?,
        domain_id: r.text(at + 2)?,
        scope: scope_from_column(r.maybe_text(at + 3)?),
        methods: serde_json::from_str(&methods)
            .map_err(|e| r.malformed(at + 4, format!("a token's methods: {e}")))?,
        issued_at: r.int(at + 5)?,
        expires_at: r.int(at + 6)?,
        revoked: r.flag(at + 7)?,
    })
}

/// The user, domain and project from the thirteen [`IDENTITY_COLUMNS`] at `at`; `None`
/// for each that no longer exists.
#[allow(clippy::type_complexity)]
pub(crate) fn identity_at<R: StoredRow>(
    r: &R,
    at: usize,
) -> Result<(Option<User>, Option<Domain>, Option<Project>), R::Error> {
    let user = match r.maybe_text(at)? {
        Some(_) => Some(user_at(r, at)?),
        None => None,
    };
    let domain = match r.maybe_text(at + 6)? {
        Some(_) => Some(domain_at(r, at + 6)?),
        None => None,
    };
    let project = match r.maybe_text(at + 9)? {
        Some(_) => Some(project_at(r, at + 9)?),
        None => None,
    };
    Ok((user, domain, project))
}

/// An access key from the eleven [`ACCESS_KEY_COLUMNS`] at column `at`.
pub(crate) fn access_key_at<R: StoredRow>(r: &R, at: usize) -> Result<AccessKey, R::Error> {
    let status = r.text(at + 3)?;
    Ok(AccessKey {
        access: r.text(at)?,
        user_id: r.text(at + 1)?,
        sealed_secret: r.bytes(at + 2)?,
        status: KeyStatus::parse(&status).unwrap_or(KeyStatus::Inactive),
        description: r.text(at + 4)?,
        created_at: r.int(at + 5)?,
        temporary: match (r.maybe_text(at + 6)?, r.maybe_int(at + 7)?) {
            (Some(security_token_hash), Some(expires_at)) => Some(Temporary {
                security_token_hash,
                expires_at,
                scope: scope_from_column(r.maybe_text(at + 8)?),
                source_token_hash: r.maybe_text(at + 9)?,
                source_access: r.maybe_text(at + 10)?,
            }),
            _ => None,
        },
    })
}

/// A resource from `domain_id, project_id, resource_type, resource_id, name` at `at`.
pub(crate) fn resource_at<R: StoredRow>(r: &R, at: usize) -> Result<Resource, R::Error> {
    Ok(Resource {
        at: ResourceRef {
            domain_id: r.text(at)?,
            project_id: r.text(at + 1)?,
            resource_type: r.text(at + 2)?,
            resource_id: r.text(at + 3)?,
        },
        name: r.text(at + 4)?,
    })
}

/// A tag from `key, value` at column `at`.
pub(crate) fn tag_at<R: StoredRow>(r: &R, at: usize) -> Result<Tag, R::Error> {
    Ok(Tag {
        key: TagKey::from_stored(r.text(at)?),
        value: TagValue::from_stored(r.text(at + 1)?),
    })
}

/// A scope as its `project_id` column: `NULL` for a domain-wide scope.
pub(crate) fn project_column(scope: &Scope) -> Option<&str> {
    match scope {
        Scope::Project { id } => Some(id),
        Scope::Domain => None,
    }
}

fn scope_from_column(project_id: Option<String>) -> Scope {
    match project_id {
        Some(id) => Scope::Project { id },
        None => Scope::Domain,
    }
}

/// The columns that make an access key temporary, all `NULL` for a permanent one.
pub(crate) struct TemporaryColumns<'a> {
    pub security_token_hash: Option<&'a str>,
    pub expires_at: Option<i64>,
    pub project_id: Option<&'a str>,
    pub source_token_hash: Option<&'a str>,
    pub source_access: Option<&'a str>,
}

impl<'a> TemporaryColumns<'a> {
    pub(crate) fn of(key: &'a AccessKey) -> Self {
        let t = key.temporary.as_ref();
        Self {
            security_token_hash: t.map(|t| t.security_token_hash.as_str()),
            expires_at: t.map(|t| t.expires_at),
            project_id: t.and_then(|t| project_column(&t.scope)),
            source_token_hash: t.and_then(|t| t.source_token_hash.as_deref()),
            source_access: t.and_then(|t| t.source_access.as_deref()),
        }
    }
}

impl StoredRow for rusqlite::Row<'_> {
    type Error = rusqlite::Error;
    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.get(i)
    }
    fn maybe_text(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.get(i)
    }
    fn int(&self, i: usize) -> rusqlite::Result<i64> {
        self.get(i)
    }
    fn maybe_int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.get(i)
    }
    fn flag(&self, i: usize) -> rusqlite::Result<bool> {
        self.get(i)
    }
    fn bytes(&self, i: usize) -> rusqlite::Result<Vec<u8>> {
        self.get(i)
    }
    fn malformed(&self, i: usize, why: String) -> rusqlite::Error {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, why.into())
    }
}

impl StoredRow for tokio_postgres::Row {
    type Error = super::StoreError;
    fn text(&self, i: usize) -> Result<String, Self::Error> {
        Ok(self.try_get(i)?)
    }
    fn maybe_text(&self, i: usize) -> Result<Option<String>, Self::Error> {
        Ok(self.try_get(i)?)
    }
    fn int(&self, i: usize) -> Result<i64, Self::Error> {
        Ok(self.try_get(i)?)
    }
    fn maybe_int(&self, i: usize) -> Result<Option<i64>, Self::Error> {
        Ok(self.try_get(i)?)
    }
    fn flag(&self, i: usize) -> Result<bool, Self::Error> {
        Ok(self.try_get(i)?)
    }
    fn bytes(&self, i: usize) -> Result<Vec<u8>, Self::Error> {
        Ok(self.try_get(i)?)
    }
    fn malformed(&self, i: usize, why: String) -> Self::Error {
        super::StoreError::Database(format!("column {i}: {why}"))
    }
}
