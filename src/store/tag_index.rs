//! An in-memory index of the SQLite store's tags, so that filters and exact counts are
//! bitmap operations instead of scans of the project.
//!
//! For each (key, value) and each key, the set of resources carrying it, as a
//! compressed bitmap of row ids; each resource's scope (domain, project, type) and its
//! sort key. The writer thread keeps it in step with every committed group of writes;
//! it carries the store's write sequence number, and a reader uses it only when that
//! number equals the one in its own snapshot, so an index answer is always the answer
//! the database would give. Anything it does not cover (names, ids, system tags) or an
//! index that is behind (another process wrote) falls back to SQL.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::core::query::{ResourceQuery, TagMatch};

/// A change the writer made, to replay on the index once its transaction commits.
#[derive(Debug, Clone)]
pub enum Delta {
    Registered {
        rid: u32,
        domain: String,
        project: String,
        resource_type: String,
        resource_id: String,
    },
    TagSet {
        rid: u32,
        key: String,
        old: Option<String>,
        new: String,
    },
    TagRemoved {
        rid: u32,
        key: String,
        value: String,
    },
    /// Something the index does not follow (resources removed): rebuild.
    Invalidate,
}

/// Where a resource lives and where it sorts: (type, id, project).
#[derive(Debug, Clone)]
struct Entry {
    project: Arc<str>,
    resource_type: Arc<str>,
    resource_id: Box<str>,
}

/// (domain, project, resource type).
type ScopeKey = (Arc<str>, Arc<str>, Arc<str>);

#[derive(Default)]
pub struct TagIndex {
    /// The store's write sequence this index reflects.
    pub seq: u64,
    postings: BTreeMap<(Box<str>, Box<str>), RoaringBitmap>,
    by_key: BTreeMap<Box<str>, RoaringBitmap>,
    tagged: RoaringBitmap,
    tag_counts: HashMap<u32, u16>,
    scopes: HashMap<ScopeKey, RoaringBitmap>,
    entries: HashMap<u32, Entry>,
    strings: HashMap<String, Arc<str>>,
}

impl TagIndex {
    /// An empty index for the store at write sequence `seq`.
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

    pub fn add_resource(
        &mut self,
        rid: u32,
        domain: &str,
        project: &str,
        resource_type: &str,
        resource_id: &str,
    ) {
        let (d, p, t) = (
            self.intern(domain),
            self.intern(project),
            self.intern(resource_type),
        );
        self.scopes
            .entry((d, p.clone(), t.clone()))
            .or_default()
            .insert(rid);
        self.entries.insert(
            rid,
            Entry {
                project: p,
                resource_type: t,
                resource_id: resource_id.into(),
            },
        );
    }

    pub fn add_tag(&mut self, rid: u32, key: &str, value: &str) {
        self.postings
            .entry((key.into(), value.into()))
            .or_default()
            .insert(rid);
        self.by_key.entry(key.into()).or_default().insert(rid);
        self.tagged.insert(rid);
        *self.tag_counts.entry(rid).or_default() += 1;
    }

