//! Logging in: who a password or token belongs to, and which scope the new token gets.
//!
//! The IAM adapter turns Keystone's request body into these selectors; every lookup and
//! every rule about scope lives here, so no handler touches the store.

use crate::core::admin::{MAX_NAME_CHARS, MAX_PASSWORD_CHARS};
use crate::core::model::{Domain, Project, Scope, User};
use crate::core::{CoreError, Reason};

use super::{AuthError, Identity, Principal};

/// A domain named by id or by name.
#[derive(Debug, Clone)]
pub enum DomainSelector {
    Id(String),
    Name(String),
}

/// A user named by id, or by name within a domain.
#[derive(Debug, Clone)]
pub enum UserSelector {
    Id(String),
    Name {
        name: String,
        domain: DomainSelector,
    },
}

/// The longest id a login may name: tagd's ids are 32 characters, imported ones at most 64.
pub const MAX_ID_CHARS: usize = 64;

/// Refuses a name, id or password longer than any that can exist, before anything is
/// looked up, hashed or remembered: the login endpoint needs no credential, so whatever
/// it keeps per attempt must be small whoever sends it.
pub fn check_login_text(field: &str, text: &str, max_chars: usize) -> Result<(), CoreError> {
    // A UTF-8 character is at most 4 bytes: the length in bytes decides most cases
    // without counting.
    if text.len() <= max_chars {
        return Ok(());
    }
    let chars = if text.len() > 4 * max_chars {
        None
    } else {
        Some(text.chars().count())
    };
    match chars {
        Some(n) if n <= max_chars => Ok(()),
        _ => Err(CoreError::invalid(
            field,
            Reason::new(
                format!("must be at most {max_chars} characters"),
                format!("长度不能超过{max_chars}个字符"),
            ),
        )),
    }
}

impl DomainSelector {
    /// Checks the id or name against the longest that can exist.
    pub fn check(&self, field: &str) -> Result<(), CoreError> {
        match self {
            DomainSelector::Id(id) => check_login_text(field, id, MAX_ID_CHARS),
            DomainSelector::Name(name) => check_login_text(field, name, MAX_NAME_CHARS),
        }
    }
}

impl UserSelector {
    /// Checks the ids and names against the longest that can exist.
    pub fn check(&self, field: &str) -> Result<(), CoreError> {
        match self {
            UserSelector::Id(id) => check_login_text(&format!("{field}.id"), id, MAX_ID_CHARS),
            UserSelector::Name { name, domain } => {
                check_login_text(&format!("{field}.name"), name, MAX_NAME_CHARS)?;
                domain.check(&format!("{field}.domain"))
            }
        }
    }
}

/// Checks a password presented at login against the longest that can be set.
pub fn check_login_password(field: &str, password: &str) -> Result<(), CoreError> {
    check_login_text(field, password, MAX_PASSWORD_CHARS)
}

/// The scope a login asks for.
#[derive(Debug, Clone)]
pub enum ScopeRequest {
    /// No scope given: the user's domain.
    Default,
    Domain(DomainSelector),
    ProjectId(String),
    ProjectName {
        name: String,
        domain: Option<DomainSelector>,
    },
}

/// The outcome of resolving a scope.
pub struct Granted {
    pub domain: Domain,
    pub scope: Scope,
    pub project: Option<Project>,
}

fn denied() -> CoreError {
    CoreError::Unauthenticated {
        reason: Reason::new(
            "the requested scope is not available to this user",
            "该用户无法获取所请求作用范围的令牌",
        ),
    }
}

impl Identity {
    async fn find_domain(
        &self,
        selector: &DomainSelector,
    ) -> Result<Option<Domain>, crate::core::port::StoreError> {
        Ok(match selector {
            DomainSelector::Id(id) => self.store.domain(id).await?,
            DomainSelector::Name(name) => self.store.domain_by_name(name).await?,
        })
    }

    /// The password method. Unknown users and wrong passwords look alike.
    pub async fn login_password(
        &self,
        user: &UserSelector,
        password: String,
    ) -> Result<User, AuthError> {
        let found = match user {
            UserSelector::Id(id) => self.store.user(id).await?,
            UserSelector::Name { name, domain } => match self.find_domain(domain).await? {
                Some(d) if d.enabled => self.store.user_by_name(&d.id, name).await?,
                _ => None,
            },
        };
        // Counted per user, or per name asked for when no user has it (see lockout).
        let who = match (&found, user) {
            (Some(u), _) => format!("user:{}", u.id),
            (None, UserSelector::Id(id)) => format!("user:{id}"),
            (None, UserSelector::Name { name, domain }) => match domain {
                DomainSelector::Id(d) => format!("name:id:{d}:{name}"),
                DomainSelector::Name(d) => format!("name:name:{d}:{name}"),
            },
        };
        if let Err(wait) = self.lockout.check(&who) {
            return Err(AuthError::LockedOut {
                retry_after_secs: wait.as_secs().max(1),
            });
        }
        match self.check_password(found, password).await {
            Ok(user) => {
                self.lockout.succeeded(&who);
                Ok(user)
            }
            Err(AuthError::WrongCredentials) => {
                self.lockout.failed(&who);
                Err(AuthError::WrongCredentials)
            }
            Err(e) => Err(e),
        }
    }

