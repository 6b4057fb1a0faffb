//! Who is calling, and what they may touch.
//!
//! Tokens are issued by the IAM-compatible endpoint and kept in the store (as SHA-256
//! digests), so every tagd process sharing a database honours them and they survive
//! restarts. Requests signed with an access key (AK/SK) are verified against the sealed
//! secret. A [`Principal`] is what a valid credential resolves to; the `require_*`
//! methods are the one place that decides whether it may act on a project or domain.

pub mod cache;
pub mod keys;
pub mod lockout;
pub mod login;
pub mod signature;
pub mod vault;

use std::sync::Arc;

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::core::model::{now_unix, Domain, Project, Scope, Temporary, TokenRecord, User};
use crate::core::password;
use crate::core::port::{AccessKeyContext, Store, StoreError, TokenContext};
use crate::core::{CoreError, Reason};

/// Why a credential was refused. Rendered as 401 by every dialect.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no X-Auth-Token header was sent")]
    MissingToken,
    #[error("the token is not valid")]
    InvalidToken,
    #[error("the token has expired")]
    Expired,
    #[error("the token has been revoked")]
    Revoked,
    #[error("the user, its domain or the scoped project is disabled or gone")]
    Disabled,
    #[error("the user name or password is wrong")]
    WrongCredentials,
    #[error("too many wrong passwords for this user; try again in {retry_after_secs} s")]
    LockedOut { retry_after_secs: u64 },
    #[error("the request signature is not valid: {0}")]
    Signature(#[from] signature::SignatureError),
    #[error("the access key is not known")]
    UnknownAccessKey,
    #[error("the access key is disabled")]
    AccessKeyDisabled,
    #[error("the temporary access key has expired")]
    AccessKeyExpired,
    #[error("a temporary access key needs its security token, signed, in X-Security-Token")]
    SecurityToken,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Unexpected(String),
}

impl AuthError {
    /// The refusal in every language tagd speaks.
    pub fn reason(&self) -> Reason {
        let zh = match self {
            AuthError::MissingToken => "请求未携带X-Auth-Token头",
            AuthError::InvalidToken => "令牌无效",
            AuthError::Expired => "令牌已过期",
            AuthError::Revoked => "令牌已被撤销",
            AuthError::Disabled => "用户、其所属账号或令牌作用的项目已被禁用或删除",
            AuthError::WrongCredentials => "用户名或密码错误",
            AuthError::LockedOut { .. } => "该用户密码错误次数过多，请稍后再试",
            AuthError::Signature(_) => "请求签名无效",
            AuthError::UnknownAccessKey => "访问密钥（AK）不存在",
            AuthError::AccessKeyDisabled => "访问密钥已停用",
            AuthError::AccessKeyExpired => "临时访问密钥已过期",
            AuthError::SecurityToken => {
                "临时访问密钥必须在已签名的X-Security-Token头中携带其安全令牌"
            }
            AuthError::Store(_) | AuthError::Unexpected(_) => "内部错误",
        };
        Reason::new(self.to_string(), zh)
    }
}

impl AuthError {
    /// Every value of [`AuthError::metric_reason`], for counters that start at zero.
    pub const METRIC_REASONS: [&'static str; 11] = [
        "missing_token",
        "invalid_token",
        "expired_token",
        "revoked_token",
        "disabled",
        "wrong_credentials",
        "locked_out",
        "bad_signature",
        "unknown_access_key",
        "access_key_disabled",
        "access_key_expired",
    ];

    /// The refusal as a metric label (`tagd_auth_failures_total{reason}`); `None` for
    /// the store failing, which is no refusal of the credential (a 500, not a 401).
    pub fn metric_reason(&self) -> Option<&'static str> {
        Some(match self {
            AuthError::MissingToken => "missing_token",
            AuthError::InvalidToken => "invalid_token",
            AuthError::Expired => "expired_token",
            AuthError::Revoked => "revoked_token",
            AuthError::Disabled => "disabled",
            AuthError::WrongCredentials => "wrong_credentials",
            AuthError::LockedOut { .. } => "locked_out",
            // A temporary key without its signed security token is a malformed signature.
            AuthError::Signature(_) | AuthError::SecurityToken => "bad_signature",
            AuthError::UnknownAccessKey => "unknown_access_key",
            AuthError::AccessKeyDisabled => "access_key_disabled",
            AuthError::AccessKeyExpired => "access_key_expired",
            AuthError::Store(_) | AuthError::Unexpected(_) => return None,
        })
    }
}

impl From<AuthError> for CoreError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(e) => CoreError::Internal(e),
            AuthError::Unexpected(what) => CoreError::Unexpected { what },
            e => CoreError::Unauthenticated { reason: e.reason() },
        }
    }
}

