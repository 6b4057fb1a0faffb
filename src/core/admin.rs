//! Administration of identities and the resource inventory, shared by the admin CLI,
//! the admin HTTP API and the first-run bootstrap so each rule is written once.

use std::sync::Arc;

use super::model::{new_id, Domain, Project, Resource, ResourceRef, User};
use super::password;
use super::port::{ResourceFilter, Store, StoreError};
use super::tagging::{known_type, locate};
use super::{CoreError, Reason};

/// A resource as an administrator describes it, before validation.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct ResourceSpec {
    #[serde(default)]
    pub project_id: Option<String>,
    pub resource_type: String,
    pub resource_id: String,
    #[serde(default)]
    pub name: Option<String>,
}

impl From<Resource> for ResourceSpec {
    /// The spec that registers `resource` again: what `resource export` writes, so
    /// export and import round-trip. Global resources have no project.
    fn from(resource: Resource) -> Self {
        let project = resource.at.project_id;
        Self {
            project_id: (!project.is_empty()).then_some(project),
            resource_type: resource.at.resource_type,
            resource_id: resource.at.resource_id,
            name: (!resource.name.is_empty()).then_some(resource.name),
        }
    }
}

/// Reads resources from CSV with the header `project_id,resource_type,resource_id,name`
/// (the name may be empty; the project is empty for global types).
pub fn parse_resource_csv(text: &str) -> Result<Vec<ResourceSpec>, CoreError> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    reader
        .deserialize()
        .enumerate()
        .map(|(i, row)| {
            row.map_err(|e| {
                CoreError::invalid(
                    format!("line {}", i + 2),
                    Reason::new(e.to_string(), format!("CSV格式错误：{e}")),
                )
            })
        })
        .collect()
}

/// Resource ids are opaque to tagd, but they travel in URL paths and logs. `field`
/// names the id in errors (`resources[3].resource_id`, `instance_id`).
pub fn validate_resource_id(field: &str, id: &str) -> Result<(), CoreError> {
    let chars = id.chars().count();
    if chars == 0 || chars > 128 {
        return Err(CoreError::invalid(field, Reason::length(1, 128, chars)));
    }
    if let Some(c) = id.chars().find(|c| c.is_control() || *c == '/') {
        return Err(CoreError::invalid(field, Reason::forbidden_char(c)));
    }
    Ok(())
}

/// The longest name of a domain, project or user, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// The longest password, in characters.
pub const MAX_PASSWORD_CHARS: usize = 128;

fn validate_name(field: &str, name: &str) -> Result<(), CoreError> {
    let chars = name.chars().count();
    if chars == 0
        || chars > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
        || name.trim() != name
    {
        return Err(CoreError::invalid(
            field,
            Reason::new(
                "must be 1 to 64 characters with no control characters or surrounding spaces",
                "长度必须为1到64个字符，且不能包含控制字符或首尾空格",
            ),
        ));
    }
    Ok(())
}

fn conflict(e: StoreError) -> CoreError {
    match e {
        StoreError::AlreadyExists(what) => CoreError::Conflict { what },
        e => CoreError::Internal(e),
    }
}

/// What the first start creates, to tell the operator.
#[derive(Clone)]
pub struct FirstRun {
    pub domain: Domain,
    pub project: Project,
    pub user: User,
    pub password: String,
}

impl std::fmt::Debug for FirstRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FirstRun")
            .field("domain", &self.domain)
            .field("project", &self.project)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The name of the project a fresh data directory gets: a region id, as the cloud
/// names projects, so SDKs that look a project up by region find it.
pub const DEFAULT_PROJECT: &str = "cn-north-4";

#[derive(Clone)]
pub struct Admin {
    store: Arc<dyn Store>,
}

impl Admin {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Finds a domain by id, or failing that by name.
    pub async fn domain(&self, id_or_name: &str) -> Result<Domain, CoreError> {
        if let Some(d) = self.store.domain(id_or_name).await? {
            return Ok(d);
        }
        self.store
            .domain_by_name(id_or_name)
            .await?
            .ok_or_else(|| CoreError::NotFound {
                what: Reason::new(
                    format!("domain {id_or_name:?}"),
                    format!("账号{id_or_name:?}"),
                ),
            })
    }

