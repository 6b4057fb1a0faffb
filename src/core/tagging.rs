//! Tag batches: the one write every API performs, with its atomicity and limit rules.
//!
//! A batch names resources and one change (set or remove tags). The store applies it
//! in one transaction: each resource either takes the whole change or is reported with
//! an [`ItemOutcome`] saying why not, and the batch as a whole commits or not at all.

use std::sync::Arc;

use super::model::ResourceRef;
use super::port::Store;
use super::predefined;
use super::providers::{self, ResourceType};
use super::query::{FoundPage, KeyValues, ResourceQuery, TagScope};
use super::tags::{Tag, TagSelector};
use super::{CoreError, Reason};

/// The change a batch makes to each of its resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagChange {
    /// Add these tags, overwriting the value of keys the resource already has.
    Set(Vec<Tag>),
    /// Remove matching tags; a tag that is not there is not an error.
    Remove(Vec<TagSelector>),
}

/// One resource a batch touches, with the tag limit of its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchTarget {
    pub at: ResourceRef,
    pub tag_limit: usize,
}

/// How a batch treats a resource that cannot take the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchMode {
    /// Each resource succeeds or fails alone (TMS's `failed_resources`).
    PerResource,
    /// One failure undoes the whole batch. With `skip_unknown`, resources that are not
    /// registered are left out instead (Workspace filters unknown desktop ids).
    AllOrNothing { skip_unknown: bool },
}

impl BatchMode {
    /// The first outcome that makes the whole batch fail, if the mode says so.
    pub fn rejection(self, outcomes: &[ItemOutcome]) -> Option<(usize, ItemOutcome)> {
        match self {
            BatchMode::PerResource => None,
            BatchMode::AllOrNothing { skip_unknown } => {
                outcomes.iter().copied().enumerate().find(|(_, o)| match o {
                    ItemOutcome::Applied => false,
                    ItemOutcome::NotFound => !skip_unknown,
                    ItemOutcome::LimitExceeded { .. } => true,
                })
            }
        }
    }
}

/// One resource of a batch and what happens to its tags.
#[derive(Debug, Clone)]
pub struct BatchItem {
    pub target: BatchTarget,
    pub change: TagChange,
    /// A change to system tags (`_sys_enterprise_project_id`), which do not count
    /// against the tag limit and are not listed with the resource's tags. Applied only
    /// when `change` is.
    pub sys_change: Option<TagChange>,
}

/// A validated batch, ready for the store: items are applied in order.
#[derive(Debug, Clone)]
pub struct TagBatch {
    pub items: Vec<BatchItem>,
    pub mode: BatchMode,
    /// Emulator mode: a resource that is not registered is registered on first write.
    pub auto_register: bool,
}

/// A batch that makes the same change to every target (TMS's shape).
#[derive(Debug, Clone)]
pub struct UniformBatch {
    pub targets: Vec<BatchTarget>,
    pub change: TagChange,
    pub sys_change: Option<TagChange>,
    pub mode: BatchMode,
    pub auto_register: bool,
}

impl From<UniformBatch> for TagBatch {
    fn from(b: UniformBatch) -> Self {
        TagBatch {
            items: b
                .targets
                .into_iter()
                .map(|target| BatchItem {
                    target,
                    change: b.change.clone(),
                    sys_change: b.sys_change.clone(),
                })
                .collect(),
            mode: b.mode,
            auto_register: b.auto_register,
        }
    }
}

/// What happened to one resource of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemOutcome {
    Applied,
    /// The resource is not in the inventory.
    NotFound,
    /// Applying the change would leave the resource with more tags than its type allows.
    LimitExceeded {
        limit: usize,
        would_have: usize,
    },
}

/// How many tags a resource has after setting `new` on top of `existing`: keys already
/// present are overwritten, not added.
pub fn tag_count_after_set<'a>(existing: impl IntoIterator<Item = &'a str>, new: &[Tag]) -> usize {
    let existing: std::collections::HashSet<&str> = existing.into_iter().collect();
    existing.len()
        + new
            .iter()
            .filter(|t| !existing.contains(t.key.as_str()))
            .count()
}