/// What a valid credential stands for.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub domain: Domain,
    /// The project the credential is scoped to, or `None` for domain scope.
    pub project: Option<Project>,
    pub credential: Credential,
}

/// How the caller authenticated.
#[derive(Debug, Clone)]
pub enum Credential {
    Token(TokenRecord),
    /// A signed request; `temporary` is set for temporary keys.
    AccessKey {
        access: String,
        temporary: Option<Temporary>,
    },
}

impl Principal {
    /// The token the caller authenticated with, if it used one.
    pub fn token(&self) -> Option<&TokenRecord> {
        match &self.credential {
            Credential::Token(t) => Some(t),
            Credential::AccessKey { .. } => None,
        }
    }

    /// When the caller's credential stops working, if ever.
    pub fn expires_at(&self) -> Option<i64> {
        match &self.credential {
            Credential::Token(t) => Some(t.expires_at),
            Credential::AccessKey { temporary, .. } => temporary.as_ref().map(|t| t.expires_at),
        }
    }

    /// Allows acting on `project_id` with a token scoped to exactly that project.
    pub fn require_project(&self, project_id: &str) -> Result<(), CoreError> {
        match &self.project {
            Some(p) if p.id == project_id => Ok(()),
            Some(p) => Err(CoreError::Forbidden {
                reason: Reason::new(
                    format!("the token is scoped to project {}, not to project {project_id}", p.id),
                    format!("令牌的作用范围是项目{}，而不是项目{project_id}", p.id),
                ),
            }),
            None => Err(CoreError::Forbidden {
                reason: Reason::new(
                    format!("a domain-scoped token cannot act on project {project_id}; request a token scoped to the project"),
                    format!("账号级令牌不能操作项目{project_id}，请获取该项目的令牌"),
                ),
            }),
        }
    }

    /// Allows acting on a project of the caller's domain: a domain-scoped token may use
    /// any of them, a project-scoped token only its own. `project` is the project the
    /// request names, looked up by id (`None` when no such project exists).
    pub fn require_project_in_domain(
        &self,
        project: Option<&Project>,
        project_id: &str,
    ) -> Result<(), CoreError> {
        if self.project.is_some() {
            return self.require_project(project_id);
        }
        match project {
            Some(p) if p.domain_id == self.domain.id => Ok(()),
            _ => Err(CoreError::Forbidden {
                reason: Reason::new(
                    format!(
                        "project {project_id} is not a project of domain {}",
                        self.domain.id
                    ),
                    format!("项目{project_id}不属于账号{}", self.domain.id),
                ),
            }),
        }
    }

    /// Allows acting on domain-level (global) resources: a project-scoped token may not.
    pub fn require_domain_scope(&self) -> Result<(), CoreError> {
        match &self.project {
            None => Ok(()),
            Some(p) => Err(CoreError::Forbidden {
                reason: Reason::new(
                    format!("the token is scoped to project {}; resources of global types need a domain-scoped token", p.id),
                    format!("令牌的作用范围是项目{}；全局资源需要账号级令牌", p.id),
                ),
            }),
        }
    }

    /// Allows administering the whole domain (tagd's admin API): an administrator,
    /// with a domain-scoped credential. A token scoped to one project must not reach
    /// the domain's other projects, whoever holds it.
    pub fn require_domain_admin(&self) -> Result<(), CoreError> {
        self.require_admin()?;
        match &self.project {
            None => Ok(()),
            Some(p) => Err(CoreError::Forbidden {
                reason: Reason::new(
                    format!("the token is scoped to project {}; the admin API needs a domain-scoped token", p.id),
                    format!("令牌的作用范围是项目{}；管理接口需要账号级令牌", p.id),
                ),
            }),
        }
    }

    /// Allows acting as an administrator of the caller's domain.
    pub fn require_admin(&self) -> Result<(), CoreError> {
        if self.user.is_admin {
            Ok(())
        } else {
            Err(CoreError::Forbidden {
                reason: Reason::new(
                    format!(
                        "user {} is not an administrator of its domain",
                        self.user.name
                    ),
                    format!("用户{}不是其账号的管理员", self.user.name),
                ),
            })
        }
    }
}

/// Issues and checks tokens and passwords.
#[derive(Clone)]
pub struct Identity {
    store: Arc<dyn Store>,
    token_lifetime_secs: i64,
    password_checks: Arc<tokio::sync::Semaphore>,
    lockout: Arc<lockout::Lockout>,
    vault: Arc<vault::Vault>,
    signature_window: std::time::Duration,
    lookups: Arc<CachedLookups>,
}

/// What [`Identity`] remembers of the store's answers (see [`cache`]).
struct CachedLookups {
    tokens: cache::LookupCache<TokenContext>,
    projects: cache::LookupCache<Project>,
    access_keys: cache::LookupCache<AccessKeyContext>,
}

