//! The batch rules, decided once for every backend.
//!
//! A backend locks the batch's resources, registers the ones emulator mode asks it to,
//! reads their rows, and hands them to [`decide`]; what comes back is the outcome of
//! every item and the net row changes to write, each with the value before and after.
//! The backend writes those and nothing else, so limits, emulator registration and
//! all-or-nothing rejection mean the same on every store, and the same changes feed
//! the tag index and the change log.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};

use super::model::ResourceRef;
use super::tagging::{check_set, BatchItem, ItemOutcome, TagBatch, TagChange};

/// The two tables of tag rows: user tags, and system tags (which do not count against
/// the tag limit and are not listed with the resource's tags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TagTable {
    Tags,
    SysTags,
}

impl TagTable {
    /// The table's name in both schemas.
    pub fn name(self) -> &'static str {
        match self {
            TagTable::Tags => "tags",
            TagTable::SysTags => "sys_tags",
        }
    }
}

/// A registered resource's rows as the backend read them, key to value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredRows {
    pub tags: BTreeMap<String, String>,
    /// Read only when some item changes system tags ([`needs_sys_tags`]).
    pub sys_tags: BTreeMap<String, String>,
}

/// One row a batch changes: `before` is what is stored (`None`: no such row), `after`
/// what is to be (`None`: delete it). They always differ. Borrowed from the batch and
/// the rows read, so deciding allocates no strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowChange<'a> {
    pub key: &'a str,
    pub before: Option<&'a str>,
    pub after: Option<&'a str>,
}

/// The changes a batch makes to one table of one resource, by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceChanges<'a> {
    pub at: &'a ResourceRef,
    pub table: TagTable,
    pub rows: Vec<RowChange<'a>>,
}

/// What a batch does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'a> {
    /// One per item, in request order.
    pub outcomes: Vec<ItemOutcome>,
    /// The item that makes the whole batch fail under its mode; then nothing may be
    /// written (and registrations made for it are undone with the transaction).
    pub rejected: Option<(usize, ItemOutcome)>,
    /// The net changes, by resource (in the order the batch first names them) and
    /// table; a resource or table left as it was has no entry. Empty when the batch
    /// is rejected.
    pub changes: Vec<ResourceChanges<'a>>,
}

/// Whether an item writes something.
fn sets_something(item: &BatchItem) -> bool {
    matches!(item.change, TagChange::Set(_)) || matches!(item.sys_change, Some(TagChange::Set(_)))
}

/// Whether emulator mode registers this item's resource when it is missing: the item
/// writes something, and its user tags fit a resource that has none. A refused item
/// leaves no trace, not even the registration.
pub fn registers(batch: &TagBatch, item: &BatchItem) -> bool {
    batch.auto_register
        && sets_something(item)
        && match &item.change {
            TagChange::Set(tags) => {
                check_set(std::iter::empty(), tags, item.target.tag_limit) == ItemOutcome::Applied
            }
            TagChange::Remove(_) => true,
        }
}

/// Whether any item changes system tags, so the backend must read them.
pub fn needs_sys_tags(batch: &TagBatch) -> bool {
    batch.items.iter().any(|i| i.sys_change.is_some())
}

/// What a backend read for a batch, by resource (the batch's own references).
pub type ByResource<'a, V> = FxHashMap<&'a ResourceRef, V>;

/// The batch's distinct resources, in the order it first names them.
pub fn targets(batch: &TagBatch) -> Vec<&ResourceRef> {
    let mut seen = FxHashSet::default();
    batch
        .items
        .iter()
        .map(|i| &i.target.at)
        .filter(|at| seen.insert(*at))
        .collect()
}

/// The batch's distinct resources in one global order. A backend that locks them in
/// this order never waits in a cycle with another batch over the same resources (a
/// single writer, as SQLite's, needs no order: [`targets`]).
pub fn lock_order(batch: &TagBatch) -> Vec<&ResourceRef> {
    let mut targets = targets(batch);
    targets.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    targets
}