/// Decides whether a set may proceed on a resource that has `existing` keys.
pub fn check_set<'a>(
    existing: impl IntoIterator<Item = &'a str>,
    new: &[Tag],
    limit: usize,
) -> ItemOutcome {
    let would_have = tag_count_after_set(existing, new);
    if would_have > limit {
        ItemOutcome::LimitExceeded { limit, would_have }
    } else {
        ItemOutcome::Applied
    }
}

fn pairs(tags: &[Tag]) -> Vec<(String, String)> {
    tags.iter()
        .map(|t| (t.key.as_str().to_owned(), t.value.as_str().to_owned()))
        .collect()
}

/// "Desktop d1 was not found", naming the kind of resource as the catalogue does.
pub fn not_found(resource_type: &str, resource_id: &str) -> CoreError {
    let kind = providers::resource_type(resource_type).map_or(resource_type, |t| t.display_name);
    CoreError::NotFound {
        what: Reason::new(
            format!("{kind} {resource_id}"),
            format!("{kind}资源{resource_id}"),
        ),
    }
}

/// The error an all-or-nothing batch fails with.
fn rejection_error(at: &ResourceRef, outcome: ItemOutcome) -> CoreError {
    match outcome {
        ItemOutcome::LimitExceeded { limit, would_have } => CoreError::TagLimitExceeded {
            resource_id: at.resource_id.clone(),
            limit,
            would_have,
        },
        ItemOutcome::NotFound | ItemOutcome::Applied => {
            not_found(&at.resource_type, &at.resource_id)
        }
    }
}

/// Finds a resource type in the catalogue, or says which name was wrong.
pub fn known_type(field: &str, name: &str) -> Result<&'static ResourceType, CoreError> {
    providers::resource_type(name).ok_or_else(|| CoreError::UnknownResourceType {
        field: field.to_owned(),
        name: name.to_owned(),
    })
}

/// Places a resource: regional types need a project, global types ignore it.
pub fn locate(
    domain_id: &str,
    project_id: Option<&str>,
    resource_type: &'static ResourceType,
    resource_id: &str,
) -> Result<BatchTarget, CoreError> {
    let project_id = if resource_type.global {
        String::new()
    } else {
        match project_id {
            Some(p) if !p.is_empty() => p.to_owned(),
            _ => {
                return Err(CoreError::ProjectRequired {
                    resource_type: resource_type.name.to_owned(),
                })
            }
        }
    };
    Ok(BatchTarget {
        at: ResourceRef {
            domain_id: domain_id.to_owned(),
            project_id,
            resource_type: resource_type.name.to_owned(),
            resource_id: resource_id.to_owned(),
        },
        tag_limit: resource_type.tag_limit,
    })
}

/// The tagging service: the entry point dialect adapters call.
#[derive(Clone)]
pub struct Tagging {
    store: Arc<dyn Store>,
    auto_register: bool,
    /// Turns among the unpaged listings ([`Tagging::key_values`]), whose answers grow
    /// with a whole scope's tags (D88).
    unpaged: Arc<tokio::sync::Semaphore>,
}

/// Unpaged listings running at once when nothing else is configured.
pub const DEFAULT_UNPAGED_LISTINGS: usize = 4;

/// A listing read whole, with its turn among the unpaged listings: the caller keeps it
/// until the answer is written, so that the bound covers the bytes written too.
pub struct Unpaged<T> {
    pub items: T,
    _turn: tokio::sync::OwnedSemaphorePermit,
}

impl Tagging {
    pub fn new(store: Arc<dyn Store>, auto_register: bool) -> Self {
        Self {
            store,
            auto_register,
            unpaged: Arc::new(tokio::sync::Semaphore::new(DEFAULT_UNPAGED_LISTINGS)),
        }
    }

    /// At most `n` (at least 1) unpaged listings read and answer at once; the others
    /// wait their turn.
    pub fn with_unpaged_listings(mut self, n: usize) -> Self {
        self.unpaged = Arc::new(tokio::sync::Semaphore::new(n.max(1)));
        self
    }

