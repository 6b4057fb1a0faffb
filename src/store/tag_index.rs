//! An in-memory index of the SQLite store's tags, so that filters and exact counts are
//! bitmap operations instead of scans of the project.
//!
//! For each domain, each key, and each (key, value), the set of resources carrying it,
//! as a compressed bitmap of row ids (split by domain so that listing one tenant's keys
//! never walks another's, D85); each resource's scope (domain, project, type) and its
//! place in the listing order as a number (a sort label), so that choosing a page of
//! 25,000 matches compares integers instead of looking up and comparing strings. The
//! writer thread keeps it in step with every committed group of writes; it carries the
//! store's write sequence number, and a reader uses it only when that number equals the
//! one in its own snapshot, so an index answer is always the answer the database would
//! give. The SQLite schema has no SQL index on tag keys and values (D61): this index is
//! built when the server starts and kept current, and only what it does not cover
//! (names, ids, system tags) or a moment without it (before it is built, after another
//! process wrote) falls back to SQL.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::core::model::ResourceRef;
use crate::core::query::{ResourceQuery, TagMatch};

/// A row id as the index holds it: the 32 bits its bitmaps take. The store's ids are
/// 64-bit (`INTEGER`, PostgreSQL's `BIGINT`, kept by `copy-store`), so one is made only
/// by a checked conversion: an id the index cannot hold is refused (the index is not
/// built, and queries answer by SQL) instead of being cut down to another resource's
/// id, maybe another tenant's (D83).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rid(u32);

impl Rid {
    /// The index's id for the store's row id `rid`; `None` if it does not fit.
    pub fn new(rid: i64) -> Option<Self> {
        u32::try_from(rid).ok().map(Self)
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// A change the writer made, to replay on the index once its transaction commits.
#[derive(Debug, Clone)]
pub enum Delta {
    Registered {
        rid: Rid,
        at: ResourceRef,
    },
    TagSet {
        rid: Rid,
        key: String,
        old: Option<String>,
        new: String,
    },
    TagRemoved {
        rid: Rid,
        key: String,
        value: String,
    },
    /// A resource unregistered; its tags were removed by `TagRemoved` before.
    Removed {
        rid: Rid,
        at: ResourceRef,
    },
    /// Something the index does not follow (a whole project or domain removed): rebuild.
    Invalidate,
}

/// Where a resource sorts in listings: (type, id, project), then the row id.
type SortKey = (Arc<str>, Box<str>, Arc<str>, u32);

/// Room left between consecutive sort labels when they are (re)assigned: a new resource
/// takes the midpoint between its neighbours, so 32 may land in one gap before labels
/// around it are spread out again.
const LABEL_SPACING: u64 = 1 << 32;

/// The least room per resource a local relabelling leaves: 16 more may then land
/// between two neighbours before their window is spread out again.
const MIN_LABEL_STEP: u64 = 1 << 16;

/// The entry for `key`, created if missing; a borrowed key allocates only when new.
fn entry<'a, V: Default>(map: &'a mut BTreeMap<Box<str>, V>, key: &str) -> &'a mut V {
    if !map.contains_key(key) {
        map.insert(key.into(), V::default());
    }
    map.get_mut(key).expect("the entry was just inserted")
}

/// The tags of one key: who has the key at all, and who has each value.
#[derive(Default)]
struct KeyPostings {
    any: RoaringBitmap,
    values: BTreeMap<Box<str>, RoaringBitmap>,
}

/// (project, resource type), within a domain.
type ScopeKey = (Arc<str>, Arc<str>);

/// The keys in use in one domain. Looked up by borrowed strings, so setting a tag that
/// is already in use allocates nothing.
type Postings = BTreeMap<Box<str>, KeyPostings>;

/// The domain number of a row id that holds no resource.
const NO_DOMAIN: u32 = u32::MAX;