fn sort_key(at: &ResourceRef) -> (&str, &str, &str, &str) {
    (
        &at.domain_id,
        &at.project_id,
        &at.resource_type,
        &at.resource_id,
    )
}

/// One table's rows while the batch is decided: borrowed from what was read and from
/// the batch itself.
type Rows<'a> = BTreeMap<&'a str, &'a str>;

fn borrowed(rows: &BTreeMap<String, String>) -> Rows<'_> {
    rows.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Applies a change to one table's rows in memory.
fn apply<'a>(rows: &mut Rows<'a>, change: &'a TagChange) {
    match change {
        TagChange::Set(tags) => {
            for t in tags {
                rows.insert(t.key.as_str(), t.value.as_str());
            }
        }
        TagChange::Remove(selectors) => {
            for s in selectors {
                let matches = match (&s.value, rows.get(s.key.as_str())) {
                    (_, None) => false,
                    (None, Some(_)) => true,
                    (Some(v), Some(held)) => v.as_str() == *held,
                };
                if matches {
                    rows.remove(s.key.as_str());
                }
            }
        }
    }
}

/// Decides a batch over `stored`, the rows of every registered resource it names
/// (after any registration emulator mode asked for; a resource absent from the map is
/// not registered). Items are applied in order, each seeing the ones before it.
pub fn decide<'a>(batch: &'a TagBatch, stored: &'a ByResource<'a, StoredRows>) -> Decision<'a> {
    // The rows as the batch leaves them, by resource in the order first named.
    let mut order: Vec<(&'a ResourceRef, &'a StoredRows)> = Vec::new();
    let mut after: ByResource<'a, (Rows<'a>, Rows<'a>)> = FxHashMap::default();
    let mut outcomes = Vec::with_capacity(batch.items.len());
    for item in &batch.items {
        let at = &item.target.at;
        let Some(found) = stored.get(at) else {
            outcomes.push(match &item.change {
                // Emulator mode: an item that would have registered its resource was
                // refused on its own tags; one that only removes is a no-op.
                TagChange::Set(tags) if batch.auto_register && sets_something(item) => {
                    check_set(std::iter::empty(), tags, item.target.tag_limit)
                }
                _ if batch.auto_register => ItemOutcome::Applied,
                _ => ItemOutcome::NotFound,
            });
            continue;
        };
        let (tags, sys_tags) = after.entry(at).or_insert_with(|| {
            order.push((at, found));
            (borrowed(&found.tags), borrowed(&found.sys_tags))
        });
        if let TagChange::Set(new) = &item.change {
            let outcome = check_set(tags.keys().copied(), new, item.target.tag_limit);
            if outcome != ItemOutcome::Applied {
                outcomes.push(outcome);
                continue;
            }
        }
        apply(tags, &item.change);
        if let Some(change) = &item.sys_change {
            apply(sys_tags, change);
        }
        outcomes.push(ItemOutcome::Applied);
    }
    let rejected = batch.mode.rejection(&outcomes);
    let mut changes = Vec::new();
    if rejected.is_none() {
        for (at, before) in order {
            let Some((tags, sys_tags)) = after.get(at) else {
                continue;
            };
            for (table, old, new) in [
                (TagTable::Tags, &before.tags, tags),
                (TagTable::SysTags, &before.sys_tags, sys_tags),
            ] {
                let rows = diff(old, new);
                if !rows.is_empty() {
                    changes.push(ResourceChanges { at, table, rows });
                }
            }
        }
    }
    Decision {
        outcomes,
        rejected,
        changes,
    }
}