    /// Finds a project of `domain` by id or name.
    pub async fn project(&self, domain: &Domain, id_or_name: &str) -> Result<Project, CoreError> {
        let projects = self.store.list_projects(Some(&domain.id)).await?;
        projects
            .into_iter()
            .find(|p| p.id == id_or_name || p.name == id_or_name)
            .ok_or_else(|| CoreError::NotFound {
                what: Reason::new(
                    format!("project {id_or_name:?} in domain {:?}", domain.name),
                    format!("账号{:?}中的项目{id_or_name:?}", domain.name),
                ),
            })
    }

    /// The store, for tools that write in bulk (the data generator).
    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    pub async fn list_domains(&self) -> Result<Vec<Domain>, CoreError> {
        Ok(self.store.list_domains().await?)
    }

    pub async fn delete_domain(&self, domain: &Domain) -> Result<(), CoreError> {
        self.store.delete_domain(&domain.id).await?;
        Ok(())
    }

    pub async fn list_projects(&self, domain: &Domain) -> Result<Vec<Project>, CoreError> {
        Ok(self.store.list_projects(Some(&domain.id)).await?)
    }

    pub async fn delete_project(&self, project: &Project) -> Result<(), CoreError> {
        self.store.delete_project(&project.id).await?;
        Ok(())
    }

    pub async fn user(&self, domain: &Domain, name: &str) -> Result<User, CoreError> {
        self.store
            .user_by_name(&domain.id, name)
            .await?
            .ok_or_else(|| CoreError::NotFound {
                what: Reason::new(
                    format!("user {name:?} in domain {:?}", domain.name),
                    format!("账号{:?}中的用户{name:?}", domain.name),
                ),
            })
    }

    pub async fn list_users(&self, domain: &Domain) -> Result<Vec<User>, CoreError> {
        Ok(self.store.list_users(&domain.id).await?)
    }

    pub async fn delete_user(&self, user: &User) -> Result<(), CoreError> {
        self.store.delete_user(&user.id).await?;
        Ok(())
    }

    pub async fn create_domain(&self, name: &str) -> Result<Domain, CoreError> {
        validate_name("domain name", name)?;
        let domain = Domain {
            id: new_id(),
            name: name.to_owned(),
            enabled: true,
        };
        self.store.insert_domain(&domain).await.map_err(conflict)?;
        Ok(domain)
    }

    pub async fn create_project(&self, domain: &Domain, name: &str) -> Result<Project, CoreError> {
        validate_name("project name", name)?;
        let project = Project {
            id: new_id(),
            domain_id: domain.id.clone(),
            name: name.to_owned(),
            enabled: true,
        };
        self.store
            .insert_project(&project)
            .await
            .map_err(conflict)?;
        Ok(project)
    }

    pub async fn create_user(
        &self,
        domain: &Domain,
        name: &str,
        password: String,
        is_admin: bool,
    ) -> Result<User, CoreError> {
        validate_name("user name", name)?;
        validate_password(&password)?;
        let password_hash = password::hash_async(password)
            .await
            .map_err(|e| CoreError::Unexpected { what: e })?;
        let user = User {
            id: new_id(),
            domain_id: domain.id.clone(),
            name: name.to_owned(),
            password_hash,
            is_admin,
            enabled: true,
        };
        self.store.insert_user(&user).await.map_err(conflict)?;
        Ok(user)
    }

    pub async fn set_password(&self, user: &User, password: String) -> Result<(), CoreError> {
        validate_password(&password)?;
        let hash = password::hash_async(password)
            .await
            .map_err(|e| CoreError::Unexpected { what: e })?;
        self.store.set_password_hash(&user.id, &hash).await?;
        Ok(())
    }

