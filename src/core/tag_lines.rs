//! A project's tags as JSON lines, one resource a line: the format of
//! `tagd admin tags export` and `tags import`, and how an imported line becomes a tag
//! batch item. Written here, not in the CLI, so any other entry point (the admin HTTP
//! API) reads and applies lines by the same rules.
//!
//! Only a resource's own tags travel; system tags (the enterprise project) are the
//! platform's assignment, not the tenant's tags, and TMS does not list them with the
//! tags either. `copy-store` and `backup` carry them.

use serde::{Deserialize, Serialize};

use super::query::Found;
use super::tagging::{known_type, locate, BatchItem, TagChange};
use super::tags::{Tag, TagRules};
use super::{admin::validate_resource_id, CoreError};

/// One line: a resource of the project and its tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagLine {
    pub resource_type: String,
    pub resource_id: String,
    pub tags: Vec<LineTag>,
}

/// A tag as a line carries it; a missing value is the empty value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineTag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

impl From<Found> for TagLine {
    fn from(found: Found) -> Self {
        Self {
            resource_type: found.resource.at.resource_type,
            resource_id: found.resource.at.resource_id,
            tags: found
                .tags
                .into_iter()
                .map(|t| LineTag {
                    key: t.key.into_string(),
                    value: t.value.into_string(),
                })
                .collect(),
        }
    }
}

impl TagLine {
    /// Reads one line of text.
    pub fn parse(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| {
            format!(
                "not a line of the form {{\"resource_type\":..,\"resource_id\":..,\"tags\":[{{\"key\":..,\"value\":..}}]}}: {e}"
            )
        })
    }

    /// The batch item that sets this line's tags on its resource in `project_id`,
    /// overwriting the values of keys the resource already has. Each tag must pass one
    /// of `rules` (those of the APIs that can write the type's tags: a tag any of them
    /// accepted can come back); a key may appear once. How many tags the resource then
    /// has is checked against its type's limit when the batch is applied.
    pub fn item(
        &self,
        domain_id: &str,
        project_id: &str,
        rules: &[TagRules],
    ) -> Result<BatchItem, CoreError> {
        let rt = known_type("resource_type", &self.resource_type)?;
        validate_resource_id("resource_id", &self.resource_id)?;
        let target = locate(domain_id, Some(project_id), rt, &self.resource_id)?;
        let mut seen = std::collections::HashSet::new();
        let tags = self
            .tags
            .iter()
            .map(|t| {
                if !seen.insert(t.key.as_str()) {
                    return Err(CoreError::DuplicateTagKey { key: t.key.clone() });
                }
                accepted(rules, &t.key, &t.value)
            })
            .collect::<Result<Vec<Tag>, CoreError>>()?;
        Ok(BatchItem {
            target,
            change: TagChange::Set(tags),
            sys_change: None,
        })
    }
}

/// The tag if one rule set accepts both its key and value; otherwise the first rule
/// set's refusal, which names what is wrong.
fn accepted(rules: &[TagRules], key: &str, value: &str) -> Result<Tag, CoreError> {
    let mut first = None;
    for r in rules {
        match r.key(key).and_then(|k| Ok((k, r.value(key, value)?))) {
            Ok((key, value)) => return Ok(Tag { key, value }),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    Err(first.unwrap_or_else(|| CoreError::Unexpected {
        what: "no tag rules given".to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tags::{Letters, TextRule};

    const NARROW: TagRules = TagRules {
        key: TextRule {
            min_chars: 1,
            max_chars: 4,
            letters: Letters::Ascii,
            extra: "",
            trimmed: false,
            reserved_prefix: None,
        },
        value: TextRule {
            min_chars: 0,
            max_chars: 4,
            letters: Letters::Ascii,
            extra: "",
            trimmed: false,
            reserved_prefix: None,
        },
        max_tags_per_request: 10,
    };
    const WIDE: TagRules = TagRules {
        key: TextRule {
            max_chars: 10,
            extra: "-",
            ..NARROW.key
        },
        value: NARROW.value,
        max_tags_per_request: 10,
    };

    fn line(tags: &[(&str, &str)]) -> TagLine {
        TagLine {
            resource_type: "disk".into(),
            resource_id: "d1".into(),
            tags: tags
                .iter()
                .map(|(k, v)| LineTag {
                    key: (*k).into(),
                    value: (*v).into(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_tag_passes_when_any_rule_set_accepts_it() {
        let item = line(&[("a-long", "v")])
            .item("dom", "proj", &[NARROW, WIDE])
            .expect("the wide rules accept it");
        assert_eq!(item.target.at.project_id, "proj");
        let err = line(&[("a=b", "v")])
            .item("dom", "proj", &[NARROW, WIDE])
            .expect_err("no rule set accepts '='");
        assert!(matches!(err, CoreError::InvalidTagKey { .. }), "{err}");
        let err = line(&[("a", "1"), ("a", "2")])
            .item("dom", "proj", &[WIDE])
            .expect_err("a key twice");
        assert!(matches!(err, CoreError::DuplicateTagKey { .. }), "{err}");
        let mut unknown = line(&[]);
        unknown.resource_type = "tape".into();
        assert!(unknown.item("dom", "proj", &[WIDE]).is_err());
    }

    #[test]
    fn lines_are_parsed_strictly() {
        let parsed =
            TagLine::parse(r#"{"resource_type":"disk","resource_id":"d1","tags":[{"key":"k"}]}"#)
                .expect("a missing value is empty");
        assert_eq!(parsed.tags[0].value, "");
        assert!(TagLine::parse(r#"{"resource_type":"disk","resource_id":"d1"}"#).is_err());
        assert!(TagLine::parse(
            r#"{"resource_type":"disk","resource_id":"d1","tags":[],"extra":1}"#
        )
        .is_err());
    }
}
