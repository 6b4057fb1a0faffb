//! Access keys (AK/SK): issuing permanent and temporary keys, and authenticating the
//! requests they sign.

use rand::Rng;

use super::signature::{self, RawRequest, SignedRequest};
use super::{token_digest, AuthError, Credential, Identity, Principal};
use crate::core::model::{now_unix, AccessKey, KeyStatus, Scope, Temporary, User};
use crate::core::{CoreError, Reason};

/// The cloud lets a user hold two permanent access keys.
pub const MAX_PERMANENT_KEYS: usize = 2;

/// Temporary keys live 15 minutes to 24 hours (default 15 minutes), as in IAM.
pub const TEMPORARY_SECONDS: std::ops::RangeInclusive<i64> = 900..=86_400;

/// A new key pair, with the secret in clear: shown once, never stored so.
pub struct IssuedKey {
    pub key: AccessKey,
    pub secret: String,
    /// Set for temporary keys.
    pub security_token: Option<String>,
}

fn random_string(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rngs::OsRng;
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

/// How a key the caller may not see, or that does not exist, is reported.
pub fn unknown_key(access: &str) -> CoreError {
    CoreError::NotFound {
        what: Reason::new(format!("access key {access}"), format!("访问密钥{access}")),
    }
}

/// A key's description: at most 255 characters (IAM's limit).
fn check_description(description: &str) -> Result<(), CoreError> {
    let length = description.chars().count();
    if length > 255 {
        return Err(CoreError::invalid(
            "credential.description",
            Reason::length(0, 255, length),
        ));
    }
    Ok(())
}

const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Permanent keys act with domain scope and never expire, so only a caller that holds
/// as much may manage them: a domain-scoped token or a permanent key, never a
/// project-scoped token or a temporary key.
fn require_key_manager(caller: &Principal) -> Result<(), CoreError> {
    caller.require_domain_scope()?;
    if caller.expires_at().is_some() && caller.token().is_none() {
        return Err(CoreError::Forbidden {
            reason: Reason::new(
                "a temporary access key cannot manage permanent access keys",
                "临时访问密钥不能管理永久访问密钥",
            ),
        });
    }
    Ok(())
}

impl Identity {
    fn new_key(
        &self,
        user: &User,
        description: &str,
        temporary: Option<Temporary>,
    ) -> (AccessKey, String) {
        // The cloud's shapes: 20 upper-case characters for the AK, 40 for the SK.
        let access = random_string(20, UPPER_DIGITS);
        let secret = random_string(40, ALNUM);
        let key = AccessKey {
            sealed_secret: self.vault.seal(&access, &secret),
            access,
            user_id: user.id.clone(),
            status: KeyStatus::Active,
            description: description.to_owned(),
            created_at: now_unix(),
            temporary,
        };
        (key, secret)
    }

    /// Issues a permanent key for `user`; at most [`MAX_PERMANENT_KEYS`] each.
    pub async fn create_access_key(
        &self,
        user: &User,
        description: &str,
    ) -> Result<IssuedKey, CoreError> {
        check_description(description)?;
        let (key, secret) = self.new_key(user, description, None);
        if !self
            .store
            .insert_access_key(&key, MAX_PERMANENT_KEYS)
            .await?
        {
            return Err(CoreError::Conflict {
                what: format!(
                    "user {} already holds {MAX_PERMANENT_KEYS} access keys, the most allowed; a new one",
                    user.name
                ),
            });
        }
        Ok(IssuedKey {
            key,
            secret,
            security_token: None,
        })
    }

    /// Issues a temporary key with the caller's scope, living `seconds` (never past the
    /// caller's own credential, and revoked with the token it comes from).
    pub async fn create_temporary_key(
        &self,
        caller: &Principal,
        seconds: i64,
    ) -> Result<IssuedKey, CoreError> {
        if !TEMPORARY_SECONDS.contains(&seconds) {
            return Err(CoreError::invalid(
                "auth.identity.token.duration_seconds",
                Reason::integer(
                    *TEMPORARY_SECONDS.start() as u64,
                    *TEMPORARY_SECONDS.end() as u64,
                    &seconds.to_string(),
                ),
            ));
        }
        let mut expires_at = now_unix().saturating_add(seconds);
        if let Some(limit) = caller.expires_at() {
            expires_at = expires_at.min(limit);
        }
        let security_token = random_string(64, ALNUM);
        let scope = match &caller.project {
            Some(p) => Scope::Project { id: p.id.clone() },
            None => Scope::Domain,
        };
        // The new key names the lasting credential it comes from, however many
        // temporary keys stand between: a key minted with a temporary key inherits that
        // key's sources, so revoking the token or disabling the permanent key at the
        // root kills the whole line.
        let (source_token_hash, source_access) = match &caller.credential {
            Credential::Token(t) => (Some(t.token_hash.clone()), None),
            Credential::AccessKey {
                access,
                temporary: None,
            } => (None, Some(access.clone())),
            Credential::AccessKey {
                temporary: Some(parent),
                ..
            } => (
                parent.source_token_hash.clone(),
                parent.source_access.clone(),
            ),
        };
        let (key, secret) = self.new_key(
            &caller.user,
            "",
            Some(Temporary {
                security_token_hash: token_digest(&security_token),
                expires_at,
                scope,
                source_token_hash,
                source_access,
            }),
        );
        self.store
            .insert_access_key(&key, MAX_PERMANENT_KEYS)
            .await?;
        Ok(IssuedKey {
            key,
            secret,
            security_token: Some(security_token),
        })
    }

    /// The permanent keys of a user.
    pub async fn access_keys(&self, user: &User) -> Result<Vec<AccessKey>, CoreError> {
        Ok(self.store.list_access_keys(&user.id).await?)
    }

    /// A permanent key the caller may manage: its own, or any of its domain's users'
    /// if it is an administrator. Others' keys are reported as not found. Like
    /// [`managed_user`](Self::managed_user), only domain-wide lasting credentials pass.
    pub async fn managed_key(
        &self,
        caller: &Principal,
        access: &str,
    ) -> Result<(AccessKey, User), CoreError> {
        require_key_manager(caller)?;
        let not_found = || unknown_key(access);
        let found = self
            .store
            .access_key_context(access)
            .await?
            .ok_or_else(not_found)?;
        let user = found.user.ok_or_else(not_found)?;
        let allowed = user.id == caller.user.id
            || (caller.user.is_admin && user.domain_id == caller.domain.id);
        if !allowed || found.key.temporary.is_some() {
            return Err(not_found());
        }
        Ok((found.key, user))
    }

    /// The user a caller names for key management: itself, or (administrators only) any
    /// user of its domain.
    pub async fn managed_user(&self, caller: &Principal, user_id: &str) -> Result<User, CoreError> {
        require_key_manager(caller)?;
        if user_id == caller.user.id {
            return Ok(caller.user.clone());
        }
        caller.require_admin()?;
        self.store
            .user(user_id)
            .await?
            .filter(|u| u.domain_id == caller.domain.id)
            .ok_or_else(|| CoreError::NotFound {
                what: Reason::new(format!("user {user_id}"), format!("用户{user_id}")),
            })
    }

    /// Changes a key's status and/or description; `false` if there is no such key.
    pub async fn update_access_key(
        &self,
        access: &str,
        status: Option<KeyStatus>,
        description: Option<&str>,
    ) -> Result<bool, CoreError> {
        if let Some(d) = description {
            check_description(d)?;
        }
        Ok(self
            .store
            .update_access_key(access, status, description)
            .await?)
    }

    /// Deletes a key; `false` if there is no such key.
    pub async fn delete_access_key(&self, access: &str) -> Result<bool, CoreError> {
        Ok(self.store.delete_access_key(access).await?)
    }

    /// A permanent key by its AK, for administration outside the API.
    pub async fn permanent_key(&self, access: &str) -> Result<Option<AccessKey>, CoreError> {
        Ok(self
            .store
            .access_key_context(access)
            .await?
            .map(|c| c.key)
            .filter(|k| k.temporary.is_none()))
    }

    /// Authenticates a request signed with an access key. Permanent keys act with the
    /// user's domain scope; temporary keys keep the scope of the token they came from.
    pub async fn authenticate_signed(
        &self,
        authorization: &str,
        req: &RawRequest<'_>,
    ) -> Result<Principal, AuthError> {
        let signed = SignedRequest::parse(authorization)?;
        let found = self.access_key_context(&signed.access_key).await?;
        // The signature is checked before anything about the key is revealed: an
        // unknown key is checked against a throwaway secret, so unknown, disabled and
        // expired keys all fail alike to whoever cannot sign with them.
        let secret = match &found {
            Some(f) => self.vault.unseal(&f.key.access, &f.key.sealed_secret).map_err(|e| {
                tracing::error!(access = %f.key.access, error = %e, "an access key cannot be unsealed with this server key");
                AuthError::Unexpected(e.to_string())
            })?,
            None => random_string(40, ALNUM),
        };
        signature::verify(
            &signed,
            &secret,
            req,
            time::OffsetDateTime::now_utc(),
            self.signature_window,
        )?;
        let found = found.ok_or(AuthError::UnknownAccessKey)?;
        let key = found.key;
        if key.status != KeyStatus::Active {
            return Err(AuthError::AccessKeyDisabled);
        }
        if let Some(t) = &key.temporary {
            if t.expires_at <= now_unix() {
                return Err(AuthError::AccessKeyExpired);
            }
            let presented = req
                .headers
                .get("x-security-token")
                .and_then(|v| v.to_str().ok())
                .ok_or(AuthError::SecurityToken)?;
            if !signed
                .signed_headers
                .iter()
                .any(|h| h == "x-security-token")
                || token_digest(presented.trim()) != t.security_token_hash
            {
                return Err(AuthError::SecurityToken);
            }
            self.check_sources(t).await?;
        }
        let user = found
            .user
            .filter(|u| u.enabled)
            .ok_or(AuthError::Disabled)?;
        let domain = found
            .domain
            .filter(|d| d.enabled)
            .ok_or(AuthError::Disabled)?;
        let project = match key.temporary.as_ref().map(|t| &t.scope) {
            Some(Scope::Project { .. }) => Some(
                found
                    .project
                    .filter(|p| p.enabled)
                    .ok_or(AuthError::Disabled)?,
            ),
            _ => None,
        };
        Ok(Principal {
            user,
            domain,
            project,
            credential: Credential::AccessKey {
                temporary: key.temporary,
                access: key.access,
            },
        })
    }

    /// A temporary key dies with what it was issued from: the token (revoked or
    /// expired) and the permanent key (disabled or deleted) at the root of its line.
    async fn check_sources(&self, temporary: &Temporary) -> Result<(), AuthError> {
        if let Some(source) = &temporary.source_token_hash {
            match self.token_context(source).await? {
                Some(found) if !found.token.revoked && found.token.expires_at > now_unix() => {}
                _ => return Err(AuthError::Revoked),
            }
        }
        if let Some(source) = &temporary.source_access {
            match self.access_key_context(source).await? {
                Some(found) if found.key.status == KeyStatus::Active => {}
                Some(_) => return Err(AuthError::AccessKeyDisabled),
                None => return Err(AuthError::Revoked),
            }
        }
        Ok(())
    }
}