    pub fn remove_tag(&mut self, rid: u32, key: &str, value: &str) {
        let pk: (Box<str>, Box<str>) = (key.into(), value.into());
        if let Some(b) = self.postings.get_mut(&pk) {
            b.remove(rid);
            if b.is_empty() {
                self.postings.remove(&pk);
            }
        }
        if let Some(b) = self.by_key.get_mut(key) {
            b.remove(rid);
            if b.is_empty() {
                self.by_key.remove(key);
            }
        }
        if let Some(n) = self.tag_counts.get_mut(&rid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.tag_counts.remove(&rid);
                self.tagged.remove(rid);
            }
        }
    }

    /// Replays committed changes; `false` when one of them needs a rebuild.
    pub fn apply(&mut self, deltas: &[Delta]) -> bool {
        for d in deltas {
            match d {
                Delta::Registered {
                    rid,
                    domain,
                    project,
                    resource_type,
                    resource_id,
                } => self.add_resource(*rid, domain, project, resource_type, resource_id),
                Delta::TagSet { rid, key, old, new } => {
                    if let Some(old) = old {
                        self.remove_tag(*rid, key, old);
                    }
                    self.add_tag(*rid, key, new);
                }
                Delta::TagRemoved { rid, key, value } => self.remove_tag(*rid, key, value),
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

    fn matching(&self, m: &TagMatch) -> RoaringBitmap {
        if m.values.is_empty() {
            return self.by_key.get(m.key.as_str()).cloned().unwrap_or_default();
        }
        let mut out = RoaringBitmap::new();
        for v in &m.values {
            if let Some(b) = self
                .postings
                .get(&(Box::from(m.key.as_str()), Box::from(v.as_str())))
            {
                out |= b;
            }
        }
        out
    }

    pub fn scope(&self, domain: &str, projects: &[String], types: &[String]) -> RoaringBitmap {
        let mut out = RoaringBitmap::new();
        for ((d, p, t), b) in &self.scopes {
            if &**d == domain
                && projects.iter().any(|x| x.as_str() == &**p)
                && (types.is_empty() || types.iter().any(|x| x.as_str() == &**t))
            {
                out |= b;
            }
        }
        out
    }

    /// The resources a query keeps, as row ids.
    pub fn evaluate(&self, q: &ResourceQuery) -> RoaringBitmap {
        let mut result = self.scope(&q.domain_id, &q.projects, &q.resource_types);
        if q.without_any_tag {
            result -= &self.tagged;
            return result;
        }
        for m in &q.all {
            result &= self.matching(m);
        }
        if !q.any.is_empty() {
            let mut any = RoaringBitmap::new();
            for m in &q.any {
                any |= self.matching(m);
            }
            result &= any;
        }
        if !q.not_all.is_empty() {
            let mut all = self.matching(&q.not_all[0]);
            for m in &q.not_all[1..] {
                all &= self.matching(m);
            }
            result -= all;
        }
        for m in &q.none {
            result -= self.matching(m);
        }
        result
    }

    /// One page of `rids` in (type, id, project) order: the sort keys are looked up
    /// once, the page's end found by selection, and only the page sorted.
    pub fn page(&self, rids: &RoaringBitmap, offset: u64, limit: u64) -> Vec<u32> {
        let end = offset.saturating_add(limit).min(rids.len()) as usize;
        let offset = offset as usize;
        if offset >= end {
            return Vec::new();
        }
        let mut keyed: Vec<(&str, &str, &str, u32)> = rids
            .iter()
            .map(|rid| match self.entries.get(&rid) {
                Some(e) => (&*e.resource_type, &*e.resource_id, &*e.project, rid),
                None => ("", "", "", rid),
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
        page.iter().map(|k| k.3).collect()
    }

    /// Keys in use in a scope, sorted, after `after`, at most `limit`.
    pub fn keys(&self, scope: &RoaringBitmap, after: Option<&str>, limit: usize) -> Vec<String> {
        let range: Box<dyn Iterator<Item = (&Box<str>, &RoaringBitmap)>> = match after {
            Some(a) => Box::new(
                self.by_key
                    .range::<str, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)),
            ),
            None => Box::new(self.by_key.iter()),
        };
        range
            .filter(|(_, b)| !b.is_disjoint(scope))
            .take(limit)
            .map(|(k, _)| k.to_string())
            .collect()
    }

    /// Values of `key` in use in a scope, sorted, after `after`, at most `limit`.
    pub fn values(
        &self,
        scope: &RoaringBitmap,
        key: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Vec<String> {
        let start: (Box<str>, Box<str>) = (key.into(), after.unwrap_or("").into());
        let lower = match after {
            Some(_) => std::ops::Bound::Excluded(start),
            None => std::ops::Bound::Included(start),
        };
        self.postings
            .range((lower, std::ops::Bound::Unbounded))
            .take_while(|((k, _), _)| &**k == key)
            .filter(|(_, b)| !b.is_disjoint(scope))
            .take(limit)
            .map(|((_, v), _)| v.to_string())
            .collect()
    }
}
