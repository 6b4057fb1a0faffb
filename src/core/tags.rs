//! Tag keys and values, validated once at the boundary.
//!
//! Every API documents its own character set and lengths, so a [`TagRules`] value holds
//! one dialect's rules and is the only way to build a [`TagKey`] or [`TagValue`]. Lengths
//! are counted in Unicode scalar values, never bytes: "标签" is two characters.

use std::collections::HashSet;
use std::fmt;

use super::CoreError;

/// A tag key that passed a dialect's rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagKey(String);

/// A tag value that passed a dialect's rules. May be empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TagValue(String);

impl TagKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Wraps a key read back from the store, which only ever holds validated keys.
    pub fn from_stored(key: String) -> Self {
        Self(key)
    }
}

impl TagValue {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Wraps a value read back from the store, which only ever holds validated values.
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Display for TagKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One key-value pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: TagKey,
    pub value: TagValue,
}

/// Which tags a delete removes: by key, or by key and value when the value is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagSelector {
    pub key: TagKey,
    pub value: Option<TagValue>,
}

/// One dialect's rules for keys and values.
#[derive(Debug, Clone, Copy)]
pub struct TagRules {
    pub key_max_chars: usize,
    pub value_max_chars: usize,
    /// Which characters a key may hold, besides letters and digits.
    pub key_extra_chars: &'static str,
    /// Which characters a value may hold, besides letters and digits.
    pub value_extra_chars: &'static str,
    /// Most tags in one request for one resource.
    pub max_tags_per_request: usize,
}

fn char_allowed(c: char, extra: &str) -> bool {
    // "Letters" in the cloud's docs include non-Latin scripts (the console accepts
    // Chinese keys), so Unicode alphanumerics count, not only ASCII.
    c.is_alphanumeric() || extra.contains(c)
}

impl TagRules {
    /// Validates a raw key.
    pub fn key(&self, raw: &str) -> Result<TagKey, CoreError> {
        let reason = if raw.is_empty() {
            Some("the key must not be empty".to_owned())
        } else {
            text_problem("key", raw, self.key_max_chars, self.key_extra_chars)
        };
        match reason {
            None => Ok(TagKey(raw.to_owned())),
            Some(reason) => Err(CoreError::InvalidTagKey {
                key: raw.to_owned(),
                reason,
            }),
        }
    }

    /// Validates a raw value belonging to `key` (named in errors).
    pub fn value(&self, key: &str, raw: &str) -> Result<TagValue, CoreError> {
        match text_problem("value", raw, self.value_max_chars, self.value_extra_chars) {
            None => Ok(TagValue(raw.to_owned())),
            Some(reason) => Err(CoreError::InvalidTagValue {
                key: key.to_owned(),
                reason,
            }),
        }
    }

    /// Refuses an empty list or one longer than a request may carry.
    fn check_count(&self, len: usize) -> Result<(), CoreError> {
        if len == 0 {
            return Err(CoreError::Empty { field: "tags" });
        }
        if len > self.max_tags_per_request {
            return Err(CoreError::TooMany {
                field: "tags",
                max: self.max_tags_per_request,
                got: len,
            });
        }
        Ok(())
    }

    /// Validates the tags of a create request: count, each pair, no key twice.
    pub fn tags<'a>(
        &self,
        raw: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Vec<Tag>, CoreError> {
        self.check_count(raw.len())?;
        let mut seen = HashSet::new();
        raw.map(|(k, v)| {
            let key = self.key(k)?;
            let value = self.value(k, v)?;
            if !seen.insert(k) {
                return Err(CoreError::DuplicateTagKey { key: k.to_owned() });
            }
            Ok(Tag { key, value })
        })
        .collect()
    }

    /// Validates the selectors of a delete request: count and each key (and value, if given).
    pub fn selectors<'a>(
        &self,
        raw: impl ExactSizeIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<Vec<TagSelector>, CoreError> {
        self.check_count(raw.len())?;
        raw.map(|(k, v)| {
            Ok(TagSelector {
                key: self.key(k)?,
                value: v.map(|v| self.value(k, v)).transpose()?,
            })
        })
        .collect()
    }
}

/// Why `raw` breaks a length or character rule, if it does.
fn text_problem(what: &str, raw: &str, max_chars: usize, extra: &str) -> Option<String> {
    let chars = raw.chars().count();
    if chars > max_chars {
        return Some(format!(
            "the {what} has {chars} characters; at most {max_chars} are allowed"
        ));
    }
    raw.chars().find(|&c| !char_allowed(c, extra)).map(|c| {
        format!(
            "the character {c:?} is not allowed; use letters, digits{}",
            describe_extra(extra)
        )
    })
}

fn describe_extra(extra: &str) -> String {
    let names: Vec<String> = extra
        .chars()
        .map(|c| match c {
            ' ' => "space".to_owned(),
            '\t' => "tab".to_owned(),
            c => format!("'{c}'"),
        })
        .collect();
    if names.is_empty() {
        String::new()
    } else {
        format!(" and {}", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: TagRules = TagRules {
        key_max_chars: 36,
        value_max_chars: 43,
        key_extra_chars: "-_",
        value_extra_chars: ".-_",
        max_tags_per_request: 10,
    };

    #[test]
    fn lengths_count_characters_not_bytes() {
        let key36: String = "标".repeat(36);
        assert!(RULES.key(&key36).is_ok(), "36 CJK characters are 108 bytes");
        assert!(RULES.key(&"标".repeat(37)).is_err());
        assert!(RULES.value("k", &"é".repeat(43)).is_ok());
        assert!(RULES.value("k", &"é".repeat(44)).is_err());
    }

    #[test]
    fn character_sets_follow_the_rules() {
        assert!(RULES.key("env-prod_1").is_ok());
        assert!(RULES.key("env.prod").is_err());
        assert!(RULES.key("").is_err());
        assert!(RULES.value("k", "1.2-3_x").is_ok());
        assert!(RULES.value("k", "").is_ok());
        assert!(RULES.value("k", "a b").is_err());
    }

    #[test]
    fn duplicate_keys_in_one_request_are_refused() {
        let raw = [("a", "1"), ("a", "2")];
        let err = RULES
            .tags(raw.iter().map(|(k, v)| (*k, *v)))
            .expect_err("duplicate");
        assert!(matches!(err, CoreError::DuplicateTagKey { key } if key == "a"));
    }
}
