//! Tag keys and values, validated once at the boundary.
//!
//! Every API documents its own character set and lengths, so a [`TagRules`] value holds
//! one dialect's rules and is the only way to build a [`TagKey`] or [`TagValue`]. Lengths
//! are counted in Unicode scalar values, never bytes: "标签" is two characters. A refusal
//! says exactly what broke the rule ([`TextProblem`]), so every dialect can word it, in
//! every language it speaks.

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
    pub fn into_string(self) -> String {
        self.0
    }
    /// Wraps a key read back from the store, which only ever holds validated keys.
    pub(crate) fn from_stored(key: String) -> Self {
        Self(key)
    }
}

impl TagValue {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn into_string(self) -> String {
        self.0
    }
    /// Wraps a value read back from the store, which only ever holds validated values.
    pub(crate) fn from_stored(value: String) -> Self {
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

/// Which letters a rule admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Letters {
    /// Letters and digits of any script (`char::is_alphanumeric`), except the
    /// [`INVISIBLE_LETTERS`].
    Unicode,
    /// `A-Z`, `a-z`, `0-9` and the CJK Unified Ideographs U+4E00 to U+9FFF (DIS).
    AsciiAndCjk,
    /// `A-Z`, `a-z`, `0-9` only.
    Ascii,
}

/// The letters that Unicode also marks default-ignorable: the Hangul fillers, which
/// draw nothing. A key of them looks empty, and `ENV` followed by one looks like `ENV`,
/// so no rule admits them (D76). Letters of other scripts that merely look like Latin
/// ones (Cyrillic `Е`) are admitted: they are real letters people tag in.
pub const INVISIBLE_LETTERS: [char; 4] = ['\u{115F}', '\u{1160}', '\u{3164}', '\u{FFA0}'];

impl Letters {
    /// Whether `c` counts as a letter or digit under this rule.
    pub fn admits(self, c: char) -> bool {
        match self {
            Letters::Unicode => c.is_alphanumeric() && !INVISIBLE_LETTERS.contains(&c),
            Letters::Ascii => c.is_ascii_alphanumeric(),
            Letters::AsciiAndCjk => {
                c.is_ascii_alphanumeric() || ('\u{4E00}'..='\u{9FFF}').contains(&c)
            }
        }
    }
}

/// The rule for one text field (a key or a value) in one dialect.
#[derive(Debug, Clone, Copy)]
pub struct TextRule {
    pub min_chars: usize,
    pub max_chars: usize,
    pub letters: Letters,
    /// Characters admitted besides letters and digits.
    pub extra: &'static str,
    /// Refuse leading or trailing white space.
    pub trimmed: bool,
    /// A prefix reserved for the system (`_sys_`).
    pub reserved_prefix: Option<&'static str>,
}

impl TextRule {
    /// What is wrong with `raw`, if anything.
    pub fn problem(&self, raw: &str) -> Option<TextProblem> {
        let chars = raw.chars().count();
        if chars == 0 && self.min_chars > 0 {
            return Some(TextProblem::Empty);
        }
        if chars > self.max_chars {
            return Some(TextProblem::TooLong {
                chars,
                max: self.max_chars,
            });
        }
        if chars > 0 && raw.trim().is_empty() {
            return Some(TextProblem::OnlySpace);
        }
        if let Some(c) = raw
            .chars()
            .find(|&c| !(self.letters.admits(c) || self.extra.contains(c)))
        {
            return Some(TextProblem::BadChar {
                c,
                letters: self.letters,
                extra: self.extra,
            });
        }
        if self.trimmed && raw.trim() != raw {
            return Some(TextProblem::EdgeSpace);
        }
        if let Some(prefix) = self.reserved_prefix.filter(|p| raw.starts_with(p)) {
            return Some(TextProblem::ReservedPrefix(prefix));
        }
        None
    }
}

/// Why a key or value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextProblem {
    Empty,
    TooLong {
        chars: usize,
        max: usize,
    },
    OnlySpace,
    BadChar {
        c: char,
        letters: Letters,
        extra: &'static str,
    },
    EdgeSpace,
    ReservedPrefix(&'static str),
}

fn describe_extra(extra: &str, space: &str, tab: &str) -> Vec<String> {
    extra
        .chars()
        .map(|c| match c {
            ' ' => space.to_owned(),
            '\t' => tab.to_owned(),
            c => format!("'{c}'"),
        })
        .collect()
}

impl TextProblem {
    /// English wording.
    pub fn en(&self) -> String {
        match self {
            TextProblem::Empty => "must not be empty".to_owned(),
            TextProblem::TooLong { chars, max } => {
                format!("has {chars} characters; at most {max} are allowed")
            }
            TextProblem::OnlySpace => "must not be only white space".to_owned(),
            TextProblem::BadChar { c, letters, extra } => {
                let letters = match letters {
                    Letters::Unicode => "letters, digits",
                    Letters::AsciiAndCjk => "A-Z, a-z, 0-9, CJK characters (U+4E00 to U+9FFF)",
                    Letters::Ascii => "A-Z, a-z, 0-9",
                };
                let mut allowed = vec![letters.to_owned()];
                allowed.extend(describe_extra(extra, "space", "tab"));
                format!(
                    "contains {c:?}, which is not allowed; allowed are {}",
                    allowed.join(", ")
                )
            }
            TextProblem::EdgeSpace => "must not start or end with white space".to_owned(),
            TextProblem::ReservedPrefix(p) => {
                format!("must not start with {p:?}, which is reserved")
            }
        }
    }