#[derive(Default)]
pub struct TagIndex {
    /// The store's write sequence this index reflects.
    pub seq: u64,
    /// Per domain, by its number in `domain_numbers`.
    postings: HashMap<u32, Postings>,
    domain_numbers: HashMap<Arc<str>, u32>,
    /// Domain numbers by row id, [`NO_DOMAIN`] for none: a tag change names only its
    /// resource's row id.
    domain_of: Vec<u32>,
    tagged: RoaringBitmap,
    /// Tags per resource, by row id.
    tag_counts: Vec<u16>,
    /// The resources of each (project, type), per domain: a scope is found among its
    /// own domain's, never by looking at every tenant's.
    scopes: HashMap<Arc<str>, HashMap<ScopeKey, RoaringBitmap>>,
    /// Every resource in listing order.
    order: BTreeSet<SortKey>,
    /// Sort labels by row id: increasing along `order`, 0 for none.
    labels: Vec<u64>,
    /// Whether `labels` is in step with `order`; a build adds every resource first and
    /// labels them once at the end ([`TagIndex::label_all`]).
    labelled: bool,
    strings: HashMap<String, Arc<str>>,
}

impl TagIndex {
    /// An empty index for the store at write sequence `seq`, to be filled: add every
    /// resource, call [`TagIndex::label_all`] once, then add the tags.
    pub fn new(seq: u64) -> Self {
        Self {
            seq,
            ..Self::default()
        }
    }

    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.strings.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.strings.insert(s.to_owned(), a.clone());
        a
    }

    pub fn add_resource(&mut self, rid: u32, at: &ResourceRef) {
        let (d, p, t) = (
            self.intern(&at.domain_id),
            self.intern(&at.project_id),
            self.intern(&at.resource_type),
        );
        let next = self.domain_numbers.len() as u32;
        let number = *self.domain_numbers.entry(d.clone()).or_insert(next);
        if self.domain_of.len() <= rid as usize {
            self.domain_of.resize(rid as usize + 1, NO_DOMAIN);
        }
        self.domain_of[rid as usize] = number;
        self.scopes
            .entry(d)
            .or_default()
            .entry((p.clone(), t.clone()))
            .or_default()
            .insert(rid);
        let key: SortKey = (t, at.resource_id.as_str().into(), p, rid);
        if self.labels.len() <= rid as usize {
            self.labels.resize(rid as usize + 1, 0);
        }
        // The neighbours are found before the key goes in, so it need not be cloned.
        let slot = if self.labelled {
            let label_of = |k: &SortKey| self.labels[k.3 as usize];
            let before = self.order.range(..&key).next_back().map(label_of);
            let after = self
                .order
                .range::<SortKey, _>((Bound::Excluded(&key), Bound::Unbounded))
                .next()
                .map(label_of);
            match (before, after) {
                (None, None) => Some(LABEL_SPACING),
                (Some(b), None) => b.checked_add(LABEL_SPACING),
                (b, Some(a)) => {
                    let b = b.unwrap_or(0);
                    (a - b >= 2).then(|| b + (a - b) / 2)
                }
            }
        } else {
            None
        };
        if self.labelled {
            match slot {
                Some(label) => self.labels[rid as usize] = label,
                None => self.relabel_around(&key),
            }
        }
        self.order.insert(key);
    }

    /// Makes room for `key` (not yet in the order, and without a free label between its
    /// neighbours): spreads the labels of a window of neighbours, and its own, evenly
    /// between the labels just outside the window, widening the window until each gets
    /// at least [`MIN_LABEL_STEP`]. An insertion so relabels a few neighbours, not all
    /// the resources (which at a million took milliseconds on the writer thread).
    fn relabel_around(&mut self, key: &SortKey) {
        let mut half = 16usize;
        loop {
            let before: Vec<u32> = self
                .order
                .range(..key)
                .rev()
                .take(half + 1)
                .map(|k| k.3)
                .collect();
            let after: Vec<u32> = self
                .order
                .range::<SortKey, _>((Bound::Excluded(key), Bound::Unbounded))
                .take(half + 1)
                .map(|k| k.3)
                .collect();
            let (inside_before, inside_after) = (before.len().min(half), after.len().min(half));
            let n = (inside_before + 1 + inside_after) as u64;
            // The labels just outside the window bound it; past the last resource the
            // room is as large as it needs to be.
            let low = before.get(half).map_or(0, |r| self.labels[*r as usize]);
            let high = match after.get(half) {
                Some(r) => self.labels[*r as usize],
                None => low.saturating_add((n + 1).saturating_mul(LABEL_SPACING)),
            };
            let step = (high - low) / (n + 1);
            if step >= MIN_LABEL_STEP || (before.len() <= half && after.len() <= half) {
                let mut label = low;
                let window = before[..inside_before]
                    .iter()
                    .rev()
                    .chain(std::iter::once(&key.3))
                    .chain(&after[..inside_after]);
                for rid in window {
                    label += step.max(1);
                    self.labels[*rid as usize] = label;
                }
                return;
            }
            half *= 4;
        }
    }

    /// Gives every resource a fresh label, evenly spaced, in listing order.
    pub fn label_all(&mut self) {
        for (i, key) in self.order.iter().enumerate() {
            self.labels[key.3 as usize] = (i as u64 + 1) * LABEL_SPACING;
        }
        self.labelled = true;
    }

    /// Forgets a resource that was unregistered. Its tags must have gone first, one
    /// [`TagIndex::remove_tag`] each (the store reads them before deleting the row).
    pub fn remove_resource(&mut self, rid: u32, at: &ResourceRef) {
        debug_assert!(
            !self.tagged.contains(rid),
            "tags are removed before their resource"
        );
        let interned = |s: &str| self.strings.get(s).cloned();
        let (Some(d), Some(p), Some(t)) = (
            interned(&at.domain_id),
            interned(&at.project_id),
            interned(&at.resource_type),
        ) else {
            return;
        };
        if let Some(in_domain) = self.scopes.get_mut(&d) {
            let scope_key = (p.clone(), t.clone());
            if let Some(b) = in_domain.get_mut(&scope_key) {
                b.remove(rid);
                if b.is_empty() {
                    in_domain.remove(&scope_key);
                }
            }
            if in_domain.is_empty() {
                self.scopes.remove(&d);
            }
        }
        self.order
            .remove(&(t, at.resource_id.as_str().into(), p, rid));
        if let Some(label) = self.labels.get_mut(rid as usize) {
            *label = 0;
        }
        if let Some(domain) = self.domain_of.get_mut(rid as usize) {
            *domain = NO_DOMAIN;
        }
    }

    fn domain_of(&self, rid: u32) -> u32 {
        self.domain_of
            .get(rid as usize)
            .copied()
            .unwrap_or(NO_DOMAIN)
    }

    /// The keys in use in a domain, if any.
    fn postings_of(&self, domain: &str) -> Option<&Postings> {
        self.postings.get(self.domain_numbers.get(domain)?)
    }

    pub fn add_tag(&mut self, rid: u32, key: &str, value: &str) {
        let domain = self.domain_of(rid);
        let postings = entry(self.postings.entry(domain).or_default(), key);
        postings.any.insert(rid);
        entry(&mut postings.values, value).insert(rid);
        self.tagged.insert(rid);
        if self.tag_counts.len() <= rid as usize {
            self.tag_counts.resize(rid as usize + 1, 0);
        }
        self.tag_counts[rid as usize] += 1;
    }

    pub fn remove_tag(&mut self, rid: u32, key: &str, value: &str) {
        let domain = self.domain_of(rid);
        let in_domain = self.postings.get_mut(&domain);
        if let Some(postings) = in_domain.and_then(|keys| keys.get_mut(key)) {
            postings.any.remove(rid);
            if let Some(b) = postings.values.get_mut(value) {
                b.remove(rid);
                if b.is_empty() {
                    postings.values.remove(value);
                }
            }
            if postings.any.is_empty() {
                if let Some(keys) = self.postings.get_mut(&domain) {
                    keys.remove(key);
                    if keys.is_empty() {
                        self.postings.remove(&domain);
                    }
                }
            }
        }
        if let Some(n) = self.tag_counts.get_mut(rid as usize) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.tagged.remove(rid);
            }
        }
    }

    /// Replays committed changes; `false` when one of them needs a rebuild.
    pub fn apply(&mut self, deltas: &[Delta]) -> bool {
        for d in deltas {
            match d {
                Delta::Registered { rid, at } => self.add_resource(rid.0, at),
                Delta::TagSet { rid, key, old, new } => {
                    if let Some(old) = old {
                        self.remove_tag(rid.0, key, old);
                    }
                    self.add_tag(rid.0, key, new);
                }
                Delta::TagRemoved { rid, key, value } => self.remove_tag(rid.0, key, value),
                Delta::Removed { rid, at } => self.remove_resource(rid.0, at),
                Delta::Invalidate => return false,
            }
        }
        true
    }

    /// Whether the index can answer this query (names, ids and system tags need SQL).
    pub fn covers(query: &ResourceQuery) -> bool {
        query.name_contains.is_none()
            && query.name_exact.is_none()
            && query.id_exact.is_none()
            && query.id_contains.is_none()
            && query.sys_all.is_empty()
    }

    fn matching(&self, keys: Option<&Postings>, m: &TagMatch) -> RoaringBitmap {
        let Some(postings) = keys.and_then(|keys| keys.get(m.key.as_str())) else {
            return RoaringBitmap::new();
        };
        if m.values.is_empty() {
            return postings.any.clone();
        }
        let mut out = RoaringBitmap::new();
        for v in &m.values {
            if let Some(b) = postings.values.get(v.as_str()) {
                out |= b;
            }
        }
        out
    }

    pub fn scope(&self, domain: &str, projects: &[String], types: &[String]) -> RoaringBitmap {
        let mut out = RoaringBitmap::new();
        let Some(in_domain) = self.scopes.get(domain) else {
            return out;
        };
        for ((p, t), b) in in_domain {
            if projects.iter().any(|x| x.as_str() == &**p)
                && (types.is_empty() || types.iter().any(|x| x.as_str() == &**t))
            {
                out |= b;
            }
        }
        out
    }

    /// Resources and tags per (domain, project), sorted: one pass over the row ids of
    /// each scope, a few milliseconds for a million resources.
    pub fn project_totals(&self) -> Vec<crate::store::ProjectTotals> {
        let mut totals: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
        for (d, in_domain) in &self.scopes {
            for ((p, _), rids) in in_domain {
                let tags: u64 = rids
                    .iter()
                    .map(|rid| u64::from(self.tag_counts.get(rid as usize).copied().unwrap_or(0)))
                    .sum();
                let slot = totals.entry((&**d, &**p)).or_default();
                slot.0 += rids.len();
                slot.1 += tags;
            }
        }
        totals
            .into_iter()
            .filter(|(_, (resources, _))| *resources > 0)
            .map(|((d, p), (resources, tags))| crate::store::ProjectTotals {
                domain_id: d.to_owned(),
                project_id: p.to_owned(),
                resources,
                tags,
            })
            .collect()
    }

    /// The resources a query keeps, as row ids.
    pub fn evaluate(&self, q: &ResourceQuery) -> RoaringBitmap {
        let mut result = self.scope(&q.domain_id, &q.projects, &q.resource_types);
        let keys = self.postings_of(&q.domain_id);
        if q.without_any_tag {
            result -= &self.tagged;
            return result;
        }
        for m in &q.all {
            result &= self.matching(keys, m);
        }
        if !q.any.is_empty() {
            let mut any = RoaringBitmap::new();
            for m in &q.any {
                any |= self.matching(keys, m);
            }
            result &= any;
        }
        if !q.not_all.is_empty() {
            let mut all = self.matching(keys, &q.not_all[0]);
            for m in &q.not_all[1..] {
                all &= self.matching(keys, m);
            }
            result -= all;
        }
        for m in &q.none {
            result -= self.matching(keys, m);
        }
        result
    }

    /// One page of `rids` in (type, id, project) order: the page's end is found by
    /// selection on the sort labels, and only the page sorted.
    pub fn page(&self, rids: &RoaringBitmap, offset: u64, limit: u64) -> Vec<u32> {
        let end = offset.saturating_add(limit).min(rids.len()) as usize;
        let offset = offset as usize;
        if offset >= end {
            return Vec::new();
        }
        // Labels are unique and follow (type, id, project, rid), so ordering by them
        // is ordering by those strings.
        let mut keyed: Vec<(u64, u32)> = rids
            .iter()
            .map(|rid| {
                let label = self.labels.get(rid as usize).copied().unwrap_or(0);
                (if label == 0 { u64::MAX } else { label }, rid)
            })
            .collect();
        if end < keyed.len() {
            keyed.select_nth_unstable(end);
            keyed.truncate(end);
        }
        // Keys end in the row id, so they are unique and the page is the same whichever
        // way the items before it are arranged.
        if offset > 0 {
            keyed.select_nth_unstable(offset);
        }
        let page = &mut keyed[offset..];
        page.sort_unstable();
        page.iter().map(|k| k.1).collect()
    }

    /// Keys in use in a scope of `domain`, sorted, after `after`, at most `limit`.
    pub fn keys(
        &self,
        domain: &str,
        scope: &RoaringBitmap,
        after: Option<&str>,
        limit: usize,
    ) -> Vec<String> {
        let Some(keys) = self.postings_of(domain) else {
            return Vec::new();
        };
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        keys.range::<str, _>((lower, Bound::Unbounded))
            .filter(|(_, p)| !p.any.is_disjoint(scope))
            .take(limit)
            .map(|(k, _)| k.to_string())
            .collect()
    }

    /// Every key in use in a scope of `domain` with its values in use there, sorted.
    pub fn key_values(&self, domain: &str, scope: &RoaringBitmap) -> Vec<(String, Vec<String>)> {
        let Some(keys) = self.postings_of(domain) else {
            return Vec::new();
        };
        keys.iter()
            .filter(|(_, p)| !p.any.is_disjoint(scope))
            .map(|(k, p)| {
                let values = p
                    .values
                    .iter()
                    .filter(|(_, b)| !b.is_disjoint(scope))
                    .map(|(v, _)| v.to_string())
                    .collect();
                (k.to_string(), values)
            })
            .collect()
    }

    /// Values of `key` in use in a scope of `domain`, sorted, after `after`, at most
    /// `limit`.
    pub fn values(
        &self,
        domain: &str,
        scope: &RoaringBitmap,
        key: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Vec<String> {
        let Some(postings) = self.postings_of(domain).and_then(|keys| keys.get(key)) else {
            return Vec::new();
        };
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        postings
            .values
            .range::<str, _>((lower, Bound::Unbounded))
            .filter(|(_, b)| !b.is_disjoint(scope))
            .take(limit)
            .map(|(v, _)| v.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(project: &str, resource_type: &str, resource_id: &str) -> ResourceRef {
        ResourceRef {
            domain_id: "d".into(),
            project_id: project.into(),
            resource_type: resource_type.into(),
            resource_id: resource_id.into(),
        }
    }

    /// The order a page must follow, computed from the strings.
    fn by_strings(resources: &[(u32, String, String, String)]) -> Vec<u32> {
        let mut sorted = resources.to_vec();
        sorted.sort_by(|a, b| (&a.2, &a.3, &a.1, a.0).cmp(&(&b.2, &b.3, &b.1, b.0)));
        sorted.iter().map(|r| r.0).collect()
    }

    #[test]
    fn pages_follow_type_id_project_order_through_later_registrations() {
        let mut index = TagIndex::new(0);
        let mut resources = Vec::new();
        let mut add = |index: &mut TagIndex, rid: u32, project: &str, kind: &str, id: &str| {
            index.add_resource(rid, &place(project, kind, id));
            resources.push((rid, project.to_owned(), kind.to_owned(), id.to_owned()));
        };
        for rid in 1..=200u32 {
            let n = (rid * 7919) % 200;
            let kind = if n % 3 == 0 { "rds" } else { "disk" };
            add(
                &mut index,
                rid,
                &format!("p{}", n % 2),
                kind,
                &format!("r{n:03}"),
            );
        }
        index.label_all();
        // After labelling: at the ends, between neighbours, and 70 times into one gap,
        // more than its room, so every label is reassigned on the way.
        add(&mut index, 201, "p0", "aaa", "first");
        add(&mut index, 202, "p1", "zzz", "last");
        add(&mut index, 203, "p0", "disk", "r100a");
        for i in 0..70u32 {
            add(
                &mut index,
                204 + i,
                "p1",
                "disk",
                &format!("r050{}", "~".repeat(70 - i as usize)),
            );
        }
        let all: RoaringBitmap = resources.iter().map(|r| r.0).collect();
        let expected = by_strings(&resources);
        assert_eq!(index.page(&all, 0, all.len()), expected);
        assert_eq!(index.page(&all, 30, 25), expected[30..55].to_vec());
        let some: RoaringBitmap = all.iter().filter(|r| r % 3 != 1).collect();
        let expected_some: Vec<u32> = expected.iter().copied().filter(|r| r % 3 != 1).collect();
        assert_eq!(index.page(&some, 10, 40), expected_some[10..50].to_vec());
    }

    #[test]
    fn labels_stay_in_order_through_many_insertions_into_dense_spots_and_removals() {
        let mut index = TagIndex::new(0);
        let mut resources = Vec::new();
        for rid in 1..=10u32 {
            index.add_resource(rid, &place("p", "disk", &format!("m{rid:02}")));
            resources.push((rid, "p".to_owned(), "disk".to_owned(), format!("m{rid:02}")));
        }
        index.label_all();
        // Unpadded counters, as clients name things: "x-10" sorts before "x-9", so most
        // insertions land between two existing neighbours, again and again.
        let mut state = 7u64;
        for rid in 11..=3000u32 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let id = format!("m0{}-{}", (state >> 33) % 3, rid);
            index.add_resource(rid, &place("p", "disk", &id));
            resources.push((rid, "p".to_owned(), "disk".to_owned(), id));
        }
        let all: RoaringBitmap = resources.iter().map(|r| r.0).collect();
        assert_eq!(index.page(&all, 0, all.len()), by_strings(&resources));

        // A removed resource leaves every listing, its tags with it.
        index.add_tag(500, "env", "prod");
        index.add_tag(501, "env", "prod");
        index.remove_tag(500, "env", "prod");
        let (_, _, _, id500) = resources.iter().find(|r| r.0 == 500).cloned().expect("500");
        index.remove_resource(500, &place("p", "disk", &id500));
        resources.retain(|r| r.0 != 500);
        let everything = index.scope("d", &["p".to_owned()], &[]);
        assert!(!everything.contains(500));
        assert_eq!(
            index.page(&everything, 0, everything.len()),
            by_strings(&resources)
        );
        assert_eq!(
            index.values("d", &everything, "env", None, 10),
            vec!["prod".to_owned()]
        );
        index.remove_tag(501, "env", "prod");
        assert!(index.keys("d", &everything, None, 10).is_empty());
    }
}