    /// Resolves the scope of a new token for `user`. A token obtained from another
    /// token (`from`) can only keep or narrow that token's scope: a project-scoped
    /// token cannot be traded for its domain or another project.
    pub async fn grant(
        &self,
        user: &User,
        from: Option<&Principal>,
        request: &ScopeRequest,
    ) -> Result<Granted, CoreError> {
        let domain = self
            .store
            .domain(&user.domain_id)
            .await?
            .filter(|d| d.enabled)
            .ok_or(AuthError::Disabled)?;
        let project = match request {
            ScopeRequest::Default => None,
            ScopeRequest::Domain(selector) => match self.find_domain(selector).await? {
                Some(found) if found.id == domain.id => None,
                _ => return Err(denied()),
            },
            ScopeRequest::ProjectId(id) => Some(self.store.project(id).await?),
            ScopeRequest::ProjectName {
                name,
                domain: named,
            } => {
                if let Some(selector) = named {
                    if self.find_domain(selector).await?.map(|d| d.id) != Some(domain.id.clone()) {
                        return Err(denied());
                    }
                }
                Some(
                    self.store
                        .list_projects(Some(&domain.id))
                        .await?
                        .into_iter()
                        .find(|p| &p.name == name),
                )
            }
        };
        let project = match project {
            None => None,
            Some(found) => Some(
                found
                    .filter(|p| p.domain_id == domain.id && p.enabled)
                    .ok_or_else(denied)?,
            ),
        };
        if let Some(own) = from.and_then(|p| p.project.as_ref()) {
            if project.as_ref().map(|p| &p.id) != Some(&own.id) {
                return Err(CoreError::Unauthenticated {
                    reason: Reason::new(
                        format!(
                            "a token scoped to project {} can only be rescoped to that project",
                            own.id
                        ),
                        format!("项目{}的令牌只能重新获取为该项目的令牌", own.id),
                    ),
                });
            }
        }
        let scope = match &project {
            Some(p) => Scope::Project { id: p.id.clone() },
            None => Scope::Domain,
        };
        Ok(Granted {
            domain,
            scope,
            project,
        })
    }

    /// The projects of the caller's domain (only its own, for a project-scoped token).
    pub async fn visible_projects(&self, principal: &Principal) -> Result<Vec<Project>, CoreError> {
        Ok(self
            .store
            .list_projects(Some(&principal.domain.id))
            .await?
            .into_iter()
            .filter(|p| principal.project.as_ref().is_none_or(|own| own.id == p.id))
            .collect())
    }

    /// Project names by id, for the caller's domain (`""`, the domain's global
    /// resources, has none).
    pub async fn project_names(
        &self,
        principal: &Principal,
    ) -> Result<std::collections::HashMap<String, String>, CoreError> {
        Ok(self
            .store
            .list_projects(Some(&principal.domain.id))
            .await?
            .into_iter()
            .map(|p| (p.id, p.name))
            .collect())
    }

    /// The names of every project of the caller's domain: the regions it can use.
    pub async fn regions(&self, principal: &Principal) -> Result<Vec<String>, CoreError> {
        Ok(self
            .store
            .list_projects(Some(&principal.domain.id))
            .await?
            .into_iter()
            .map(|p| p.name)
            .collect())
    }

    /// Checks the caller may act on `project_id`, which must be a project of its domain
    /// (and, for a project-scoped token, that very project).
    pub async fn authorize_project(
        &self,
        principal: &Principal,
        project_id: &str,
    ) -> Result<(), CoreError> {
        // A project-scoped caller is judged by its own project alone, so the lookup is
        // skipped for it: the common case (the SDKs' project clients), on every request.
        let project = match principal.project {
            Some(_) => None,
            None => self.project(project_id).await?,
        };
        principal.require_project_in_domain(project.as_ref(), project_id)
    }

    /// Checks the caller may act on every project a set of resources lives in;
    /// resources of global types (empty project) need a domain-scoped token.
    pub async fn authorize_resources(
        &self,
        principal: &Principal,
        projects: &[&str],
    ) -> Result<(), CoreError> {
        let mut checked = std::collections::HashSet::new();
        for &project_id in projects {
            if !checked.insert(project_id) {
                continue;
            }
            if project_id.is_empty() {
                principal.require_domain_scope()?;
            } else {
                self.authorize_project(principal, project_id).await?;
            }
        }
        Ok(())
    }
}