    /// Chinese wording.
    pub fn zh(&self) -> String {
        match self {
            TextProblem::Empty => "不能为空".to_owned(),
            TextProblem::TooLong { chars, max } => {
                format!("长度为{chars}个字符，最多允许{max}个字符")
            }
            TextProblem::OnlySpace => "不能只包含空白字符".to_owned(),
            TextProblem::BadChar { c, letters, extra } => {
                let letters = match letters {
                    Letters::Unicode => "字母、数字",
                    Letters::AsciiAndCjk => "A-Z、a-z、0-9、中文字符（U+4E00至U+9FFF）",
                    Letters::Ascii => "A-Z、a-z、0-9",
                };
                let mut allowed = vec![letters.to_owned()];
                allowed.extend(describe_extra(extra, "空格", "制表符"));
                format!(
                    "包含不允许的字符{c:?}；允许的字符为：{}",
                    allowed.join("、")
                )
            }
            TextProblem::EdgeSpace => "不能以空白字符开头或结尾".to_owned(),
            TextProblem::ReservedPrefix(p) => format!("不能以系统保留的前缀{p:?}开头"),
        }
    }
}

/// One dialect's rules for keys and values.
#[derive(Debug, Clone, Copy)]
pub struct TagRules {
    pub key: TextRule,
    pub value: TextRule,
    /// Most tags one request may carry for one resource.
    pub max_tags_per_request: usize,
}

impl TagRules {
    /// Validates a raw key.
    pub fn key(&self, raw: &str) -> Result<TagKey, CoreError> {
        match self.key.problem(raw) {
            None => Ok(TagKey(raw.to_owned())),
            Some(problem) => Err(CoreError::InvalidTagKey {
                key: raw.to_owned(),
                problem,
            }),
        }
    }

    /// Validates a raw value belonging to `key` (named in errors).
    pub fn value(&self, key: &str, raw: &str) -> Result<TagValue, CoreError> {
        match self.value.problem(raw) {
            None => Ok(TagValue(raw.to_owned())),
            Some(problem) => Err(CoreError::InvalidTagValue {
                key: key.to_owned(),
                problem,
            }),
        }
    }