    /// Applies `change` to `targets` in one transaction and reports each target's
    /// outcome, in request order; each target succeeds or fails alone. A target named
    /// twice is applied once and reported once.
    pub async fn apply(
        &self,
        mut targets: Vec<BatchTarget>,
        change: TagChange,
    ) -> Result<Vec<(ResourceRef, ItemOutcome)>, CoreError> {
        let mut seen = std::collections::HashSet::new();
        targets.retain(|t| seen.insert(t.at.clone()));
        let batch = TagBatch::from(UniformBatch {
            targets,
            change,
            sys_change: None,
            mode: BatchMode::PerResource,
            auto_register: self.auto_register,
        });
        let refs: Vec<ResourceRef> = batch.items.iter().map(|i| i.target.at.clone()).collect();
        let outcomes = self.store.apply_tags(batch).await?;
        Ok(refs.into_iter().zip(outcomes).collect())
    }

    /// Applies items that each make their own change, in one transaction; each item
    /// succeeds or fails alone (bulk imports). One outcome per item, in order.
    pub async fn apply_each(&self, items: Vec<BatchItem>) -> Result<Vec<ItemOutcome>, CoreError> {
        Ok(self
            .store
            .apply_tags(TagBatch {
                items,
                mode: BatchMode::PerResource,
                auto_register: self.auto_register,
            })
            .await?)
    }

    /// Applies every item or none, in order: the first item whose resource is unknown
    /// (unless `skip_unknown`) or would pass its limit fails the request.
    pub async fn apply_all(
        &self,
        items: Vec<BatchItem>,
        skip_unknown: bool,
    ) -> Result<(), CoreError> {
        let mode = BatchMode::AllOrNothing { skip_unknown };
        let refs: Vec<ResourceRef> = items.iter().map(|i| i.target.at.clone()).collect();
        let outcomes = self
            .store
            .apply_tags(TagBatch {
                items,
                mode,
                auto_register: self.auto_register,
            })
            .await?;
        match mode.rejection(&outcomes) {
            None => Ok(()),
            Some((i, outcome)) => Err(rejection_error(&refs[i], outcome)),
        }
    }

    /// One page of the resources a query keeps, with the exact total.
    pub async fn find(
        &self,
        query: &ResourceQuery,
        offset: u64,
        limit: u64,
    ) -> Result<FoundPage, CoreError> {
        Ok(self.store.find_resources(query, offset, limit).await?)
    }

    /// How many resources a query keeps.
    pub async fn count(&self, query: &ResourceQuery) -> Result<u64, CoreError> {
        Ok(self.store.count_resources(query).await?)
    }