/// The changes that turn `old` into `new`, by key: one merge of the two sorted maps.
fn diff<'a>(old: &'a BTreeMap<String, String>, new: &Rows<'a>) -> Vec<RowChange<'a>> {
    let mut rows = Vec::new();
    let mut old = old.iter().map(|(k, v)| (k.as_str(), v.as_str())).peekable();
    let mut new = new.iter().map(|(k, v)| (*k, *v)).peekable();
    loop {
        let change = match (old.peek().copied(), new.peek().copied()) {
            (None, None) => break,
            (Some((key, before)), None) => {
                old.next();
                RowChange {
                    key,
                    before: Some(before),
                    after: None,
                }
            }
            (None, Some((key, after))) => {
                new.next();
                RowChange {
                    key,
                    before: None,
                    after: Some(after),
                }
            }
            (Some((ok, before)), Some((nk, after))) => match ok.cmp(nk) {
                std::cmp::Ordering::Less => {
                    old.next();
                    RowChange {
                        key: ok,
                        before: Some(before),
                        after: None,
                    }
                }
                std::cmp::Ordering::Greater => {
                    new.next();
                    RowChange {
                        key: nk,
                        before: None,
                        after: Some(after),
                    }
                }
                std::cmp::Ordering::Equal => {
                    old.next();
                    new.next();
                    if before == after {
                        continue;
                    }
                    RowChange {
                        key: ok,
                        before: Some(before),
                        after: Some(after),
                    }
                }
            },
        };
        rows.push(change);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tagging::{BatchMode, BatchTarget};
    use crate::core::tags::{Tag, TagKey, TagSelector, TagValue};

    fn at(id: &str) -> ResourceRef {
        ResourceRef {
            domain_id: "d".into(),
            project_id: "p".into(),
            resource_type: "disk".into(),
            resource_id: id.into(),
        }
    }

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: TagKey::from_stored(k.into()),
            value: TagValue::from_stored(v.into()),
        }
    }

    fn item(id: &str, change: TagChange) -> BatchItem {
        BatchItem {
            target: BatchTarget {
                at: at(id),
                tag_limit: 2,
            },
            change,
            sys_change: None,
        }
    }

    fn batch(items: Vec<BatchItem>, mode: BatchMode, auto_register: bool) -> TagBatch {
        TagBatch {
            items,
            mode,
            auto_register,
        }
    }

    fn rows(pairs: &[(&str, &str)]) -> StoredRows {
        StoredRows {
            tags: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            sys_tags: BTreeMap::new(),
        }
    }

    /// A change as (resource id, table, key, before, after), for comparing.
    type Flat = (String, TagTable, String, Option<String>, Option<String>);

    fn change(id: &str, key: &str, before: Option<&str>, after: Option<&str>) -> Flat {
        (
            id.into(),
            TagTable::Tags,
            key.into(),
            before.map(Into::into),
            after.map(Into::into),
        )
    }

    fn flat(d: &Decision) -> Vec<Flat> {
        d.changes
            .iter()
            .flat_map(|c| {
                c.rows.iter().map(|r| {
                    (
                        c.at.resource_id.clone(),
                        c.table,
                        r.key.to_owned(),
                        r.before.map(Into::into),
                        r.after.map(Into::into),
                    )
                })
            })
            .collect()
    }

    #[test]
    fn net_changes_carry_the_value_before_and_after_and_skip_no_ops() {
        let a = at("a");
        let stored = ByResource::from_iter([(&a, rows(&[("env", "dev"), ("keep", "same")]))]);
        let b = batch(
            vec![
                item(
                    "a",
                    TagChange::Set(vec![tag("env", "prod"), tag("keep", "same")]),
                ),
                item(
                    "a",
                    TagChange::Remove(vec![TagSelector {
                        key: TagKey::from_stored("keep".into()),
                        value: Some(TagValue::from_stored("other".into())),
                    }]),
                ),
            ],
            BatchMode::PerResource,
            false,
        );
        let d = decide(&b, &stored);
        assert_eq!(d.outcomes, vec![ItemOutcome::Applied, ItemOutcome::Applied]);
        assert_eq!(
            flat(&d),
            vec![change("a", "env", Some("dev"), Some("prod"))],
            "an unchanged value and a remove whose value does not match are no changes"
        );
    }

    #[test]
    fn later_items_see_earlier_ones_and_limits_count_the_result() {
        let a = at("a");
        let stored = ByResource::from_iter([(&a, rows(&[("x", "1")]))]);
        let b = batch(
            vec![
                item("a", TagChange::Set(vec![tag("y", "2")])),
                item("a", TagChange::Set(vec![tag("z", "3")])),
                item("missing", TagChange::Set(vec![tag("k", "v")])),
            ],
            BatchMode::PerResource,
            false,
        );
        let d = decide(&b, &stored);
        assert_eq!(
            d.outcomes,
            vec![
                ItemOutcome::Applied,
                ItemOutcome::LimitExceeded {
                    limit: 2,
                    would_have: 3
                },
                ItemOutcome::NotFound
            ]
        );
        assert_eq!(flat(&d), vec![change("a", "y", None, Some("2"))]);
    }

    #[test]
    fn a_rejected_batch_writes_nothing() {
        let a = at("a");
        let stored = ByResource::from_iter([(&a, rows(&[]))]);
        let b = batch(
            vec![
                item("a", TagChange::Set(vec![tag("k", "v")])),
                item("missing", TagChange::Set(vec![tag("k", "v")])),
            ],
            BatchMode::AllOrNothing {
                skip_unknown: false,
            },
            false,
        );
        let d = decide(&b, &stored);
        assert_eq!(d.rejected, Some((1, ItemOutcome::NotFound)));
        assert!(d.changes.is_empty());
        let skipping = TagBatch {
            mode: BatchMode::AllOrNothing { skip_unknown: true },
            ..b
        };
        let d = decide(&skipping, &stored);
        assert_eq!(d.rejected, None);
        assert_eq!(flat(&d), vec![change("a", "k", None, Some("v"))]);
    }

    #[test]
    fn emulator_mode_registers_only_what_fits_and_ignores_removes_from_nothing() {
        let fits = item("new", TagChange::Set(vec![tag("k", "v")]));
        let too_many = item(
            "big",
            TagChange::Set(vec![tag("a", "1"), tag("b", "2"), tag("c", "3")]),
        );
        let remove = item(
            "gone",
            TagChange::Remove(vec![TagSelector {
                key: TagKey::from_stored("k".into()),
                value: None,
            }]),
        );
        let b = batch(
            vec![fits.clone(), too_many.clone(), remove.clone()],
            BatchMode::PerResource,
            true,
        );
        assert!(registers(&b, &fits));
        assert!(
            !registers(&b, &too_many),
            "a refused item registers nothing"
        );
        assert!(!registers(&b, &remove));
        // The backend registered "new" (empty rows); the others stay missing.
        let new = at("new");
        let stored = ByResource::from_iter([(&new, StoredRows::default())]);
        let d = decide(&b, &stored);
        assert_eq!(
            d.outcomes,
            vec![
                ItemOutcome::Applied,
                ItemOutcome::LimitExceeded {
                    limit: 2,
                    would_have: 3
                },
                ItemOutcome::Applied
            ]
        );
        assert_eq!(flat(&d), vec![change("new", "k", None, Some("v"))]);
    }

    #[test]
    fn system_tags_change_with_their_item_and_do_not_count() {
        let a = at("a");
        let stored = ByResource::from_iter([(&a, rows(&[("x", "1"), ("y", "2")]))]);
        let mut with_sys = item("a", TagChange::Set(vec![tag("x", "9")]));
        with_sys.sys_change = Some(TagChange::Set(vec![tag("_sys_enterprise_project_id", "0")]));
        let b = batch(vec![with_sys], BatchMode::PerResource, false);
        assert!(needs_sys_tags(&b));
        let d = decide(&b, &stored);
        assert_eq!(d.outcomes, vec![ItemOutcome::Applied]);
        let mut sys = change("a", "_sys_enterprise_project_id", None, Some("0"));
        sys.1 = TagTable::SysTags;
        assert_eq!(flat(&d), vec![change("a", "x", Some("1"), Some("9")), sys]);
    }

    #[test]
    fn resources_are_locked_in_one_order_whatever_the_request_order() {
        let b = batch(
            vec![
                item("b", TagChange::Set(vec![])),
                item("a", TagChange::Set(vec![])),
                item("b", TagChange::Set(vec![])),
            ],
            BatchMode::PerResource,
            false,
        );
        assert_eq!(lock_order(&b), vec![&at("a"), &at("b")]);
    }
}