    /// Refuses an empty list or one longer than a request may carry.
    pub fn check_count(&self, field: &'static str, len: usize) -> Result<(), CoreError> {
        if len == 0 {
            return Err(CoreError::Empty { field });
        }
        if len > self.max_tags_per_request {
            return Err(CoreError::TooMany {
                field,
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
        self.check_count("tags", raw.len())?;
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

    /// Validates key-value pairs that are not one resource's tags (predefined tags):
    /// no per-request count (their quota bounds them) and a key may come with several
    /// values.
    pub fn pairs<'a>(
        &self,
        raw: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Vec<Tag>, CoreError> {
        if raw.len() == 0 {
            return Err(CoreError::Empty { field: "tags" });
        }
        raw.map(|(k, v)| {
            Ok(Tag {
                key: self.key(k)?,
                value: self.value(k, v)?,
            })
        })
        .collect()
    }

    /// Validates the selectors of a delete request: count and each key (and value, if given).
    pub fn selectors<'a>(
        &self,
        raw: impl ExactSizeIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<Vec<TagSelector>, CoreError> {
        self.check_count("tags", raw.len())?;
        raw.map(|(k, v)| {
            Ok(TagSelector {
                key: self.key(k)?,
                value: v.map(|v| self.value(k, v)).transpose()?,
            })
        })
        .collect()
    }

    /// Builds delete selectors checking only that keys are present and not too long:
    /// for APIs that document no character check on delete (DIS), so a tag stored under
    /// older rules can still be removed.
    pub fn lenient_selectors<'a>(
        &self,
        raw: impl ExactSizeIterator<Item = (&'a str, Option<&'a str>)>,
    ) -> Result<Vec<TagSelector>, CoreError> {
        self.check_count("tags", raw.len())?;
        raw.map(|(k, v)| {
            if k.is_empty() {
                return Err(CoreError::InvalidTagKey {
                    key: String::new(),
                    problem: TextProblem::Empty,
                });
            }
            Ok(TagSelector {
                key: TagKey(k.to_owned()),
                value: v.map(|v| TagValue(v.to_owned())),
            })
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: TagRules = TagRules {
        key: TextRule {
            min_chars: 1,
            max_chars: 36,
            letters: Letters::Unicode,
            extra: "-_",
            trimmed: false,
            reserved_prefix: None,
        },
        value: TextRule {
            min_chars: 0,
            max_chars: 43,
            letters: Letters::Unicode,
            extra: ".-_",
            trimmed: false,
            reserved_prefix: None,
        },
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
    fn invisible_letters_are_refused_and_look_alikes_admitted() {
        for c in INVISIBLE_LETTERS {
            assert!(c.is_alphanumeric(), "{c:?} is a letter to Unicode");
            assert!(RULES.key(&format!("ENV{c}")).is_err(), "{c:?}");
            assert!(RULES.key(&c.to_string()).is_err(), "{c:?}");
            assert!(RULES.value("k", &format!("dev{c}")).is_err(), "{c:?}");
        }
        assert!(RULES.key("\u{0415}NV").is_ok(), "Cyrillic Ie is a letter");
        assert!(RULES.key("환경").is_ok(), "Hangul syllables are letters");
    }

    #[test]
    fn ascii_and_cjk_letters_stop_at_the_range_ends() {
        let rule = TextRule {
            letters: Letters::AsciiAndCjk,
            ..RULES.key
        };
        assert_eq!(rule.problem("\u{4E00}\u{9FFF}aZ9"), None);
        assert!(rule.problem("\u{4DFF}").is_some());
        assert!(rule.problem("\u{A000}").is_some());
        assert!(
            rule.problem("é").is_some(),
            "Latin letters beyond ASCII are not admitted"
        );
    }

    #[test]
    fn spaces_prefixes_and_their_wording() {
        let rule = TextRule {
            extra: " _",
            trimmed: true,
            reserved_prefix: Some("_sys_"),
            ..RULES.key
        };
        assert_eq!(rule.problem(" "), Some(TextProblem::OnlySpace));
        assert_eq!(rule.problem(" a"), Some(TextProblem::EdgeSpace));
        assert_eq!(rule.problem("a b"), None);
        assert_eq!(
            rule.problem("_sys_x"),
            Some(TextProblem::ReservedPrefix("_sys_"))
        );
        let p = rule.problem("a=b").expect("refused");
        assert!(p.en().contains("'='"), "{}", p.en());
        assert!(p.zh().contains("不允许"), "{}", p.zh());
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
