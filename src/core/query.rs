//! Finding resources by their tags: the one query model every dialect's filter, count
//! and listing calls translate into.
//!
//! Semantics, the same everywhere: `all` = every listed key present with a value among
//! its listed values (no values = any value); `any` = at least one of them; `not_all` =
//! not every one of them; `none` = none of them; `without_any_tag` = resources with no
//! tags at all (the tag conditions are then ignored). Results come in a stable order,
//! (resource type, resource id), so offset paging over an unchanging set neither
//! repeats nor skips.

use super::model::Resource;
use super::tags::Tag;
use super::{CoreError, Reason};

/// A key and the values it may have; no values means any value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagMatch {
    pub key: String,
    pub values: Vec<String>,
}

/// Which resources a query looks at, and which of them it keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceQuery {
    pub domain_id: String,
    /// Projects to look in; `""` stands for the domain's global resources.
    pub projects: Vec<String>,
    /// Resource types to look at; empty means every type.
    pub resource_types: Vec<String>,
    pub all: Vec<TagMatch>,
    pub any: Vec<TagMatch>,
    pub not_all: Vec<TagMatch>,
    pub none: Vec<TagMatch>,
    pub without_any_tag: bool,
    /// Keep resources whose name contains this (case-sensitive substring).
    pub name_contains: Option<String>,
    /// Keep resources with exactly this name.
    pub name_exact: Option<String>,
    /// Keep the resource with exactly this id.
    pub id_exact: Option<String>,
    /// Keep resources whose id contains this.
    pub id_contains: Option<String>,
    /// Like `all`, over the system tags (Fabric's enterprise project).
    pub sys_all: Vec<TagMatch>,
}

/// A resource found by a query, with its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub resource: Resource,
    pub tags: Vec<Tag>,
    pub sys_tags: Vec<Tag>,
}

/// One page of a query's results and the exact number of matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPage {
    pub resources: Vec<Found>,
    pub total_count: u64,
}

/// Where a tag listing looks: one project (or the domain's global resources with `""`),
/// optionally only some resource types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagScope {
    pub domain_id: String,
    pub projects: Vec<String>,
    pub resource_types: Vec<String>,
}

/// A key with every value it has in a scope, values sorted. Serializes as the dialects
/// send it, `{"key": ..., "values": [...]}`, straight from these strings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyValues {
    pub key: String,
    pub values: Vec<String>,
}

/// The per-API limits of a filter.
#[derive(Debug, Clone, Copy)]
pub struct FilterLimits {
    pub max_keys: usize,
    pub max_values: usize,
}

impl FilterLimits {
    /// Checks one list of a filter (`tags`, `tags_any`, ...): key count, values per
    /// key, no key twice, no empty key.
    pub fn check(&self, field: &'static str, matches: &[TagMatch]) -> Result<(), CoreError> {
        if matches.len() > self.max_keys {
            return Err(CoreError::TooMany {
                field,
                max: self.max_keys,
                got: matches.len(),
            });
        }
        let mut seen = std::collections::HashSet::new();
        for (i, m) in matches.iter().enumerate() {
            if m.key.is_empty() {
                return Err(CoreError::invalid(
                    format!("{field}[{i}].key"),
                    Reason::length(1, 128, 0),
                ));
            }
            if !seen.insert(m.key.as_str()) {
                return Err(CoreError::DuplicateTagKey { key: m.key.clone() });
            }
            if m.values.len() > self.max_values {
                return Err(CoreError::invalid(
                    format!("{field}[{i}].values"),
                    Reason::new(
                        format!(
                            "has {} values; at most {} are allowed",
                            m.values.len(),
                            self.max_values
                        ),
                        format!("包含{}个值，最多允许{}个", m.values.len(), self.max_values),
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Reads a paging number sent as a JSON number or as a string (the DIS and Workspace
/// SDKs send strings): `default` when absent, within `min..=max`.
pub fn number_or_string(
    field: &str,
    raw: Option<&serde_json::Value>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, CoreError> {
    let parsed = match raw {
        None | Some(serde_json::Value::Null) => return Ok(default),
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<u64>().ok(),
        Some(_) => None,
    };
    parsed.filter(|n| (min..=max).contains(n)).ok_or_else(|| {
        let shown = match raw {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        };
        CoreError::invalid(field, Reason::integer(min, max, &shown))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paging_numbers_come_as_numbers_or_strings() {
        assert_eq!(number_or_string("limit", None, 10, 1, 100).ok(), Some(10));
        assert_eq!(
            number_or_string("limit", Some(&json!(5)), 10, 1, 100).ok(),
            Some(5)
        );
        assert_eq!(
            number_or_string("limit", Some(&json!("5")), 10, 1, 100).ok(),
            Some(5)
        );
        for bad in [
            json!(0),
            json!(101),
            json!("-1"),
            json!("x"),
            json!(1.5),
            json!(true),
            json!(-3),
        ] {
            assert!(
                number_or_string("limit", Some(&bad), 10, 1, 100).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn filter_lists_have_limits() {
        let limits = FilterLimits {
            max_keys: 2,
            max_values: 2,
        };
        let m = |k: &str, n: usize| TagMatch {
            key: k.into(),
            values: (0..n).map(|i| i.to_string()).collect(),
        };
        assert!(limits.check("tags", &[m("a", 2), m("b", 0)]).is_ok());
        assert!(limits
            .check("tags", &[m("a", 1), m("b", 1), m("c", 1)])
            .is_err());
        assert!(limits.check("tags", &[m("a", 3)]).is_err());
        assert!(limits.check("tags", &[m("a", 1), m("a", 1)]).is_err());
        assert!(limits.check("tags", &[m("", 1)]).is_err());
    }
}