    /// Validates resource specs of `domain` into inventory records.
    pub async fn resources_of(
        &self,
        domain: &Domain,
        specs: &[ResourceSpec],
    ) -> Result<Vec<Resource>, CoreError> {
        let projects = self.store.list_projects(Some(&domain.id)).await?;
        specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let rt = known_type(
                    &format!("resources[{i}].resource_type"),
                    &spec.resource_type,
                )?;
                validate_resource_id(&format!("resources[{i}].resource_id"), &spec.resource_id)?;
                if let Some(pid) = spec.project_id.as_deref().filter(|p| !p.is_empty()) {
                    if !rt.global && !projects.iter().any(|p| p.id == pid) {
                        return Err(CoreError::NotFound {
                            what: Reason::new(
                                format!("project {pid} in domain {:?}", domain.name),
                                format!("账号{:?}中的项目{pid}", domain.name),
                            ),
                        });
                    }
                }
                let target = locate(
                    &domain.id,
                    spec.project_id.as_deref(),
                    rt,
                    &spec.resource_id,
                )?;
                Ok(Resource {
                    at: target.at,
                    name: spec.name.clone().unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Registers resources; returns how many were new.
    pub async fn register(
        &self,
        domain: &Domain,
        specs: &[ResourceSpec],
    ) -> Result<usize, CoreError> {
        let resources = self.resources_of(domain, specs).await?;
        Ok(self.store.register_resources(&resources).await?)
    }

    /// Registers many resources: every spec is validated first (one bad spec registers
    /// nothing), then they are written `chunk` at a time, calling `progress` with the
    /// number written so far. Not one transaction: a failure between chunks leaves the
    /// earlier ones registered, and running it again is harmless (registration is an
    /// upsert). Returns how many were new.
    pub async fn register_in_chunks(
        &self,
        domain: &Domain,
        specs: &[ResourceSpec],
        chunk: usize,
        mut progress: impl FnMut(usize),
    ) -> Result<usize, CoreError> {
        let resources = self.resources_of(domain, specs).await?;
        let mut created = 0;
        let mut done = 0;
        for part in resources.chunks(chunk.max(1)) {
            created += self.store.register_resources(part).await?;
            done += part.len();
            progress(done);
        }
        Ok(created)
    }

    /// Removes resources and their tags; returns how many existed.
    pub async fn remove(
        &self,
        domain: &Domain,
        specs: &[ResourceSpec],
    ) -> Result<usize, CoreError> {
        let refs: Vec<ResourceRef> = self
            .resources_of(domain, specs)
            .await?
            .into_iter()
            .map(|r| r.at)
            .collect();
        Ok(self.store.remove_resources(&refs).await?)
    }

    pub async fn list(&self, filter: &ResourceFilter) -> Result<Vec<Resource>, CoreError> {
        Ok(self.store.list_resources(filter).await?)
    }

    /// On an empty store, prepares a default domain, project and administrator with a
    /// random password, writing nothing yet; `None` when the store holds a domain.
    pub async fn prepare_first_run(&self) -> Result<Option<FirstRun>, CoreError> {
        if !self.store.list_domains().await?.is_empty() {
            return Ok(None);
        }
        let domain = Domain {
            id: new_id(),
            name: "tagd".to_owned(),
            enabled: true,
        };
        let project = Project {
            id: new_id(),
            domain_id: domain.id.clone(),
            name: DEFAULT_PROJECT.to_owned(),
            enabled: true,
        };
        let password = random_password();
        let user = User {
            id: new_id(),
            domain_id: domain.id.clone(),
            name: "admin".to_owned(),
            password_hash: password::hash_async(password.clone())
                .await
                .map_err(|e| CoreError::Unexpected { what: e })?,
            is_admin: true,
            enabled: true,
        };
        Ok(Some(FirstRun {
            domain,
            project,
            user,
            password,
        }))
    }

    /// Stores a prepared first identity in one transaction; `false` when another
    /// process initialised the store first (nothing is written then).
    pub async fn commit_first_run(&self, first: &FirstRun) -> Result<bool, CoreError> {
        Ok(self
            .store
            .insert_first_identity(&first.domain, &first.project, &first.user)
            .await?)
    }
}

fn validate_password(password: &str) -> Result<(), CoreError> {
    let chars = password.chars().count();
    if !(8..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(CoreError::invalid(
            "password",
            Reason::length(8, MAX_PASSWORD_CHARS, chars),
        ));
    }
    Ok(())
}

/// 24 characters from an alphabet without look-alikes (no 0/O, 1/l/I).
pub fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..24)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}
