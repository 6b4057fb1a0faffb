//! Predefined tags: the key-value pairs a domain approves in advance, managed through
//! TMS and offered by the services' "predefined tag" listings.
//!
//! A domain holds at most [`MAX_PER_DOMAIN`]; the store enforces it in the same
//! transaction as the write. Listing filters and sorts in memory, which the small
//! ceiling makes cheap.

use serde::Serialize;

use super::{CoreError, Reason};

/// The cloud's quota of predefined tags per domain.
pub const MAX_PER_DOMAIN: usize = 500;

/// One predefined tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PredefinedTag {
    pub key: String,
    pub value: String,
    pub updated_at: i64,
}

/// What replacing a predefined tag found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    Done,
    OldMissing,
    NewExists,
}

/// How to sort a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderField {
    UpdateTime,
    Key,
    Value,
}

/// A listing request: fuzzy, case-insensitive key and value filters, an order, a page.
#[derive(Debug, Clone)]
pub struct Listing {
    pub key: Option<String>,
    pub value: Option<String>,
    pub order: OrderField,
    pub descending: bool,
    pub offset: usize,
    /// `None`: everything from `offset` on.
    pub limit: Option<usize>,
}

impl Listing {
    /// Parses `order_field` and `order_method` as TMS documents them.
    pub fn order(
        field: Option<&str>,
        method: Option<&str>,
    ) -> Result<(OrderField, bool), CoreError> {
        let order = match field.unwrap_or("update_time") {
            "update_time" => OrderField::UpdateTime,
            "key" => OrderField::Key,
            "value" => OrderField::Value,
            other => {
                return Err(CoreError::invalid(
                    "order_field",
                    Reason::one_of(&["update_time", "key", "value"], other),
                ))
            }
        };
        let descending = match method.unwrap_or("desc") {
            "desc" => true,
            "asc" => false,
            other => {
                return Err(CoreError::invalid(
                    "order_method",
                    Reason::one_of(&["asc", "desc"], other),
                ))
            }
        };
        Ok((order, descending))
    }

    /// Filters, sorts and pages `all`; returns the page and how many matched.
    pub fn apply(&self, mut all: Vec<PredefinedTag>) -> (Vec<PredefinedTag>, usize) {
        let contains = |hay: &str, needle: &Option<String>| {
            needle
                .as_ref()
                .is_none_or(|n| hay.to_lowercase().contains(&n.to_lowercase()))
        };
        all.retain(|t| contains(&t.key, &self.key) && contains(&t.value, &self.value));
        // The documented secondary orders: by update time, then key then value
        // ascending; by key, then update time descending, value ascending; by value,
        // then update time descending, key ascending.
        all.sort_by(|a, b| {
            let primary = match self.order {
                OrderField::UpdateTime => a.updated_at.cmp(&b.updated_at),
                OrderField::Key => a.key.cmp(&b.key),
                OrderField::Value => a.value.cmp(&b.value),
            };
            let primary = if self.descending {
                primary.reverse()
            } else {
                primary
            };
            primary.then_with(|| match self.order {
                OrderField::UpdateTime => a.key.cmp(&b.key).then(a.value.cmp(&b.value)),
                OrderField::Key => b.updated_at.cmp(&a.updated_at).then(a.value.cmp(&b.value)),
                OrderField::Value => b.updated_at.cmp(&a.updated_at).then(a.key.cmp(&b.key)),
            })
        });
        let total = all.len();
        let page = all
            .into_iter()
            .skip(self.offset)
            .take(self.limit.unwrap_or(usize::MAX))
            .collect();
        (page, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str, t: i64) -> PredefinedTag {
        PredefinedTag {
            key: k.into(),
            value: v.into(),
            updated_at: t,
        }
    }

    #[test]
    fn listing_filters_fuzzily_and_sorts_as_documented() {
        let all = vec![
            tag("Env", "prod", 1),
            tag("env", "dev", 3),
            tag("team", "Web", 2),
            tag("owner", "x", 3),
        ];
        let listing = Listing {
            key: Some("EN".into()),
            value: None,
            order: OrderField::UpdateTime,
            descending: true,
            offset: 0,
            limit: None,
        };
        let (page, total) = listing.apply(all.clone());
        assert_eq!(total, 2);
        assert_eq!(page, vec![tag("env", "dev", 3), tag("Env", "prod", 1)]);
        let by_key = Listing {
            key: None,
            order: OrderField::Key,
            descending: false,
            limit: Some(2),
            offset: 1,
            ..listing
        };
        let (page, total) = by_key.apply(all);
        assert_eq!(total, 4);
        assert_eq!(page, vec![tag("env", "dev", 3), tag("owner", "x", 3)]);
        assert!(Listing::order(Some("size"), None).is_err());
        assert!(Listing::order(None, Some("up")).is_err());
    }
}