    /// Every key in use in a scope with its values, read once a turn among the unpaged
    /// listings is free: each such answer holds a whole scope's tags in memory, so
    /// concurrent ones beyond the bound wait instead of all allocating at once.
    pub async fn key_values(&self, scope: &TagScope) -> Result<Unpaged<Vec<KeyValues>>, CoreError> {
        let turn = self
            .unpaged
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| CoreError::from(super::port::StoreError::Closed))?;
        Ok(Unpaged {
            items: self.store.key_values(scope).await?,
            _turn: turn,
        })
    }

    /// A page of the keys in use in a scope, after `after`.
    pub async fn tag_keys(
        &self,
        scope: &TagScope,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, CoreError> {
        Ok(self.store.tag_keys(scope, after, limit).await?)
    }

    /// A page of the values of `key` in a scope, after `after`.
    pub async fn tag_values(
        &self,
        scope: &TagScope,
        key: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, CoreError> {
        Ok(self.store.tag_values(scope, key, after, limit).await?)
    }

    /// Adds predefined tags to a domain, within its quota.
    pub async fn add_predefined(&self, domain_id: &str, tags: &[Tag]) -> Result<(), CoreError> {
        let pairs = pairs(tags);
        if self
            .store
            .add_predefined_tags(domain_id, &pairs, predefined::MAX_PER_DOMAIN)
            .await?
        {
            Ok(())
        } else {
            Err(CoreError::TooMany {
                field: "predefine_tags",
                max: predefined::MAX_PER_DOMAIN,
                got: predefined::MAX_PER_DOMAIN + 1,
            })
        }
    }

    /// Removes predefined tags; missing ones are not an error.
    pub async fn remove_predefined(&self, domain_id: &str, tags: &[Tag]) -> Result<(), CoreError> {
        Ok(self
            .store
            .remove_predefined_tags(domain_id, &pairs(tags))
            .await?)
    }

    /// A domain's predefined tags, filtered, sorted and paged; with the number matched.
    pub async fn predefined(
        &self,
        domain_id: &str,
        listing: &predefined::Listing,
    ) -> Result<(Vec<predefined::PredefinedTag>, usize), CoreError> {
        Ok(listing.apply(self.store.predefined_tags(domain_id).await?))
    }

    /// A domain's predefined tags grouped by key, keys and values sorted.
    pub async fn predefined_key_values(
        &self,
        domain_id: &str,
    ) -> Result<Vec<KeyValues>, CoreError> {
        let mut all = self.store.predefined_tags(domain_id).await?;
        all.sort_by(|a, b| a.key.cmp(&b.key).then_with(|| a.value.cmp(&b.value)));
        let mut out: Vec<KeyValues> = Vec::new();
        for t in all {
            match out.last_mut() {
                Some(kv) if kv.key == t.key => kv.values.push(t.value),
                _ => out.push(KeyValues {
                    key: t.key,
                    values: vec![t.value],
                }),
            }
        }
        Ok(out)
    }

    /// Replaces one predefined tag by another.
    pub async fn replace_predefined(
        &self,
        domain_id: &str,
        old: &Tag,
        new: &Tag,
    ) -> Result<(), CoreError> {
        let pair = |t: &Tag| (t.key.as_str().to_owned(), t.value.as_str().to_owned());
        match self
            .store
            .replace_predefined_tag(domain_id, &pair(old), &pair(new))
            .await?
        {
            predefined::Replaced::Done => Ok(()),
            predefined::Replaced::OldMissing => Err(CoreError::invalid(
                "old_tag",
                Reason::new(
                    "is not a predefined tag of the domain",
                    "不是该账号的预定义标签",
                ),
            )),
            predefined::Replaced::NewExists => Err(CoreError::invalid(
                "new_tag",
                Reason::new(
                    "is already a predefined tag of the domain",
                    "已经是该账号的预定义标签",
                ),
            )),
        }
    }

    /// The system tags of one resource; `None` when it is not registered.
    pub async fn sys_tags_of(&self, at: &ResourceRef) -> Result<Option<Vec<Tag>>, CoreError> {
        match self.store.resource_sys_tags(at).await? {
            None if self.auto_register => Ok(Some(Vec::new())),
            found => Ok(found),
        }
    }

    /// The tags of one resource, sorted by key; `None` when it is not registered (in
    /// emulator mode an unregistered resource simply has no tags).
    pub async fn tags_of(&self, at: &ResourceRef) -> Result<Option<Vec<Tag>>, CoreError> {
        match self.store.resource_tags(at).await? {
            None if self.auto_register => Ok(Some(Vec::new())),
            found => Ok(found),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tags::{TagKey, TagValue};

    fn tag(k: &str) -> Tag {
        Tag {
            key: TagKey::from_stored(k.into()),
            value: TagValue::from_stored(String::new()),
        }
    }

    #[test]
    fn overwritten_keys_do_not_count_twice() {
        let existing = ["a", "b"];
        assert_eq!(tag_count_after_set(existing, &[tag("a"), tag("c")]), 3);
        assert_eq!(
            check_set(existing, &[tag("c"), tag("d")], 3),
            ItemOutcome::LimitExceeded {
                limit: 3,
                would_have: 4
            }
        );
        assert_eq!(
            check_set(existing, &[tag("a"), tag("b")], 2),
            ItemOutcome::Applied
        );
    }
}