/// The SHA-256 of a token, as stored.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Identity {
    pub fn new(
        store: Arc<dyn Store>,
        token_lifetime_secs: i64,
        vault: Arc<vault::Vault>,
        signature_window: std::time::Duration,
        credential_cache: std::time::Duration,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            store,
            token_lifetime_secs,
            password_checks: Arc::new(tokio::sync::Semaphore::new(cores)),
            lockout: Arc::default(),
            vault,
            signature_window,
            lookups: Arc::new(CachedLookups {
                tokens: cache::LookupCache::new(credential_cache),
                projects: cache::LookupCache::new(credential_cache),
                access_keys: cache::LookupCache::new(credential_cache),
            }),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// A token with its user, domain and project, from the cache when it is fresh.
    async fn token_context(&self, digest: &str) -> Result<Option<TokenContext>, StoreError> {
        let epoch = self.store.identity_epoch();
        let read = self.store.token_context(digest);
        self.lookups.tokens.get_or_read(digest, epoch, read).await
    }

    /// A project by id, from the cache when it is fresh.
    pub(crate) async fn project(&self, id: &str) -> Result<Option<Project>, StoreError> {
        let epoch = self.store.identity_epoch();
        let read = self.store.project(id);
        self.lookups.projects.get_or_read(id, epoch, read).await
    }

    /// An access key with its owner, from the cache when it is fresh.
    pub(crate) async fn access_key_context(
        &self,
        access: &str,
    ) -> Result<Option<AccessKeyContext>, StoreError> {
        let epoch = self.store.identity_epoch();
        let read = self.store.access_key_context(access);
        self.lookups
            .access_keys
            .get_or_read(access, epoch, read)
            .await
    }

    /// Checks a user's password. Unknown users cost the same time as wrong passwords,
    /// and a disabled user gets the same answer whether the password is right or not,
    /// so the endpoint confirms no password of an account it would not let in.
    /// At most one check per core runs at once: each takes argon2's 19 MiB, and the
    /// endpoint needs no authentication, so unbounded checks would let anyone exhaust
    /// memory. Others wait their turn.
    pub async fn check_password(
        &self,
        user: Option<User>,
        password: String,
    ) -> Result<User, AuthError> {
        let _permit = self
            .password_checks
            .acquire()
            .await
            .map_err(|e| AuthError::Unexpected(e.to_string()))?;
        let (ok, user) = tokio::task::spawn_blocking(move || match user {
            Some(u) => (password::verify(&password, &u.password_hash), Some(u)),
            None => {
                password::verify_nobody(&password);
                (false, None)
            }
        })
        .await
        .map_err(|e| AuthError::Unexpected(e.to_string()))?;
        match user {
            Some(u) if ok && u.enabled => Ok(u),
            _ => Err(AuthError::WrongCredentials),
        }
    }

    /// Issues a token for `user` with `scope`; returns the token and its record.
    pub async fn issue(
        &self,
        user: &User,
        scope: Scope,
        methods: Vec<String>,
        not_after: Option<i64>,
    ) -> Result<(String, TokenRecord), AuthError> {
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let token = hex::encode(raw);
        let issued_at = now_unix();
        let mut expires_at = issued_at.saturating_add(self.token_lifetime_secs);
        if let Some(limit) = not_after {
            // A token made from another token never outlives it.
            expires_at = expires_at.min(limit);
        }
        let record = TokenRecord {
            token_hash: token_digest(&token),
            user_id: user.id.clone(),
            domain_id: user.domain_id.clone(),
            scope,
            methods,
            issued_at,
            expires_at,
            revoked: false,
        };
        self.store.insert_token(&record).await?;
        Ok((token, record))
    }

    /// Resolves a token to its principal, checking expiry, revocation and that the
    /// user, domain and project still exist and are enabled.
    pub async fn validate(&self, token: &str) -> Result<Principal, AuthError> {
        let found = self
            .token_context(&token_digest(token))
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let record = found.token;
        if record.revoked {
            return Err(AuthError::Revoked);
        }
        if record.expires_at <= now_unix() {
            return Err(AuthError::Expired);
        }
        let user = found
            .user
            .filter(|u| u.enabled)
            .ok_or(AuthError::Disabled)?;
        let domain = found
            .domain
            .filter(|d| d.enabled)
            .ok_or(AuthError::Disabled)?;
        let project = match &record.scope {
            Scope::Domain => None,
            Scope::Project { .. } => Some(
                found
                    .project
                    .filter(|p| p.enabled)
                    .ok_or(AuthError::Disabled)?,
            ),
        };
        Ok(Principal {
            user,
            domain,
            project,
            credential: Credential::Token(record),
        })
    }

    /// Revokes a token; `false` if it was unknown or already revoked.
    pub async fn revoke(&self, token: &str) -> Result<bool, AuthError> {
        Ok(self.store.revoke_token(&token_digest(token)).await?)
    }
}
